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
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
		every := min(500, max(1, n/40)) // a few dozen samples at least
		for r := range seq {
			if r.Status == transcribe.StatusDone {
				done++
			}
			if done%every == 0 {
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
	const body = `{"text":"ok"}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// clipJobs returns an endless sequence of in-memory jobs (stopping after
// limit, so that a batch that never stops pulling fails instead of
// hanging), and the number pulled so far.
func clipJobs(clip []byte, limit int) (iter.Seq[transcribe.Job], *atomic.Int64) {
	var pulled atomic.Int64
	return func(yield func(transcribe.Job) bool) {
		for i := range limit {
			pulled.Add(1)
			if !yield(transcribe.Job{ID: fmt.Sprint(i), Name: "clip.wav", Size: int64(len(clip)),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(clip)), nil }}) {
				return
			}
		}
	}, &pulled
}

// Cancelling ctx stops the batch pulling jobs at once; what it had pulled
// and not sent comes back not attempted, what was in flight fails with
// ctx's error, and the sequence ends without waiting (virtual time).
func TestBatchCancelStopsPulling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newVirtualClient(t, transcribetest.Config{Latency: time.Second})
		jobs, pulled := clipJobs(transcribetest.WAV(time.Second), 20000)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		seq, err := c.BatchTranscribe(ctx, jobs, transcribe.BatchOptions{Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		var atCancel int64
		var cancelled time.Time
		n := map[transcribe.Status]int{}
		bad := 0
		for r := range seq {
			if seen[r.Job.ID] {
				t.Fatalf("job %s yielded twice", r.Job.ID)
			}
			seen[r.Job.ID] = true
			if cancelled.IsZero() {
				if r.Status != transcribe.StatusDone {
					t.Fatalf("before the cancel: %s %v", r.Status, r.Err)
				}
				if len(seen) == 10 {
					atCancel = pulled.Load()
					cancelled = time.Now()
					cancel()
				}
				continue
			}
			n[r.Status]++
			switch {
			case r.Status == transcribe.StatusNotAttempted && errors.Is(r.Err, context.Canceled) && r.Attempts == 0:
			case r.Status == transcribe.StatusFailed && errors.Is(r.Err, context.Canceled) && r.Attempts > 0: // cut in flight
			case r.Status == transcribe.StatusDone:
			default:
				if bad++; bad <= 3 {
					t.Errorf("after the cancel: job %s %s after %d attempts: %v", r.Job.ID, r.Status, r.Attempts, r.Err)
				}
			}
		}
		took := time.Since(cancelled)
		t.Logf("pulled %d jobs before the cancel, %d in all; after it: %v in %v (virtual)", atCancel, pulled.Load(), n, took)
		if extra := pulled.Load() - atCancel; extra > 1 {
			t.Fatalf("%d jobs pulled after the cancel", extra)
		}
		if int64(len(seen)) != pulled.Load() {
			t.Fatalf("%d jobs pulled, %d yielded", pulled.Load(), len(seen))
		}
		if took > 0 {
			t.Fatalf("the batch took %v to end after the cancel", took)
		}
		if sent := h.Stats().Requests; sent > 10+4 {
			t.Fatalf("%d requests for 10 jobs done and 4 workers", sent)
		}
	})
}

// A second batch on an output directory in use fails at once.
func TestBatchOutputLocked(t *testing.T) {
	out := t.TempDir()
	w, err := transcribe.NewOutputWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transcribe.NewOutputWriter(out); !errors.Is(err, transcribe.ErrOutputLocked) {
		t.Fatalf("second writer: %v", err)
	}
	w.Close()
	w, err = transcribe.NewOutputWriter(out)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	w.Close()
}

// A run killed after the record of a transcript was written, before the
// transcript itself was, costs no request: the next run writes it from
// the record.
func TestBatchKilledBetweenRecordAndTranscript(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	paths := []string{writeWAV(t, dir, "a.wav", 1), writeWAV(t, dir, "b.wav", 1)}
	c, srv := newClient(t, transcribetest.Config{})
	w, _ := transcribe.NewOutputWriter(out)
	opts := transcribe.BatchOptions{Output: w, Request: transcribe.Request{ResponseFormat: transcribe.SRT}}
	first := collect(t, c, pathJobs(paths...), opts)
	want, _ := os.ReadFile(first[paths[0]].OutputPath)
	os.Remove(first[paths[0]].OutputPath) // as if killed between the two renames
	again := collect(t, c, pathJobs(paths...), opts)
	got, _ := os.ReadFile(first[paths[0]].OutputPath)
	if n := statuses(again); n[transcribe.StatusSkipped] != 2 || srv.Stats().Requests != 2 || !bytes.Equal(got, want) || len(want) == 0 {
		t.Fatalf("re-run: %v, %d requests in all; transcript %q, want %q", n, srv.Stats().Requests, got, want)
	}
	w.Close()
}

// Names that are not UTF-8 resume: every run after the first skips them,
// their outputs keep one name, and a file whose name looks like the
// escaped one keeps its own.
func TestBatchResumesNamesNotUTF8(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	paths := []string{writeWAV(t, dir, "caf\xe9-\xff.wav", 1), writeWAV(t, dir, "caf%E9-%FF.wav", 1)}
	c, srv := newClient(t, transcribetest.Config{})
	w, _ := transcribe.NewOutputWriter(out)
	defer w.Close()
	outputs := map[string]string{}
	for run := range 3 {
		rs := collect(t, c, pathJobs(paths...), transcribe.BatchOptions{Output: w})
		for _, p := range paths {
			r := rs[p]
			want := transcribe.StatusDone
			if run > 0 {
				want = transcribe.StatusSkipped
			}
			if r.Status != want {
				t.Fatalf("run %d: %q %s %v", run, p, r.Status, r.Err)
			}
			if run == 0 {
				outputs[p] = r.OutputPath
			} else if r.OutputPath != outputs[p] {
				t.Fatalf("run %d: %q written to %q, first to %q", run, p, r.OutputPath, outputs[p])
			}
		}
	}
	if outputs[paths[0]] == outputs[paths[1]] || srv.Stats().Requests != 2 || len(transcripts(t, out)) != 2 {
		t.Fatalf("outputs %q; %d requests; %d transcripts", outputs, srv.Stats().Requests, len(transcripts(t, out)))
	}
}

// An output that cannot be written (a full disk) stops the batch before
// another request is paid for: the job whose transcript was lost fails,
// every later one is not attempted, with an *AbortError matching
// ErrOutput and the cause.
func TestBatchStopsOnOutputError(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	var paths []string
	for i := range 10 {
		paths = append(paths, writeWAV(t, dir, fmt.Sprintf("%d.wav", i), 1))
	}
	c, srv := newClient(t, transcribetest.Config{})
	w, _ := transcribe.NewOutputWriter(out)
	defer w.Close()
	transcribe.FailOutputWrites(w, 6, syscall.ENOSPC) // 3 transcripts and their records
	rs := collect(t, c, pathJobs(paths...), transcribe.BatchOptions{Output: w, Concurrency: 1})
	n := statuses(rs)
	if n[transcribe.StatusDone] != 3 || n[transcribe.StatusFailed] != 1 || n[transcribe.StatusNotAttempted] != 6 || srv.Stats().Requests != 4 {
		t.Fatalf("statuses %v, %d requests", n, srv.Stats().Requests)
	}
	for _, r := range rs {
		switch r.Status {
		case transcribe.StatusFailed:
			if !errors.Is(r.Err, transcribe.ErrOutput) || !errors.Is(r.Err, syscall.ENOSPC) || !transcribe.Fatal(r.Err) || r.Transcription == nil {
				t.Fatalf("failed with %v", r.Err)
			}
		case transcribe.StatusNotAttempted:
			var abort *transcribe.AbortError
			if !errors.As(r.Err, &abort) || !errors.Is(r.Err, syscall.ENOSPC) {
				t.Fatalf("not attempted for %v", r.Err)
			}
		}
	}
}

// The same on a real full disk: a small tmpfs (root only).
func TestBatchStopsOnFullDisk(t *testing.T) {
	out := mountTmpfs(t, 48<<10)
	dir := t.TempDir()
	var paths []string
	for i := range 30 {
		paths = append(paths, writeWAV(t, dir, fmt.Sprintf("%02d.wav", i), 2))
	}
	c, srv := newClient(t, transcribetest.Config{})
	w, err := transcribe.NewOutputWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rs := collect(t, c, pathJobs(paths...), transcribe.BatchOptions{Output: w, Concurrency: 1, Request: transcribe.Request{ResponseFormat: transcribe.VerboseJSON}})
	n := statuses(rs)
	t.Logf("statuses %v, %d requests", n, srv.Stats().Requests)
	if n[transcribe.StatusDone] == 0 || n[transcribe.StatusFailed] != 1 || n[transcribe.StatusDone]+1 != srv.Stats().Requests ||
		n[transcribe.StatusNotAttempted] != 30-srv.Stats().Requests {
		t.Fatalf("statuses %v, %d requests", n, srv.Stats().Requests)
	}
	for _, r := range rs {
		if r.Status == transcribe.StatusFailed && !errors.Is(r.Err, syscall.ENOSPC) {
			t.Fatalf("failed with %v", r.Err)
		}
	}
	if left, err := os.ReadDir(filepath.Join(out, ".steno", ".steno", "tmp")); len(left) != 0 || err != nil {
		t.Fatalf("temporary files left: %v %v", left, err)
	}
}

// mountTmpfs mounts a tmpfs of size bytes for the test, or skips it where
// that is not allowed.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("tmpfs: Linux only")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (root only): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// A file cut into 3 pieces, whose second piece fails on the first run,
// keeps the two that succeeded: the re-run sends only the missing piece
// and stitches the same transcript as a run that never failed.
func TestBatchKeepsPiecesOfAFailedFile(t *testing.T) {
	dir := t.TempDir()
	long := writeWAV(t, dir, "long.wav", 25) // 3 pieces of at most 10 s
	var failing atomic.Bool
	failing.Store(true)
	c, srv := newClient(t, transcribetest.Config{Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		if failing.Load() && strings.Contains(a.Filename, ".part02.") {
			return nil, &transcribetest.Error{Status: 400, Param: "file", Message: "Audio file might be corrupted or unsupported"}
		}
		return transcribetest.DefaultTranscriber(ctx, a)
	}}, transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 10 * time.Second}))
	out := filepath.Join(dir, "out")
	w, err := transcribe.NewOutputWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	opts := transcribe.BatchOptions{Output: w, Request: transcribe.Request{ResponseFormat: transcribe.SRT}}
	r := collect(t, c, pathJobs(long), opts)[long]
	if r.Status != transcribe.StatusFailed || !errors.Is(r.Err, transcribe.ErrInvalidAudio) || r.Attempts != 3 || srv.Stats().Requests != 3 {
		t.Fatalf("first run: %s %v after %d attempts; %d requests", r.Status, r.Err, r.Attempts, srv.Stats().Requests)
	}
	var pe *transcribe.PartialError
	if !errors.As(r.Err, &pe) || pe.Failed != 1 || pe.Pieces != 3 || len(pe.Missing) != 1 || pe.Missing[0].Start < 9 || pe.Missing[0].End > 21 {
		t.Fatalf("first run: %v, want a *PartialError missing the second piece", r.Err)
	}
	failing.Store(false)
	r = collect(t, c, pathJobs(long), opts)[long]
	if r.Status != transcribe.StatusDone || srv.Stats().Requests != 4 || r.Attempts != 1 || len(r.Transcription.Pieces) != 3 {
		t.Fatalf("re-run: %s %v after %d attempts; %d requests in all", r.Status, r.Err, r.Attempts, srv.Stats().Requests)
	}
	got, _ := os.ReadFile(r.OutputPath)
	if left, _ := os.ReadDir(filepath.Join(out, ".steno", ".steno", "pieces")); len(left) != 0 {
		t.Fatalf("pieces kept after the whole transcript was written: %v", left)
	}
	w.Close()

	// The stitched transcript is the one a run without failures makes.
	w, _ = transcribe.NewOutputWriter(filepath.Join(dir, "fresh"))
	defer w.Close()
	opts.Output = w
	fresh := collect(t, c, pathJobs(long), opts)[long]
	want, _ := os.ReadFile(fresh.OutputPath)
	if fresh.Status != transcribe.StatusDone || fresh.Attempts != 3 || !bytes.Equal(got, want) || !bytes.HasPrefix(got, []byte("1\n")) {
		t.Fatalf("resumed transcript:\n%s\nfresh one (%s, %d attempts):\n%s", got, fresh.Status, fresh.Attempts, want)
	}
}
