package transcribe_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/steno-go/steno/transcribe"
	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

// providerEnv lists every variable NewClient reads.
var providerEnv = []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", "GROQ_API_KEY"}

// setEnv clears the provider variables, then sets kv (name, value, …).
func setEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range providerEnv {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

// wireLog records what a fake received: each request's URL and headers
// (from the client's transport) and the fields its Transcriber saw.
type wireLog struct {
	mu       sync.Mutex
	requests []*http.Request
	formats  []string
	models   []string
	prompts  []string
}

func (w *wireLog) transport(base http.RoundTripper) http.RoundTripper {
	return wireRoundTrip(func(r *http.Request) (*http.Response, error) {
		w.mu.Lock()
		w.requests = append(w.requests, &http.Request{Method: r.Method, URL: r.URL, Header: r.Header.Clone()})
		w.mu.Unlock()
		return base.RoundTrip(r)
	})
}

func (w *wireLog) transcriber(ctx context.Context, a *tt.Audio) (*tt.Transcript, error) {
	w.mu.Lock()
	w.formats, w.models, w.prompts = append(w.formats, a.ResponseFormat), append(w.models, a.Model), append(w.prompts, a.Prompt)
	w.mu.Unlock()
	return tt.DefaultTranscriber(ctx, a)
}

func (w *wireLog) last() *http.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.requests) == 0 {
		return nil
	}
	return w.requests[len(w.requests)-1]
}

// wireRoundTrip is an http.RoundTripper made of a function.
type wireRoundTrip func(*http.Request) (*http.Response, error)

func (f wireRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// providerOpts are the options that point a client at a fake of p running
// in memory (at http://fake.invalid), with the key.
func providerOpts(p tt.Provider, rt http.RoundTripper) []transcribe.Option {
	opts := []transcribe.Option{transcribe.WithHTTPClient(&http.Client{Transport: rt})}
	switch p {
	case tt.Azure:
		opts = append(opts, transcribe.Azure("http://fake.invalid", "whisper", ""), transcribe.WithAPIKey(testKey))
	case tt.Groq:
		opts = append(opts, transcribe.Groq(), transcribe.WithBaseURL("http://fake.invalid/openai/v1"), transcribe.WithAPIKey(testKey))
	case tt.SelfHosted:
		opts = append(opts, transcribe.SelfHosted("http://fake.invalid/v1", transcribe.ServerLimits{}))
	default:
		opts = append(opts, transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey))
	}
	return opts
}

