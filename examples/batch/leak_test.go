package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// leakKey is the API key the leak tests run with: every form of escaping
// changes it ('/', '+', '=', a non-ASCII letter).
const leakKey = "sk-leak/Tést+key=0123456789_SECRET-abcdefXYZ"

// injection is what a hostile server says to forge a line on a terminal:
// erase the line, write a fake one, and reorder text with a bidi override
// and a C1 control sequence introducer.
const injection = "\r\x1b[2Kall 40 files done\n\u202eevil\u009b2J"

// leakForms returns the forms a server might echo key in.
func leakForms(key string) map[string]string {
	var jsonAll strings.Builder
	for _, u := range utf16.Encode([]rune(key)) {
		fmt.Fprintf(&jsonAll, `\u%04x`, u)
	}
	return map[string]string{
		"raw":           key,
		"query-escaped": url.QueryEscape(key),
		"path-escaped":  url.PathEscape(key),
		"json-escaped":  jsonAll.String(),
		"json-slash":    strings.ReplaceAll(strings.ReplaceAll(key, "/", `\/`), "é", `\u00e9`),
	}
}

// assertNoKey fails when out holds any 12 characters in a row of any form
// of leakKey.
func assertNoKey(t *testing.T, what, out string) {
	t.Helper()
	for name, form := range leakForms(leakKey) {
		r := []rune(form)
		for i := 0; i+12 <= len(r); i++ {
			if w := string(r[i : i+12]); strings.Contains(out, w) {
				t.Errorf("%s holds %q of the key's %s form:\n%s", what, w, name, out)
				return
			}
		}
	}
}

// assertTerminalSafe fails when out holds a character that could forge or
// reorder a line on a terminal, other than the line ends of its own lines.
func assertTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			t.Errorf("%s holds %U at byte %d: %q", what, r, i, out)
			return
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "all 40 files done") {
			t.Errorf("%s has a forged line: %q", what, line)
		}
	}
}

// echoAPI is a hostile API that echoes the key it gets in every field and
// form of its errors. The name of the uploaded file picks the answer.
type echoAPI struct {
	*httptest.Server
	other    *httptest.Server // another origin
	mu       sync.Mutex
	otherHit int
}

func newEchoAPI(t *testing.T) *echoAPI {
	a := &echoAPI{}
	a.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.otherHit++
		a.mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
	}))
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.other.Close)
	t.Cleanup(a.Close)
	t.Setenv("OPENAI_BASE_URL", a.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", leakKey)
	return a
}

// fileName reads the multipart body of r to its end and returns the name
// of its file.
func fileName(r *http.Request) string {
	defer io.Copy(io.Discard, r.Body)
	mr, err := r.MultipartReader()
	if err != nil {
		return ""
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return ""
		}
		if p.FormName() == "file" {
			return p.FileName()
		}
	}
}

func (a *echoAPI) serve(w http.ResponseWriter, r *http.Request) {
	mode := strings.TrimSuffix(fileName(r), ".wav")
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	forms := leakForms(key)
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
	case "fields400":
		writeJSON(400, map[string]any{"error": map[string]any{"message": key, "type": key, "code": key, "param": key}})
	case "escaped401":
		h.Set("X-Request-Id", forms["query-escaped"])
		h.Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","type":"%s","code":"invalid_api_key"}}`,
			forms["json-escaped"], forms["json-slash"])
	case "forbidden403":
		writeJSON(403, map[string]any{"message": "key " + key + " may not use this model"})
	case "detail422":
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
		fmt.Fprintf(w, "Internal error for key %s / %s / %s / %s\n", key, forms["query-escaped"], forms["path-escaped"], forms["json-slash"])
	case "html502":
		h.Set("Retry-After-Ms", "1")
		h.Set("Content-Type", "text/html")
		w.WriteHeader(502)
		fmt.Fprintf(w, "<html><head><title>%s</title></head><body>%s</body></html>", key, injection)
	case "redirect303":
		h.Set("Location", "/v1/"+forms["path-escaped"]+"/x?key="+forms["query-escaped"])
		w.WriteHeader(303)
	case "redirect307other":
		h.Set("Location", a.other.URL+"/"+forms["path-escaped"]+"?key="+forms["query-escaped"])
		w.WriteHeader(307)
	case "inject400": // a message that tries to forge a line
		writeJSON(400, map[string]any{"error": map[string]any{"message": "bad request" + injection, "type": "invalid_request_error", "code": injection}})
	case "inject500": // the same as plain text
		h.Set("Retry-After-Ms", "1")
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		io.WriteString(w, "oops"+injection)
	case "inject200": // a transcript that tries to forge a line
		writeJSON(200, map[string]any{"text": "hello" + injection})
	default: // ok200 and the rest
		writeJSON(200, map[string]any{"text": "hello"})
	}
}

