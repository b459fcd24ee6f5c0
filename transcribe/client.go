// Package transcribe is a client for speech-to-text servers that speak
// OpenAI's /v1/audio/transcriptions protocol: OpenAI, Azure OpenAI, Groq and
// self-hosted servers.
//
// It uploads without holding files in memory: a file is streamed from disk
// inside a multipart body whose exact Content-Length is known in advance
// (servers refuse chunked uploads), and every retry rereads it from its
// source. A reader of unknown length is spooled to a temporary file first.
//
// Requests go through a ratelimit.Limiter (one per client unless shared
// with WithLimiter), which keeps them within the account's budget and pauses
// every request sharing it after a 429.
//
// Retries are safe for the caller's money: only failures that can succeed
// later are retried (connection errors, 408, 409, 429 rate limits, 5xx),
// with jittered exponential backoff that honours retry-after-ms,
// retry-after and x-should-retry; a 429 insufficient_quota, a bad key, a
// missing model or a bad request is returned at once. Errors are an
// *APIError or an *InputError, matched with errors.Is against the package's
// sentinels (ErrQuotaExceeded, ErrRateLimited, ErrFileTooLarge, …).
//
// Audio over the API's size limit is cut at its pauses, the pieces sent in
// parallel and their transcripts stitched back into one, timestamps and
// all (see SplitOptions and Transcription.Pieces).
//
// Most callers want TranscribeFile:
//
//	c, err := transcribe.NewClient() // OPENAI_API_KEY, OPENAI_BASE_URL
//	t, err := c.TranscribeFile(ctx, "talk.mp3", transcribe.Request{Language: "en"})
//	fmt.Println(t.Text)
package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// Defaults of a Client.
const (
	// DefaultBaseURL is used when neither WithBaseURL nor OPENAI_BASE_URL
	// gives one.
	DefaultBaseURL = "https://api.openai.com/v1"
	// DefaultMaxAttempts is how many times a request is tried in all,
	// the first attempt included: two retries, as OpenAI's own SDKs do.
	DefaultMaxAttempts = 3
	// DefaultMaxRetryWait caps the wait the client accepts from a server's
	// retry-after: a server asking for longer gets its error returned
	// instead, with APIError.RetryAfter set, so that no call sleeps for
	// minutes unasked.
	DefaultMaxRetryWait = time.Minute
	// MaxBodySize is OpenAI's limit on a request body, multipart framing
	// included: 25 MiB.
	MaxBodySize = 25 << 20
)

// Client sends transcription and translation requests. It is safe for
// concurrent use; make one and share it.
type Client struct {
	baseURL      string
	apiKey       string
	org, project string
	http         *http.Client
	log          *slog.Logger
	maxAttempts  int
	maxRetryWait time.Duration
	timeouts     Timeouts     // zero fields: the defaults (WithTimeouts)
	retries      *retryBudget // WithRetryBudget; nil: none
	tempDir      string
	limiter      *ratelimit.Limiter
	split        SplitOptions
}

// An Option configures a Client. Options that can be given a wrong value
// make NewClient return an error.
type Option func(*Client) error

// WithAPIKey sets the API key, sent as "Authorization: Bearer <key>". The
// default is $OPENAI_API_KEY. The key never appears in errors or logs.
func WithAPIKey(key string) Option {
	return func(c *Client) error { c.apiKey = key; return nil }
}

// WithBaseURL sets the API's base URL, up to and including /v1, e.g.
// "https://api.groq.com/openai/v1" or "http://localhost:8000/v1". The default
// is $OPENAI_BASE_URL, else DefaultBaseURL.
func WithBaseURL(u string) Option {
	return func(c *Client) error { c.baseURL = u; return nil }
}

// WithHTTPClient sets the HTTP client (transport, proxies, timeouts).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("transcribe: nil HTTP client")
		}
		c.http = hc
		return nil
	}
}

// WithLogger makes the client log each attempt, retry and failure. The
// default logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("transcribe: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithOrganization sets the OpenAI-Organization header.
func WithOrganization(id string) Option {
	return func(c *Client) error { c.org = id; return nil }
}

// WithProject sets the OpenAI-Project header.
func WithProject(id string) Option {
	return func(c *Client) error { c.project = id; return nil }
}

