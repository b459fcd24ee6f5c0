package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// result is what one run of the command gave.
type result struct {
	code           int
	stdout, stderr string
}

// runBatch runs the command in-process with args.
func runBatch(t *testing.T, args ...string) result {
	t.Helper()
	return runBatchCtx(t, context.Background(), args...)
}

func runBatchCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// summaryOf decodes the -json output of r.
func summaryOf(t *testing.T, r result) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("-json output %q: %v\nstderr:\n%s", r.stdout, err, r.stderr)
	}
	return s
}

// useServer points the command (through the environment) at srv.
func useServer(t *testing.T, srv *transcribetest.Server) {
	t.Helper()
	t.Cleanup(srv.Close)
	t.Setenv("OPENAI_BASE_URL", srv.BaseURL())
	t.Setenv("OPENAI_API_KEY", "sk-test")
}

// writeWAV writes a WAV file of the given length under dir and returns
// its path.
func writeWAV(t *testing.T, dir, name string, d time.Duration) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, transcribetest.WAV(d), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// transcripts returns the transcripts under out (relative, with slashes),
// leaving out the records and temporary files.
func transcripts(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != out {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(out, path)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func TestSimulateDemoThenEverythingSkipped(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	out := filepath.Join(t.TempDir(), "transcripts")
	first := runBatch(t, "-simulate", "-json", "-out", out)
	if first.code != exitOK {
		t.Fatalf("exit %d\n%s", first.code, first.stderr)
	}
	s := summaryOf(t, first)
	if s.Done != demoClipCount || s.Requests != demoClipCount || len(s.Failures) != 0 {
		t.Fatalf("first run: %+v", s)
	}
	files := transcripts(t, out)
	if len(files) != demoClipCount || files[0] != "demo/clip01.txt" {
		t.Fatalf("transcripts: %v", files)
	}
	for _, f := range files {
		if b, _ := os.ReadFile(filepath.Join(out, f)); len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("%s is empty", f)
		}
	}
	if !strings.Contains(first.stderr, "done demo/clip01.wav (2.0 s audio, 1 attempt) -> "+filepath.Join(out, "demo", "clip01.txt")) {
		t.Errorf("no done line for clip01 in:\n%s", first.stderr)
	}

	second := runBatch(t, "-simulate", "-json", "-out", out)
	s = summaryOf(t, second)
	if second.code != exitOK || s.Skipped != demoClipCount || s.Done != 0 || s.Requests != 0 {
		t.Fatalf("second run: exit %d, %+v\n%s", second.code, s, second.stderr)
	}
	if !strings.Contains(second.stderr, "skipped demo/clip01.wav (already done)") {
		t.Errorf("no skipped line in:\n%s", second.stderr)
	}
}

func TestDirectoriesAndResume(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	root := t.TempDir()
	rec := filepath.Join(root, "recordings")
	writeWAV(t, rec, "a.wav", time.Second)
	writeWAV(t, rec, "sub/b.WAV", time.Second) // extensions in any case
	writeWAV(t, rec, "sub/deeper/c.wav", time.Second)
	os.WriteFile(filepath.Join(rec, "notes.txt"), []byte("not a job"), 0o644)
	single := writeWAV(t, root, "elsewhere/single.wav", 2*time.Second)
	out := filepath.Join(root, "out")

	first := runBatch(t, "-json", "-out", out, "-format", "srt", rec, single)
	s := summaryOf(t, first)
	if first.code != exitOK || s.Done != 4 || s.Requests != 4 || s.AudioSeconds != 5 {
		t.Fatalf("exit %d, %+v\n%s", first.code, s, first.stderr)
	}
	want := []string{"recordings/a.srt", "recordings/sub/b.srt", "recordings/sub/deeper/c.srt", "single.srt"}
	if got := transcripts(t, out); !slices.Equal(got, want) {
		t.Fatalf("transcripts %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "single.srt")); !bytes.HasPrefix(b, []byte("1\n00:00:00,000 --> ")) {
		t.Errorf("single.srt: %q", b)
	}

	second := runBatch(t, "-json", "-out", out, "-format", "srt", rec, single)
	s = summaryOf(t, second)
	if second.code != exitOK || s.Skipped != 4 || s.Requests != 0 {
		t.Fatalf("second run: exit %d, %+v", second.code, s)
	}
	if n := srv.Stats().Requests; n != 4 {
		t.Errorf("server saw %d requests in all, want 4", n)
	}
}

// quotaServer is a fake with a quota of 5 that records when each request
// arrived and when each quota error was answered.
type quotaServer struct {
	*httptest.Server
	h *transcribetest.Handler

	mu         sync.Mutex
	arrivals   []time.Time
	quotaSent  []time.Time // when each 429 insufficient_quota was written
	otherCodes []int
}

func newQuotaServer(t *testing.T) *quotaServer {
	q := &quotaServer{h: transcribetest.NewHandler(transcribetest.Config{QuotaRequests: 5, Latency: 20 * time.Millisecond})}
	q.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		q.arrivals = append(q.arrivals, time.Now())
		q.mu.Unlock()
		q.h.ServeHTTP(&statusWriter{ResponseWriter: w, q: q}, r)
	}))
	t.Cleanup(q.Close)
	t.Setenv("OPENAI_BASE_URL", q.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "sk-test")
	return q
}

