package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// batch sends n requests at once, each from its own goroutine, through lim
// to a fake configured by cfg, and returns the fake's statistics and the
// time until the last answer.
func batch(t *testing.T, lim *ratelimit.Limiter, cfg transcribetest.Config, n int) (transcribetest.Stats, time.Duration) {
	t.Helper()
	h := transcribetest.NewHandler(cfg)
	c := &http.Client{Transport: lim.Transport(h.Transport())}
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for post(t, c) == http.StatusTooManyRequests {
			}
		})
	}
	wg.Wait()
	return h.Stats(), time.Since(start)
}

// The case the library exists for: 50 requests at once under a whole
// budget of 50 a minute go together, configured or learned, and none is
// refused.
func TestWholeBudgetGoesTogether(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"configured", ratelimit.Config{Requests: ratelimit.Limit{N: 50, Per: time.Minute}}},
		{"learned", ratelimit.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, err := ratelimit.New(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				const latency = 7 * time.Second
				st, elapsed := batch(t, lim, transcribetest.Config{
					RateLimit: transcribetest.RateLimit{Requests: 50, Window: time.Minute},
					Latency:   latency,
				}, 50)
				if st.MaxInFlight != 50 || st.ByStatus[200] != 50 || st.ByStatus[429] != 0 || elapsed != latency {
					t.Fatalf("%d in flight at most, statuses %v, %v: want all 50 at once, 50 × 200 in %v", st.MaxInFlight, st.ByStatus, elapsed, latency)
				}
				// The server's bucket holds 7 s of refill: 5.8.
				if s := lim.Snapshot().Requests; s.Limit != 50 || s.Available > 50*7.0/60 {
					t.Fatalf("requests budget after: %+v", s)
				}
			})
		})
	}
}

// A bucket that starts full and refills continuously: the whole bucket
// goes at once, then the refill as it comes, as fast as an x/time/rate
// limiter of the exact budget (burst 50, 50 per 6 s), learned or
// configured, and nothing is refused.
func TestBucketRefillIsSpentAsItComes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"configured", ratelimit.Config{MaxInFlight: 20, Requests: ratelimit.Limit{N: 50, Per: 6 * time.Second}}},
		{"learned", ratelimit.Config{MaxInFlight: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, _ := ratelimit.New(tc.cfg)
				const latency = 200 * time.Millisecond
				st, elapsed := batch(t, lim, transcribetest.Config{
					RateLimit: transcribetest.RateLimit{Requests: 50, Window: 6 * time.Second},
					Latency:   latency,
				}, 300)
				// The bucket's own pace: 50 at once, 250 more at 50 per 6 s.
				ideal := 30*time.Second + latency
				s := lim.Snapshot().Requests
				t.Logf("%s: 300 requests in %v (%.3f × the bucket's pace), %d 429s; learned %+v", tc.name, elapsed, elapsed.Seconds()/ideal.Seconds(), st.ByStatus[429], s)
				if st.ByStatus[429] > 1 || st.ByStatus[200] != 300 {
					t.Errorf("statuses %v: want 300 × 200 and at most one 429", st.ByStatus)
				}
				if elapsed.Seconds() > 1.02*ideal.Seconds() {
					t.Errorf("%v: more than 1.02 × %v", elapsed, ideal)
				}
				if s.Shape != "bucket" || s.Window < 6*time.Second || s.Window > 6300*time.Millisecond {
					t.Errorf("learned %+v, want a bucket of 50 per 6 s", s)
				}
			})
		})
	}
}

// statement sets the requests trio on h.
func statement(h http.Header, limit, remaining float64, reset string) {
	h.Set("X-Ratelimit-Limit-Requests", strconv.FormatFloat(limit, 'f', -1, 64))
	h.Set("X-Ratelimit-Remaining-Requests", strconv.FormatFloat(remaining, 'f', -1, 64))
	if reset != "" {
		h.Set("X-Ratelimit-Reset-Requests", reset)
	}
}

