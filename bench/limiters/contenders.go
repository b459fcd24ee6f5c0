package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"golang.org/x/time/rate"

	"github.com/steno-go/steno/ratelimit"
)

// A contender is one way of sending a scenario's requests. run sends
// sc.requests uploads with u and returns once each has been answered 200,
// or with the first error; its note, if any, says what it learned.
type contender struct {
	name  string
	steno bool // one of steno's: judged against the scenario's target
	run   func(ctx context.Context, sc *scenario, u *uploader) (note string, err error)
}

// Names of the contenders.
const (
	stenoLearned    = "steno-learned"
	stenoConfigured = "steno-configured"
	stenoSpread     = "steno-spread"
	xrateName       = "xrate"
	cookbookName    = "cookbook"
	forumName       = "forum"
	allAtOnceName   = "all-at-once"
	openaiGoName    = "openai-go"
	plainName       = "plain"
)

// steno returns a contender of steno's limiter, configured by cfg for the
// scenario.
func steno(name string, cfg func(sc *scenario) ratelimit.Config) contender {
	return contender{name: name, steno: true, run: func(ctx context.Context, sc *scenario, u *uploader) (string, error) {
		return runSteno(ctx, sc, u, cfg(sc))
	}}
}

// runSteno sends every request at once, each from its own goroutine,
// through a limiter configured by cfg, sending a request again when it is
// answered 429: the limiter paces them, bounds them in flight, and pauses
// them all after a 429.
//
// Where the scenario charges audio, each attempt acquires its permit with
// the clip's seconds of audio as its cost, sends the request under it
// (ratelimit.ContextWithPermit) through the limiter's Transport, and hands
// a 429's body to Permit.Done as the error, so that the limiter reads the
// audio budget from its message. Otherwise the requests simply go through
// lim.Transport, which does all of that with a cost of one request.
func runSteno(ctx context.Context, sc *scenario, u *uploader, cfg ratelimit.Config) (string, error) {
	lim, err := ratelimit.New(cfg)
	if err != nil {
		return "", err
	}
	c := &http.Client{Transport: lim.Transport(u.base)}
	send := func(ctx context.Context) (int, error) {
		status, _, err := u.post(ctx, c)
		return status, err
	}
	if sc.chargeAudio {
		send = func(ctx context.Context) (int, error) {
			p, err := lim.Acquire(ctx, ratelimit.Cost{AudioSeconds: sc.clipSeconds})
			if err != nil {
				return 0, err
			}
			req, err := u.request(ratelimit.ContextWithPermit(ctx, p))
			if err != nil {
				p.Cancel()
				return 0, err
			}
			resp, err := c.Do(req)
			if err != nil {
				p.Done(nil, err)
				return 0, err
			}
			status, body, err := u.finish(resp)
			switch {
			case err != nil:
				p.Done(resp, err)
			case status == http.StatusTooManyRequests:
				p.Done(resp, bodyError(body))
			default:
				p.Done(resp, nil)
			}
			return status, err
		}
	}
	b := newBatch(ctx)
	for range sc.requests {
		b.goDo(func(ctx context.Context) error {
			for {
				status, err := send(ctx)
				if err != nil || status == http.StatusOK {
					return err
				}
			}
		})
	}
	if err := b.wait(); err != nil {
		return "", err
	}
	return stenoNote(lim.Snapshot()), nil
}

// bodyError is a 429's body as the error handed to Permit.Done.
type bodyError []byte

func (e bodyError) Error() string { return string(e) }

// stenoNote describes what the limiter ended with.
func stenoNote(s ratelimit.Stats) string {
	budget := func(name string, b ratelimit.BudgetStats) string {
		return fmt.Sprintf("%s %s %g per %v (%s)", name, b.Shape, b.Limit, fmtDur(b.Window), b.Source)
	}
	parts := []string{budget("requests", s.Requests)}
	if s.Audio.Source != "none" {
		parts = append(parts, budget("audio seconds", s.Audio))
	}
	note := strings.Join(parts, ", ") + fmt.Sprintf("; pauses after 429s: %d", s.Pauses)
	if s.Spread {
		note += fmt.Sprintf("; spread at %.3g/s", s.Pace)
	}
	return note
}