type statusWriter struct {
	http.ResponseWriter
	q *quotaServer
}

func (w *statusWriter) WriteHeader(status int) {
	w.q.mu.Lock()
	if status == http.StatusTooManyRequests {
		w.q.quotaSent = append(w.q.quotaSent, time.Now())
	} else if status != http.StatusOK {
		w.q.otherCodes = append(w.q.otherCodes, status)
	}
	w.q.mu.Unlock()
	w.ResponseWriter.WriteHeader(status)
}

func TestQuotaExhaustedAborts(t *testing.T) {
	for _, concurrency := range []int{1, 4} {
		t.Run(fmt.Sprint("concurrency ", concurrency), func(t *testing.T) {
			q := newQuotaServer(t)
			dir := t.TempDir()
			for i := range 15 {
				writeWAV(t, dir, fmt.Sprintf("in/clip%02d.wav", i), time.Second)
			}
			out := filepath.Join(dir, "out")
			r := runBatch(t, "-json", "-concurrency", fmt.Sprint(concurrency), "-out", out, filepath.Join(dir, "in"))
			if r.code != exitAborted {
				t.Fatalf("exit %d, want %d\n%s", r.code, exitAborted, r.stderr)
			}
			if n := strings.Count(r.stderr, "quota is exhausted"); n != 1 {
				t.Errorf("%d lines say the quota is exhausted, want 1:\n%s", n, r.stderr)
			}
			if !strings.Contains(r.stderr, "stopped: the account's quota is exhausted: add credit, then re-run to continue; finished transcripts are kept\n") {
				t.Errorf("no plain abort line in:\n%s", r.stderr)
			}
			s := summaryOf(t, r)
			billed := len(q.h.Stats().Billed)
			files := transcripts(t, out)
			q.mu.Lock()
			defer q.mu.Unlock()
			t.Logf("%d requests, %d billed, %d quota errors", len(q.arrivals), billed, len(q.quotaSent))
			if s.Aborted != "quota_exhausted" || s.Done != billed || len(files) != billed || len(q.otherCodes) != 0 {
				t.Errorf("summary %+v; %d billed, transcripts %v, other statuses %v", s, billed, files, q.otherCodes)
			}
			if s.Done+s.Failed+s.NotAttempted != 15 || s.Requests != len(q.arrivals) {
				t.Errorf("summary %+v for 15 files and %d requests", s, len(q.arrivals))
			}
			// The fake bills the requests already in flight when the
			// quota runs out: with one at a time, exactly 5.
			if concurrency == 1 && (billed != 5 || len(q.arrivals) != 6) {
				t.Errorf("one at a time: %d billed, %d requests; want 5 and 6", billed, len(q.arrivals))
			}
			if len(q.arrivals) > billed+concurrency {
				t.Errorf("%d requests for %d billed at concurrency %d", len(q.arrivals), billed, concurrency)
			}
			if len(q.quotaSent) == 0 {
				t.Fatal("no quota error was sent")
			}
			// Each worker gets at most one quota error: none sends
			// again after one.
			if len(q.quotaSent) > concurrency {
				t.Errorf("%d quota errors at concurrency %d", len(q.quotaSent), concurrency)
			}
			// Nothing is sent once the client has the quota error. The
			// slack covers the time it takes to read the answer and stop.
			const slack = 250 * time.Millisecond
			for _, a := range q.arrivals {
				if a.After(q.quotaSent[0].Add(slack)) {
					t.Errorf("a request arrived %v after the first quota error", a.Sub(q.quotaSent[0]))
				}
			}
		})
	}
}

