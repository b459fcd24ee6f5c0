package transcribe_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// A client whose HTTP client sends through the same limiter's Transport
// takes one permit per attempt: with one request in flight allowed, two
// permits per attempt would wait for each other forever.
func TestLimiterAndItsTransportTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := transcribetest.NewHandler(transcribetest.Config{APIKey: testKey, Latency: time.Second})
		lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 1})
		c, err := transcribe.NewClient(transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
			transcribe.WithLimiter(lim), transcribe.WithHTTPClient(&http.Client{Transport: lim.Transport(h.Transport())}))
		if err != nil {
			t.Fatal(err)
		}
		path := writeWAV(t, t.TempDir(), "a.wav", 1)
		done := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
				done <- err
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if st := h.Stats(); st.ByStatus[200] != 2 || st.MaxInFlight != 1 {
			t.Fatalf("statuses %v, %d in flight at most", st.ByStatus, st.MaxInFlight)
		}
		if s := lim.Snapshot(); s.InFlight != 0 || s.Waiting != 0 {
			t.Fatalf("after: %+v", s)
		}
	})
}

// Each request is charged its audio's duration against the audio-seconds
// budget, and its tokens where the model counts them, corrected from the
// answer's usage.
func TestRequestsAreCharged(t *testing.T) {
	for _, tc := range []struct {
		model            string
		audio, tokens    float64 // left of 60 s and 10,000 tokens after 40 s of audio
		tokensFromServer bool
	}{
		{"whisper-1", 20, 10000, false},
		{"gpt-4o-transcribe", 20, 0, true},
	} {
		t.Run(tc.model, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := transcribetest.NewHandler(transcribetest.Config{APIKey: testKey})
				lim, _ := ratelimit.New(ratelimit.Config{
					AudioSeconds: ratelimit.Limit{N: 60, Per: time.Hour},
					Tokens:       ratelimit.Limit{N: 10000, Per: time.Hour},
				})
				c, _ := transcribe.NewClient(transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
					transcribe.WithLimiter(lim), transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()}))
				path := writeWAV(t, t.TempDir(), "a.wav", 40)
				tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{Model: tc.model})
				if err != nil {
					t.Fatal(err)
				}
				s := lim.Snapshot()
				wantTokens := tc.tokens
				if tc.tokensFromServer {
					if tr.Usage == nil || tr.Usage.TotalTokens == 0 {
						t.Fatalf("the fake sent no token usage: %+v", tr.Usage)
					}
					wantTokens = 10000 - float64(tr.Usage.TotalTokens)
				}
				if s.Audio.Available != tc.audio || s.Tokens.Available != wantTokens {
					t.Fatalf("left: %v s of audio, %v tokens; want %v and %v (usage %+v)", s.Audio.Available, s.Tokens.Available, tc.audio, wantTokens, tr.Usage)
				}
				// 40 s more wait for 20 s to come back: 20 minutes at 60 an hour.
				start := time.Now()
				if _, err := c.TranscribeFile(context.Background(), path, transcribe.Request{Model: "whisper-1"}); err != nil || time.Since(start) != 20*time.Minute {
					t.Fatalf("second file: %v after %v, want 20m", err, time.Since(start))
				}
			})
		})
	}
}
