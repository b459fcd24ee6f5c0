package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

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

// scripted answers requests with the statuses and headers of its script
// in turn, then 200s, recording when each request arrived.
type scripted struct {
	mu      sync.Mutex
	script  []func(http.Header) int
	arrived []time.Time
	latency time.Duration
	okExtra time.Duration // added to the latency of answers past the script
}

func (s *scripted) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	s.mu.Lock()
	s.arrived = append(s.arrived, time.Now())
	step := func(http.Header) int { return 200 }
	latency := s.latency + s.okExtra
	if len(s.script) > 0 {
		step, s.script, latency = s.script[0], s.script[1:], s.latency
	}
	s.mu.Unlock()
	time.Sleep(latency)
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
		s := &scripted{latency: 100 * time.Millisecond, okExtra: 10 * time.Millisecond}
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
		// The first 20 went out at once; the first five answers, at
		// 100 ms, were 429s asking for 3 s; the others came 10 ms later.
		var firstAfter time.Time
		for _, at := range s.arrived[20:] {
			if firstAfter.IsZero() || at.Before(firstAfter) {
				firstAfter = at
			}
		}
		gap := firstAfter.Sub(start)
		if gap != 3100*time.Millisecond {
			t.Fatalf("after five 429s (retry-after: 3) at 100ms, the next request left at %v: want 3.1s, not sooner and not multiplied", gap)
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

// Random 503s from a server without rate-limit headers do not slow the
// pace: the adaptive rate answers 429s only.
func TestServerErrorsDoNotSlowThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := transcribetest.NewHandler(transcribetest.Config{
			FaultRate: 0.1, FaultKinds: []transcribetest.Fault{transcribetest.FaultOverloaded, transcribetest.FaultServerError},
			Latency: 100 * time.Millisecond, Seed: 1,
		})
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 20})
		c := &http.Client{Transport: lim.Transport(h.Transport())}
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				for post(t, c) != http.StatusOK {
				}
			})
		}
		wg.Wait()
		st, s := h.Stats(), lim.Snapshot()
		if st.ByStatus[503] == 0 || s.Throttles == 0 || !math.IsInf(s.Pace, 1) || st.MaxInFlight != 20 {
			t.Fatalf("503s %d, throttles %d, pace %v, %d in flight at most; want the pace untouched and 20 in flight", st.ByStatus[503], s.Throttles, s.Pace, st.MaxInFlight)
		}
	})
}

// The slot a permit gives back goes to the next caller at once, with the
// budget unknown (nothing else would wake it), with or without a store.
func TestFreedSlotGoesToTheNext(t *testing.T) {
	for _, store := range []ratelimit.Store{nil, &memStore{}} {
		synctest.Test(t, func(t *testing.T) {
			lim, err := ratelimit.New(ratelimit.Config{MaxInFlight: 1, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			first, err := lim.Acquire(context.Background(), ratelimit.Cost{})
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan *ratelimit.Permit)
			go func() {
				p, _ := lim.Acquire(context.Background(), ratelimit.Cost{})
				got <- p
			}()
			synctest.Wait()
			first.Done(&http.Response{StatusCode: 200, Header: http.Header{}}, nil)
			(<-got).Cancel()
		})
	}
}