// providerClient returns a client of a fake of cfg.Provider run in
// memory, which works in synctest bubbles, and what the fake received.
func providerClient(t testing.TB, cfg tt.Config, opts ...transcribe.Option) (*transcribe.Client, *tt.Handler, *wireLog) {
	t.Helper()
	w := &wireLog{}
	if cfg.Provider != tt.SelfHosted {
		cfg.APIKey = testKey
	}
	if cfg.Transcriber == nil {
		cfg.Transcriber = w.transcriber
	}
	h := tt.NewHandler(cfg)
	c, err := transcribe.NewClient(append(providerOpts(cfg.Provider, w.transport(h.Transport())), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, h, w
}

// TestProviderFromEnvironment: NewClient with no options reads the
// environment as the official SDKs do, in the documented precedence, and
// never takes one provider's key for another.
func TestProviderFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		opts    []transcribe.Option
		want    string // Provider.String(); "" with err
		auth    string
		err     error
		errSays string
	}{
		{"nothing", nil, nil, "", "", transcribe.ErrNoAPIKey, "OPENAI_API_KEY is not set"},
		{"openai key", []string{"OPENAI_API_KEY", "sk-1"}, nil, "OpenAI at https://api.openai.com/v1 (from OPENAI_API_KEY)", "Authorization", nil, ""},
		{"base URL without key", []string{"OPENAI_BASE_URL", "http://localhost:8000/v1/"}, nil,
			"OpenAI-compatible server at http://localhost:8000/v1 (from OPENAI_BASE_URL)", "", nil, ""},
		{"groq by base URL", []string{"OPENAI_BASE_URL", "https://api.groq.com/openai/v1", "OPENAI_API_KEY", "gsk-1"}, nil,
			"Groq at https://api.groq.com/openai/v1 (from OPENAI_BASE_URL)", "Authorization", nil, ""},
		{"groq by base URL, groq key", []string{"OPENAI_BASE_URL", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "gsk-1"}, nil,
			"Groq at https://api.groq.com/openai/v1 (from OPENAI_BASE_URL)", "Authorization", nil, ""},
		{"azure base URL refused", []string{"OPENAI_BASE_URL", "https://res.openai.azure.com/openai/deployments/w", "OPENAI_API_KEY", "k"}, nil,
			"", "", nil, "transcribe.Azure(endpoint, deployment, apiVersion)"},
		{"azure v1 base URL", []string{"OPENAI_BASE_URL", "https://res.openai.azure.com/openai/v1", "OPENAI_API_KEY", "k"}, nil,
			"OpenAI-compatible server at https://res.openai.azure.com/openai/v1 (from OPENAI_BASE_URL)", "Authorization", nil, ""},
		{"azure", []string{"AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/", "AZURE_OPENAI_API_KEY", "az-1", "OPENAI_API_KEY", "sk-1", "GROQ_API_KEY", "g"}, nil,
			"Azure OpenAI at https://res.openai.azure.com (deployment named by the model, api-version 2024-10-21, from AZURE_OPENAI_ENDPOINT)", "api-key", nil, ""},
		{"azure api version", []string{"AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY", "az-1", "OPENAI_API_VERSION", "2025-04-01-preview"}, nil,
			"Azure OpenAI at https://res.openai.azure.com (deployment named by the model, api-version 2025-04-01-preview, from AZURE_OPENAI_ENDPOINT)", "api-key", nil, ""},
		{"azure never takes the OpenAI key", []string{"AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com", "OPENAI_API_KEY", "sk-1"}, nil,
			"", "", transcribe.ErrNoAPIKey, "AZURE_OPENAI_API_KEY is not set"},
		{"base URL before azure", []string{"OPENAI_BASE_URL", "http://localhost:8000/v1", "AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY", "az-1"}, nil,
			"OpenAI-compatible server at http://localhost:8000/v1 (from OPENAI_BASE_URL)", "", nil, ""},
		{"groq key", []string{"GROQ_API_KEY", "gsk-1"}, nil, "Groq at https://api.groq.com/openai/v1 (from GROQ_API_KEY)", "Authorization", nil, ""},
		{"openai key before groq key", []string{"GROQ_API_KEY", "gsk-1", "OPENAI_API_KEY", "sk-1"}, nil,
			"OpenAI at https://api.openai.com/v1 (from OPENAI_API_KEY)", "Authorization", nil, ""},

		{"option over environment", []string{"AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY", "az-1", "GROQ_API_KEY", "gsk-1"},
			[]transcribe.Option{transcribe.Groq()}, "Groq at https://api.groq.com/openai/v1 (from option)", "Authorization", nil, ""},
		{"groq never takes the OpenAI key", []string{"OPENAI_API_KEY", "sk-1"}, []transcribe.Option{transcribe.Groq()},
			"", "", transcribe.ErrNoAPIKey, "GROQ_API_KEY is not set"},
		{"groq at a proxy", nil, []transcribe.Option{transcribe.WithBaseURL("https://proxy.example/groq/v1"), transcribe.Groq(), transcribe.WithAPIKey("k")},
			"Groq at https://proxy.example/groq/v1 (from option)", "Authorization", nil, ""},
		{"azure option", []string{"OPENAI_API_VERSION", "2024-06-01"}, []transcribe.Option{transcribe.Azure("https://res.openai.azure.com", "whisper", ""), transcribe.WithAPIKey("k")},
			"Azure OpenAI at https://res.openai.azure.com (deployment whisper, api-version 2024-06-01, from option)", "api-key", nil, ""},
		{"azure with a base URL", nil, []transcribe.Option{transcribe.Azure("https://res.openai.azure.com", "w", "v"), transcribe.WithBaseURL("http://x/v1"), transcribe.WithAPIKey("k")},
			"", "", nil, "do not also give WithBaseURL"},
		{"two providers", nil, []transcribe.Option{transcribe.Groq(), transcribe.Azure("https://res.openai.azure.com", "w", "v")}, "", "", nil, "more than one"},
		{"azure bad endpoint", nil, []transcribe.Option{transcribe.Azure("res.openai.azure.com", "w", "v")}, "", "", nil, "not an http(s) URL"},
		{"self-hosted takes no key from the environment", []string{"OPENAI_API_KEY", "sk-1", "GROQ_API_KEY", "g"},
			[]transcribe.Option{transcribe.SelfHosted("http://localhost:9000/v1", transcribe.ServerLimits{})},
			"self-hosted server at http://localhost:9000/v1 (from option)", "", nil, ""},
		{"self-hosted bad limits", nil, []transcribe.Option{transcribe.SelfHosted("http://x/v1", transcribe.ServerLimits{MaxBodyBytes: -1})}, "", "", nil, "negative"},
		{"self-hosted formats", nil, []transcribe.Option{transcribe.SelfHosted("http://x/v1", transcribe.ServerLimits{Formats: []transcribe.ResponseFormat{transcribe.Text}})},
			"", "", nil, "json or verbose_json"},
		{"azure host as base URL", nil, []transcribe.Option{transcribe.WithBaseURL("https://res.cognitiveservices.azure.com/openai/deployments/w"), transcribe.WithAPIKey("k")},
			"", "", nil, "use transcribe.Azure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env...)
			c, err := transcribe.NewClient(tc.opts...)
			if tc.want == "" {
				if err == nil || tc.err != nil && !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errSays) {
					t.Fatalf("err %v, want %v saying %q", err, tc.err, tc.errSays)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := c.Provider(); p.String() != tc.want || p.AuthHeader != tc.auth {
				t.Errorf("%s, auth %q; want %s, %q", p, p.AuthHeader, tc.want, tc.auth)
			}
		})
	}
}