// runXrate is a golang.org/x/time/rate limiter told the exact budget: rate
// budget per window and a burst of the whole budget (a bucket that starts
// full, like the server's), with sc.inFlight requests in flight. A 429 is
// sent again after the time its retry-after-ms (else retry-after) asks
// for, waiting on the limiter again.
func runXrate(ctx context.Context, sc *scenario, u *uploader) (string, error) {
	lim := rate.NewLimiter(rate.Limit(float64(sc.budget)/sc.window.Seconds()), sc.budget)
	c := &http.Client{Transport: u.base}
	sem := make(chan struct{}, sc.inFlight)
	b := newBatch(ctx)
	for range sc.requests {
		b.goDo(func(ctx context.Context) error {
			if err := acquire(ctx, sem); err != nil {
				return err
			}
			defer func() { <-sem }()
			for {
				if err := lim.Wait(ctx); err != nil {
					return err
				}
				status, h, err := u.post(ctx, c)
				if err != nil || status == http.StatusOK {
					return err
				}
				if err := sleep(ctx, retryAfter(h)); err != nil {
					return err
				}
			}
		})
	}
	return "", b.wait()
}

// runAllAtOnce is the naive client: no limiter, a semaphore of
// sc.inFlight, and a 429 sent again as soon as the time its retry-after
// header gives (whole seconds) has passed, holding its slot meanwhile.
func runAllAtOnce(ctx context.Context, sc *scenario, u *uploader) (string, error) {
	c := &http.Client{Transport: u.base}
	sem := make(chan struct{}, sc.inFlight)
	b := newBatch(ctx)
	for range sc.requests {
		b.goDo(func(ctx context.Context) error {
			if err := acquire(ctx, sem); err != nil {
				return err
			}
			defer func() { <-sem }()
			for {
				status, h, err := u.post(ctx, c)
				if err != nil || status == http.StatusOK {
					return err
				}
				if err := sleep(ctx, retryAfterSeconds(h)); err != nil {
					return err
				}
			}
		})
	}
	return "", b.wait()
}

// runPlain is the standard library's client with nothing but a semaphore
// of sc.inFlight: the reference of a server whose limit does not bind. It
// handles a 429 as all-at-once does.
func runPlain(ctx context.Context, sc *scenario, u *uploader) (string, error) {
	return runAllAtOnce(ctx, sc, u)
}

// runForum is the pattern forum answers suggest: a semaphore of
// sc.inFlight, and a worker that sleeps 5 s (scaled) when the headers say
// less than 10 % of the budget remains, or after a 429 before sending the
// request again.
func runForum(ctx context.Context, sc *scenario, u *uploader) (string, error) {
	pause := sc.scaled(5 * time.Second)
	c := &http.Client{Transport: u.base}
	sem := make(chan struct{}, sc.inFlight)
	b := newBatch(ctx)
	for range sc.requests {
		b.goDo(func(ctx context.Context) error {
			if err := acquire(ctx, sem); err != nil {
				return err
			}
			defer func() { <-sem }()
			for {
				status, h, err := u.post(ctx, c)
				if err != nil {
					return err
				}
				if status == http.StatusTooManyRequests {
					if err := sleep(ctx, pause); err != nil {
						return err
					}
					continue
				}
				limit, err1 := strconv.Atoi(h.Get("x-ratelimit-limit-requests"))
				remaining, err2 := strconv.Atoi(h.Get("x-ratelimit-remaining-requests"))
				if err1 == nil && err2 == nil && remaining*10 < limit {
					return sleep(ctx, pause)
				}
				return nil
			}
		})
	}
	return "", b.wait()
}

