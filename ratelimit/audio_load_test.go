package ratelimit_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// The load tests below run against a Groq-like fake whose audio budget is
// 60 seconds of audio a minute (a bucket, full at first, refilling 1 s of
// audio a second), reported only in its 429s. The fake charges a request's
// audio once its upload is parsed; a transcript then takes loadTranscribe,
// while a 429 comes back at once: when the budget runs out, the requests
// it charged are still in flight, and the server's "Used" counts them.
const (
	loadBudget     = 60
	loadTranscribe = 2 * time.Second
	loadLatency    = 10 * time.Millisecond
)

// loadJob is one clip of 1 s of audio to transcribe: its first attempt
// asks for a permit at start, and its upload takes upload to reach the
// server (0: at once); retries upload at once.
type loadJob struct {
	start, upload time.Duration
}

// loadRun is what a run of loadJobs came to.
type loadRun struct {
	charges  []time.Duration // when the server charged each clip, from the start, in order
	refused  int             // 429s for audio
	statuses map[int]int
	elapsed  time.Duration // until the last transcript
}

// runLoad sends jobs, each from its own goroutine, through lim to the fake,
// sending a clip again when it is refused, until every clip is transcribed.
func runLoad(t *testing.T, lim *ratelimit.Limiter, jobs []loadJob) loadRun {
	t.Helper()
	h := transcribetest.NewHandler(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{AudioSeconds: loadBudget, AudioWindow: time.Minute},
		Latency:   loadLatency,
		Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
			select {
			case <-time.After(loadTranscribe):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return transcribetest.DefaultTranscriber(ctx, a)
		},
	})
	c := &http.Client{Transport: h.Transport()}
	clip := transcribetest.WAV(time.Second)
	start := time.Now()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		refused int
	)
	for _, j := range jobs {
		wg.Go(func() {
			time.Sleep(j.start)
			for upload := j.upload; ; upload = 0 {
				status, audio429 := sendClip(t, lim, c, clip, upload)
				if audio429 {
					mu.Lock()
					refused++
					mu.Unlock()
				}
				if status != http.StatusTooManyRequests {
					if status != http.StatusOK {
						t.Errorf("status %d", status)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	run := loadRun{refused: refused, elapsed: time.Since(start)}
	st := h.Stats()
	run.statuses = st.ByStatus
	for _, a := range st.Audio {
		if a.Seconds != 1 {
			t.Fatalf("a clip was charged %v s of audio, want 1", a.Seconds)
		}
		run.charges = append(run.charges, a.At.Sub(start))
	}
	slices.Sort(run.charges)
	if len(run.charges) != len(jobs) {
		t.Fatalf("%d clips charged, want %d; statuses %v", len(run.charges), len(jobs), run.statuses)
	}
	return run
}

// sendClip sends clip, as 1 s of audio, under a permit of lim, its upload
// taking upload to reach the server, and hands the answer to the permit.
// It returns the status and whether a 429 was for audio.
func sendClip(t *testing.T, lim *ratelimit.Limiter, c *http.Client, clip []byte, upload time.Duration) (int, bool) {
	p, err := lim.Acquire(context.Background(), ratelimit.Cost{AudioSeconds: 1})
	if err != nil {
		t.Error(err)
		return 0, false
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("model", "whisper-1")
	fw, _ := w.CreateFormFile("file", "a.wav")
	fw.Write(clip)
	w.Close()
	n := int64(body.Len())
	req, _ := http.NewRequest(http.MethodPost, "http://fake.invalid/v1/audio/transcriptions", &slowBody{r: &body, delay: upload})
	req.ContentLength = n
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := c.Do(req)
	if err != nil {
		p.Done(nil, err)
		t.Error(err)
		return 0, false
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		p.Done(resp, nil)
		return resp.StatusCode, false
	}
	p.Done(resp, errorText(msg))
	return resp.StatusCode, bytes.Contains(msg, []byte("seconds of audio"))
}

// slowBody is an upload that takes delay to arrive: its first read waits
// that long.
type slowBody struct {
	r     io.Reader
	delay time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.delay > 0 {
		time.Sleep(b.delay)
		b.delay = 0
	}
	return b.r.Read(p)
}

// staggered returns n jobs whose permits are asked for 1 ms apart, from
// first on.
func staggered(first time.Duration, n int) []loadJob {
	jobs := make([]loadJob, n)
	for i := range jobs {
		jobs[i].start = first + time.Duration(i)*time.Millisecond
	}
	return jobs
}

// The bug the limiters benchmark found under load: 62 clips of 1 s against
// a learned budget of 60 s of audio a minute, sent 1 ms apart. The 61st
// and 62nd are refused while the first 60 are still being transcribed.
// The server counted those 60 in its "Used"; a limiter that takes every
// request in flight for one the server has not yet counted believes the
// budget 60 s in debt and holds the two refused clips for a minute. The
// server's own numbers ("try again in 940ms", 1 s of audio back each
// second) let them through 1 s and 2 s after the first charge; the limiter
// must not wait longer than that, but for the time the 429 took to come
// back (its latency) and the rounding of "try again in" to a millisecond.
func TestAudio429WithManyInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		run := runLoad(t, lim, staggered(0, loadBudget+2))
		ideal := []time.Duration{time.Second, 2 * time.Second}
		idealEnd := ideal[1] + loadTranscribe + loadLatency
		t.Logf("62 clips: the last two charged at %v and %v (ideal %v, %v); all done after %v (ideal %v); %d refused for audio; %v",
			run.charges[60], run.charges[61], ideal[0], ideal[1], run.elapsed, idealEnd, run.refused, run.statuses)
		const slack = loadLatency + 2*time.Millisecond
		for i, want := range ideal {
			if got := run.charges[loadBudget+i]; got > want+slack {
				t.Errorf("clip %d charged after %v, want by %v: the server's numbers allow it then", loadBudget+i+1, got, want+slack)
			}
		}
		if run.elapsed > idealEnd+slack {
			t.Errorf("done after %v, want by %v", run.elapsed, idealEnd+slack)
		}
		// Only the two first attempts that the budget could not hold are
		// refused: the waits are not shorter than the server's either.
		if run.refused != 2 || run.statuses[http.StatusTooManyRequests] != 2 {
			t.Errorf("%d refused for audio, statuses %v; want the 2 the budget could not hold", run.refused, run.statuses)
		}
	})
}

// The other way round: the request that is refused was granted first, but
// its upload is slow, and the 60 granted after it overtake it and use the
// budget. Nothing tells the limiter which of the requests in flight the
// server counted (no header ever reports this budget), so it takes those
// granted after the refused one for uncounted, and the budget for 60 s in
// debt. That debt cannot outlive their answers: the server refuses audio it
// cannot hold, so its budget is never below zero, and once they are
// answered what may be spent is at least what refilled since. The refused
// clip goes at the latest 1 s (its own refill) after the last of their
// answers, not after a minute of refill for a debt the server never had.
func TestAudioDebtEndsWithTheAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		jobs := append([]loadJob{{upload: 500 * time.Millisecond}}, staggered(time.Millisecond, loadBudget)...)
		run := runLoad(t, lim, jobs)
		// The 60 overtaking clips are charged by 60 ms and answered by
		// then + loadTranscribe + loadLatency.
		answered := 60*time.Millisecond + loadTranscribe + loadLatency
		bound := answered + time.Second
		t.Logf("the refused clip charged at %v (bound %v; the server's numbers: %v); all done after %v; %d refused for audio",
			run.charges[loadBudget], bound, time.Second+loadLatency, run.elapsed, run.refused)
		if got := run.charges[loadBudget]; got > bound+2*time.Millisecond {
			t.Errorf("the refused clip charged after %v, want by %v", got, bound)
		}
		if run.refused != 1 || run.statuses[http.StatusTooManyRequests] != 1 {
			t.Errorf("%d refused for audio, statuses %v; want 1", run.refused, run.statuses)
		}
	})
}