func ok(limit, remaining float64, reset string) *http.Response {
	h := http.Header{}
	statement(h, limit, remaining, reset)
	return &http.Response{StatusCode: 200, Header: h}
}

func acquire(t *testing.T, lim *ratelimit.Limiter) *ratelimit.Permit {
	t.Helper()
	p, err := lim.Acquire(context.Background(), ratelimit.Cost{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Answers overtake each other: a statement made before the one in force
// (it says the budget is whole sooner) does not bring back what the later
// one said was spent; it only tells that its own request was counted.
func TestStaleStatementsAreOrdered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		p := []*ratelimit.Permit{acquire(t, lim), acquire(t, lim), acquire(t, lim)}
		// A bucket of 10 per 10 s: the server counted the three in
		// order; the last counted answers first.
		p[2].Done(ok(10, 7, "3s"), nil)
		if a := lim.Snapshot().Requests.Available; a != 5 {
			t.Fatalf("after the newest statement: %v available, want 7 less the 2 in flight", a)
		}
		p[0].Done(ok(10, 9, "1s"), nil)
		p[1].Done(ok(10, 8, "2s"), nil)
		if a := lim.Snapshot().Requests.Available; a != 7 {
			t.Fatalf("after the older statements: %v available, want 7", a)
		}
	})
}

// The shape is learned from how remaining and reset move: a bucket's
// reports agree on one window, a sliding window's (reset ≈ the window after
// any request) do not.
func TestShapeIsLearned(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script [][2]string // remaining, reset; limit 50
		shape  string
		window time.Duration
	}{
		{"bucket", [][2]string{{"49", "120ms"}, {"48", "240ms"}, {"40", "1.2s"}, {"10", "4.8s"}}, "bucket", 6 * time.Second},
		{"sliding", [][2]string{{"49", "6s"}, {"48", "6s"}, {"40", "5.99s"}, {"10", "5.98s"}}, "window", 6 * time.Second},
		{"fixed", [][2]string{{"49", "5.9s"}, {"48", "5.8s"}, {"40", "4s"}, {"10", "1s"}}, "window", 5900 * time.Millisecond},
		{"too little to tell", [][2]string{{"49", "6s"}}, "unknown", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, _ := ratelimit.New(ratelimit.Config{})
				for _, r := range tc.script {
					rem, _ := strconv.ParseFloat(r[0], 64)
					acquire(t, lim).Done(ok(50, rem, r[1]), nil)
				}
				s := lim.Snapshot().Requests
				if s.Shape != tc.shape || (tc.window > 0 && (s.Window < tc.window || s.Window > tc.window*21/20)) {
					t.Fatalf("learned %+v, want a %s of about %v", s, tc.shape, tc.window)
				}
			})
		})
	}
}

// After a window's budget is spent, the next request waits exactly until
// the reset: never longer, whatever the guess.
func TestSpentWindowWaitsForTheReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		acquire(t, lim).Done(ok(50, 0, "4.5s"), nil)
		start := time.Now()
		acquire(t, lim)
		if waited := time.Since(start); waited != 4500*time.Millisecond {
			t.Fatalf("waited %v, want the reset, 4.5s", waited)
		}
	})
}

