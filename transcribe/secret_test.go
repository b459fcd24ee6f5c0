package transcribe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// secretKey is a key with characters that every form of escaping changes:
// '/', '+', '=', a non-ASCII letter.
const secretKey = "sk-leak/Tést+key=0123456789_SECRET-abcdefXYZ"

// secretForms returns the forms a server might echo key in, each made
// independently of the code under test.
func secretForms(key string) map[string]string {
	var jsonAll, jsonUpper, html strings.Builder
	for _, r := range key {
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&jsonAll, `\u%04x`, u)
			fmt.Fprintf(&jsonUpper, `\u%04X`, u)
		}
		fmt.Fprintf(&html, "&#x%x;", r)
	}
	marshalled, _ := json.Marshal(key)
	jsonSlash := strings.ReplaceAll(strings.Trim(string(marshalled), `"`), "/", `\/`)
	jsonSlash = strings.ReplaceAll(jsonSlash, "é", `\u00e9`)
	return map[string]string{
		"raw":                  key,
		"query-escaped":        url.QueryEscape(key),
		"path-escaped":         url.PathEscape(key),
		"json-escaped":         jsonAll.String(),
		"json-escaped-upper":   jsonUpper.String(),
		"json-slash-escaped":   jsonSlash,
		"html-references":      html.String(),
		"json-in-query":        url.QueryEscape(jsonAll.String()),
		"query-escaped-twice":  url.QueryEscape(url.QueryEscape(key)),
		"json-in-json":         strings.ReplaceAll(jsonAll.String(), `\`, `\\`),
		"prefix-of-12-raw":     string([]rune(key)[:12]),
		"prefix-of-12-escaped": url.QueryEscape(string([]rune(key)[:12])),
		"middle-of-20":         string([]rune(key)[14:34]),
		"prefix-of-20":         string([]rune(key)[:20]),
	}
}

// assertNoSecret fails when out holds any 12 characters in a row of any
// form of key (the whole form when shorter).
func assertNoSecret(t *testing.T, key, what, out string) {
	t.Helper()
	for name, form := range secretForms(key) {
		r := []rune(form)
		n := min(12, len(r))
		for i := 0; i+n <= len(r); i++ {
			if w := string(r[i : i+n]); strings.Contains(out, w) {
				t.Errorf("%s holds %q of the key's %s form:\n%s", what, w, name, out)
				return
			}
		}
	}
}

func TestRedactEveryForm(t *testing.T) {
	r := newRedactor(secretKey)
	for name, form := range secretForms(secretKey) {
		in := "before " + form + " after"
		got := r.redact(in)
		if got != "before [REDACTED] after" {
			t.Errorf("%s: redact(%q) = %q", name, in, got)
		}
		// Glued to other text, too.
		if got := r.redact("x" + form + "y"); got != "x[REDACTED]y" {
			t.Errorf("%s glued: %q", name, got)
		}
	}

	// A key cut short by a server's truncation.
	if got := r.redact("key " + string([]rune(secretKey)[:15]) + "…"); got != "key [REDACTED]…" {
		t.Errorf("truncated: %q", got)
	}

	// A character outside the BMP, JSON-escaped as a surrogate pair.
	emoji := "sk-🔑-0123456789abcdefgh"
	pair := utf16.Encode([]rune("🔑"))
	escaped := strings.Replace(emoji, "🔑", fmt.Sprintf(`\u%04x\u%04x`, pair[0], pair[1]), 1)
	if got := newRedactor(emoji).redact(`{"detail":"` + escaped + `"}`); got != `{"detail":"[REDACTED]"}` {
		t.Errorf("surrogate pair: %q", got)
	}
}

func TestRedactKeepsWhatIsSafe(t *testing.T) {
	r := newRedactor(secretKey)
	for _, s := range []string{
		// OpenAI's own mask: it tells which key was used and shows
		// too little of it to matter.
		"Incorrect API key provided: sk-lea****************************fXYZ. You can find your API key at https://platform.openai.com/account/api-keys.",
		"Incorrect API key provided: sk-proj-**********************************************fXYZ.",
		"sk-leak/Tés", // 11 characters of the key
		"task-specific-configuration-value and sk-simulated", // not keys
		"Rate limit reached for whisper-1 in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1.",
		"",
	} {
		if got := r.redact(s); got != s {
			t.Errorf("redact(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestRedactOtherKeys(t *testing.T) {
	for key, cases := range map[string][][2]string{
		// No key: keys of OpenAI's shape are still removed.
		"": {
			{"a proxy echoed sk-proj-AbCdEf0123456789_xyz-ABC here", "a proxy echoed [REDACTED] here"},
			{"nothing secret", "nothing secret"},
		},
		// A short key (self-hosted) is redacted only whole.
		"abc": {
			{"xabcx abc ab", "x[REDACTED]x [REDACTED] ab"},
			{"%61%62%63", "[REDACTED]"},
		},
		// A key with a space, which a query escapes as '+'.
		"my self hosted key": {
			{"k=my+self+hosted+key&x=1", "k=[REDACTED]&x=1"},
			{"k=my%20self%20hosted%20key", "k=[REDACTED]"},
		},
	} {
		r := newRedactor(key)
		for _, c := range cases {
			if got := r.redact(c[0]); got != c[1] {
				t.Errorf("key %q: redact(%q) = %q, want %q", key, c[0], got, c[1])
			}
		}
	}
}

// TestRedactLongText checks that a key is found in a long text, in spans
// that touch, and that the text around it is kept byte for byte.
func TestRedactLongText(t *testing.T) {
	forms := secretForms(secretKey)
	var in, want strings.Builder
	for i := range 200 {
		filler := strings.Repeat(fmt.Sprintf("word%d ", i), 5)
		in.WriteString(filler + forms["query-escaped"] + forms["raw"] + " ")
		want.WriteString(filler + "[REDACTED] ")
	}
	if got := newRedactor(secretKey).redact(in.String()); got != want.String() {
		t.Fatalf("redact of a long text:\n got %.300q…\nwant %.300q…", got, want.String())
	}
}

func TestScrubEveryField(t *testing.T) {
	forms := secretForms(secretKey)
	e := &APIError{
		StatusCode: 400,
		Message:    "bad key " + forms["raw"],
		Type:       forms["json-escaped"],
		Code:       forms["query-escaped"],
		Param:      forms["path-escaped"],
		RequestID:  forms["json-slash-escaped"],
		RetryAfter: time.Second,
	}
	scrub(e, secretKey)
	want := APIError{StatusCode: 400, Message: "bad key [REDACTED]", Type: "[REDACTED]", Code: "[REDACTED]",
		Param: "[REDACTED]", RequestID: "[REDACTED]", RetryAfter: time.Second}
	if *e != want {
		t.Fatalf("scrubbed: %#v", *e)
	}
	// No key: nothing but keys of OpenAI's shape is touched.
	e = &APIError{Message: "sk-" + strings.Repeat("a", 30) + " and " + forms["raw"]}
	scrub(e, "")
	if e.Message != "[REDACTED] and "+forms["raw"] {
		t.Fatalf("scrubbed without a key: %q", e.Message)
	}
}

func TestScrubTransportRedactsHeaders(t *testing.T) {
	forms := secretForms(secretKey)
	rt := &scrubTransport{r: newRedactor(secretKey), base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		h := http.Header{}
		h.Set("X-Request-Id", forms["raw"])
		h.Add("X-Other", "a "+forms["query-escaped"])
		h.Add("X-Other", "fine")
		h.Set("Location", "/v1/x?k="+forms["query-escaped"]) // steers the redirect: left for the policy
		return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}, nil
	})}
	resp, err := rt.RoundTrip(httptest.NewRequest("GET", "http://x.invalid/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "[REDACTED]" {
		t.Errorf("X-Request-Id: %q", got)
	}
	if got := resp.Header.Values("X-Other"); len(got) != 2 || got[0] != "a [REDACTED]" || got[1] != "fine" {
		t.Errorf("X-Other: %q", got)
	}
	if got := resp.Header.Get("Location"); got != "/v1/x?k="+forms["query-escaped"] {
		t.Errorf("Location: %q", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// secretStringer holds the key and prints it, as a careless type would.
type secretStringer struct{ s string }

func (s secretStringer) String() string { return "stringer " + s.s }

type secretValuer struct{ s string }

func (s secretValuer) LogValue() slog.Value { return slog.StringValue("valuer " + s.s) }

func TestRedactHandler(t *testing.T) {
	forms := secretForms(secretKey)
	var buf bytes.Buffer
	base := slog.NewMultiHandler(
		slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log := slog.New(&redactHandler{h: base, r: newRedactor(secretKey)})
	log = log.With("with", forms["raw"]).WithGroup("g").With(slog.Group("inner", "q", forms["query-escaped"]))
	log.Debug("message "+forms["raw"],
		"string", forms["path-escaped"],
		"error", fmt.Errorf("wrapped: %w", errors.New(forms["json-escaped"])),
		"stringer", secretStringer{forms["raw"]},
		"valuer", secretValuer{forms["raw"]},
		slog.Group("group", "deep", forms["json-slash-escaped"]),
		"count", 3,
		"plain", "nothing secret")
	out := buf.String()
	assertNoSecret(t, secretKey, "log", out)
	for _, want := range []string{"count=3", "plain=\"nothing secret\"", `"plain":"nothing secret"`, "wrapped: [REDACTED]", "stringer [REDACTED]", "valuer [REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "[REDACTED]"); n != 2*8 {
		t.Errorf("%d redactions, want 8 per handler:\n%s", n, out)
	}
}

func TestClientFormatsWithoutKey(t *testing.T) {
	forms := secretForms(secretKey)
	c, err := NewClient(WithAPIKey(secretKey),
		WithBaseURL("https://user:"+forms["query-escaped"]+"@api.example.com/v1?api-key="+forms["query-escaped"]),
		WithOrganization("org-x"), WithProject("proj-y"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)))
	log.Info("client", "client", c, "by value", *c)

	outputs := map[string]string{
		"String":   c.String(),
		"GoString": c.GoString(),
		"slog":     logs.String(),
		"Println":  fmt.Sprintln(c, *c),
		"in a struct": fmt.Sprintf("%v %+v %#v", struct{ C *Client }{c}, struct{ C Client }{*c},
			[]any{c, *c}),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%10.3v"} {
		outputs[verb] = fmt.Sprintf(verb, c)
		outputs[verb+" by value"] = fmt.Sprintf(verb, *c)
	}
	for what, out := range outputs {
		assertNoSecret(t, secretKey, what, out)
		if strings.Contains(out, "user") {
			t.Errorf("%s shows the base URL's user info: %s", what, out)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%s"} {
		want := fmt.Sprintf("transcribe.Client{base URL https://api.example.com/v1?…, API key [REDACTED], limiter: no budget known yet, 0/%d in flight}",
			ratelimit.DefaultMaxInFlight)
		if got := fmt.Sprintf(verb, c); got != want {
			t.Errorf("%s: %s\nwant %s", verb, got, want)
		}
	}
	if got := fmt.Sprintf("%#v", c); !strings.HasPrefix(got, "&transcribe.Client{base URL https://api.example.com/v1?…, API key [REDACTED]") {
		t.Errorf("%%#v: %s", got)
	}
	if !strings.Contains(logs.String(), "client.api_key_set=true") || !strings.Contains(logs.String(), `"base_url":"https://api.example.com/v1?…"`) {
		t.Errorf("slog: %s", logs.String())
	}

	none, err := NewClient(WithAPIKey(""), WithBaseURL("http://localhost:8000/v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := none.String(); !strings.Contains(got, "base URL http://localhost:8000/v1, no API key") {
		t.Errorf("client without a key: %s", got)
	}
}

// echoServer is a hostile API that echoes the key it is sent in every
// field and form an error can have. The first element of the path picks
// the answer; the second keeps the count of requests of one test apart.
type echoServer struct {
	*httptest.Server
	other *httptest.Server // another origin, to be redirected to

	mu       sync.Mutex
	hits     map[string]int
	otherHit int
	hung     chan struct{} // a request is hanging (mode cancel-hang)
}

func newEchoServer(t *testing.T) *echoServer {
	s := &echoServer{hits: map[string]int{}, hung: make(chan struct{}, 1)}
	s.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.otherHit++
		s.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusTeapot)
	}))
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.other.Close)
	t.Cleanup(s.Close)
	return s
}

func (s *echoServer) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	forms := secretForms(key)
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	mode := parts[0]
	s.mu.Lock()
	s.hits[parts[0]+"/"+parts[1]]++
	n := s.hits[parts[0]+"/"+parts[1]]
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-Request-Id", key)
	writeJSON := func(status int, v any) {
		b, _ := json.Marshal(v)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}
	errorObject := func(typ, code string) map[string]any {
		return map[string]any{"error": map[string]any{
			"message": "Incorrect API key provided: " + key + " (" + forms["query-escaped"] + ", " + forms["json-escaped"] + ")",
			"type":    typ, "code": code, "param": forms["path-escaped"],
		}}
	}
	switch mode {
	case "fields400": // the key in every field, raw
		writeJSON(400, map[string]any{"error": map[string]any{"message": key, "type": key, "code": key, "param": key}})
	case "escaped401": // JSON escapes in the wire body, and a query-escaped request ID
		h.Set("X-Request-Id", forms["query-escaped"])
		h.Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","type":"%s","code":"invalid_api_key","param":"%s"}}`,
			forms["json-escaped"], forms["json-slash-escaped"], forms["json-in-json"])
	case "forbidden403":
		writeJSON(403, map[string]any{"message": "key " + key + " may not use this model"})
	case "detail422": // FastAPI
		h.Set("X-Request-Id", forms["json-escaped"])
		writeJSON(422, map[string]any{"detail": map[string]any{"loc": []string{"header", key}, "msg": "<" + key + ">"}})
	case "quota429":
		h.Set("X-Request-Id", forms["path-escaped"])
		writeJSON(429, errorObject("insufficient_quota", "insufficient_quota"))
	case "rate429":
		h.Set("Retry-After-Ms", "1")
		writeJSON(429, errorObject("requests", "rate_limit_exceeded"))
	case "plain500":
		h.Set("Retry-After-Ms", "1")
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		fmt.Fprintf(w, "Internal error for key %s / %s / %s / %s / %s\n", key, forms["query-escaped"], forms["path-escaped"],
			forms["json-slash-escaped"], forms["html-references"])
	case "html502":
		h.Set("Retry-After-Ms", "1")
		h.Set("Content-Type", "text/html")
		w.WriteHeader(502)
		fmt.Fprintf(w, "<html><head><title>%s</title></head><body>Bad gateway for %s</body></html>", key, forms["html-references"])
	case "redirect303":
		h.Set("Location", "/v1/"+forms["path-escaped"]+"/x?key="+forms["query-escaped"])
		w.WriteHeader(303)
	case "redirect307other":
		h.Set("Location", s.other.URL+"/"+forms["path-escaped"]+"?key="+forms["query-escaped"])
		w.WriteHeader(307)
	case "redirect308loop":
		h.Set("Location", r.URL.Path+"?n="+fmt.Sprint(n)+"&key="+forms["query-escaped"])
		w.WriteHeader(308)
	case "cancelwait": // asks for a long wait before the retry
		h.Set("Retry-After-Ms", "30000")
		writeJSON(500, errorObject("server_error", "server_error"))
	case "cancelhang": // an error, then a request that never gets an answer
		if n == 1 {
			h.Set("Retry-After-Ms", "1")
			writeJSON(500, errorObject("server_error", "server_error"))
			return
		}
		select {
		case s.hung <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	case "ok200":
		writeJSON(200, map[string]any{"text": "hello"})
	default:
		http.NotFound(w, r)
	}
}

