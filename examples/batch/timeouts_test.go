package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func TestTimeoutFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want transcribe.Timeouts
	}{
		{[]string{"x"}, transcribe.Timeouts{Stall: transcribe.DefaultStallTimeout, FirstByte: transcribe.DefaultFirstByteTimeout}},
		{[]string{"-stall", "5s", "-first-byte", "30m", "x"}, transcribe.Timeouts{Stall: 5 * time.Second, FirstByte: 30 * time.Minute}},
		{[]string{"-stall", "0", "-first-byte", "0", "x"}, transcribe.Timeouts{Stall: -1, FirstByte: -1}}, // off
	} {
		cfg, code := parseFlags(tc.args, io.Discard)
		if code >= 0 || cfg.timeouts != tc.want {
			t.Errorf("%q: exit %d, timeouts %+v, want %+v", tc.args, code, cfg.timeouts, tc.want)
		}
	}
	for _, flag := range []string{"-stall", "-first-byte"} {
		if r := runBatch(t, flag, "-1s", "x"); r.code != exitUsage || !strings.Contains(r.stderr, flag+" -1s: want a duration, or 0 for no limit") {
			t.Errorf("%s -1s: exit %d, stderr %q", flag, r.code, r.stderr)
		}
	}
	// The usage text states the library's defaults.
	r := runBatch(t, "-h")
	for _, want := range []string{
		"-stall\n(default " + transcribe.DefaultStallTimeout.String() + ")",
		"-first-byte after its upload\n(default " + transcribe.DefaultFirstByteTimeout.String() + ";",
		"connection after " + transcribe.DefaultConnectTimeout.String() + ",",
		"-stall duration\n", "(default 1m0s)", "-first-byte duration\n", "(default 10m0s)",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("usage text lacks %q:\n%s", want, r.stderr)
		}
	}
}

// A server that stalls one file's answer after its headers: with -stall
// 100ms that file fails with the timeout after its retries, and the
// others are done.
func TestStalledFileFailsAlone(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), time.Second)
	}
	stall := writeWAV(t, dir, "in/stall.wav", 2*time.Second) // its own Content-Length
	fake := transcribetest.NewHandler(transcribetest.Config{})
	stallLength := int64(-1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > stallLength-1000 && r.ContentLength < stallLength+1000 {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	stallLength = int64(len(transcribetest.WAV(2 * time.Second)))
	t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "sk-test")

	r := runBatch(t, "-json", "-stall", "100ms", "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	if r.code != exitFailed || s.Done != 3 || s.Failed != 1 || len(s.Failures) != 1 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if f := s.Failures[0]; !strings.HasSuffix(f.File, filepath.Base(stall)) || !strings.Contains(f.Error, "response stalled") {
		t.Fatalf("failure %+v", f)
	}
	if !strings.Contains(r.stderr, "response stalled") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}
