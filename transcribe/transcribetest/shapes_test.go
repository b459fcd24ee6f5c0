package transcribetest_test

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

// step is one request of a scripted run of a rate limit, with what its
// response must say.
type step struct {
	at        time.Duration // virtual time since the start of the run
	fault     tt.Fault      // FaultServerError shows the budget without spending it
	status    int
	remaining string        // x-ratelimit-remaining-requests
	reset     string        // x-ratelimit-reset-requests
	retry     time.Duration // a 429's wait: retry-after(-ms) and "Please try again in"
}

// runSteps sends the steps' requests, each at its virtual time, to a fake
// with the rate limit rl, and checks each response's status and headers
// and each 429's body. It returns the fake's statistics.
func runSteps(t *testing.T, rl tt.RateLimit, steps []step) (stats tt.Stats) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		faults := make([]tt.Fault, len(steps))
		for i, s := range steps {
			faults[i] = s.fault
		}
		h := tt.NewHandler(tt.Config{RateLimit: rl, Faults: faults})
		wav := tt.WAV(time.Second)
		start := time.Now()
		for i, s := range steps {
			time.Sleep(time.Until(start.Add(s.at)))
			resp, b := do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
			where := fmt.Sprintf("step %d at %v", i, s.at)
			if resp.StatusCode != s.status {
				t.Fatalf("%s: status %d, want %d: %s", where, resp.StatusCode, s.status, b)
			}
			got := [3]string{resp.Header.Get("x-ratelimit-limit-requests"), resp.Header.Get("x-ratelimit-remaining-requests"), resp.Header.Get("x-ratelimit-reset-requests")}
			if want := [3]string{strconv.Itoa(rl.Requests), s.remaining, s.reset}; got != want {
				t.Errorf("%s: x-ratelimit-*-requests %q, want %q", where, got, want)
			}
			if s.status != http.StatusTooManyRequests {
				continue
			}
			ms, secs := strconv.FormatInt(s.retry.Milliseconds(), 10), strconv.Itoa(int(math.Ceil(s.retry.Seconds())))
			if resp.Header.Get("retry-after-ms") != ms || resp.Header.Get("retry-after") != secs {
				t.Errorf("%s: retry-after %q, retry-after-ms %q, want %s and %s", where, resp.Header.Get("retry-after"), resp.Header.Get("retry-after-ms"), secs, ms)
			}
			remaining, _ := strconv.Atoi(s.remaining)
			msg, typ, _, code := apiError(t, b)
			want := fmt.Sprintf("on requests per min (RPM): Limit %d, Used %d, Requested 1. Please try again in %v.", rl.Requests, rl.Requests-remaining, s.retry)
			if typ != "requests" || code != "rate_limit_exceeded" || !strings.Contains(msg, want) {
				t.Errorf("%s: 429 %s, want a message with %q", where, b, want)
			}
		}
		stats = h.Stats()
	})
	return stats
}

// TestBucket scripts the default shape, which refills continuously:
// reset is the time until the bucket is full.
func TestBucket(t *testing.T) {
	s := time.Second
	runSteps(t, tt.RateLimit{Requests: 5, Window: 10 * s}, []step{
		{at: 0, status: 200, remaining: "4", reset: "2s"},
		{at: 0, status: 200, remaining: "3", reset: "4s"},
		{at: 0, status: 200, remaining: "2", reset: "6s"},
		{at: 0, status: 200, remaining: "1", reset: "8s"},
		{at: 0, status: 200, remaining: "0", reset: "10s"},
		{at: 0, status: 429, remaining: "0", reset: "10s", retry: 2 * s},
		{at: 3 * s, status: 200, remaining: "0", reset: "9s"},               // 1.5 refilled, 0.5 left
		{at: 3 * s, status: 429, remaining: "0", reset: "9s", retry: 1 * s}, // half a request to go
		{at: time.Minute, fault: tt.FaultServerError, status: 500, remaining: "5", reset: "0s"},
	})
}

