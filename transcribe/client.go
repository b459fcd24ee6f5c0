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
// Audio over the API's size limit (or a model's duration cap) is cut at
// its pauses, the pieces sent in parallel and their transcripts stitched
// back into one, timestamps and all, speakers too (see SplitOptions and
// Transcription.Pieces).
//
// Providers are options, not forks: Azure, Groq and SelfHosted choose
// one (its URL shape, auth header, limits and formats), WithBaseURL
// recognises known hosts, and NewClient with no options reads the
// environment as the official SDKs do (OPENAI_API_KEY, OPENAI_BASE_URL,
// AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, OPENAI_API_VERSION,
// GROQ_API_KEY; see NewClient). A response format a server lacks (srt,
// vtt or text) is asked for as verbose_json or json and rendered locally,
// in the layout OpenAI returns.
//
// Most callers want TranscribeFile:
//
//	c, err := transcribe.NewClient() // OPENAI_API_KEY, OPENAI_BASE_URL, …
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
	"os"
	"time"

	"github.com/steno-go/steno/internal/audio"
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
	// included: 25 MiB. Other providers have their own (see
	// Provider.MaxBodyBytes).
	MaxBodySize = 25 << 20
)

// ErrNoAPIKey is matched, with errors.Is, by NewClient's error when the
// provider needs an API key and none is set; the error names the
// environment variable that would give it.
var ErrNoAPIKey = errors.New("no API key")

// Client sends transcription and translation requests. It is safe for
// concurrent use; make one and share it.
type Client struct {
	baseURL      string // the provider's base URL (Azure: its endpoint), without a final "/"
	apiKey       string
	prov         provider // see provider.go
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

	// What the options said, for resolveProvider.
	chosen   *provider // Azure, Groq, SelfHosted
	endpoint string    // the base of Azure and SelfHosted
	keySet   bool      // WithAPIKey was given
	maxBody  *int64    // WithMaxBodyBytes
}

// An Option configures a Client. Options that can be given a wrong value
// make NewClient return an error.
type Option func(*Client) error

// WithAPIKey sets the API key, sent as the provider takes it
// ("Authorization: Bearer <key>", or Azure's api-key header). The default
// is the provider's environment variable (see NewClient). The key never
// appears in errors or logs.
func WithAPIKey(key string) Option {
	return func(c *Client) error { c.apiKey, c.keySet = key, true; return nil }
}

// WithBaseURL sets the API's base URL, up to and including /v1, e.g.
// "http://localhost:8000/v1". Its host chooses the provider: api.openai.com
// is OpenAI, api.groq.com is Groq (as with Groq), and an Azure OpenAI host
// is refused, as Azure needs Azure; any other is an OpenAI-compatible
// server, treated as OpenAI is. With Groq, it replaces Groq's URL (a proxy,
// a test server). The default is $OPENAI_BASE_URL, else the provider's.
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
// environment, read as the official SDKs read it. The provider is chosen
// by, most specific first:
//
//  1. an option: Azure, Groq or SelfHosted;
//  2. WithBaseURL, else $OPENAI_BASE_URL: its host decides (see
//     WithBaseURL), with $OPENAI_API_KEY as the key;
//  3. $AZURE_OPENAI_ENDPOINT: Azure OpenAI, with $AZURE_OPENAI_API_KEY and
//     $OPENAI_API_VERSION (default DefaultAzureAPIVersion); each request's
//     Model names the deployment;
//  4. $OPENAI_API_KEY: OpenAI;
//  5. $GROQ_API_KEY: Groq;
//  6. else OpenAI.
//
// WithAPIKey gives the key whatever the provider; otherwise it is the
// provider's own variable (OPENAI_API_KEY, AZURE_OPENAI_API_KEY,
// GROQ_API_KEY; none for SelfHosted), never another provider's.
// Client.Provider tells what was chosen.
//
// It fails on a malformed base URL or endpoint, on conflicting options,
// and, matching ErrNoAPIKey, when OpenAI, Azure or Groq has no key; other
// servers may need none.
func NewClient(opts ...Option) (*Client, error) {
	c := &Client{
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
	if err := c.resolveProvider(os.Getenv); err != nil {
		return nil, err
	}
	// A provider with a lower limit than OpenAI's gets pieces smaller by
	// the same margin for the framing (DefaultMaxPieceBytes under
	// MaxBodySize).
	if l := c.prov.maxBody; c.split.MaxBytes == 0 && l > 0 && l < MaxBodySize {
		c.split.MaxBytes = max(audio.MinPieceBytes, l-(MaxBodySize-DefaultMaxPieceBytes))
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
		var err error
		if c.limiter, err = ratelimit.New(ratelimit.Config{Logger: c.log, MaxInFlight: c.prov.maxInFlight}); err != nil {
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
// cut is an *InputError wrapping ErrFileTooLarge, and one whose pieces
// fail in part a *PartialError (or, with SplitOptions.AllowPartial, a
// transcript whose Missing lists what failed).
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
	// Cut when the body is over the provider's limit (which may be over
	// MaxBodySize, or none), the audio over the model's cap, or
	// SplitOptions asks for it; plan pieces to leave silence out.
	if c.inPieces(src, size, req, endpoint == "/audio/translations") {
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
// The fields are req's as the provider takes them (see wireRequest): a
// format it lacks is asked for as the one it is rendered from.
func (c *Client) form(endpoint string, src *source, req Request) (*multipart.Form, int64, error) {
	translate := endpoint == "/audio/translations"
	req, err := c.prov.wireRequest(req, translate)
	if err != nil {
		return nil, 0, err
	}
	fields, err := req.fields(translate)
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

// tooLarge is the error for a body over the server's limit that would be
// sent anyway.
func (c *Client) tooLarge(src *source, size int64) error {
	return &InputError{Name: src.name, Size: src.file.Size, Err: fmt.Errorf(
		"%w: %.1f MB of audio (%d bytes) makes a %d-byte request, over the server's limit of %d bytes (%.1f MiB)",
		ErrFileTooLarge, float64(src.file.Size)/1e6, src.file.Size, size, c.prov.maxBody, float64(c.prov.maxBody)/(1<<20))}
}