// WithMaxAttempts sets how many times a request is tried in all (at least
// 1; 1 means no retries). The default is DefaultMaxAttempts.
func WithMaxAttempts(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("transcribe: max attempts %d, want at least 1", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithMaxRetryWait sets the longest retry-after the client waits out
// before retrying (see DefaultMaxRetryWait).
func WithMaxRetryWait(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return fmt.Errorf("transcribe: negative max retry wait %v", d)
		}
		c.maxRetryWait = d
		return nil
	}
}

// WithTimeouts sets the bounds on each attempt: on connecting, on a
// stalled upload or response, and on the server's first byte after the
// upload (see Timeouts). Zero fields keep their defaults and negative ones
// turn that bound off. Unlike http.Client.Timeout, none of them cuts a long
// upload that keeps moving.
func WithTimeouts(t Timeouts) Option {
	return func(c *Client) error { c.timeouts = t; return nil }
}

// WithRetryBudget sets the client-wide retry budget, which stops retries
// while a server fails most requests (see RetryBudget). Zero fields take
// the defaults; a negative Tokens turns the budget off. Negative costs, or
// a cost over the budget's size, are an error.
func WithRetryBudget(b RetryBudget) Option {
	return func(c *Client) error {
		r := b.resolved()
		if r.RetryCost < 0 || r.TimeoutCost < 0 || r.Refund < 0 {
			return fmt.Errorf("transcribe: retry budget %+v: negative cost or refund", b)
		}
		if r.Tokens > 0 && (r.RetryCost > r.Tokens || r.TimeoutCost > r.Tokens) {
			return fmt.Errorf("transcribe: retry budget of %d tokens: a retry costs %d, after a timeout %d; none may cost more than the budget holds",
				r.Tokens, r.RetryCost, r.TimeoutCost)
		}
		c.retries = newRetryBudget(b)
		return nil
	}
}

// WithLimiter makes the client send every request through l, which may be
// shared with other clients (and with other HTTP clients through
// l.Transport) that spend the same account's budget. By default each client
// has a limiter of its own that learns the budget from the server's headers
// (see package ratelimit).
func WithLimiter(l *ratelimit.Limiter) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("transcribe: nil limiter")
		}
		c.limiter = l
		return nil
	}
}

// WithTempDir sets where readers of unknown length are spooled (default
// os.TempDir()).
func WithTempDir(dir string) Option {
	return func(c *Client) error { c.tempDir = dir; return nil }
}