// TestFixedWindow scripts a fixed window of 5 requests per 10 s: windows
// follow each other from the first request (at 3 s here), reset is the time
// until the current one ends, and remaining jumps back to 5 then.
func TestFixedWindow(t *testing.T) {
	s := time.Second
	stats := runSteps(t, tt.RateLimit{Requests: 5, Window: 10 * s, Shape: tt.FixedWindow}, []step{
		{at: 3 * s, status: 200, remaining: "4", reset: "10s"},
		{at: 3 * s, status: 200, remaining: "3", reset: "10s"},
		{at: 3 * s, status: 200, remaining: "2", reset: "10s"},
		{at: 3 * s, status: 200, remaining: "1", reset: "10s"},
		{at: 3 * s, status: 200, remaining: "0", reset: "10s"},
		{at: 3 * s, status: 429, remaining: "0", reset: "10s", retry: 10 * s},
		{at: 7 * s, status: 429, remaining: "0", reset: "6s", retry: 6 * s},
		{at: 12900 * time.Millisecond, fault: tt.FaultServerError, status: 500, remaining: "0", reset: "100ms"},
		// The second window [13s, 23s).
		{at: 13 * s, status: 200, remaining: "4", reset: "10s"},
		{at: 22500 * time.Millisecond, status: 200, remaining: "3", reset: "500ms"},
		{at: 22500 * time.Millisecond, status: 200, remaining: "2", reset: "500ms"},
		{at: 22500 * time.Millisecond, status: 200, remaining: "1", reset: "500ms"},
		{at: 22500 * time.Millisecond, status: 200, remaining: "0", reset: "500ms"},
		// The third window: a burst across the boundary.
		{at: 23 * s, status: 200, remaining: "4", reset: "10s"},
		{at: 23 * s, status: 200, remaining: "3", reset: "10s"},
		{at: 23 * s, status: 200, remaining: "2", reset: "10s"},
		{at: 23 * s, status: 200, remaining: "1", reset: "10s"},
		{at: 23 * s, status: 200, remaining: "0", reset: "10s"},
		{at: 23 * s, status: 429, remaining: "0", reset: "10s", retry: 10 * s},
	})
	// Nine requests passed within half a second: what fixed windows allow.
	if n := stats.MaxInWindow(stats.Billed, 10*s); n != 9 {
		t.Errorf("MaxInWindow(Billed, 10s) = %d, want 9", n)
	}
}

// TestSlidingWindow scripts a sliding window of 5 requests per 10 s:
// remaining counts the last 10 s, reset is the time until they are empty,
// and a 429 waits for the oldest to leave.
func TestSlidingWindow(t *testing.T) {
	s := time.Second
	stats := runSteps(t, tt.RateLimit{Requests: 5, Window: 10 * s, Shape: tt.SlidingWindow}, []step{
		{at: 0, status: 200, remaining: "4", reset: "10s"},
		{at: 4 * s, status: 200, remaining: "3", reset: "10s"},
		{at: 8 * s, status: 200, remaining: "2", reset: "10s"},
		// The request at 0 has left; the one at 8 s leaves at 18 s.
		{at: 10 * s, fault: tt.FaultServerError, status: 500, remaining: "3", reset: "8s"},
		{at: 10 * s, status: 200, remaining: "2", reset: "10s"},
		{at: 10 * s, status: 200, remaining: "1", reset: "10s"},
		{at: 10 * s, status: 200, remaining: "0", reset: "10s"},
		{at: 10 * s, status: 429, remaining: "0", reset: "10s", retry: 4 * s}, // until the one at 4 s leaves
		{at: 14 * s, status: 200, remaining: "0", reset: "10s"},
		{at: 14 * s, status: 429, remaining: "0", reset: "10s", retry: 4 * s}, // the one at 8 s
		{at: 18 * s, status: 200, remaining: "0", reset: "10s"},
		{at: 18 * s, status: 429, remaining: "0", reset: "10s", retry: 2 * s}, // the three at 10 s
		{at: 40 * s, fault: tt.FaultServerError, status: 500, remaining: "5", reset: "0s"},
	})
	if n := stats.MaxInWindow(stats.Billed, 10*s); n != 5 {
		t.Errorf("MaxInWindow(Billed, 10s) = %d, want 5", n)
	}
}