// Hostile or absurd headers cannot make a call wait past MaxPause, and a
// caller with a deadline fails at once.
func TestHostileHeaders(t *testing.T) {
	for _, tc := range []struct {
		name             string
		limit, remaining float64
		reset            string
	}{
		{"one a day", 1, 0, "86400s"},
		{"a thousandth", 0.001, 0, "24h"},
		{"one a day, no reset", 1, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const maxPause = 30 * time.Second
				lim, _ := ratelimit.New(ratelimit.Config{MaxPause: maxPause})
				acquire(t, lim).Done(ok(tc.limit, tc.remaining, tc.reset), nil)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				start := time.Now()
				q, err := lim.Acquire(ctx, ratelimit.Cost{})
				switch {
				case tc.reset == "":
					// No reset: the budget is tried again a second
					// after the statement, well within the deadline.
					if err != nil || time.Since(start) != time.Second {
						t.Fatalf("with no reset and a 20 s deadline: %v after %v, want a permit after 1s", err, time.Since(start))
					}
					q.Done(nil, errors.New("not sent"))
					start = time.Now()
				case !errors.Is(err, ratelimit.ErrWouldExceedDeadline) || time.Since(start) != 0:
					t.Fatalf("with a 20 s deadline: %v after %v, want ErrWouldExceedDeadline at once", err, time.Since(start))
				}
				p := acquire(t, lim)
				if waited := time.Since(start); waited > maxPause {
					t.Fatalf("waited %v, past MaxPause %v", waited, maxPause)
				}
				p.Done(nil, errors.New("not sent"))
			})
		})
	}
}

// A caller whose deadline its turn would pass fails at once, counting the
// callers queued ahead of it; one whose deadline allows it waits its turn.
func TestDeadlineCountsTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{Requests: ratelimit.Limit{N: 10, Per: time.Minute}})
		for range 10 {
			acquire(t, lim)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for range 5 { // each waits for one more request's refill, 6 s
			wg.Go(func() { acquire(t, lim) })
		}
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := lim.Acquire(ctx, ratelimit.Cost{}); !errors.Is(err, ratelimit.ErrWouldExceedDeadline) || time.Since(start) != 0 {
			t.Fatalf("sixth in line with a 20 s deadline (its turn at 36 s): %v after %v", err, time.Since(start))
		}
		ctx, cancel = context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		if _, err := lim.Acquire(ctx, ratelimit.Cost{}); err != nil || time.Since(start) != 36*time.Second {
			t.Fatalf("sixth in line with a 40 s deadline: %v after %v, want its turn at 36 s", err, time.Since(start))
		}
		wg.Wait()
	})
}

func TestAcquireFailsFastPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{Requests: ratelimit.Limit{N: 1, Per: time.Minute}})
		acquire(t, lim)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := lim.Acquire(ctx, ratelimit.Cost{})
		if !errors.Is(err, ratelimit.ErrWouldExceedDeadline) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		// Nothing was taken: the next request waits one refill, not two.
		ctx, cancel = context.WithTimeout(context.Background(), 61*time.Second)
		defer cancel()
		if _, err := lim.Acquire(ctx, ratelimit.Cost{}); err != nil || time.Since(start) != time.Minute {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
	})
}

// A 429 whose own headers say the budget has room: the server does not
// honour bursts, and requests are spread evenly from then on.
func TestRefusedBurstSpreadsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		acquire(t, lim).Done(ok(50, 49, "120ms"), nil)
		h := http.Header{}
		statement(h, 50, 40, "1.2s")
		h.Set("Retry-After-Ms", "100")
		acquire(t, lim).Done(&http.Response{StatusCode: 429, Header: h},
			errors.New("Rate limit reached for whisper-1 in organization org-x on requests per min (RPM): Limit 50, Used 10, Requested 1."))
		s := lim.Snapshot()
		// The two reports put the window between 6 s and 6.67 s.
		if !s.Spread || s.Pace < 0.99*50/(1.2*50/9) || s.Pace > 0.99*50/6 {
			t.Fatalf("spread %v at %v/s, want spread at 99%% of 50 per 6 to 6.67 s", s.Spread, s.Pace)
		}
		// Evenly: the pace began when the 429 came, so 10 requests take
		// 10 intervals (the first outlasts the 100 ms pause).
		start := time.Now()
		for range 10 {
			acquire(t, lim)
		}
		if want := 10 * time.Duration(float64(time.Second)/s.Pace); time.Since(start) < want-time.Millisecond || time.Since(start) > want+time.Millisecond {
			t.Fatalf("10 requests took %v, want about %v", time.Since(start), want)
		}
	})
}