// A guess that the server's count contradicts gives way to it. A request
// granted first uploads slowly (1.5 s); the 60 granted after it fill the
// budget, and the 62nd is refused, with 61 in flight granted before it.
// Taken for counted, they would be 61 s of audio, but the server says it
// used 60: one of them is not counted yet, and the limiter leaves room for
// it. The slow clip is charged when it arrives, and the refused one after
// it, when the budget holds both: no clip is refused twice, and none of
// those in flight is refused for a clip sent in its place.
func TestAudioGuessGivesWayToTheServersCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _ := ratelimit.New(ratelimit.Config{})
		jobs := append([]loadJob{{upload: 1500 * time.Millisecond}}, staggered(time.Millisecond, loadBudget+1)...)
		run := runLoad(t, lim, jobs)
		t.Logf("charges after the 60: %v; all done after %v; %d refused for audio; %v", run.charges[loadBudget:], run.elapsed, run.refused, run.statuses)
		if run.refused != 1 || run.statuses[http.StatusTooManyRequests] != 1 {
			t.Errorf("%d refused for audio, statuses %v; want only the first refusal", run.refused, run.statuses)
		}
		// The budget, full at the first charge (1 ms), holds 1 s of audio
		// again after the slow clip's charge at 2.001 s: the refused clip
		// goes then, but for the latency of its 429 and the rounding of
		// "try again in".
		want := 2001*time.Millisecond + loadLatency + 2*time.Millisecond
		if got := run.charges[loadBudget+1]; got > want {
			t.Errorf("the refused clip charged after %v, want by %v", got, want)
		}
	})
}