func TestBadInputsFailAlone(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	good1 := writeWAV(t, dir, "good1.wav", time.Second)
	writeWAV(t, dir, "folder/good2.wav", time.Second)
	os.WriteFile(filepath.Join(dir, "folder", "fake.mp3"), []byte("this is text, not audio"), 0o644)
	empty := filepath.Join(dir, "empty.wav")
	os.WriteFile(empty, nil, 0o644)
	notAudio := filepath.Join(dir, "notes.wav")
	os.WriteFile(notAudio, []byte("hello, this is not audio at all"), 0o644)
	// 30 MB, sparse: the header of a WAV of ADPCM samples, which steno
	// can measure but not cut, then a hole.
	big := filepath.Join(dir, "big.wav")
	var h bytes.Buffer
	audio.WriteWAVHeader(&h, 16000, 1, 8, 30<<20-44)
	adpcm := h.Bytes()
	adpcm[20] = 2 // WAVE_FORMAT_ADPCM
	if err := os.WriteFile(big, adpcm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 30<<20); err != nil {
		t.Fatal(err)
	}
	regular := writeWAV(t, dir, "a.wav", time.Second)
	under := filepath.Join(regular, "x.wav") // under a regular file: unreadable
	missing := filepath.Join(dir, "missing.wav")

	r := runBatch(t, "-json", "-out", filepath.Join(dir, "out"),
		good1, missing, empty, notAudio, big, under, filepath.Join(dir, "folder"))
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	s := summaryOf(t, r)
	if s.Done != 2 || s.Failed != 6 || s.Requests != 2 {
		t.Errorf("summary %+v", s)
	}
	reasons := map[string]string{}
	for _, f := range s.Failures {
		reasons[f.File] = f.Error
	}
	for file, says := range map[string]string{
		"missing.wav":     "no such file",
		"empty.wav":       "empty file",
		"notes.wav":       "invalid audio",
		"big.wav":         "file too large",
		"x.wav":           "not a directory",
		"folder/fake.mp3": "invalid audio",
	} {
		if !strings.Contains(reasons[file], says) {
			t.Errorf("failure of %s: %q, want it to say %q", file, reasons[file], says)
		}
		if !strings.Contains(r.stderr, "failed "+file+": ") {
			t.Errorf("stderr names no failure of %s:\n%s", file, r.stderr)
		}
	}
	if got := transcripts(t, filepath.Join(dir, "out")); !slices.Equal(got, []string{"folder/good2.txt", "good1.txt"}) {
		t.Errorf("transcripts %v", got)
	}
	if n := srv.Stats().Requests; n != 2 {
		t.Errorf("server saw %d requests, want 2 (bad input is refused before sending)", n)
	}
}

func TestJSONSummary(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{Faults: []transcribetest.Fault{transcribetest.FaultServerError}})
	useServer(t, srv)
	dir := t.TempDir()
	for i := range 3 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), 10*time.Second)
	}
	r := runBatch(t, "-json", "-concurrency", "1", "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in"))
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"done", "failed", "skipped", "not_attempted", "requests", "retries", "rate_limited",
		"audio_seconds", "estimated_cost_usd", "elapsed_seconds", "failures", "dry_run"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, r.stdout)
		}
	}
	if _, ok := m["aborted"]; ok {
		t.Errorf("aborted set in %s", r.stdout)
	}
	s := summaryOf(t, r)
	// The first request gets a 500 and is retried.
	if s.Done != 3 || s.Requests != 4 || s.Retries != 1 || s.AudioSeconds != 30 || s.EstimatedCostUSD != 0.003 || s.DryRun {
		t.Errorf("summary %+v", s)
	}
	if !strings.Contains(r.stderr, "retrying in/0.wav: attempt 1 failed (500 Internal Server Error") {
		t.Errorf("no retry line in:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "done in/0.wav (10.0 s audio, 2 attempts)") {
		t.Errorf("no done line with 2 attempts in:\n%s", r.stderr)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	for i := range 4 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), 15*time.Second)
	}
	out := filepath.Join(dir, "out")
	r := runBatch(t, "-dry-run", "-json", "-out", out, filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	if r.code != exitOK || !s.DryRun || s.Planned != 4 || s.Requests != 0 || s.AudioSeconds != 60 || s.EstimatedCostUSD != 0.006 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "dry run, nothing sent: 4 files to transcribe, 1.0 min of audio, estimated cost $0.0060") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a dry run made the output directory: %v", err)
	}

	// No key is needed to count, even for OpenAI's API.
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	if r := runBatch(t, "-dry-run", "-out", out, filepath.Join(dir, "in")); r.code != exitOK {
		t.Errorf("dry run without a key: exit %d\n%s", r.code, r.stderr)
	}
}

