package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// TestSimulate runs the -simulate path end to end: the official SDK, steno's
// limiter as its transport, and the fake API with 100 requests per 10 s.
func TestSimulate(t *testing.T) {
	const clips = 12
	var stdout, stderr bytes.Buffer
	st, err := run(t.Context(), []string{"-simulate", "-clips", fmt.Sprint(clips)}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, &stderr)
	}
	t.Logf("stderr:\n%s", &stderr)

	got := map[string]string{}
	for line := range strings.Lines(stdout.String()) {
		name, text, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			t.Errorf("unexpected output line %q", line)
			continue
		}
		if _, dup := got[name]; dup {
			t.Errorf("%s transcribed twice", name)
		}
		got[name] = text
	}
	for i := 1; i <= clips; i++ {
		name := fmt.Sprintf("clip-%02d.wav", i)
		if text, ok := got[name]; !ok {
			t.Errorf("no transcript for %s", name)
		} else if strings.TrimSpace(text) == "" {
			t.Errorf("empty transcript for %s", name)
		}
	}
	if len(got) != clips {
		t.Errorf("%d transcripts, want %d", len(got), clips)
	}

	if r := st.Requests; r.Source != "learned" || r.Limit != 100 || r.Window != 10*time.Second {
		t.Errorf("request budget: %+v; want learned from the headers, limit 20 per a positive window", r)
	}
	if st.InFlight != 0 {
		t.Errorf("%d requests still in flight after the run", st.InFlight)
	}
}

// TestQuotaStopsBatch checks that a 429 insufficient_quota stops the batch:
// the files after it are never sent.
func TestQuotaStopsBatch(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{QuotaRequests: 2})
	defer srv.Close()
	lim, err := ratelimit.New(ratelimit.Config{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	client := openai.NewClient(
		option.WithHTTPClient(&http.Client{Transport: lim.Transport(nil)}),
		option.WithBaseURL(srv.BaseURL()), option.WithAPIKey("sk-test"),
	)
	files, err := writeClips(t.TempDir(), 6)
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	res, err := transcribeAll(t.Context(), client, openai.AudioModelGPTTranscribe, files, 1, &stdout, &stderr)
	if apiErr, ok := errors.AsType[*openai.Error](err); !ok || apiErr.Code != "insufficient_quota" {
		t.Errorf("err = %v, want the insufficient_quota API error", err)
	}
	if want := (result{files: 6, done: 2, failed: 1, skipped: 3}); res != want {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	st := srv.Stats()
	t.Logf("fake received %d requests, by status %v (the SDK retries the quota 429 itself)", st.Requests, st.ByStatus)
	if st.ByStatus[http.StatusOK] != 2 || st.ByStatus[http.StatusTooManyRequests] < 1 || st.Requests != st.ByStatus[http.StatusOK]+st.ByStatus[http.StatusTooManyRequests] {
		t.Errorf("fake saw %v", st.ByStatus)
	}
	if ls := lim.Snapshot(); ls.Pauses != 0 || ls.RateLimited != 0 {
		t.Errorf("limiter paused (%d) or counted rate limits (%d) for an exhausted quota", ls.Pauses, ls.RateLimited)
	}
}

func TestMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	_, err := run(t.Context(), []string{"-simulate", "does-not-exist.wav"}, &stdout, &stderr)
	if err == nil || err.Error() != "1 of 1 files failed" {
		t.Errorf("err = %v, want 1 of 1 files failed", err)
	}
	if !strings.Contains(stderr.String(), "does-not-exist.wav: open does-not-exist.wav") {
		t.Errorf("stderr does not name the file and the reason:\n%s", &stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", &stdout)
	}
}

func TestUsage(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"-no-such-flag"}, "usage"},
		{[]string{"-simulate", "-clips", "0"}, "usage"},
		{[]string{"a.wav"}, "OPENAI_API_KEY is not set (or use -simulate)"},
	} {
		var stdout, stderr bytes.Buffer
		_, err := run(t.Context(), tc.args, &stdout, &stderr)
		if err == nil || err.Error() != tc.want {
			t.Errorf("run(%q) = %v, want %s", tc.args, err, tc.want)
		}
		if tc.want == "usage" && !errors.Is(err, errUsage) {
			t.Errorf("run(%q): %v is not errUsage", tc.args, err)
		}
	}
}
