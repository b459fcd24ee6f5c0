package transcribe_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// soakJobs is the number of jobs in TestBatchSoak.
const soakJobs = 2000

// TestBatchSoak sends 2,000 files through BatchTranscribe, with an
// OutputWriter, against a fake that fails 10 % of requests with a mix of
// 500s, HTML 502s, 503s, dropped connections, answers cut halfway and
// answers that never come (in memory, in virtual time): every job ends
// done, once, with its transcript on disk exactly once and every request
// answered 200 once per job; no goroutine or file descriptor outlives the
// batch. The virtual time it took is logged next to the same batch's
// without faults.
func TestBatchSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 jobs twice: not with -short")
	}
	dir := t.TempDir()
	clip := transcribetest.WAV(500 * time.Millisecond)
	paths := make([]string, soakJobs)
	for i := range paths {
		// Different bytes for each file, so that every transcript differs.
		b := append([]byte(nil), clip...)
		b[len(b)-1], b[len(b)-2] = byte(i), byte(i>>8)
		paths[i] = filepath.Join(dir, fmt.Sprintf("%04d.wav", i))
		if err := os.WriteFile(paths[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	run := func(t *testing.T, faults float64) (virtual, wall time.Duration) {
		fdsBefore := openFDs(t)
		out := t.TempDir()
		wallStart := time.Now() // outside the bubble: the real clock
		defer func() { wall = time.Since(wallStart) }()
		synctest.Test(t, func(t *testing.T) {
			h := transcribetest.NewHandler(transcribetest.Config{
				APIKey: testKey,
				// A transcription takes seconds; at 200 ms the fixed
				// costs of the retries (backoff from 0.5 s, a 5 s
				// first-byte timeout after a stall) weigh 1.5-2.5x on a
				// batch this short.
				Latency:   2 * time.Second,
				FaultRate: faults,
				FaultKinds: []transcribetest.Fault{transcribetest.FaultServerError, transcribetest.FaultBadGateway,
					transcribetest.FaultOverloaded, transcribetest.FaultDropConnection,
					transcribetest.FaultTruncatedBody, transcribetest.FaultStall},
				Seed: 9,
			})
			c, err := transcribe.NewClient(transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
				transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()}), transcribe.WithMaxAttempts(10),
				// A stalled answer costs this, then a retry.
				transcribe.WithTimeouts(transcribe.Timeouts{FirstByte: 5 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			w, err := transcribe.NewOutputWriter(out)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			start := time.Now() // virtual
			rs := collect(t, c, pathJobs(paths...), transcribe.BatchOptions{Output: w})
			virtual = time.Since(start)

			n := statuses(rs)
			attempts := 0
			for _, p := range paths {
				r, ok := rs[p]
				if !ok || r.Status != transcribe.StatusDone {
					t.Errorf("%s: %v %v", p, r.Status, r.Err)
				}
				attempts += r.Attempts
			}
			st := h.Stats()
			faulted := st.Requests - st.ByStatus[http.StatusOK]
			t.Logf("fault rate %.0f %%: %v; %d requests (%d faults: %v); %d attempts counted by the client",
				faults*100, n, st.Requests, faulted, st.ByStatus, attempts)
			if len(rs) != soakJobs || n[transcribe.StatusDone] != soakJobs || st.ByStatus[http.StatusOK] != soakJobs || attempts != st.Requests {
				t.Fatalf("%d results %v; %d answered 200 for %d jobs; %d attempts, %d requests", len(rs), n, st.ByStatus[http.StatusOK], soakJobs, attempts, st.Requests)
			}
			if faults > 0 && float64(faulted) < soakJobs*faults/2 {
				t.Fatalf("only %d faults", faulted)
			}
			if files := transcripts(t, out); len(files) != soakJobs {
				t.Fatalf("%d transcripts on disk for %d jobs", len(files), soakJobs)
			}
		})
		goleak.VerifyNone(t)
		if after := openFDs(t); after > fdsBefore {
			t.Fatalf("%d file descriptors open after the batch, %d before", after, fdsBefore)
		}
		return virtual, wall
	}
	var clean, faulty [2]time.Duration
	t.Run("faultless", func(t *testing.T) { clean[0], clean[1] = run(t, 0) })
	t.Run("faults", func(t *testing.T) { faulty[0], faulty[1] = run(t, 0.10) })
	if clean[0] > 0 {
		t.Logf("%d jobs: %v (virtual) without faults, %v with 10 %% faults: %.2f×; wall %v and %v",
			soakJobs, clean[0], faulty[0], faulty[0].Seconds()/clean[0].Seconds(), clean[1].Round(time.Millisecond), faulty[1].Round(time.Millisecond))
	}
}

// openFDs counts the process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}