func TestBudgetStopsTheBatch(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	for i := range 6 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), 10*time.Second) // $0.001 each
	}
	r := runBatch(t, "-json", "-concurrency", "1", "-max-cost", "0.0025", "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	if r.code != exitAborted || s.Aborted != "budget_reached" || s.Done != 2 || s.NotAttempted != 4 || srv.Stats().Requests != 2 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "stopped: the -max-cost budget of $0.0025 would have been passed") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestInvalidKeyAborts(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{APIKey: "sk-right"})
	useServer(t, srv)
	t.Setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789")
	dir := t.TempDir()
	for i := range 5 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), time.Second)
	}
	r := runBatch(t, "-json", "-concurrency", "1", "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	if r.code != exitAborted || s.Aborted != "invalid_key" || s.Failed != 1 || s.NotAttempted != 4 || srv.Stats().Requests != 1 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "sk-wrong-key-0123456789") {
		t.Errorf("the key is in the output:\n%s\n%s", r.stderr, r.stdout)
	}
	if !strings.Contains(r.stderr, "stopped: the API key was refused (401)") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestInterruptKeepsWhatFinished(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{Latency: 300 * time.Millisecond})
	useServer(t, srv)
	dir := t.TempDir()
	for i := range 10 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // Ctrl-C once two are billed
		for len(srv.Stats().Billed) < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	out := filepath.Join(dir, "out")
	r := runBatchCtx(t, ctx, "-json", "-concurrency", "2", "-out", out, filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	// The walk stops at the interrupt: files never reached are not
	// counted.
	if r.code != exitInterrupted || !s.Interrupted || s.Failed != 0 || s.Done+s.NotAttempted > 10 || s.Done >= 10 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if got := len(transcripts(t, out)); got != s.Done {
		t.Errorf("%d transcripts on disk, %d done", got, s.Done)
	}
	if !strings.Contains(r.stderr, "interrupted: requests in flight were cancelled and files not reached were left; finished transcripts are kept") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	file := writeWAV(t, t.TempDir(), "a.wav", time.Second)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-bogus", file}, "flag provided but not defined"},
		{[]string{"-format", "xml", file}, `-format "xml"`},
		{[]string{}, "no PATH given"},
		{[]string{"-concurrency", "-1", file}, "-concurrency -1"},
		{[]string{"-concurrency", "0", file}, "-concurrency 0"},
		{[]string{"-rpm", "-5", file}, "-rpm -5"},
		{[]string{"-rpm", "50", "-requests", "50/1m", file}, "-rpm and -requests"},
		{[]string{"-requests", "50", file}, "want N/WINDOW"},
		{[]string{"-audio-seconds", "7200/fortnight", file}, `"fortnight" is not a positive duration`},
		{[]string{"-tokens", "-1/1m", file}, "not a positive number"},
		{[]string{"-max-cost", "-1", file}, "-max-cost -1"},
		{[]string{"-simulate", "-cut", "-1m", file}, "negative split size or duration"},
		{[]string{"-temperature", "2", file}, "-temperature 2"},
		{[]string{file}, "OPENAI_API_KEY is not set"},
		{[]string{"-simulate", "-model", "my-model", "-max-cost", "1", file}, `no price known for model "my-model"`},
	} {
		r := runBatch(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.says)
		}
	}
	if r := runBatch(t, "-h"); r.code != exitOK || !strings.Contains(r.stderr, "usage: batch [flags] PATH...") {
		t.Errorf("-h: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLiveDisplay(t *testing.T) {
	old := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = old })
	srv := transcribetest.NewServer(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{Requests: 60, Window: 10 * time.Second},
		Latency:   50 * time.Millisecond,
	})
	useServer(t, srv)
	dir := t.TempDir()
	for i := range 5 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), time.Second)
	}
	r := runBatch(t, "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in"))
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"files 5/5", "audio 0.1 min", "/min (60 per 10s, learned)", "done in/4.wav", "5 done, 0 failed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("no %q in the display:\n%s", want, r.stderr)
		}
	}
}