// cancelOnRetry is a slog.Handler that cancels a context when the client
// logs that it will retry.
type cancelOnRetry struct{ cancel context.CancelFunc }

func (c cancelOnRetry) Enabled(context.Context, slog.Level) bool { return true }
func (c cancelOnRetry) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "transcribe: retrying" {
		c.cancel()
	}
	return nil
}
func (c cancelOnRetry) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c cancelOnRetry) WithGroup(string) slog.Handler      { return c }

// TestKeyNeverLeaksFromAnyPath makes every error path happen, with a
// server that echoes the key in every field and form, through Transcribe
// and TranscribeFile, and finds the key in none of what a caller can see:
// the error (Error, %v, %+v, %#v, its *APIError), the client formatted, a
// transcript's request ID and the debug log.
func TestKeyNeverLeaksFromAnyPath(t *testing.T) {
	srv := newEchoServer(t)
	wav := transcribetest.WAV(time.Second)
	path := filepath.Join(t.TempDir(), "a.wav")
	if err := os.WriteFile(path, wav, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode     string
		want     error // what the error must match; nil for success
		requests int
	}{
		{"fields400", ErrBadRequest, 1},
		{"escaped401", ErrUnauthorized, 1},
		{"forbidden403", ErrPermissionDenied, 1},
		{"detail422", ErrBadRequest, 1},
		{"quota429", ErrQuotaExceeded, 1},
		{"rate429", ErrRateLimited, 1 + maxRateLimitRetries}, // waited out by the limiter, up to the cap
		{"plain500", ErrServer, DefaultMaxAttempts},
		{"html502", ErrServer, DefaultMaxAttempts},
		{"redirect303", &APIError{StatusCode: 303}, 1},
		{"redirect307other", &APIError{StatusCode: 307}, 1},
		{"redirect308loop", &APIError{StatusCode: 308}, MaxUploads},
		{"cancelwait", context.Canceled, 1},
		{"cancelhang", context.Canceled, 2},
		{"ok200", nil, 1},
	} {
		for _, call := range []string{"Transcribe", "TranscribeFile"} {
			t.Run(tc.mode+"/"+call, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var logs bytes.Buffer
				handlers := []slog.Handler{
					slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
					slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
				}
				switch tc.mode {
				case "cancelwait":
					handlers = append(handlers, cancelOnRetry{cancel})
				case "cancelhang":
					go func() {
						select {
						case <-srv.hung:
							cancel()
						case <-ctx.Done():
						}
					}()
				}
				c, err := NewClient(WithBaseURL(srv.URL+"/"+tc.mode+"/"+call+"/v1"), WithAPIKey(secretKey),
					WithHTTPClient(srv.Client()), WithLogger(slog.New(slog.NewMultiHandler(handlers...))))
				if err != nil {
					t.Fatal(err)
				}
				var tr *Transcription
				if call == "Transcribe" {
					tr, err = c.Transcribe(ctx, bytes.NewReader(wav), Request{})
				} else {
					tr, err = c.TranscribeFile(ctx, path, Request{})
				}

				var apiErr *APIError
				switch want := tc.want.(type) {
				case nil:
					if err != nil {
						t.Fatalf("err = %v", err)
					}
				case *APIError:
					if !errors.As(err, &apiErr) || apiErr.StatusCode != want.StatusCode {
						t.Fatalf("err = %v, want an *APIError with status %d", err, want.StatusCode)
					}
				default:
					if !errors.Is(err, want) {
						t.Fatalf("err = %v, want %v", err, want)
					}
				}
				srv.mu.Lock()
				sent := srv.hits[tc.mode+"/"+call]
				srv.mu.Unlock()
				if sent != tc.requests {
					t.Errorf("%d requests, want %d", sent, tc.requests)
				}

				seen := map[string]string{
					"logs":   logs.String(),
					"client": fmt.Sprintf("%v %+v %#v %s %+v", c, c, c, c, *c),
				}
				if err != nil {
					seen["error"] = fmt.Sprintf("%s\n%v\n%+v\n%#v", err.Error(), err, err, err)
					if errors.As(err, &apiErr) {
						seen["*APIError"] = fmt.Sprintf("%#v %+v", *apiErr, apiErr)
					}
				}
				if tr != nil {
					seen["transcription"] = fmt.Sprintf("%+v %s", *tr, tr.RequestID)
				}
				all := ""
				for what, out := range seen {
					assertNoSecret(t, secretKey, what, out)
					all += out
				}
				// The server did echo the key, and it was redacted: not
				// lost in some other way.
				if !strings.Contains(all, "[REDACTED]") {
					t.Errorf("nothing redacted: the echo did not come through\n%v", seen)
				}
				if srv.otherHit != 0 {
					t.Errorf("the other origin got %d requests", srv.otherHit)
				}
			})
		}
	}
}

// BenchmarkRedact measures the cost of redaction on what it runs on: an
// error message of 1,000 bytes (maxErrorMessage) with and without the key,
// and a header value.
func BenchmarkRedact(b *testing.B) {
	r := newRedactor(secretKey)
	msg := strings.Repeat("Rate limit reached for whisper-1 in organization org-abc. ", 18)[:1000]
	withKey := msg[:500] + url.QueryEscape(secretKey) + msg[500+len(url.QueryEscape(secretKey)):]
	for _, bc := range []struct{ name, s string }{
		{"message", msg},
		{"message-with-key", withKey},
		{"request-id", "req_6c5f734ca05bfe55dd57de9bbb19ce80"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				r.redact(bc.s)
			}
		})
	}
	b.Run("new-redactor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newRedactor(secretKey)
		}
	})
}