// outputsOf returns everything a run left: its stdout and stderr, and
// every file under out (transcripts and records).
func outputsOf(t *testing.T, r result, out string) map[string]string {
	t.Helper()
	seen := map[string]string{"stdout": r.stdout, "stderr": r.stderr}
	filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			seen[path] = path + "\n" + string(b)
		}
		return nil
	})
	return seen
}

// TestKeyNeverLeaksFromTheCLI runs the command against a server that echoes
// the key in every field and form of every kind of error, with retries and
// the aborts (redirects, 401, 403, quota), and finds the key in nothing it
// printed (stderr, -json) or wrote.
func TestKeyNeverLeaksFromTheCLI(t *testing.T) {
	api := newEchoAPI(t)
	for _, tc := range []struct {
		name  string
		files []string
		code  int
	}{
		{"failures", []string{"fields400", "detail422", "rate429", "plain500", "html502", "ok200"}, exitFailed},
		{"redirect", []string{"redirect303"}, exitAborted},
		{"redirect to another origin", []string{"redirect307other"}, exitAborted},
		{"invalid key", []string{"escaped401"}, exitAborted},
		{"forbidden", []string{"forbidden403"}, exitAborted},
		{"quota", []string{"quota429"}, exitAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				writeWAV(t, dir, "in/"+f+".wav", time.Second)
			}
			out := filepath.Join(dir, "out")
			r := runBatch(t, "-json", "-out", out, filepath.Join(dir, "in"))
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			s := summaryOf(t, r)
			if s.Failed != len(tc.files)-strings.Count(strings.Join(tc.files, " "), "ok200") {
				t.Errorf("summary %+v", s)
			}
			all := ""
			for what, text := range outputsOf(t, r, out) {
				assertNoKey(t, what, text)
				all += text
			}
			if !strings.Contains(all, "[REDACTED]") {
				t.Errorf("nothing redacted: the echo did not come through\n%s", r.stderr)
			}
		})
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.otherHit != 0 {
		t.Errorf("the other origin got %d requests", api.otherHit)
	}
}

// TestServerTextCannotForgeLines: what a server says (error messages in
// JSON or plain text, codes) and names of files on disk reach the terminal
// with their control characters escaped: a server cannot erase a line and
// print "all 40 files done" in its place.
func TestServerTextCannotForgeLines(t *testing.T) {
	newEchoAPI(t)
	dir := t.TempDir()
	writeWAV(t, dir, "in/inject400.wav", time.Second)
	writeWAV(t, dir, "in/inject500.wav", time.Second)
	evil := "in/ok200\x1b[2K\rall 40 files done\u202e.wav"
	writeWAV(t, dir, evil, time.Second)
	out := filepath.Join(dir, "out")
	r := runBatch(t, "-json", "-out", out, filepath.Join(dir, "in"))
	if r.code != exitFailed {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	assertTerminalSafe(t, "stderr", r.stderr)
	assertTerminalSafe(t, "-json", r.stdout)
	for _, want := range []string{
		`failed in/inject400.wav: 400 Bad Request`, // the line is there…
		`all 40 files done`,                        // …and what the server said, harmless
		`retrying in/inject500.wav: attempt 1 failed (500 Internal Server Error`,
		// The file's name, escaped, whether it was sent or refused.
		` in/ok200\x1b[2K\rall 40 files done\u202e.wav`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// -json decodes to the file's exact name, and to the error as the
	// human output shows it, escaped.
	s := summaryOf(t, r)
	if s.Done+s.Failed != 3 || s.Failed < 2 {
		t.Fatalf("summary %+v", s)
	}
	files := map[string]bool{}
	for _, f := range s.Failures {
		files[f.File] = true
		// The library already cleans control and bidi characters out of a
		// server's error fields; the CLI escapes what is left.
		if f.File == "in/inject400.wav" && (!strings.Contains(f.Error, "evil") || strings.ContainsRune(f.Error, '\u202e')) {
			t.Errorf("-json failure of %s: %q, want what the server said, cleaned", f.File, f.Error)
		}
	}
	if !files["in/inject400.wav"] || !files["in/inject500.wav"] || (s.Done == 0 && !files[filepath.ToSlash(evil)]) {
		t.Errorf("-json failures %+v", s.Failures)
	}
}