// TestResumeAfterKill kills the command mid-batch, as a crash or an OOM kill
// would, and runs it again: what was written is kept and not paid for
// twice, and every file ends with exactly one transcript.
func TestResumeAfterKill(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "batch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := transcribetest.NewServer(transcribetest.Config{Latency: 200 * time.Millisecond})
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	const n = 30
	for i := range n {
		writeWAV(t, dir, fmt.Sprintf("rec/clip%02d.wav", i), 500*time.Millisecond)
	}
	out := filepath.Join(dir, "out")
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"-concurrency", "4", "-out", out}, args...)...)
		cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+srv.BaseURL(), "OPENAI_API_KEY=sk-test")
		return cmd
	}

	cmd := command(filepath.Join(dir, "rec"))
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.Stats().Billed) < n/2 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// Requests the killed process had sent may still reach the server:
	// count once it has answered all it received, and nothing more came.
	killedAt := -1
	for time.Now().Before(deadline) {
		st := srv.Stats()
		answered := 0
		for _, k := range st.ByStatus {
			answered += k
		}
		if st.Requests == killedAt && answered == st.Requests {
			break
		}
		killedAt = st.Requests
		time.Sleep(300 * time.Millisecond)
	}

	// A transcript counts once its record is written: the record, which
	// holds the transcript, is written first; a transcript file missing
	// after it (killed in between) is written from it, not sent again.
	kept := 0
	for i := range n {
		if _, err := os.Stat(filepath.Join(out, recordDirName, fmt.Sprintf("rec/clip%02d.txt.json", i))); err == nil {
			kept++
		}
	}
	if kept == 0 || kept == n {
		t.Fatalf("%d of %d transcripts kept after the kill: the kill came too early or too late\n%s", kept, n, errOut.String())
	}

	cmd = command("-json", filepath.Join(dir, "rec"))
	var stdout bytes.Buffer
	errOut.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("second run: %v\n%s", err, errOut.String())
	}
	s := summaryOf(t, result{0, stdout.String(), errOut.String()})
	resent := srv.Stats().Requests - killedAt
	if resent != n-kept || s.Requests != n-kept || s.Skipped != kept || s.Done != n-kept {
		t.Errorf("%d kept after the kill; second run sent %d requests, summary %+v", kept, resent, s)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("rec/clip%02d.txt", i))
	}
	if got := transcripts(t, out); !slices.Equal(got, want) {
		t.Errorf("transcripts after the re-run:\n%v\nwant one per file:\n%v", got, want)
	}
}

// recordDirName is where the OutputWriter keeps its records.
const recordDirName = ".steno"

// -cut cuts long files: one transcript, several requests.
func TestCut(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	long := writeWAV(t, dir, "long.wav", 30*time.Second)
	r := runBatch(t, "-json", "-cut", "10s", "-out", filepath.Join(dir, "out"), long)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if s := summaryOf(t, r); s.Done != 1 || s.Requests < 3 || srv.Stats().Requests != s.Requests {
		t.Errorf("summary %+v; server saw %d requests", s, srv.Stats().Requests)
	}
	if got := transcripts(t, filepath.Join(dir, "out")); !slices.Equal(got, []string{"long.txt"}) {
		t.Errorf("transcripts %v", got)
	}
}