// Costs are charged to their budgets and corrected by Settle.
func TestCostsAndSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{Tokens: ratelimit.Limit{N: 1000, Per: time.Minute}})
		p, _ := lim.Acquire(context.Background(), ratelimit.Cost{Tokens: 600})
		p.Settle(ratelimit.Cost{Tokens: 100})
		start := time.Now()
		q, _ := lim.Acquire(context.Background(), ratelimit.Cost{Tokens: 800})
		if time.Since(start) != 0 {
			t.Fatalf("800 tokens after 100 of 1000 waited %v", time.Since(start))
		}
		p.Done(&http.Response{StatusCode: 200, Header: http.Header{}}, nil)
		q.Done(&http.Response{StatusCode: 200, Header: http.Header{}}, nil)
		// 100 are left; 400 more need 300 refilled at 1000 a minute.
		if _, err := lim.Acquire(context.Background(), ratelimit.Cost{Tokens: 400}); err != nil || time.Since(start) != 18*time.Second {
			t.Fatalf("400 tokens: %v after %v, want 18s", err, time.Since(start))
		}
		// A cost over the whole budget goes when the budget is whole.
		if _, err := lim.Acquire(context.Background(), ratelimit.Cost{Tokens: 5000}); err != nil || time.Since(start) != 78*time.Second {
			t.Fatalf("5000 tokens: %v after %v, want 78s", err, time.Since(start))
		}
	})
}

// Groq reports its audio-seconds budgets only in 429 messages: the limiter
// learns them there, and holds requests with audio until the refused one
// fits.
func TestAudioSecondsFromA429Message(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		p, _ := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: 120})
		h := http.Header{}
		h.Set("Retry-After", "63")
		p.Done(&http.Response{StatusCode: 429, Header: h}, errors.New(
			"Rate limit reached for model `whisper-large-v3` in organization `org_x` service tier `on_demand` on seconds of audio per hour (ASPH): "+
				"Limit 7200, Used 7134, Requested 120. Please try again in 1m2.5s. Need more tokens? Upgrade to Dev Tier today"))
		s := lim.Snapshot().Audio
		if s.Source != "learned" || s.Limit != 7200 || s.Window != time.Hour || s.Remaining != 66 {
			t.Fatalf("audio budget %+v", s)
		}
		start := time.Now()
		if _, err := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: 120}); err != nil || time.Since(start) != 63*time.Second {
			t.Fatalf("120 s of audio: %v after %v, want the pause of 63 s (the message said 62.5 s)", err, time.Since(start))
		}
	})
}

// A client that acquires its own permit and sends through the limiter's
// Transport takes one permit per attempt, and cannot deadlock itself.
func TestTransportUnderAPermit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 1})
		s := &scripted{latency: time.Second}
		c := &http.Client{Transport: lim.Transport(s)}
		p := acquire(t, lim)
		req, _ := http.NewRequestWithContext(ratelimit.ContextWithPermit(context.Background(), p), http.MethodPost, "http://fake.invalid/v1/audio/transcriptions", nil)
		done := make(chan int)
		go func() {
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				close(done)
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		synctest.Wait()
		if st := lim.Snapshot(); st.InFlight != 1 || st.Waiting != 0 {
			t.Fatalf("while sending: %d in flight, %d waiting; want the one permit", st.InFlight, st.Waiting)
		}
		if code := <-done; code != 200 {
			t.Fatalf("status %d", code)
		}
		p.Done(nil, nil)
		// A permit of another limiter does not count.
		other, _ := ratelimit.New(ratelimit.Config{})
		q := acquire(t, other)
		req, _ = http.NewRequestWithContext(ratelimit.ContextWithPermit(context.Background(), q), http.MethodPost, "http://fake.invalid/v1/audio/transcriptions", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if st := lim.Snapshot(); st.InFlight != 0 || len(s.arrived) != 2 {
			t.Fatalf("after: %d in flight, %d sent", st.InFlight, len(s.arrived))
		}
	})
}

