package transcribe_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// pathJobs returns jobs for paths.
func pathJobs(paths ...string) iter.Seq[transcribe.Job] {
	return func(yield func(transcribe.Job) bool) {
		for _, p := range paths {
			if !yield(transcribe.Job{Path: p}) {
				return
			}
		}
	}
}

// collect runs a batch and returns its results by job ID.
func collect(t testing.TB, c *transcribe.Client, jobs iter.Seq[transcribe.Job], opts transcribe.BatchOptions) map[string]transcribe.BatchResult {
	t.Helper()
	seq, err := c.BatchTranscribe(context.Background(), jobs, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]transcribe.BatchResult{}
	for r := range seq {
		id := r.Job.ID
		if id == "" {
			id = r.Job.Path
		}
		if _, dup := got[id]; dup {
			t.Fatalf("two results for %s", id)
		}
		got[id] = r
	}
	return got
}

func statuses(rs map[string]transcribe.BatchResult) map[transcribe.Status]int {
	n := map[transcribe.Status]int{}
	for _, r := range rs {
		n[r.Status]++
	}
	return n
}

func TestBatchWritesEveryTranscriptAndResumes(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	var paths []string
	for i := range 12 {
		sub := filepath.Join(dir, fmt.Sprint("folder", i%2)) // the same names in two folders
		os.MkdirAll(sub, 0o755)
		paths = append(paths, writeWAV(t, sub, fmt.Sprintf("clip%d.wav", i/2), 2))
	}
	c, srv := newClient(t, transcribetest.Config{})
	w, err := transcribe.NewOutputWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	opts := transcribe.BatchOptions{Output: w, Concurrency: 4, Request: transcribe.Request{ResponseFormat: transcribe.SRT}}
	first := collect(t, c, pathJobs(paths...), opts)
	if n := statuses(first); n[transcribe.StatusDone] != 12 {
		t.Fatalf("statuses %v", n)
	}
	outputs := map[string]bool{}
	for _, p := range paths {
		r := first[p]
		b, err := os.ReadFile(r.OutputPath)
		if err != nil || !bytes.Equal(b, r.Transcription.Raw) || !strings.HasSuffix(r.OutputPath, ".srt") || r.AudioSeconds != 2 || r.Attempts != 1 {
			t.Fatalf("%s: output %s (%v), %d bytes; audio %v s, attempts %d", p, r.OutputPath, err, len(b), r.AudioSeconds, r.Attempts)
		}
		outputs[r.OutputPath] = true
	}
	if len(outputs) != 12 {
		t.Fatalf("%d distinct outputs for 12 inputs", len(outputs))
	}

	// A re-run sends nothing; a changed input and a changed request are
	// sent again.
	again := collect(t, c, pathJobs(paths...), opts)
	if n := statuses(again); n[transcribe.StatusSkipped] != 12 || srv.Stats().Requests != 12 {
		t.Fatalf("re-run: statuses %v, %d requests in all", n, srv.Stats().Requests)
	}
	writeWAV(t, filepath.Dir(paths[0]), filepath.Base(paths[0]), 3)
	again = collect(t, c, pathJobs(paths...), opts)
	if n := statuses(again); n[transcribe.StatusSkipped] != 11 || again[paths[0]].Status != transcribe.StatusDone {
		t.Fatalf("after a change: %v", n)
	}
	opts.Request.Language = "en"
	again = collect(t, c, pathJobs(paths[:2]...), opts)
	if n := statuses(again); n[transcribe.StatusDone] != 2 {
		t.Fatalf("after a request change: %v", n)
	}
}