// The budget flags reach the limiter: -rpm means a real minute.
func TestBudgetFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want ratelimit.Config
	}{
		{[]string{"-rpm", "50", "x"}, ratelimit.Config{MaxInFlight: ratelimit.DefaultMaxInFlight, Requests: ratelimit.Limit{N: 50, Per: time.Minute}}},
		{[]string{"-requests", "14400/day", "-tokens", "6000/1m", "-audio-seconds", "7200/1h", "-spread", "-concurrency", "5", "x"}, ratelimit.Config{
			MaxInFlight: 5, Spread: true,
			Requests:     ratelimit.Limit{N: 14400, Per: 24 * time.Hour},
			Tokens:       ratelimit.Limit{N: 6000, Per: time.Minute},
			AudioSeconds: ratelimit.Limit{N: 7200, Per: time.Hour},
		}},
	} {
		cfg, code := parseFlags(tc.args, io.Discard)
		if code >= 0 {
			t.Fatalf("%q: exit %d", tc.args, code)
		}
		if got := limiterConfig(cfg); got != tc.want {
			t.Errorf("%q: limiter %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// A second run on an output directory in use fails at once, with exit 3,
// and sends nothing.
func TestOutputInUse(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	file := writeWAV(t, dir, "a.wav", time.Second)
	out := filepath.Join(dir, "out")
	held, err := transcribe.NewOutputWriter(out) // the first run
	if err != nil {
		t.Fatal(err)
	}
	r := runBatch(t, "-out", out, file)
	if r.code != exitAborted || !strings.Contains(r.stderr, "is being written by another batch") || srv.Stats().Requests != 0 {
		t.Fatalf("exit %d, %d requests\n%s", r.code, srv.Stats().Requests, r.stderr)
	}
	held.Close()
	if r := runBatch(t, "-out", out, file); r.code != exitOK {
		t.Fatalf("once the first run ended: exit %d\n%s", r.code, r.stderr)
	}
}

// A FIFO named like audio in a directory fails at once, without blocking
// the batch (open(2) of a FIFO waits for a writer), and the rest is done.
func TestFIFOInDirectory(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	writeWAV(t, dir, "in/a.wav", time.Second)
	if b, err := exec.Command("mkfifo", filepath.Join(dir, "in", "x.wav")).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, b)
	}
	done := make(chan result)
	go func() { done <- runBatch(t, "-json", "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in")) }()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the batch is blocked on a FIFO")
	}
	s := summaryOf(t, r)
	if r.code != exitFailed || s.Done != 1 || s.Failed != 1 || len(s.Failures) != 1 ||
		s.Failures[0].File != "in/x.wav" || !strings.Contains(s.Failures[0].Error, "not a regular file (a FIFO)") {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
}

// A full disk stops the batch before another request is paid for: exit 3,
// with the reason; a re-run with room sends only what is not done.
func TestFullDiskAborts(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tmpfs: Linux only")
	}
	srv := transcribetest.NewServer(transcribetest.Config{})
	useServer(t, srv)
	dir := t.TempDir()
	for i := range 20 {
		writeWAV(t, dir, fmt.Sprintf("in/%02d.wav", i), 2*time.Second)
	}
	out := t.TempDir()
	if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", out).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (root only): %v %s", err, b)
	}
	t.Cleanup(func() { exec.Command("umount", out).Run() })
	r := runBatch(t, "-json", "-concurrency", "1", "-format", "verbose_json", "-out", out, filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	if r.code != exitAborted || s.Aborted != "output_error" || !strings.Contains(r.stderr, "no space left on device") ||
		s.Done == 0 || s.Failed != 1 || s.Requests != s.Done+1 || srv.Stats().Requests != s.Requests {
		t.Fatalf("exit %d, %d requests, %+v\n%s", r.code, srv.Stats().Requests, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "stopped: a transcript could not be written to "+out) {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

// A server that redirects the upload (a wrong base URL, most often) stops
// the batch after one request, with exit 3 and a reason.
func TestRedirectAborts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login", http.StatusFound)
	}))
	defer srv.Close()
	t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "sk-test")
	dir := t.TempDir()
	for i := range 5 {
		writeWAV(t, dir, fmt.Sprintf("in/%d.wav", i), time.Second)
	}
	r := runBatch(t, "-json", "-concurrency", "1", "-out", filepath.Join(dir, "out"), filepath.Join(dir, "in"))
	s := summaryOf(t, r)
	if r.code != exitAborted || s.Aborted != "redirect_refused" || s.Requests != 1 {
		t.Fatalf("exit %d, aborted %q after %d requests; want %d, redirect_refused, 1\n%s", r.code, s.Aborted, s.Requests, exitAborted, r.stderr)
	}
}
