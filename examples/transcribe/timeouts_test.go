package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func TestTimeoutFlags(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	var out, errOut bytes.Buffer
	run([]string{"-h"}, &out, &errOut)
	for _, want := range []string{"-stall duration", "(default " + transcribe.DefaultStallTimeout.String() + ")",
		"-first-byte duration", "(default " + transcribe.DefaultFirstByteTimeout.String() + ")"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, errOut.String())
		}
	}
	for _, args := range [][]string{{"-simulate", "-stall", "-1s"}, {"-simulate", "-first-byte", "-5s"}} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), args[1]+" "+args[2]+": want a duration, or 0 for no limit") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	// 0 turns a bound off.
	errOut.Reset()
	if code := run([]string{"-simulate", "-stall", "0", "-first-byte", "0"}, &out, &errOut); code != 0 {
		t.Errorf("bounds off: exit %d, stderr %q", code, errOut.String())
	}
}

// Against a server that answers with headers and then nothing, the call
// ends after three attempts of -stall each, with the timeout named.
func TestStallFlag(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "sk-test")
	path := filepath.Join(t.TempDir(), "a.wav")
	if err := os.WriteFile(path, transcribetest.WAV(time.Second), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-stall", "100ms", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "timeout: response stalled") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