// A quota error stops the batch at once: the requests already in flight
// finish and are kept, nothing else is sent.
func TestBatchStopsOnQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := transcribetest.NewHandler(transcribetest.Config{APIKey: testKey, QuotaRequests: 5, Latency: time.Second})
		rec := &recorder{base: h.Transport()}
		c, err := transcribe.NewClient(transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
			transcribe.WithHTTPClient(&http.Client{Transport: rec}))
		if err != nil {
			t.Fatal(err)
		}
		dir, out := t.TempDir(), t.TempDir()
		var paths []string
		for i := range 30 {
			paths = append(paths, writeWAV(t, dir, fmt.Sprintf("%02d.wav", i), 1))
		}
		w, _ := transcribe.NewOutputWriter(out)
		rs := collect(t, c, pathJobs(paths...), transcribe.BatchOptions{Output: w, Concurrency: 4})
		n := statuses(rs)
		st := h.Stats()
		sent := len(rec.sent)
		t.Logf("statuses %v; %d requests (%v)", n, sent, st.ByStatus)
		// 5 billed; the requests in flight when the first quota error
		// came back (at most 4 at a time) failed with it; none was sent
		// after it; the rest were never attempted.
		if n[transcribe.StatusDone] != 5 || sent > 5+4 || n[transcribe.StatusFailed] != sent-5 || n[transcribe.StatusNotAttempted] != 30-sent {
			t.Fatalf("statuses %v after %d requests", n, sent)
		}
		for _, at := range rec.sent {
			if at.After(rec.quota) {
				t.Fatalf("a request left at %v, after the quota error at %v", at, rec.quota)
			}
		}
		for _, r := range rs {
			switch r.Status {
			case transcribe.StatusNotAttempted:
				var abort *transcribe.AbortError
				if !errors.As(r.Err, &abort) || !errors.Is(r.Err, transcribe.ErrQuotaExceeded) {
					t.Fatalf("not attempted for %v", r.Err)
				}
			case transcribe.StatusDone:
				if _, err := os.Stat(r.OutputPath); err != nil {
					t.Fatal(err)
				}
			}
		}
		if files := transcripts(t, out); len(files) != 5 {
			t.Fatalf("%d transcripts on disk: %v", len(files), files)
		}
	})
}

// recorder records when requests left and when their answers came.
type recorder struct {
	base  http.RoundTripper
	mu    sync.Mutex
	sent  []time.Time
	quota time.Time // when the first quota error came back
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.sent = append(r.sent, time.Now())
	r.mu.Unlock()
	resp, err := r.base.RoundTrip(req)
	if resp != nil && resp.StatusCode == 429 {
		r.mu.Lock()
		if r.quota.IsZero() {
			r.quota = time.Now()
		}
		r.mu.Unlock()
	}
	return resp, err
}

func TestBatchBadInputFailsAlone(t *testing.T) {
	dir := t.TempDir()
	c, srv := newClient(t, transcribetest.Config{})
	empty := filepath.Join(dir, "empty.wav")
	os.WriteFile(empty, nil, 0o600)
	text := filepath.Join(dir, "notes.mp3")
	os.WriteFile(text, []byte("not audio at all, just words\n"), 0o600)
	huge := writeUnsplittable(t, dir, 30<<20)
	good := []string{writeWAV(t, dir, "a.wav", 1), writeWAV(t, dir, "b.wav", 1)}
	bad := map[string]string{
		filepath.Join(dir, "missing.wav"): "no such file",
		empty:                             "empty file",
		text:                              "invalid audio",
		huge:                              "file too large",
		dir:                               "not a regular file",
	}
	var paths []string
	for p := range bad {
		paths = append(paths, p)
	}
	rs := collect(t, c, pathJobs(append(paths, good...)...), transcribe.BatchOptions{})
	for p, why := range bad {
		r := rs[p]
		if r.Status != transcribe.StatusFailed || !strings.Contains(r.Err.Error(), why) || !strings.Contains(r.Err.Error(), filepath.Base(p)) {
			t.Errorf("%s: %v %v, want a failure naming it and %q", p, r.Status, r.Err, why)
		}
	}
	for _, p := range good {
		if rs[p].Status != transcribe.StatusDone {
			t.Errorf("%s: %v %v", p, rs[p].Status, rs[p].Err)
		}
	}
	if n := srv.Stats().Requests; n != 2 {
		t.Fatalf("%d requests for 2 good files", n)
	}
}

