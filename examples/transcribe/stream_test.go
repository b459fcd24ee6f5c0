package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStreamFlag(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"-simulate", "-model", "gpt-4o-transcribe"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	whole := out.String()

	// The simulated API streams word by word; what is printed is the
	// transcript, as without -stream.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-simulate", "-stream", "-model", "gpt-4o-transcribe"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if out.String() != whole || len(strings.Fields(whole)) < 10 {
		t.Errorf("-stream printed %q; without it %q", out.String(), whole)
	}

	// whisper-1 does not stream: the transcript comes whole, and says so.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-simulate", "-stream", "-format", "srt"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "1\n00:00:00,000 --> ") || !strings.Contains(errOut.String(), "does not stream") {
		t.Errorf("whisper-1 with -stream: stdout %q, stderr %q", out.String(), errOut.String())
	}

	// A file that is cut streams piece after piece.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-simulate", "-stream", "-model", "gpt-4o-transcribe", "-cut", "2s"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "cut into 5 pieces") || len(strings.Fields(out.String())) < 10 || !strings.HasSuffix(out.String(), ".\n") {
		t.Errorf("-cut with -stream: stdout %q, stderr %q", out.String(), errOut.String())
	}
}

// printed is a stdout that reports each write.
type printed struct {
	mu     sync.Mutex
	b      strings.Builder
	writes chan string
}

func (p *printed) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.b.Write(b)
	p.mu.Unlock()
	p.writes <- string(b)
	return len(b), nil
}

func (p *printed) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.String()
}

// streamAPI answers every request with deltas, sending each one only once
// the one before is on stdout, then ends with last.
func streamAPI(t *testing.T, out *printed, deltas []string, last string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, d := range deltas {
			fmt.Fprintf(w, "data: %s\n\n", event("transcript.text.delta", "delta", d))
			w.(http.Flusher).Flush()
			select {
			case <-out.writes:
			case <-time.After(10 * time.Second):
				t.Errorf("the delta %q was not printed before the next one was sent", d)
				return
			}
		}
		io.WriteString(w, last)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "sk-test")
}

// event returns the JSON of an event of type typ whose field is value.
func event(typ, field, value string) []byte {
	b, _ := json.Marshal(map[string]string{"type": typ, field: value})
	return b
}

// Each delta is printed the moment it arrives, before the server sends
// the next: the server waits for it on stdout.
func TestStreamPrintsDeltasAsTheyArrive(t *testing.T) {
	out := &printed{writes: make(chan string, 100)}
	deltas := []string{"Hello", " there,", " world."}
	streamAPI(t, out, deltas, `data: {"type":"transcript.text.done","text":"Hello there, world."}`+"\n\n")
	var errOut bytes.Buffer
	if code := run([]string{"-model", "gpt-4o-transcribe", "-stream", writeClip(t)}, out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if out.String() != "Hello there, world.\n" {
		t.Errorf("stdout %q", out.String())
	}
}

// On a terminal, a delta cannot forge a line; into a pipe it is exact. A
// failure mid-stream ends the line, and is reported on stderr.
func TestStreamDeltasAreTerminalSafe(t *testing.T) {
	deltas := []string{"hello", injection}
	done := fmt.Sprintf("data: %s\n\n", event("transcript.text.done", "text", "hello"+injection))
	out := &printed{writes: make(chan string, 100)}
	streamAPI(t, out, deltas, done)
	var errOut bytes.Buffer
	if code := run([]string{"-model", "gpt-4o-transcribe", "-stream", writeClip(t)}, out, &errOut); code != 0 || out.String() != "hello"+injection+"\n" {
		t.Errorf("into a pipe: exit %d, stdout %q\n%s", code, out.String(), errOut.String())
	}

	old := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = old })
	out = &printed{writes: make(chan string, 100)}
	streamAPI(t, out, deltas, done)
	errOut.Reset()
	if code := run([]string{"-model", "gpt-4o-transcribe", "-stream", writeClip(t)}, out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	assertTerminalSafe(t, "stdout", out.String())

	out = &printed{writes: make(chan string, 100)}
	streamAPI(t, out, []string{"partial"}, fmt.Sprintf("event: error\ndata: %s\n\n", event("error", "message", "boom"+injection)))
	errOut.Reset()
	if code := run([]string{"-model", "gpt-4o-transcribe", "-stream", writeClip(t)}, out, &errOut); code != 1 || out.String() != "partial\n" || !strings.Contains(errOut.String(), "boom") {
		t.Errorf("an error event: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	assertTerminalSafe(t, "stderr", errOut.String())
}

// writeClip writes the demo clip and returns its path.
func writeClip(t *testing.T) string {
	t.Helper()
	path, err := writeDemoClip(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}