// TestSlices: quantised enforcement refuses a burst that the headers, which
// describe the whole budget, said was allowed.
func TestSlices(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	t.Run("bucket", func(t *testing.T) {
		// 60 a minute enforced as 1 a second.
		runSteps(t, tt.RateLimit{Requests: 60, Window: time.Minute, Slices: 60}, []step{
			{at: 0, status: 200, remaining: "59", reset: "1s"},
			{at: 0, status: 429, remaining: "59", reset: "1s", retry: s},
			{at: 500 * ms, status: 429, remaining: "59", reset: "500ms", retry: 500 * ms},
			{at: s, status: 200, remaining: "59", reset: "1s"},
			{at: s, status: 429, remaining: "59", reset: "1s", retry: s},
		})
	})
	t.Run("fixed", func(t *testing.T) {
		// 5 a second, at most 2 (5/2 rounded down) in each half second.
		runSteps(t, tt.RateLimit{Requests: 5, Window: s, Shape: tt.FixedWindow, Slices: 2}, []step{
			{at: 0, status: 200, remaining: "4", reset: "1s"},
			{at: 0, status: 200, remaining: "3", reset: "1s"},
			{at: 0, status: 429, remaining: "3", reset: "1s", retry: 500 * ms},
			{at: 500 * ms, status: 200, remaining: "2", reset: "500ms"},
			{at: 500 * ms, status: 200, remaining: "1", reset: "500ms"},
			{at: 500 * ms, status: 429, remaining: "1", reset: "500ms", retry: 500 * ms},
			{at: s, status: 200, remaining: "4", reset: "1s"},
		})
	})
	t.Run("tokens", func(t *testing.T) {
		// 100 tokens a minute in slices of 10 tokens per 6 s: a request of
		// 33 tokens passes only as the first of its slice.
		synctest.Test(t, func(t *testing.T) {
			h := tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{Tokens: 100, Window: time.Minute, Slices: 10}})
			post := func() (*http.Response, []byte) {
				return do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(time.Second)}.request(t))
			}
			resp, b := post()
			if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-remaining-tokens") != "67" {
				t.Fatalf("first: %d %v %s", resp.StatusCode, resp.Header, b)
			}
			time.Sleep(2 * s)
			resp, b = post()
			msg, typ, _, _ := apiError(t, b)
			if resp.StatusCode != 429 || typ != "tokens" || resp.Header.Get("retry-after-ms") != "4000" ||
				resp.Header.Get("x-ratelimit-remaining-tokens") != "70" ||
				!strings.Contains(msg, "on tokens per min (TPM): Limit 100, Used 30, Requested 33. Please try again in 4s.") {
				t.Fatalf("second, in the same slice: %d %v %s", resp.StatusCode, resp.Header, b)
			}
			time.Sleep(4 * s)
			if resp, b = post(); resp.StatusCode != 200 {
				t.Fatalf("in the next slice: %d %s", resp.StatusCode, b)
			}
		})
	})
}