// TestProviderTables: what Client.Provider says of each provider.
func TestProviderTables(t *testing.T) {
	setEnv(t)
	for _, tc := range []struct {
		opt       transcribe.Option
		maxBody   int64
		minBilled float64
		formats   []transcribe.ResponseFormat
		model     string
		prompt    int
	}{
		{transcribe.WithBaseURL("https://api.openai.com/v1"), transcribe.MaxBodySize, 0, nil, "whisper-1", 0},
		{transcribe.Azure("https://r.openai.azure.com", "dep", ""), transcribe.MaxBodySize, 0, nil, "dep", 0},
		{transcribe.Groq(), 25_000_000, 10, []transcribe.ResponseFormat{transcribe.JSON, transcribe.VerboseJSON, transcribe.Text}, "whisper-large-v3-turbo", 896},
		{transcribe.SelfHosted("http://localhost:8000/v1", transcribe.ServerLimits{}), 0, 0, []transcribe.ResponseFormat{transcribe.JSON, transcribe.VerboseJSON}, "whisper-1", 0},
		{transcribe.SelfHosted("http://localhost:8080/v1", transcribe.ServerLimits{MaxBodyBytes: 15 << 20, Formats: []transcribe.ResponseFormat{transcribe.JSON}}),
			15 << 20, 0, []transcribe.ResponseFormat{transcribe.JSON}, "whisper-1", 0},
	} {
		c, err := transcribe.NewClient(tc.opt, transcribe.WithAPIKey("k"))
		if err != nil {
			t.Fatal(err)
		}
		p := c.Provider()
		if p.MaxBodyBytes != tc.maxBody || p.MinBilledSeconds != tc.minBilled || !slices.Equal(p.Formats, tc.formats) ||
			p.DefaultModel != tc.model || p.MaxPromptChars != tc.prompt {
			t.Errorf("%+v", p)
		}
	}
	c, err := transcribe.NewClient(transcribe.Groq(), transcribe.WithAPIKey("k"), transcribe.WithMaxBodyBytes(100<<20))
	if err != nil || c.Provider().MaxBodyBytes != 100<<20 {
		t.Errorf("WithMaxBodyBytes: %v", err)
	}
	if _, err := transcribe.NewClient(transcribe.WithMaxBodyBytes(-1)); err == nil {
		t.Error("negative body limit accepted")
	}
}

