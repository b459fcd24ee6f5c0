package ratelimit_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// Budgets counted in fixed or sliding windows, and budgets enforced in
// slices, each against the same 300 requests of a budget of 50 per 6 s
// that is whole at the start, with at most 20 in flight and 200 ms of
// latency. The ideal is the time of a client that knows the shape: six
// bursts of 50, a window apart, the last answered 30.2 s after the start;
// the targets are counted against the budget's plain pace of 36 s.
func TestWindowShapes(t *testing.T) {
	const ideal = 36 * time.Second // 300 ÷ 50 × 6 s
	for _, tc := range []struct {
		name      string
		rl        transcribetest.RateLimit
		cfg       ratelimit.Config
		maxRatio  float64
		max429    int
		wantShape string
		spread    bool
	}{
		{"sliding learned", transcribetest.RateLimit{Shape: transcribetest.SlidingWindow}, ratelimit.Config{}, 1.15, 6, "window", false},
		{"sliding configured", transcribetest.RateLimit{Shape: transcribetest.SlidingWindow}, ratelimit.Config{Requests: ratelimit.Limit{N: 50, Per: 6 * time.Second}}, 1.15, 6, "window", false},
		{"fixed learned", transcribetest.RateLimit{Shape: transcribetest.FixedWindow}, ratelimit.Config{}, 1.15, 6, "window", false},
		{"fixed configured", transcribetest.RateLimit{Shape: transcribetest.FixedWindow}, ratelimit.Config{Requests: ratelimit.Limit{N: 50, Per: 6 * time.Second}}, 1.15, 6, "window", false},
		// The first burst against a server that enforces slices draws
		// 429s: 20 sent, 10 fit the slice, and up to as many again may
		// leave at the instant the first answers come back, when the
		// 200s are read before the 429s. After them, none (10 to 13 in
		// runs so far).
		{"quantised learned", transcribetest.RateLimit{Slices: 5}, ratelimit.Config{}, 1.1, 14, "bucket", true},
		{"quantised, told to spread", transcribetest.RateLimit{Slices: 5}, ratelimit.Config{Spread: true, Requests: ratelimit.Limit{N: 50, Per: 6 * time.Second}}, 1.1, 0, "bucket", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.cfg.MaxInFlight = 20
				lim, err := ratelimit.New(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				tc.rl.Requests, tc.rl.Window = 50, 6*time.Second
				st, elapsed := batch(t, lim, transcribetest.Config{RateLimit: tc.rl, Latency: 200 * time.Millisecond}, 300)
				s := lim.Snapshot()
				t.Logf("%s: %v (%.3f × %v), %d 429s; %+v, spread %v", tc.name, elapsed, elapsed.Seconds()/ideal.Seconds(), ideal, st.ByStatus[429], s.Requests, s.Spread)
				if st.ByStatus[200] != 300 || st.ByStatus[429] > tc.max429 {
					t.Errorf("statuses %v: want 300 × 200 and at most %d × 429", st.ByStatus, tc.max429)
				}
				if elapsed.Seconds() > tc.maxRatio*ideal.Seconds() {
					t.Errorf("%v: more than %.2f × %v", elapsed, tc.maxRatio, ideal)
				}
				if s.Requests.Shape != tc.wantShape || s.Spread != tc.spread {
					t.Errorf("learned a %s, spread %v; want a %s, spread %v", s.Requests.Shape, s.Spread, tc.wantShape, tc.spread)
				}
			})
		})
	}
}

// postAudio sends clip, charged as seconds of audio, through c under a
// permit of lim, until it is not refused, and returns how many times it
// was refused for its audio.
func postAudio(t *testing.T, lim *ratelimit.Limiter, c *http.Client, clip []byte, seconds float64) (refused int) {
	for {
		p, err := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: seconds})
		if err != nil {
			t.Error(err)
			return refused
		}
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		w.WriteField("model", "whisper-1")
		fw, _ := w.CreateFormFile("file", "a.wav")
		fw.Write(clip)
		w.Close()
		req, _ := http.NewRequestWithContext(ratelimit.ContextWithPermit(context.Background(), p), http.MethodPost, "http://fake.invalid/v1/audio/transcriptions", &body)
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("Authorization", "Bearer sk-test")
		resp, err := c.Do(req)
		if err != nil {
			p.Done(nil, err)
			t.Error(err)
			return refused
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			p.Done(resp, nil)
			return refused
		}
		if bytes.Contains(msg, []byte("seconds of audio")) {
			refused++
		}
		p.Done(resp, errorText(msg))
	}
}

type errorText []byte

func (e errorText) Error() string { return string(e) }

// A Groq-like server: 20 requests a minute in headers, 720 seconds of audio
// an hour reported only in 429 messages. 40 clips of 30 s: 24 fit the
// budget, the 16 others come back as it refills (0.2 s of audio a
// second: one clip every 150 s). At most two are refused for their audio,
// and the batch ends when the budget allows. A limiter that does not know
// the requests budget sends the 40 at once and 20 are refused for it;
// told the requests budget, it sends what the budget allows.
func TestAudioSecondsLearnedFrom429s(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    ratelimit.Config
		max429 int
	}{
		{"learned", ratelimit.Config{}, 22},
		{"requests configured", ratelimit.Config{Requests: ratelimit.Limit{N: 20, Per: time.Minute}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := transcribetest.NewHandler(transcribetest.Config{
					RateLimit: transcribetest.RateLimit{Requests: 20, Window: time.Minute, AudioSeconds: 720, AudioWindow: time.Hour},
					Latency:   time.Second,
				})
				lim, _ := ratelimit.New(tc.cfg)
				c := &http.Client{Transport: lim.Transport(h.Transport())}
				clip := transcribetest.WAV(30 * time.Second)
				start := time.Now()
				var wg sync.WaitGroup
				var mu sync.Mutex
				refused := 0
				for range 40 {
					wg.Go(func() {
						n := postAudio(t, lim, c, clip, 30)
						mu.Lock()
						refused += n
						mu.Unlock()
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				st := h.Stats()
				ideal := time.Duration((40*30 - 720) / 0.2 * float64(time.Second))
				t.Logf("%s: 40 clips in %v (%.3f × %v), %d 429s, %d for audio; audio %+v", tc.name, elapsed, elapsed.Seconds()/ideal.Seconds(), ideal, st.ByStatus[429], refused, lim.Snapshot().Audio)
				if st.ByStatus[200] != 40 || refused > 2 || st.ByStatus[429] > tc.max429 {
					t.Errorf("statuses %v, %d refused for audio: want 40 × 200, at most 2 refused for audio, %d in all", st.ByStatus, refused, tc.max429)
				}
				if elapsed.Seconds() > 1.05*ideal.Seconds() {
					t.Errorf("%v: more than 1.05 × %v", elapsed, ideal)
				}
				// A bucket of 720 lets through at most 720 and an hour's
				// refill in any hour.
				if most := st.MaxAudioInWindow(time.Hour); most > 2*720 {
					t.Errorf("%v s of audio in one hour", most)
				}
			})
		})
	}
}