// TestAudioSeconds checks Groq's audio-seconds budget: charged after the
// upload, shown in no header, refused with Groq's 429.
func TestAudioSeconds(t *testing.T) {
	post := func(t *testing.T, h *tt.Handler, d time.Duration) (*http.Response, []byte) {
		return do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(d)}.request(t))
	}
	const upgrade = " Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"

	t.Run("hour", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 5 seconds an hour (a bucket), 2 s files; and 100 requests.
			h := tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{Requests: 100, Window: time.Hour, AudioSeconds: 5}})
			for i := range 2 {
				if resp, b := post(t, h, 2*time.Second); resp.StatusCode != 200 {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
				}
			}
			resp, b := post(t, h, 2*time.Second)
			want := "{\"error\":{\"message\":\"Rate limit reached for model `whisper-1` in organization `org_fake` service tier `on_demand` " +
				"on seconds of audio per hour (ASPH): Limit 5, Used 4, Requested 2. Please try again in 12m0s." + upgrade +
				"\",\"type\":\"seconds\",\"code\":\"rate_limit_exceeded\"}}\n"
			if resp.StatusCode != 429 || string(b) != want {
				t.Fatalf("over the budget: %d\n%s\nwant\n%s", resp.StatusCode, b, want)
			}
			if ra, ms := resp.Header.Get("retry-after"), resp.Header.Get("retry-after-ms"); ra != "720" || ms != "720000" {
				t.Errorf("retry-after %q, retry-after-ms %q", ra, ms)
			}
			// The request was counted: its x-ratelimit headers are those of
			// requests, and none reports audio.
			if got := resp.Header.Get("x-ratelimit-remaining-requests"); got != "97" {
				t.Errorf("x-ratelimit-remaining-requests %q, want 97", got)
			}
			for k := range resp.Header {
				if k := strings.ToLower(k); strings.HasPrefix(k, "x-ratelimit-") && !strings.HasSuffix(k, "-requests") {
					t.Errorf("header %s sent", k)
				}
			}

			time.Sleep(12*time.Minute - time.Millisecond)
			if resp, _ := post(t, h, 2*time.Second); resp.StatusCode != 429 || resp.Header.Get("retry-after-ms") != "1" {
				t.Errorf("a millisecond early: %d, retry-after-ms %q", resp.StatusCode, resp.Header.Get("retry-after-ms"))
			}
			time.Sleep(time.Millisecond)
			if resp, b := post(t, h, 2*time.Second); resp.StatusCode != 200 {
				t.Errorf("after the wait: %d %v %s", resp.StatusCode, resp.Header, b)
			}

			// Longer than the whole budget: Groq's 413, with no retry-after.
			resp, b = post(t, h, 6*time.Second)
			want = "{\"error\":{\"message\":\"Request too large for model `whisper-1` in organization `org_fake` service tier `on_demand` " +
				"on seconds of audio per hour (ASPH): Limit 5, Requested 6, please reduce your message size and try again." + upgrade +
				"\",\"type\":\"seconds\",\"code\":\"rate_limit_exceeded\"}}\n"
			if resp.StatusCode != 413 || string(b) != want || resp.Header.Get("retry-after") != "" {
				t.Errorf("too long: %d %v\n%s\nwant\n%s", resp.StatusCode, resp.Header, b, want)
			}

			s := h.Stats()
			if len(s.Audio) != 3 || len(s.Billed) != 3 || s.ByStatus[429] != 2 || s.ByStatus[413] != 1 {
				t.Errorf("stats %+v", s)
			}
			for _, c := range s.Audio {
				if c.Seconds != 2 {
					t.Errorf("charge %+v, want 2 s", c)
				}
			}
			if got := s.Audio[2].At.Sub(s.Audio[0].At); got != 12*time.Minute {
				t.Errorf("third charge %v after the first", got)
			}
			// The bucket let 6 s through within the hour: 5 and a refill.
			if n := s.MaxAudioInWindow(time.Hour); n != 6 {
				t.Errorf("MaxAudioInWindow(1h) = %v, want 6", n)
			}
		})
	})

	t.Run("day", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 5 seconds a day in a sliding window; 1.5 s counts as 2.
			h := tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{AudioSeconds: 5, AudioWindow: 24 * time.Hour, Shape: tt.SlidingWindow}})
			for i, d := range []time.Duration{1500 * time.Millisecond, 2 * time.Second} {
				if resp, b := post(t, h, d); resp.StatusCode != 200 {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
				}
				time.Sleep(time.Hour)
			}
			resp, b := post(t, h, 2*time.Second) // at 2h: waits for the charge at 0 to leave
			msg := "Rate limit reached for model `whisper-1` in organization `org_fake` service tier `on_demand` " +
				"on seconds of audio per day (ASPD): Limit 5, Used 4, Requested 2. Please try again in 22h0m0s." + upgrade
			if got := object(t, b)["error"].(map[string]any); resp.StatusCode != 429 || got["message"] != msg || len(got) != 3 {
				t.Fatalf("over the budget: %d %s", resp.StatusCode, b)
			}
			if resp.Header.Get("retry-after") != "79200" {
				t.Errorf("retry-after %q", resp.Header.Get("retry-after"))
			}
			time.Sleep(22 * time.Hour)
			if resp, b := post(t, h, 2*time.Second); resp.StatusCode != 200 {
				t.Errorf("after the wait: %d %s", resp.StatusCode, b)
			}
			s := h.Stats()
			if len(s.Audio) != 3 || s.Audio[0].Seconds != 2 {
				t.Errorf("audio %+v", s.Audio)
			}
			if n := s.MaxAudioInWindow(24 * time.Hour); n != 4 {
				t.Errorf("MaxAudioInWindow(24h) = %v, want 4", n)
			}
		})
	})
}

// TestRateLimitedKeepsQuota: a request refused by the rate limit never
// reaches billing, so it takes no share of the quota.
func TestRateLimitedKeepsQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{QuotaRequests: 2, RateLimit: tt.RateLimit{Requests: 1, Window: time.Second}})
		var got []string
		for _, wait := range []time.Duration{0, 0, 0, time.Second, time.Second} {
			time.Sleep(wait)
			resp, b := do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(time.Second)}.request(t))
			outcome := strconv.Itoa(resp.StatusCode)
			if resp.StatusCode != 200 {
				_, typ, _, _ := apiError(t, b)
				outcome += " " + typ
			}
			got = append(got, outcome)
		}
		if want := "200, 429 requests, 429 requests, 200, 429 insufficient_quota"; strings.Join(got, ", ") != want {
			t.Errorf("outcomes %s, want %s", strings.Join(got, ", "), want)
		}
	})
}

func TestShapeString(t *testing.T) {
	for s, want := range map[tt.Shape]string{tt.Bucket: "Bucket", tt.FixedWindow: "FixedWindow", tt.SlidingWindow: "SlidingWindow", 7: "Shape(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}