// runCookbook is the loop of OpenAI cookbook's
// api_request_parallel_processor.py: one dispatcher takes the next request
// (a 429'd one to retry first), waits until 15 s (scaled) have passed since
// the last 429 and for a request's worth of capacity in a bucket that
// holds a full budget and refills at the budget per window, polling every
// millisecond as the cookbook does, and sends it. Here it also waits for
// one of sc.inFlight slots in flight.
func runCookbook(ctx context.Context, sc *scenario, u *uploader) (string, error) {
	const poll = time.Millisecond // the cookbook's seconds_to_sleep_each_loop
	cooldown := sc.scaled(15 * time.Second)
	c := &http.Client{Transport: u.base}
	capacity := &bucket{size: float64(sc.budget), window: sc.window}

	var mu sync.Mutex
	var lastLimited time.Time // the last 429's arrival, guarded by mu
	retries := make(chan struct{}, sc.requests)
	answered := make(chan struct{}, sc.requests)
	slots := make(chan struct{}, sc.inFlight)
	b := newBatch(ctx)
	ctx = b.ctx
	fresh, pending := sc.requests, sc.requests
dispatch:
	for pending > 0 {
		// The next request: a retry first, else a fresh one, else wait
		// for one in flight to be retried or answered.
		select {
		case <-retries:
		default:
			if fresh > 0 {
				fresh--
				break
			}
			select {
			case <-retries:
			case <-answered:
				pending--
				continue dispatch
			case <-ctx.Done():
				break dispatch
			}
		}
		if err := acquire(ctx, slots); err != nil {
			break dispatch
		}
		for {
			now := time.Now()
			mu.Lock()
			resume := lastLimited.Add(cooldown)
			mu.Unlock()
			var err error
			if now.Before(resume) {
				err = sleep(ctx, resume.Sub(now))
			} else if capacity.take(now) {
				break
			} else {
				err = sleep(ctx, poll)
			}
			if err != nil {
				break dispatch
			}
		}
		b.goDo(func(ctx context.Context) error {
			defer func() { <-slots }()
			status, _, err := u.post(ctx, c)
			switch {
			case err != nil:
				return err
			case status == http.StatusTooManyRequests:
				mu.Lock()
				lastLimited = time.Now()
				mu.Unlock()
				retries <- struct{}{}
			default:
				answered <- struct{}{}
			}
			return nil
		})
	}
	return "", b.wait()
}

// bucket is the cookbook's request capacity: it starts full, holds up to
// size and refills continuously at size per window.
type bucket struct {
	size   float64
	window time.Duration
	avail  float64
	last   time.Time // zero until the first take
}

// take spends one request of capacity at now, if there is one.
func (b *bucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.avail = b.size
	} else {
		b.avail = min(b.size, b.avail+b.size*now.Sub(b.last).Seconds()/b.window.Seconds())
	}
	b.last = now
	if b.avail < 1 {
		return false
	}
	b.avail--
	return true
}

// runOpenAIGo is github.com/openai/openai-go/v3 with its defaults, as a
// user would write it: a semaphore of sc.inFlight, and in each slot one
// call of Audio.Transcriptions.New. The SDK retries a 429 twice, after
// the wait its retry-after-ms (else retry-after) asks for, else its own
// backoff (0.5 s × 2ⁿ less up to 25 % of jitter), and then returns the
// 429 as an error: the upload is failed (uploader.giveUp), and the run
// goes on. Its answers pass through checkingTransport, which checks and
// counts them as the other contenders' are.
func runOpenAIGo(ctx context.Context, sc *scenario, u *uploader) (string, error) {
	c := openai.NewClient(
		option.WithBaseURL(strings.TrimSuffix(u.url, "/audio/transcriptions")+"/"),
		option.WithAPIKey(apiKey),
		option.WithHTTPClient(&http.Client{Transport: checkingTransport{u: u, base: u.base}}),
	)
	sem := make(chan struct{}, sc.inFlight)
	b := newBatch(ctx)
	for range sc.requests {
		b.goDo(func(ctx context.Context) error {
			if err := acquire(ctx, sem); err != nil {
				return err
			}
			defer func() { <-sem }()
			t, err := c.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
				File:           openai.File(bytes.NewReader(u.clip), "clip.wav", "audio/wav"),
				Model:          openai.AudioModel("whisper-1"),
				ResponseFormat: openai.AudioResponseFormatVerboseJSON,
			})
			var ae *openai.Error
			switch {
			case errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests:
				u.giveUp()
				return nil
			case err != nil:
				return err
			case t.Text == "" || math.Abs(t.Duration-u.seconds) > 0.01:
				return fmt.Errorf("openai-go returned %q, %v s: not the clip's transcript", t.Text, t.Duration)
			}
			return nil
		})
	}
	return "", b.wait()
}