// FuzzReports: no header values make the limiter pause or hold a caller
// past MaxPause.
func FuzzReports(f *testing.F) {
	for _, s := range [][3]string{
		{"50", "49", "1.2s"}, {"60", "59", "1s"}, {"150000", "149984", "6m0s"}, {"10", "0", "20ms"},
		{"14400", "14399", "2m59.56s"}, {"1", "0", "86400s"}, {"0.001", "0", "24h"}, {"-5", "3", "1h"},
		{"NaN", "NaN", "NaN"}, {"1e308", "0", "9999999999h"}, {"50", "51", "1s"}, {"", "", ""}, {"50", "49", "-3s"},
	} {
		f.Add(s[0], s[1], s[2], 429)
		f.Add(s[0], s[1], s[2], 200)
	}
	f.Fuzz(func(t *testing.T, limit, remaining, reset string, status int) {
		synctest.Test(t, func(t *testing.T) {
			const maxPause = 5 * time.Second
			lim, err := ratelimit.New(ratelimit.Config{MaxPause: maxPause})
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			h.Set("X-Ratelimit-Limit-Requests", limit)
			h.Set("X-Ratelimit-Remaining-Requests", remaining)
			h.Set("X-Ratelimit-Reset-Requests", reset)
			h.Set("Retry-After", reset)
			acquire(t, lim).Done(&http.Response{StatusCode: max(100, min(status, 599)), Header: h}, nil)
			start := time.Now()
			p := acquire(t, lim)
			if waited := time.Since(start); waited > maxPause {
				t.Fatalf("waited %v", waited)
			}
			p.Done(nil, nil)
		})
	})
}

// Spreading needs the budget's window: when the 429 that shows a server
// refusing bursts is the first word on it, the window is guessed from that
// word, and requests are paced, not burst.
func TestSpreadFromTheFirstReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		h := http.Header{}
		statement(h, 50, 40, "1.2s")
		h.Set("Retry-After-Ms", "100")
		acquire(t, lim).Done(&http.Response{StatusCode: 429, Header: h}, nil)
		if s := lim.Snapshot(); !s.Spread || s.Pace < 0.99*50/(1.2*50/9) || s.Pace > 0.99*50/6 {
			t.Fatalf("spread %v at %v/s, want a pace from a window of 6 to 6.67 s", s.Spread, s.Pace)
		}
	})
}

// A request the server refused was not charged its audio or tokens: they
// come back.
func TestRefusedRequestIsNotCharged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{AudioSeconds: ratelimit.Limit{N: 72, Per: time.Minute}, Tokens: ratelimit.Limit{N: 1000, Per: time.Minute}})
		p, _ := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: 3, Tokens: 100})
		h := http.Header{}
		h.Set("Retry-After-Ms", "10")
		p.Done(&http.Response{StatusCode: 429, Header: h}, errors.New("Rate limit reached for whisper-1 on requests per min (RPM): Limit 20, Used 20, Requested 1."))
		if s := lim.Snapshot(); s.Audio.Available != 72 || s.Tokens.Available != 1000 {
			t.Fatalf("after a refusal: %v s of audio, %v tokens available; want all", s.Audio.Available, s.Tokens.Available)
		}
	})
}

// The message's Used is a whole number, its "try again in" exact: the
// refused request goes when the server said, not a whole unit later.
func TestTryAgainInIsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		p, _ := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: 3})
		h := http.Header{}
		h.Set("Retry-After-Ms", "5")
		p.Done(&http.Response{StatusCode: 429, Header: h}, errors.New(
			"on seconds of audio per minute (ASPM): Limit 72, Used 70, Requested 3. Please try again in 5ms."))
		start := time.Now()
		if _, err := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: 3}); err != nil || time.Since(start) != 5*time.Millisecond {
			t.Fatalf("%v after %v, want 5ms", err, time.Since(start))
		}
	})
}
