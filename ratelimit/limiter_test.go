package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/steno-go/steno/internal/ratehdr"
	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var clip = transcribetest.WAV(200 * time.Millisecond)

// post sends one small transcription request through c and returns the
// status (0 for a transport error).
func post(t testing.TB, c *http.Client) int {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("model", "whisper-1")
	fw, _ := w.CreateFormFile("file", "a.wav")
	fw.Write(clip)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://fake.invalid/v1/audio/transcriptions", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// runQueue sends n requests at once, each from its own goroutine, through
// lim to a fake with a budget of 50 requests a minute, and returns the
// fake's statistics and the time the whole run took.
func runQueue(t *testing.T, lim *ratelimit.Limiter, n int) (transcribetest.Stats, time.Duration) {
	h := transcribetest.NewHandler(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{Requests: 50, Window: time.Minute},
		Latency:   2 * time.Second,
	})
	c := &http.Client{Transport: lim.Transport(h.Transport())}
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { post(t, c) })
	}
	wg.Wait()
	return h.Stats(), time.Since(start)
}

// The case the package exists for: 200 requests queued against 50 a
// minute use the whole budget, never more than 50 in any minute, and get no
// 429, whether the limit is configured or learned from the headers.
func TestQueueUsesTheWholeBudgetAndNeverTripsIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"configured", ratelimit.Config{MaxInFlight: 20, Requests: ratelimit.Limit{N: 50, Per: time.Minute}}},
		{"learned", ratelimit.Config{MaxInFlight: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, err := ratelimit.New(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				st, elapsed := runQueue(t, lim, 200)
				most := st.MaxInWindow(st.Sent, time.Minute)
				used := 200 / (50 * elapsed.Minutes())
				t.Logf("%s: 200 requests in %v (%.1f windows), %.1f%% of the budget used, at most %d in any minute, %d 429s",
					tc.name, elapsed, elapsed.Minutes(), 100*used, most, st.ByStatus[429])
				if st.ByStatus[200] != 200 || st.ByStatus[429] != 0 {
					t.Errorf("statuses %v, want 200 × 200", st.ByStatus)
				}
				if most > 50 {
					t.Errorf("%d requests in one rolling minute", most)
				}
				if used < 0.97 {
					t.Errorf("only %.1f%% of the budget used", 100*used)
				}
				if s := lim.Snapshot(); s.Requests.Limit != 50 || s.Requests.Window != time.Minute || s.InFlight != 0 {
					t.Errorf("snapshot %+v", s)
				}
			})
		})
	}
}

// scripted answers requests with the statuses and headers of its script
// in turn, then 200s, recording when each request arrived.
type scripted struct {
	mu      sync.Mutex
	script  []func(http.Header) int
	arrived []time.Time
	latency time.Duration
}