// NewClient returns a Client configured by opts, with defaults from the
// environment (OPENAI_API_KEY, OPENAI_BASE_URL). It fails on a malformed
// base URL, and when the base URL is OpenAI's own and no key is set; other
// servers may need none.
func NewClient(opts ...Option) (*Client, error) {
	c := &Client{
		apiKey:       os.Getenv("OPENAI_API_KEY"),
		baseURL:      os.Getenv("OPENAI_BASE_URL"),
		http:         &http.Client{},
		log:          slog.New(slog.DiscardHandler),
		maxAttempts:  DefaultMaxAttempts,
		maxRetryWait: DefaultMaxRetryWait,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.baseURL == "" {
		c.baseURL = DefaultBaseURL
	}
	u, err := url.Parse(c.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("transcribe: base URL %q is not an http(s) URL", sanitizeURL(c.baseURL))
	}
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	if c.apiKey == "" && u.Host == "api.openai.com" {
		return nil, errors.New("transcribe: no API key: set OPENAI_API_KEY or use WithAPIKey")
	}
	// The key stays secret: redirects follow the policy in redirect.go,
	// response headers and log records are redacted (secret.go).
	c.http = secureHTTPClient(c.http, c.apiKey)
	if c.apiKey != "" {
		c.log = slog.New(&redactHandler{h: c.log.Handler(), r: newRedactor(c.apiKey)})
	}
	if c.retries == nil {
		c.retries = newRetryBudget(RetryBudget{})
	}
	if c.limiter == nil {
		if c.limiter, err = ratelimit.New(ratelimit.Config{Logger: c.log}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Limiter returns the limiter the client sends through, for its Snapshot
// or to share with other clients.
func (c *Client) Limiter() *ratelimit.Limiter { return c.limiter }

// Transcribe transcribes the audio read from r. When r is a regular
// *os.File, an io.ReadSeeker or an io.ReaderAt with a Size method, the
// upload streams from it (from its current offset; from 0 for a ReaderAt)
// and each retry rereads it; r must not be read elsewhere meanwhile. Any
// other reader is first copied to a temporary file, which is removed before
// Transcribe returns. Set req.FileName to name the audio; the content
// decides the extension sent.
func (c *Client) Transcribe(ctx context.Context, r io.Reader, req Request) (*Transcription, error) {
	src, err := c.openReader(ctx, r, req)
	if err != nil {
		return nil, err
	}
	defer src.close()
	t, _, err := c.send(ctx, "/audio/transcriptions", src, req, hooks{})
	return t, err
}

// TranscribeFile transcribes the audio file at path. The file is checked
// (exists, is a regular file, is not empty, is audio) before anything is
// sent, and streamed from disk. A file over the size limit, or over the
// limits of WithSplitting, is cut and sent in pieces; one that cannot be
// cut is an *InputError wrapping ErrFileTooLarge.
func (c *Client) TranscribeFile(ctx context.Context, path string, req Request) (*Transcription, error) {
	src, err := c.openPath(path, req)
	if err != nil {
		return nil, err
	}
	defer src.close()
	t, _, err := c.send(ctx, "/audio/transcriptions", src, req, hooks{})
	return t, err
}

// Translate translates the audio read from r into English text, through
// /v1/audio/translations; r is handled as by Transcribe. Only Model,
// Prompt, ResponseFormat, Temperature, FileName and Extra apply.
func (c *Client) Translate(ctx context.Context, r io.Reader, req Request) (*Transcription, error) {
	src, err := c.openReader(ctx, r, req)
	if err != nil {
		return nil, err
	}
	defer src.close()
	t, _, err := c.send(ctx, "/audio/translations", src, req, hooks{})
	return t, err
}

// hooks let a batch watch and veto the attempts of one send.
type hooks struct {
	// beforeAttempt runs once the limiter allows an attempt, just before
	// it is sent; an error cancels the attempt and ends the send.
	beforeAttempt func() error
	// afterAttempt runs as soon as an attempt's answer is known, before
	// the limiter lets another request go.
	afterAttempt func(err error)
	// onRetry runs before waiting to retry after a failed attempt.
	onRetry func(attempt int, wait time.Duration, err error)
}

// send uploads src to the endpoint, retrying what can succeed later, and
// returns the transcription and the number of requests sent.
func (c *Client) send(ctx context.Context, endpoint string, src *source, req Request, h hooks) (*Transcription, int, error) {
	form, size, err := c.form(endpoint, src, req)
	if err != nil {
		return nil, 0, err
	}
	var t *Transcription
	var attempts int
	if c.needsSplit(src, size) {
		t, attempts, err = c.sendPieces(ctx, endpoint, src, req, h)
	} else {
		t, attempts, err = c.sendForm(ctx, endpoint, src.name, form, req.format(), cost(req.model(), src.seconds()), h)
	}
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "transcribe: failed",
			slog.String("file", src.name), slog.Int("attempts", attempts), slog.Any("error", err))
	}
	return t, attempts, err
}

// form builds the request body for src and returns it with its length.
func (c *Client) form(endpoint string, src *source, req Request) (*multipart.Form, int64, error) {
	fields, err := req.fields(endpoint == "/audio/translations")
	if err != nil {
		return nil, 0, err
	}
	form := multipart.NewForm()
	for _, f := range fields {
		if err := form.WriteField(f.name, f.value); err != nil {
			return nil, 0, fmt.Errorf("transcribe: %w", err)
		}
	}
	if err := form.AddFile("file", src.filename, src.format.ContentType(), src.file); err != nil {
		return nil, 0, &InputError{Name: src.name, Err: err}
	}
	size, err := form.Len()
	if err != nil {
		return nil, 0, fmt.Errorf("transcribe: %w", err)
	}
	return form, size, nil
}

// tooLarge is the error for a body over MaxBodySize that is sent anyway.
func tooLarge(src *source, size int64) error {
	return &InputError{Name: src.name, Size: src.file.Size, Err: fmt.Errorf(
		"%w: %.1f MB of audio (%d bytes) makes a %d-byte request, over the API's limit of %d bytes (25 MiB)",
		ErrFileTooLarge, float64(src.file.Size)/1e6, src.file.Size, size, MaxBodySize)}
}
