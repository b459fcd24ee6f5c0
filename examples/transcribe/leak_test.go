package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/steno-go/steno/transcribe/transcribetest"
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

// runOn runs the command on a file named mode.wav and returns its exit
// status, stdout and stderr.
func runOn(t *testing.T, mode string, args ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), mode+".wav")
	if err := os.WriteFile(path, transcribetest.WAV(time.Second), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(append(args, path), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestKeyNeverLeaksFromTheCLI runs the command against a server that echoes
// the key in every field and form of every kind of error, with retries,
// redirects and quota, and finds the key in nothing it printed.
func TestKeyNeverLeaksFromTheCLI(t *testing.T) {
	api := newEchoAPI(t)
	for _, mode := range []string{"fields400", "escaped401", "forbidden403", "detail422", "quota429", "rate429",
		"plain500", "html502", "redirect303", "redirect307other", "ok200"} {
		t.Run(mode, func(t *testing.T) {
			code, stdout, stderr := runOn(t, mode)
			if want := map[bool]int{true: 0, false: 1}[mode == "ok200"]; code != want {
				t.Fatalf("exit %d, want %d\n%s", code, want, stderr)
			}
			assertNoKey(t, "stdout", stdout)
			assertNoKey(t, "stderr", stderr)
			if mode != "ok200" && mode != "quota429" && !strings.Contains(stderr, "[REDACTED]") {
				t.Errorf("nothing redacted: the echo did not come through\n%s", stderr)
			}
		})
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.otherHit != 0 {
		t.Errorf("the other origin got %d requests", api.otherHit)
	}
}

// TestServerTextCannotForgeLines: an error message, or a transcript shown
// on a terminal, cannot erase a line and print "all 40 files done" in its
// place. A transcript written to a file or a pipe stays exact.
func TestServerTextCannotForgeLines(t *testing.T) {
	newEchoAPI(t)
	for _, mode := range []string{"inject400", "inject500", "html502"} {
		code, stdout, stderr := runOn(t, mode)
		if code != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q", mode, code, stdout)
		}
		assertTerminalSafe(t, mode+" stderr", stderr)
	}

	code, stdout, stderr := runOn(t, "inject200")
	if code != 0 || stdout != "hello"+injection+"\n" {
		t.Errorf("into a pipe: exit %d, stdout %q, want the transcript exactly\n%s", code, stdout, stderr)
	}
	old := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = old })
	code, stdout, stderr = runOn(t, "inject200")
	if want := `hello\r\x1b[2Kall 40 files done` + "\n" + `\u202eevil\u009b2J` + "\n"; code != 0 || stdout != want {
		t.Errorf("on a terminal: exit %d, stdout %q, want %q\n%s", code, stdout, want, stderr)
	}
	assertTerminalSafe(t, "transcript on a terminal", stdout)
}