func (s *scripted) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	s.mu.Lock()
	s.arrived = append(s.arrived, time.Now())
	step := func(http.Header) int { return 200 }
	if len(s.script) > 0 {
		step, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	time.Sleep(s.latency)
	h := http.Header{}
	status := step(h)
	body := `{"text":"ok"}`
	if status == 429 {
		body = `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewBufferString(body)), Request: r}, nil
}

func tooMany(retryAfter string) func(http.Header) int {
	return func(h http.Header) int {
		h.Set("Retry-After", retryAfter)
		return 429
	}
}

// A 429 pauses every caller for the time the server asked, once: a burst
// of 429s answering requests sent together does not add up.
func TestA429PausesEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &scripted{latency: 100 * time.Millisecond}
		for range 5 {
			s.script = append(s.script, tooMany("3"))
		}
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 20, Requests: ratelimit.Limit{N: 1000, Per: time.Second}})
		c := &http.Client{Transport: lim.Transport(s)}
		start := time.Now()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for time.Since(start) < 10*time.Second {
					post(t, c)
				}
			})
		}
		wg.Wait()
		// The first 20 went out within 20 ms; the first five answers,
		// at about 100 ms, were 429s asking for 3 s.
		var firstAfter time.Time
		for _, at := range s.arrived[20:] {
			if firstAfter.IsZero() || at.Before(firstAfter) {
				firstAfter = at
			}
		}
		gap := firstAfter.Sub(start)
		if gap < 3100*time.Millisecond || gap > 3200*time.Millisecond {
			t.Fatalf("after five 429s (retry-after: 3) at ~100ms, the next request left at %v: want ~3.1s, not sooner and not multiplied", gap)
		}
		st := lim.Snapshot()
		if st.Pauses != 1 || st.RateLimited != 5 {
			t.Fatalf("pauses %d, rate limited %d; want 1 and 5", st.Pauses, st.RateLimited)
		}
	})
}

// A quota error is not a rate limit: nobody is paused.
func TestQuotaIsNotARateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := transcribetest.NewHandler(transcribetest.Config{QuotaRequests: 1})
		lim, _ := ratelimit.New(ratelimit.Config{})
		c := &http.Client{Transport: lim.Transport(h.Transport())}
		start := time.Now()
		codes := fmt.Sprint(post(t, c), post(t, c), post(t, c))
		if codes != "200 429 429" || time.Since(start) != 0 {
			t.Fatalf("statuses %s after %v", codes, time.Since(start))
		}
		if st := lim.Snapshot(); st.Pauses != 0 || st.RateLimited != 0 || st.Throttles != 0 {
			t.Fatalf("quota errors counted as rate limits: %+v", st)
		}
	})
}

// A server with no rate-limit headers that throttles above 10 requests a
// second: the adaptive rate settles near 10 a second.
func TestAdaptiveRateSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := transcribetest.NewHandler(transcribetest.Config{
			RateLimit: transcribetest.RateLimit{Requests: 10, Window: time.Second, Silent: true},
			Latency:   50 * time.Millisecond,
		})
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 20})
		c := &http.Client{Transport: lim.Transport(h.Transport())}
		start := time.Now()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for time.Since(start) < 120*time.Second {
					post(t, c)
				}
			})
		}
		wg.Wait()
		st := h.Stats()
		// Judge the second minute, once settled.
		var ok, sent int
		for _, at := range st.Billed {
			if at.Sub(start) >= time.Minute {
				ok++
			}
		}
		for _, at := range st.Sent {
			if at.Sub(start) >= time.Minute {
				sent++
			}
		}
		rate := float64(ok) / 60
		share := float64(sent-ok) / float64(sent)
		t.Logf("settled at %.2f requests/s (target 10); %d of %d requests (%.1f%%) got a 429 in the second minute; %d in all of %d",
			rate, sent-ok, sent, 100*share, st.ByStatus[429], st.Requests)
		if rate < 8 || rate > 12 {
			t.Errorf("rate %.2f/s, want within 20%% of 10", rate)
		}
		if share > 0.10 {
			t.Errorf("%.1f%% of requests throttled, want at most 10%%", 100*share)
		}
	})
}

// Learning from the headers alone, for OpenAI's shape (both budgets per
// minute) and Groq's (requests per day, tokens per minute).
func TestWindowsAreInferred(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		headers                 []string
		reqWindow, tokWindow    time.Duration
		reqLimit, tokLimit      float64
		reqPerSecond, tokPerSec float64
	}{
		{"openai", []string{"50", "49", "1.2s", "150000", "149000", "400ms"}, time.Minute, time.Minute, 50, 150000, 50.0 / 60, 2500},
		{"groq", []string{"14400", "14399", "6s", "6000", "5000", "10s"}, 24 * time.Hour, time.Minute, 14400, 6000, 1.0 / 6, 100},
		{"rounded up reset", []string{"10000", "9999", "7ms", "", "", ""}, time.Minute, 0, 10000, 0, 10000.0 / 60, 0},
		// 50 of 100 left, 45 minutes to refill: the window is 90 to
		// 91.8 minutes (remaining may be 50.99), no common one: paced at
		// the lower bound, which later reports would correct.
		{"odd window", []string{"100", "50", "45m", "", "", ""}, 90 * time.Minute, 0, 100, 0, 100.0 / 5400, 0},
		// 49 of 50 left, 40 ms to refill: at least 2 s, taken as 2 s.
		{"short window", []string{"50", "49", "40ms", "", "", ""}, 2 * time.Second, 0, 50, 0, 25, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, _ := ratelimit.New(ratelimit.Config{})
			p, err := lim.Acquire(context.Background(), ratelimit.Cost{})
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			for i, k := range []string{ratehdr.HeaderLimitRequests, ratehdr.HeaderRemainingRequests, ratehdr.HeaderResetRequests,
				ratehdr.HeaderLimitTokens, ratehdr.HeaderRemainingTokens, ratehdr.HeaderResetTokens} {
				if tc.headers[i] != "" {
					h.Set(k, tc.headers[i])
				}
			}
			p.Done(&http.Response{StatusCode: 200, Header: h}, nil)
			st := lim.Snapshot()
			if st.Requests.Window != tc.reqWindow || st.Requests.Limit != tc.reqLimit || !near(st.Requests.Rate, tc.reqPerSecond) || st.Requests.Source != "learned" {
				t.Errorf("requests: %+v", st.Requests)
			}
			if st.Tokens.Window != tc.tokWindow || st.Tokens.Limit != tc.tokLimit || (tc.tokLimit > 0 && !near(st.Tokens.Rate, tc.tokPerSec)) {
				t.Errorf("tokens: %+v", st.Tokens)
			}
			if st.MaxInFlight != ratelimit.DefaultMaxInFlight {
				t.Errorf("still cautious after an answer: max in flight %d", st.MaxInFlight)
			}
		})
	}
}

// near reports whether the pace a is 99 % of the budget b (1 % is left for
// jitter).
func near(a, b float64) bool { return a > b*0.99*0.999 && a < b*0.99*1.001 }

// Fewer remaining than in flight: new requests wait for the refill.
func TestLowRemainingHoldsNewRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 4, Requests: ratelimit.Limit{N: 60, Per: time.Minute}})
		var permits []*ratelimit.Permit
		for range 3 {
			p, _ := lim.Acquire(context.Background(), ratelimit.Cost{})
			permits = append(permits, p)
		}
		// Another process spent the budget: 1 left, 2 of ours in flight.
		h := http.Header{}
		h.Set(ratehdr.HeaderLimitRequests, "60")
		h.Set(ratehdr.HeaderRemainingRequests, "1")
		h.Set(ratehdr.HeaderResetRequests, "59s")
		start := time.Now()
		permits[0].Done(&http.Response{StatusCode: 200, Header: h}, nil)
		if _, err := lim.Acquire(context.Background(), ratelimit.Cost{}); err != nil {
			t.Fatal(err)
		}
		// 2 in flight + 1 new − 1 left = 2 requests' refill at 1/s.
		if waited := time.Since(start); waited != 2*time.Second {
			t.Fatalf("waited %v, want 2s", waited)
		}
		if st := lim.Snapshot(); st.Holds != 1 || st.Pauses != 0 {
			t.Fatalf("holds %d, pauses %d", st.Holds, st.Pauses)
		}
	})
}

func TestAcquireFailsFastPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{Requests: ratelimit.Limit{N: 1, Per: time.Minute}})
		if _, err := lim.Acquire(context.Background(), ratelimit.Cost{}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := lim.Acquire(ctx, ratelimit.Cost{})
		if !errors.Is(err, ratelimit.ErrWouldExceedDeadline) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		// What it reserved was given back: the next request waits one
		// interval (a minute, plus the 1 % margin), not two.
		ctx, cancel = context.WithTimeout(context.Background(), 61*time.Second)
		defer cancel()
		if _, err := lim.Acquire(ctx, ratelimit.Cost{}); err != nil || time.Since(start).Round(time.Millisecond) != 60606*time.Millisecond {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
	})
}

// Cancelling a thousand waiting callers returns them all at once and
// leaves no goroutine behind.
func TestCancelThousandWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 100, Requests: ratelimit.Limit{N: 1, Per: time.Hour}})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var got, cancelled atomic.Int64
		for range 1000 {
			wg.Go(func() {
				p, err := lim.Acquire(ctx, ratelimit.Cost{})
				switch {
				case err == nil:
					got.Add(1)
					p.Done(nil, errors.New("never sent"))
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				}
			})
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		wg.Wait()
		if got.Load() != 1 || cancelled.Load() != 999 {
			t.Fatalf("%d acquired, %d cancelled", got.Load(), cancelled.Load())
		}
		if st := lim.Snapshot(); st.InFlight != 0 {
			t.Fatalf("in flight after all returned: %d", st.InFlight)
		}
	})
	goleak.VerifyNone(t)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []ratelimit.Config{
		{MaxInFlight: -1},
		{MaxPause: -time.Second},
		{Requests: ratelimit.Limit{N: 50}},
		{Tokens: ratelimit.Limit{N: -1, Per: time.Minute}},
	} {
		if _, err := ratelimit.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	lim, _ := ratelimit.New(ratelimit.Config{})
	if _, err := lim.Acquire(context.Background(), ratelimit.Cost{Tokens: -1}); err == nil {
		t.Error("negative cost accepted")
	}
}

// Windows that are not common ones (2 s here: a scaled-down minute) are
// learned as they are, kept when configured, and the request sent before
// anything was known counts against the first window.
func TestUncommonWindows(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"configured", ratelimit.Config{MaxInFlight: 20, Requests: ratelimit.Limit{N: 20, Per: 2 * time.Second}}},
		{"learned", ratelimit.Config{MaxInFlight: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := transcribetest.NewHandler(transcribetest.Config{
					RateLimit: transcribetest.RateLimit{Requests: 20, Window: 2 * time.Second},
					Latency:   30 * time.Millisecond,
				})
				lim, _ := ratelimit.New(tc.cfg)
				c := &http.Client{Transport: lim.Transport(h.Transport())}
				start := time.Now()
				var wg sync.WaitGroup
				for range 100 {
					wg.Go(func() { post(t, c) })
				}
				wg.Wait()
				st, elapsed := h.Stats(), time.Since(start)
				most := st.MaxInWindow(st.Sent, 2*time.Second)
				used := 100 / (20 * elapsed.Seconds() / 2)
				t.Logf("%s: %v, %.1f%% of the budget, at most %d in 2 s, %d 429s, window %v",
					tc.name, elapsed, 100*used, most, st.ByStatus[429], lim.Snapshot().Requests.Window)
				if st.ByStatus[429] != 0 || most > 20 || used < 0.95 || lim.Snapshot().Requests.Window != 2*time.Second {
					t.Errorf("%d 429s, %d in one window, %.1f%% used, window %v", st.ByStatus[429], most, 100*used, lim.Snapshot().Requests.Window)
				}
			})
		})
	}
}