// TestAzureWire: requests reach an Azure-shaped fake at the deployment's
// path with api-version, the key in api-key and no Authorization; a
// deployment left to the request's model is taken from it.
func TestAzureWire(t *testing.T) {
	setEnv(t)
	wav := writeWAV(t, t.TempDir(), "a.wav", 3)
	ctx := context.Background()
	c, h, w := providerClient(t, tt.Config{Provider: tt.Azure, Deployment: "whisper"})
	tr, err := c.TranscribeFile(ctx, wav, transcribe.Request{ResponseFormat: transcribe.SRT})
	if err != nil || !strings.HasPrefix(string(tr.Raw), "1\n00:00:00,000 --> ") {
		t.Fatalf("%v %+v", err, tr)
	}
	r := w.last()
	if r.URL.Path != "/openai/deployments/whisper/audio/transcriptions" || r.URL.RawQuery != "api-version=2024-10-21" ||
		r.Header.Get("api-key") != testKey || r.Header.Get("Authorization") != "" {
		t.Errorf("sent %s %v", r.URL, r.Header)
	}
	if _, err := c.Translate(ctx, bytes.NewReader(tt.WAV(2*time.Second)), transcribe.Request{}); err != nil ||
		w.last().URL.Path != "/openai/deployments/whisper/audio/translations" {
		t.Errorf("translation: %v %s", err, w.last().URL)
	}

	// The deployment named by each request's model.
	c, err = transcribe.NewClient(transcribe.Azure("http://fake.invalid/", "", "2025-04-01-preview"), transcribe.WithAPIKey(testKey),
		transcribe.WithHTTPClient(&http.Client{Transport: w.transport(h.Transport())}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TranscribeFile(ctx, wav, transcribe.Request{Model: "whisper"}); err != nil {
		t.Fatal(err)
	}
	if r := w.last(); r.URL.Path != "/openai/deployments/whisper/audio/transcriptions" || r.URL.Query().Get("api-version") != "2025-04-01-preview" {
		t.Errorf("sent %s", r.URL)
	}
	before := h.Stats().Requests
	if _, err := c.TranscribeFile(ctx, wav, transcribe.Request{}); err == nil || !strings.Contains(err.Error(), "set Request.Model") {
		t.Errorf("no deployment: %v", err)
	}
	// A deployment that does not exist: 404 DeploymentNotFound, fatal to a
	// batch, sent once.
	_, err = c.TranscribeFile(ctx, wav, transcribe.Request{Model: "whisper-dev"})
	var apiErr *transcribe.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, transcribe.ErrNotFound) || apiErr.Code != "DeploymentNotFound" || !transcribe.Fatal(err) {
		t.Errorf("unknown deployment: %v", err)
	}
	if n := h.Stats().Requests - before; n != 1 {
		t.Errorf("%d requests, want 1 (the unknown deployment's)", n)
	}
}

// TestProviderErrors: each provider's error bodies become the right typed
// error, and what no retry can mend is sent once.
func TestProviderErrors(t *testing.T) {
	setEnv(t)
	wav := writeWAV(t, t.TempDir(), "a.wav", 2)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cfg    tt.Config
		opts   []transcribe.Option
		target error
		code   string
	}{
		{"azure bad key", tt.Config{Provider: tt.Azure}, []transcribe.Option{transcribe.WithAPIKey("wrong")}, transcribe.ErrUnauthorized, "401"},
		{"groq bad key", tt.Config{Provider: tt.Groq}, []transcribe.Option{transcribe.WithAPIKey("wrong")}, transcribe.ErrUnauthorized, "invalid_api_key"},
		{"groq unknown model", tt.Config{Provider: tt.Groq}, nil, transcribe.ErrNotFound, "model_not_found"},
		{"self-hosted bad key", tt.Config{Provider: tt.SelfHosted, APIKey: "right"}, []transcribe.Option{transcribe.WithAPIKey("wrong")}, transcribe.ErrPermissionDenied, ""},
		{"self-hosted no key", tt.Config{Provider: tt.SelfHosted, APIKey: "right"}, nil, transcribe.ErrPermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &wireLog{}
			cfg := tc.cfg
			if cfg.APIKey == "" {
				cfg.APIKey = testKey
			}
			h := tt.NewHandler(cfg)
			c, err := transcribe.NewClient(append(providerOpts(cfg.Provider, w.transport(h.Transport())), tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			req := transcribe.Request{}
			if tc.code == "model_not_found" {
				req.Model = "whisper-1"
			}
			_, err = c.TranscribeFile(ctx, wav, req)
			var apiErr *transcribe.APIError
			if !errors.As(err, &apiErr) || !errors.Is(err, tc.target) || apiErr.Code != tc.code || apiErr.Message == "" {
				t.Errorf("%v (%+v), want %v with code %q", err, apiErr, tc.target, tc.code)
			}
			if n := h.Stats().Requests; n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// TestProviderQuotaAborts: each provider's sign of an exhausted quota
// (Azure's InsufficientQuota, Groq's blocked_api_access, a self-hosted
// proxy's upstream insufficient_quota in a {"detail"}) is ErrQuotaExceeded,
// costs one request, and stops a batch.
func TestProviderQuotaAborts(t *testing.T) {
	setEnv(t)
	wav := writeWAV(t, t.TempDir(), "a.wav", 2)
	ctx := context.Background()
	for _, p := range []tt.Provider{tt.OpenAI, tt.Azure, tt.Groq, tt.SelfHosted} {
		t.Run(p.String(), func(t *testing.T) {
			c, h, _ := providerClient(t, tt.Config{Provider: p, QuotaRequests: 1})
			if _, err := c.TranscribeFile(ctx, wav, transcribe.Request{}); err != nil {
				t.Fatal(err)
			}
			_, err := c.TranscribeFile(ctx, wav, transcribe.Request{})
			if !errors.Is(err, transcribe.ErrQuotaExceeded) || !transcribe.Fatal(err) {
				t.Fatalf("%v, want ErrQuotaExceeded", err)
			}
			if n := h.Stats().Requests; n != 2 {
				t.Errorf("%d requests, want 2: the quota's answer is not retried", n)
			}
		})
	}
}

// pauseLog captures how long the limiter paused every request after a
// throttle.
type pauseLog struct {
	mu     sync.Mutex
	pauses []time.Duration
}

func (p *pauseLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *pauseLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *pauseLog) WithGroup(string) slog.Handler            { return p }
func (p *pauseLog) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "ratelimit: pausing") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "for" {
				p.mu.Lock()
				p.pauses = append(p.pauses, a.Value.Duration())
				p.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

// TestProviderRetrySignals: a 429 in each provider's words is waited out
// for as long as the provider asks, however it says so (Azure: headers,
// x-ms-retry-after-ms alone, or only "Please retry after N seconds";
// Groq: retry-after in seconds; a self-hosted server: retry-after), and
// the limiter pauses every request for that long, not for its own short
// backoff.
func TestProviderRetrySignals(t *testing.T) {
	strip := func(names ...string) func(http.Header) {
		return func(h http.Header) {
			for _, n := range names {
				h.Del(n)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		cfg   tt.Config
		strip func(http.Header) // edits the answers' headers
		wait  time.Duration
	}{
		{"azure headers", tt.Config{Provider: tt.Azure, RateLimit: tt.RateLimit{Requests: 1, Window: 20 * time.Second}}, nil, 20 * time.Second},
		// x-ms-retry-after-ms alone, saying longer than the message:
		// the header wins.
		{"azure x-ms-retry-after-ms", tt.Config{Provider: tt.Azure, RateLimit: tt.RateLimit{Requests: 1, Window: 20 * time.Second}},
			func(h http.Header) {
				if h.Get("x-ms-retry-after-ms") != "" {
					strip("retry-after", "retry-after-ms")(h)
					h.Set("x-ms-retry-after-ms", "25000")
				}
			}, 25 * time.Second},
		{"azure message", tt.Config{Provider: tt.Azure, RateLimit: tt.RateLimit{Requests: 1, Window: 20 * time.Second}},
			strip("retry-after", "retry-after-ms", "x-ms-retry-after-ms"), 20 * time.Second},
		// Groq's audio budget shows only in its 429s: 10 s of audio per
		// 30 s, two files of 6 s; the second waits for 2 s of audio to
		// come back, 6 s.
		{"groq", tt.Config{Provider: tt.Groq, RateLimit: tt.RateLimit{AudioSeconds: 10, AudioWindow: 30 * time.Second}}, nil, 6 * time.Second},
		{"self-hosted", tt.Config{Provider: tt.SelfHosted, RateLimit: tt.RateLimit{Requests: 1, Window: 20 * time.Second}}, nil, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t)
			synctest.Test(t, func(t *testing.T) {
				log := &pauseLog{}
				w := &wireLog{}
				cfg := tc.cfg
				if cfg.Provider != tt.SelfHosted {
					cfg.APIKey = testKey
				}
				h := tt.NewHandler(cfg)
				rt := w.transport(h.Transport())
				if tc.strip != nil {
					base := rt
					rt = wireRoundTrip(func(r *http.Request) (*http.Response, error) {
						resp, err := base.RoundTrip(r)
						if resp != nil {
							tc.strip(resp.Header)
						}
						return resp, err
					})
				}
				c, err := transcribe.NewClient(append(providerOpts(cfg.Provider, rt), transcribe.WithLogger(slog.New(log)))...)
				if err != nil {
					t.Fatal(err)
				}
				wav := tt.WAV(6 * time.Second)
				ctx := context.Background()
				if _, err := c.Transcribe(ctx, bytes.NewReader(wav), transcribe.Request{}); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				tr, err := c.Transcribe(ctx, bytes.NewReader(wav), transcribe.Request{})
				if err != nil {
					t.Fatal(err)
				}
				if waited := time.Since(start); waited < tc.wait || waited > tc.wait+2*time.Second {
					t.Errorf("waited %v, want %v", waited, tc.wait)
				}
				if s := h.Stats(); s.ByStatus[http.StatusTooManyRequests] != 1 || s.ByStatus[http.StatusOK] != 2 || tr.Attempts != 2 {
					t.Errorf("answers %v, attempts %d", s.ByStatus, tr.Attempts)
				}
				log.mu.Lock()
				defer log.mu.Unlock()
				if len(log.pauses) == 0 || log.pauses[0] < tc.wait-time.Second {
					t.Errorf("limiter pauses %v, want one of %v", log.pauses, tc.wait)
				}
			})
		})
	}
}

// TestFormatsRenderedLocally: a format a provider lacks is asked for as
// verbose_json or json and rendered locally, byte for byte as the fake's
// OpenAI renders it, with the same transcript fields.
func TestFormatsRenderedLocally(t *testing.T) {
	setEnv(t)
	wav := writeWAV(t, t.TempDir(), "a.wav", 12)
	ctx := context.Background()
	openai, _, _ := providerClient(t, tt.Config{})
	want := map[transcribe.ResponseFormat]*transcribe.Transcription{}
	for _, f := range []transcribe.ResponseFormat{transcribe.Text, transcribe.SRT, transcribe.VTT} {
		tr, err := openai.TranscribeFile(ctx, wav, transcribe.Request{ResponseFormat: f})
		if err != nil {
			t.Fatal(err)
		}
		want[f] = tr
	}
	for _, tc := range []struct {
		p     tt.Provider
		cfg   tt.Config
		asked map[transcribe.ResponseFormat]string // what the server is asked for
	}{
		{tt.Groq, tt.Config{Provider: tt.Groq}, map[transcribe.ResponseFormat]string{transcribe.Text: "text", transcribe.SRT: "verbose_json", transcribe.VTT: "verbose_json"}},
		{tt.SelfHosted, tt.Config{Provider: tt.SelfHosted, ResponseFormats: []string{"json", "verbose_json"}},
			map[transcribe.ResponseFormat]string{transcribe.Text: "json", transcribe.SRT: "verbose_json", transcribe.VTT: "verbose_json"}},
	} {
		c, _, w := providerClient(t, tc.cfg)
		for f, asked := range tc.asked {
			tr, err := c.TranscribeFile(ctx, wav, transcribe.Request{ResponseFormat: f})
			if err != nil {
				t.Fatalf("%v %s: %v", tc.p, f, err)
			}
			w.mu.Lock()
			got := w.formats[len(w.formats)-1]
			w.mu.Unlock()
			if got != asked {
				t.Errorf("%v %s: asked the server for %s, want %s", tc.p, f, got, asked)
			}
			o := want[f]
			if !bytes.Equal(tr.Raw, o.Raw) || tr.Text != o.Text || len(tr.Segments) != len(o.Segments) || tr.Format != f {
				t.Errorf("%v %s:\n%q\nwant OpenAI's\n%q", tc.p, f, tr.Raw, o.Raw)
			}
		}
	}
}

// TestGroqRequest: Groq gets its default model, prompts cut to its 896
// characters (their end, from a word), and no format it cannot make.
func TestGroqRequest(t *testing.T) {
	setEnv(t)
	wav := writeWAV(t, t.TempDir(), "a.wav", 2)
	ctx := context.Background()
	c, h, w := providerClient(t, tt.Config{Provider: tt.Groq})
	long := strings.Repeat("lorem ipsum é ", 100) + "the end"
	if _, err := c.TranscribeFile(ctx, wav, transcribe.Request{Prompt: long}); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	model, prompt := w.models[0], w.prompts[0]
	w.mu.Unlock()
	if model != transcribe.DefaultGroqModel || utf8.RuneCountInString(prompt) > 896 || utf8.RuneCountInString(prompt) < 880 ||
		!strings.HasSuffix(long, " "+prompt) {
		t.Errorf("model %q, prompt of %d characters %q…", model, utf8.RuneCountInString(prompt), prompt[:20])
	}
	_, err := c.TranscribeFile(ctx, wav, transcribe.Request{ResponseFormat: transcribe.DiarizedJSON})
	if !errors.Is(err, transcribe.ErrBadRequest) || h.Stats().Requests != 1 {
		t.Errorf("diarized_json: %v, %d requests", err, h.Stats().Requests)
	}
	// Translations go to the model that translates (turbo does not).
	if _, err := c.Translate(ctx, bytes.NewReader(tt.WAV(2*time.Second)), transcribe.Request{ResponseFormat: transcribe.SRT}); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if m, f := w.models[len(w.models)-1], w.formats[len(w.formats)-1]; m != "whisper-large-v3" || f != "verbose_json" {
		t.Errorf("translation sent to %s as %s", m, f)
	}
}

// TestSelfHostedSendsLargeFilesWhole: a self-hosted server with no size
// limit gets a 40 MB file in one request when SplitOptions.MaxBytes allows
// it; one with a limit (LocalAI's 15 MiB) gets pieces that fit.
func TestSelfHostedSendsLargeFilesWhole(t *testing.T) {
	setEnv(t)
	dir := t.TempDir()
	big := writeWAV(t, dir, "big.wav", 1260) // 40.3 MB
	ctx := context.Background()
	c, h, _ := providerClient(t, tt.Config{Provider: tt.SelfHosted}, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 64 << 20}))
	tr, err := c.TranscribeFile(ctx, big, transcribe.Request{})
	if err != nil {
		t.Fatal(err)
	}
	s := h.Stats()
	if s.Requests != 1 || s.BytesReceived < 40_000_000 || len(tr.Pieces) != 0 || tr.Text == "" {
		t.Errorf("%d requests, %d bytes, %d pieces", s.Requests, s.BytesReceived, len(tr.Pieces))
	}
	t.Logf("no limit: %d request of %d bytes", s.Requests, s.BytesReceived)

	// The same through a batch that writes its outputs (and keeps the
	// pieces of cut files): one request, the file whole.
	c, h, _ = providerClient(t, tt.Config{Provider: tt.SelfHosted}, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 64 << 20}))
	w, err := transcribe.NewOutputWriter(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	results, err := c.BatchTranscribe(ctx, func(yield func(transcribe.Job) bool) { yield(transcribe.Job{Path: big}) }, transcribe.BatchOptions{Output: w})
	if err != nil {
		t.Fatal(err)
	}
	for r := range results {
		if r.Status != transcribe.StatusDone {
			t.Fatalf("batch: %v %v", r.Status, r.Err)
		}
	}
	if s := h.Stats(); s.Requests != 1 || s.BytesReceived < 40_000_000 {
		t.Errorf("batch: %d requests, %d bytes", s.Requests, s.BytesReceived)
	}

	mid := writeWAV(t, dir, "mid.wav", 650) // 20.8 MB
	h = tt.NewHandler(tt.Config{Provider: tt.SelfHosted, MaxBodyBytes: 15 << 20})
	c, err = transcribe.NewClient(transcribe.SelfHosted("http://fake.invalid/v1", transcribe.ServerLimits{MaxBodyBytes: 15 << 20}),
		transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()}))
	if err != nil {
		t.Fatal(err)
	}
	tr, err = c.TranscribeFile(ctx, mid, transcribe.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if s = h.Stats(); len(tr.Pieces) < 2 || s.ByStatus[http.StatusOK] != len(tr.Pieces) || s.Requests != len(tr.Pieces) {
		t.Errorf("%d pieces, answers %v", len(tr.Pieces), s.ByStatus)
	}
	t.Logf("15 MiB limit: %d pieces, %d requests, %d bytes", len(tr.Pieces), s.Requests, s.BytesReceived)
}

// TestSelfHostedOneAtATime: ServerLimits.MaxInFlight bounds the requests
// in flight (whisper.cpp's server takes one at a time).
func TestSelfHostedOneAtATime(t *testing.T) {
	setEnv(t)
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{Provider: tt.SelfHosted, Latency: time.Second})
		c, err := transcribe.NewClient(transcribe.SelfHosted("http://fake.invalid/v1", transcribe.ServerLimits{MaxInFlight: 1}),
			transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()}))
		if err != nil {
			t.Fatal(err)
		}
		wav := tt.WAV(2 * time.Second)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := c.Transcribe(context.Background(), bytes.NewReader(wav), transcribe.Request{}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if s := h.Stats(); s.MaxInFlight != 1 || s.ByStatus[http.StatusOK] != 4 {
			t.Errorf("%d in flight at most, answers %v", s.MaxInFlight, s.ByStatus)
		}
	})
}

// A batch on Groq prices its default model (whisper-large-v3-turbo, $0.04
// an hour) and bills at least 10 s a request.
func TestGroqBatchCost(t *testing.T) {
	setEnv(t)
	c, _, _ := providerClient(t, tt.Config{Provider: tt.Groq})
	path := writeWAV(t, t.TempDir(), "short.wav", 3)
	results, err := c.BatchTranscribe(context.Background(), func(yield func(transcribe.Job) bool) { yield(transcribe.Job{Path: path}) },
		transcribe.BatchOptions{DryRun: true, MaxCostUSD: 1})
	if err != nil {
		t.Fatal(err)
	}
	for r := range results {
		if want := math.Round(10.0/60*0.04/60*1e6) / 1e6; r.Status != transcribe.StatusPlanned || r.CostUSD != want {
			t.Fatalf("%v %v: cost $%v, want $%v (10 s of whisper-large-v3-turbo)", r.Status, r.Err, r.CostUSD, want)
		}
	}
}