func TestBatchBudgets(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 10 {
		paths = append(paths, writeWAV(t, dir, fmt.Sprintf("%d.wav", i), 60)) // a minute each: $0.006 with whisper-1
	}
	for _, tc := range []struct {
		name string
		opts transcribe.BatchOptions
		done int
	}{
		{"audio", transcribe.BatchOptions{MaxAudioSeconds: 200}, 3},
		{"requests", transcribe.BatchOptions{MaxRequests: 4}, 4},
		{"cost", transcribe.BatchOptions{MaxCostUSD: 0.031}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newClient(t, transcribetest.Config{})
			tc.opts.Concurrency = 1 // one at a time, so which jobs go first is fixed
			rs := collect(t, c, pathJobs(paths...), tc.opts)
			n := statuses(rs)
			if n[transcribe.StatusDone] != tc.done || n[transcribe.StatusNotAttempted] != 10-tc.done || srv.Stats().Requests != tc.done {
				t.Fatalf("statuses %v, %d requests", n, srv.Stats().Requests)
			}
			for _, r := range rs {
				if r.Status == transcribe.StatusNotAttempted && !errors.Is(r.Err, transcribe.ErrBudgetReached) {
					t.Fatalf("not attempted for %v", r.Err)
				}
			}
		})
	}
	c, srv := newClient(t, transcribetest.Config{})
	rs := collect(t, c, pathJobs(paths...), transcribe.BatchOptions{DryRun: true})
	var seconds, cost float64
	for _, r := range rs {
		seconds += r.AudioSeconds
		cost += r.CostUSD
	}
	if n := statuses(rs); n[transcribe.StatusPlanned] != 10 || seconds != 600 || fmt.Sprintf("%.3f", cost) != "0.060" || srv.Stats().Requests != 0 {
		t.Fatalf("dry run: %v, %v s, $%v, %d requests", n, seconds, cost, srv.Stats().Requests)
	}
	if _, err := c.BatchTranscribe(context.Background(), pathJobs(), transcribe.BatchOptions{MaxCostUSD: 1, Request: transcribe.Request{Model: "my-model"}}); err == nil {
		t.Fatal("a cost cap for a model without a price was accepted")
	}
}

// Breaking out of the loop stops the batch; what was in progress is
// written, and a re-run sends only what was never sent.
func TestBatchBreakAndResume(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	var paths []string
	for i := range 40 {
		paths = append(paths, writeWAV(t, dir, fmt.Sprintf("%02d.wav", i), 1))
	}
	c, srv := newClient(t, transcribetest.Config{Latency: 5 * time.Millisecond})
	w, _ := transcribe.NewOutputWriter(out)
	opts := transcribe.BatchOptions{Output: w, Concurrency: 4}
	seq, _ := c.BatchTranscribe(context.Background(), pathJobs(paths...), opts)
	seen := 0
	for range seq {
		if seen++; seen == 5 {
			break
		}
	}
	sent := srv.Stats().Requests
	if sent >= 40 || sent < 5 {
		t.Fatalf("%d requests before the break", sent)
	}
	rs := collect(t, c, pathJobs(paths...), opts)
	n := statuses(rs)
	if n[transcribe.StatusSkipped] != sent || n[transcribe.StatusDone] != 40-sent || srv.Stats().Requests != 40 {
		t.Fatalf("resume after %d sent: %v, %d requests in all", sent, n, srv.Stats().Requests)
	}
}

var batchJobs = flag.Int("batch-jobs", 20000, "jobs in TestBatchMemoryDoesNotGrowWithJobs")

// Jobs from an iterator are pulled as workers free up: a huge batch holds
// no per-job state.
func TestBatchMemoryDoesNotGrowWithJobs(t *testing.T) {
	clip := transcribetest.WAV(100 * time.Millisecond)
	// A server that keeps nothing (the fake keeps statistics per request).
	c, err := transcribe.NewClient(transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
		transcribe.WithHTTPClient(&http.Client{Transport: canned{}}))
	if err != nil {
		t.Fatal(err)
	}
	jobs := func(n int) iter.Seq[transcribe.Job] {
		return func(yield func(transcribe.Job) bool) {
			for i := range n {
				if !yield(transcribe.Job{ID: fmt.Sprint(i), Name: "clip.wav", Size: int64(len(clip)),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(clip)), nil }}) {
					return
				}
			}
		}
	}
	heapAfter := func(n int) uint64 {
		seq, _ := c.BatchTranscribe(context.Background(), jobs(n), transcribe.BatchOptions{Concurrency: 8})
		done := 0
		var peak uint64
		var m runtime.MemStats
		for r := range seq {
			if r.Status == transcribe.StatusDone {
				done++
			}
			if done%500 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc) // live heap, just after a GC
			}
		}
		if done != n {
			t.Fatalf("%d of %d done", done, n)
		}
		return peak
	}
	n := *batchJobs
	if testing.Short() {
		n = 2000
	}
	small, large := heapAfter(n/10), heapAfter(n)
	t.Logf("peak live heap: %.2f MB over %d jobs, %.2f MB over %d", float64(small)/1e6, n/10, float64(large)/1e6, n)
	if large > small+256<<10 {
		t.Fatalf("heap grew by %d bytes from %d to %d jobs", large-small, n/10, n)
	}
}

// transcripts lists the transcripts under an output directory.
func transcripts(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() && d.Name() == ".steno" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// canned answers every request with the same small transcript, keeping
// nothing.
type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"text":"ok"}`)), Request: r}, nil
}
