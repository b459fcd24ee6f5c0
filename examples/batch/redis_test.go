package main

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// Two runs of the command on different folders, started together, share
// one budget through -redis: the server, which allows 10 requests per 2 s,
// refuses none of their 40 requests, where two runs that each assume the
// whole budget send twice it.
func TestRedisSharesTheBudget(t *testing.T) {
	url := os.Getenv("STENO_TEST_REDIS_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and STENO_TEST_REDIS_URL is unset: .ci/run starts Redis")
		}
		t.Skip("no Redis: set STENO_TEST_REDIS_URL=redis://127.0.0.1:6379/0 (bash .ci/run starts one)")
	}
	srv := transcribetest.NewServer(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{Requests: 10, Window: 2 * time.Second},
		Latency:   20 * time.Millisecond,
	})
	useServer(t, srv)
	// A key of this test's own: its account's budget starts whole.
	t.Setenv("OPENAI_API_KEY", "sk-test-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		in := filepath.Join(dir, "in"+strconv.Itoa(i))
		for j := range 20 {
			writeWAV(t, in, strconv.Itoa(j)+".wav", 300*time.Millisecond)
		}
		wg.Go(func() {
			results[i] = runBatch(t, "-redis", url, "-requests", "10/2s", "-json", "-out", filepath.Join(dir, "out"+strconv.Itoa(i)), in)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.code != exitOK || summaryOf(t, r).Done != 20 {
			t.Fatalf("run %d: exit %d\n%s\n%s", i, r.code, r.stdout, r.stderr)
		}
	}
	st := srv.Stats()
	t.Logf("statuses %v; most answered in any 2 s: %d", st.ByStatus, st.MaxInWindow(st.Billed, 2*time.Second))
	if st.ByStatus[429] > 1 || st.ByStatus[200] != 40 {
		t.Errorf("statuses %v: want 40 × 200, and no 429 (at most 1: see TestFourProcessesShareOneBudget)", st.ByStatus)
	}
}
