// Package ratelimit keeps many concurrent requests to a rate-limited API
// within its budget: it spends the whole budget and never trips it.
//
// # The model
//
// A Limiter guards one account's budgets: requests, tokens and audio seconds,
// each "N per window". A request first takes one of at most MaxInFlight
// slots, then waits for its share of every budget, then for the end of any
// shared pause; Acquire does all three and returns a Permit. When the answer
// arrives, Permit.Done hands it back, and that is how the limiter learns.
// Most callers use Acquire and Done around each request, or wrap an HTTP
// client with Transport, which does it for them.
//
// Budgets are paced, not burst: a budget of N per window W lets one request
// through every W/N (slightly more: 1 % is left for jitter), so no window of
// length W ever sees more than N, and over time 99 % of them are used. Pacing is a golang.org/x/time/rate token bucket of
// burst 1 (larger for a single cost above 1).
//
// # Where the numbers come from
//
// Configured limits (Config.Requests, say 50 per minute) are where the
// limiter starts; the server's headers correct them. OpenAI-style servers
// send, for requests and for tokens, the budget's size, what is left, and the
// time until it is whole again (x-ratelimit-limit-requests: 50,
// -remaining-requests: 49, -reset-requests: 1.2s). For a budget that refills
// continuously, the refill rate is (limit − remaining) / reset, so the
// window is
//
//	window = reset × limit / (limit − remaining)
//
// and the limiter need not be told whether a budget counts per minute
// (OpenAI) or per day (Groq's request budget, while its tokens count per
// minute). Remaining counts are whole numbers, so each response bounds the
// window from below and, unless only one is missing, from above; the limiter
// intersects the bounds of all responses and picks the common window (1 s,
// 10 s, 1 min, 1 h, 1 day) within them, allowing 25 % for the rounding of
// reset times. A window that fits none of them is paced at its upper bound.
//
// When a response says fewer requests remain than are already in flight,
// new requests are held until enough of the budget has refilled. A 429
// rate_limit_exceeded pauses every caller of the limiter, not just the one
// that got it, until the time the server gave (retry-after-ms, retry-after,
// else the reset), or else a backoff that grows with repeated 429s; 429s
// answering requests sent before the pause began extend it to the latest
// time asked for but do not add up. A 429 insufficient_quota is not a rate
// limit: Done with an error matching ErrQuotaExceeded changes nothing, and
// the caller should stop.
//
// Servers that send no x-ratelimit headers (self-hosted servers, many
// gateways) get an adaptive rate in the manner of the AWS SDK's adaptive
// retry mode: unrestricted until the first throttle (429 or 503), then cut to
// 0.7 × the measured rate of successes and grown back along a cubic curve,
// never above twice that rate. With no limit configured, the limiter also starts
// cautiously, one request in flight, and opens to MaxInFlight when the first
// answer arrives.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/steno-go/steno/internal/ratehdr"
	"golang.org/x/time/rate"
)

// Defaults of a Limiter.
const (
	// DefaultMaxInFlight is how many requests may be in flight at once
	// when Config.MaxInFlight is 0.
	DefaultMaxInFlight = 8
	// DefaultMaxPause caps any single pause or hold read from a server's
	// headers when Config.MaxPause is 0.
	DefaultMaxPause = 2 * time.Minute
)

// Backoff for 429s that say nothing about when to come back.
const (
	throttleBackoffBase = 500 * time.Millisecond
	throttleBackoffMax  = 30 * time.Second
)

// ErrQuotaExceeded is the error for a 429 insufficient_quota: the account
// has no credit left. It is not a rate limit and is never waited out. Pass
// an error matching it to Permit.Done (transcribe's APIError does) so the
// limiter does not take it for one.
var ErrQuotaExceeded = errors.New("quota exceeded")

// Limit is a budget of N per Per, e.g. {50, time.Minute}.
type Limit struct {
	N   float64
	Per time.Duration
}

// Config configures a Limiter. The zero Config learns everything from the
// server and allows DefaultMaxInFlight requests in flight.
type Config struct {
	// MaxInFlight bounds the requests in flight at once; 0 means
	// DefaultMaxInFlight.
	MaxInFlight int
	// Requests, Tokens and AudioSeconds are budgets to start from. The
	// zero Limit means unknown: requests and tokens are then learned from
	// the server's headers; audio seconds (which no header reports) are
	// not limited.
	Requests, Tokens, AudioSeconds Limit
	// MaxPause caps any pause or hold taken on a server's word; 0 means
	// DefaultMaxPause.
	MaxPause time.Duration
	// Logger receives a line for each pause and each limit learned; nil
	// logs nothing.
	Logger *slog.Logger
}

// Cost is what one request spends beyond the request itself.
type Cost struct {
	Tokens       float64 // counted against the tokens budget
	AudioSeconds float64 // counted against the audio-seconds budget
}

// Limiter paces requests to one account's budgets. It is safe for
// concurrent use; share one among every client that spends the same budget.
type Limiter struct {
	slots       *semaphore.Weighted // in flight
	turn        *semaphore.Weighted // of size 1: whose turn it is to take from the budgets
	maxInFlight int
	maxPause    time.Duration
	log         *slog.Logger

	mu                      sync.Mutex
	held                    int64 // slots kept back during the cautious start
	inFlight                int
	requests, tokens, audio *budget
	adaptive                *cubic // nil until the first throttle of a server without headers
	meter                   meter
	pauseUntil, pauseStart  time.Time
	backoff                 int           // throttles without a server's word since the last success
	changed                 chan struct{} // closed (and replaced) when the pace changes or a pause begins
	pauses, holds, limited  int
	throttles               int
}

// New returns a Limiter configured by cfg, or an error for a negative or
// incomplete setting.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxInFlight < 0 || cfg.MaxPause < 0 {
		return nil, fmt.Errorf("ratelimit: negative MaxInFlight (%d) or MaxPause (%v)", cfg.MaxInFlight, cfg.MaxPause)
	}
	for name, l := range map[string]Limit{"Requests": cfg.Requests, "Tokens": cfg.Tokens, "AudioSeconds": cfg.AudioSeconds} {
		if l.N < 0 || math.IsNaN(l.N) || math.IsInf(l.N, 0) || (l.N > 0 && l.Per <= 0) {
			return nil, fmt.Errorf("ratelimit: %s limit %v per %v: want a positive number per positive duration", name, l.N, l.Per)
		}
	}
	l := &Limiter{
		changed:     make(chan struct{}),
		maxInFlight: cmpOr(cfg.MaxInFlight, DefaultMaxInFlight),
		maxPause:    cmpOr(cfg.MaxPause, DefaultMaxPause),
		log:         cfg.Logger,
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	now := time.Now()
	l.requests = newBudget("requests", cfg.Requests, now)
	l.tokens = newBudget("tokens", cfg.Tokens, now)
	l.audio = newBudget("audio seconds", cfg.AudioSeconds, now)
	l.slots = semaphore.NewWeighted(int64(l.maxInFlight))
	l.turn = semaphore.NewWeighted(1)
	if cfg.Requests.N == 0 && l.maxInFlight > 1 {
		l.held = int64(l.maxInFlight - 1)
		l.slots.TryAcquire(l.held)
	}
	return l, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ErrWouldExceedDeadline is returned (wrapped, matching
// context.DeadlineExceeded too) by Acquire when the wait would outlast the
// context's deadline.
var ErrWouldExceedDeadline = fmt.Errorf("ratelimit: wait would exceed the context deadline: %w", context.DeadlineExceeded)

// A Permit is one request's right to be sent. Call Done exactly once, with
// what came back, when the request is over.
type Permit struct {
	l      *Limiter
	sentAt time.Time
	once   sync.Once
}

// Acquire waits until a request costing cost may be sent: for a free slot
// among MaxInFlight, for its share of every budget, and for the end of any
// shared pause. It returns at once with the context's error when ctx is done
// while waiting, and with ErrWouldExceedDeadline when the wait is known to
// outlast ctx's deadline; either way it gives back what it took.
func (l *Limiter) Acquire(ctx context.Context, cost Cost) (*Permit, error) {
	if !(cost.Tokens >= 0) || !(cost.AudioSeconds >= 0) || math.IsInf(cost.Tokens, 0) || math.IsInf(cost.AudioSeconds, 0) {
		return nil, fmt.Errorf("ratelimit: invalid cost %+v", cost)
	}
	if err := l.slots.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	// One request at a time takes its turn from the budgets, in order of
	// arrival: a turn taken is then always the latest, so giving it back
	// when the pace changes restores the budgets exactly.
	if err := l.turn.Acquire(ctx, 1); err != nil {
		l.slots.Release(1)
		return nil, err
	}
	defer l.turn.Release(1)
	for {
		if err := l.waitPause(ctx); err != nil {
			l.slots.Release(1)
			return nil, err
		}
		delay, changed, cancel, err := l.reserve(ctx, cost)
		woken := false
		if err == nil {
			woken, err = sleepUnless(ctx, delay, changed)
		}
		if err != nil {
			cancel()
			l.slots.Release(1)
			return nil, err
		}
		l.mu.Lock()
		now := time.Now()
		if woken || l.pauseUntil.After(now) {
			// The pace changed or a pause began: the turn taken
			// at the old pace is given back and taken anew.
			l.mu.Unlock()
			cancel()
			continue
		}
		l.inFlight++
		l.mu.Unlock()
		return &Permit{l: l, sentAt: now}, nil
	}
}

// waitPause returns when no pause is in force.
func (l *Limiter) waitPause(ctx context.Context) error {
	for {
		l.mu.Lock()
		until := l.pauseUntil
		l.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && until.After(dl) {
			return ErrWouldExceedDeadline
		}
		if _, err := sleepUnless(ctx, d, nil); err != nil {
			return err
		}
	}
}

// reserve takes cost from every budget and returns how long until all of
// them allow it, a channel closed if the pace changes meanwhile, and a func
// that gives the cost back.
func (l *Limiter) reserve(ctx context.Context, cost Cost) (time.Duration, <-chan struct{}, func(), error) {
	now := time.Now()
	l.mu.Lock()
	changed := l.changed
	var taken []*rate.Reservation
	var delay time.Duration
	for _, c := range []struct {
		b *budget
		n float64
	}{{l.requests, 1}, {l.tokens, cost.Tokens}, {l.audio, cost.AudioSeconds}} {
		if c.n == 0 {
			continue
		}
		r := c.b.reserve(now, int(math.Ceil(c.n)))
		taken = append(taken, r)
		delay = max(delay, r.DelayFrom(now))
	}
	l.mu.Unlock()
	cancel := func() {
		t := time.Now()
		for _, r := range taken {
			r.CancelAt(t)
		}
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(delay).After(dl) {
		return 0, nil, cancel, ErrWouldExceedDeadline
	}
	return delay, changed, cancel, nil
}

// sleepUnless waits d, unless ctx is done (an error) or wake is closed
// first (woken).
func sleepUnless(ctx context.Context, d time.Duration, wake <-chan struct{}) (woken bool, err error) {
	if d <= 0 {
		return false, context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false, nil
	case <-wake:
		return true, nil
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}

// wake tells the requests waiting for their turn that the pace changed or
// a pause began, so that they take their turn anew. l.mu is held.
func (l *Limiter) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Done reports how the request went: its response (nil when none came) and
// its error. For a 429, err tells a rate limit from an exhausted quota: an
// error matching ErrQuotaExceeded is the latter. Done frees the request's
// slot and learns from the response's headers and status; calls after the
// first do nothing.
func (p *Permit) Done(resp *http.Response, err error) {
	p.once.Do(func() {
		p.l.observe(p, resp, err)
		p.l.slots.Release(1)
	})
}

// observe learns from one answer.
func (l *Limiter) observe(p *Permit, resp *http.Response, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if resp == nil {
		return // a connection error says nothing about the budget
	}
	if l.held > 0 { // the cautious start is over
		l.slots.Release(l.held)
		l.held = 0
	}
	if resp.StatusCode < 400 {
		l.meter.record(now)
	}
	h := resp.Header
	if r, ok := ratehdr.ParseReport(h, ratehdr.HeaderLimitRequests, ratehdr.HeaderRemainingRequests, ratehdr.HeaderResetRequests); ok {
		l.learn(l.requests, r, now)
		l.adaptive = nil
		if r.Remaining <= float64(l.inFlight) && resp.StatusCode != http.StatusTooManyRequests {
			// Fewer left than already on their way: hold the
			// rest until enough has refilled.
			l.hold(now, l.requests.refillTime(float64(l.inFlight)+1-r.Remaining, r.Reset), false)
		}
	}
	if r, ok := ratehdr.ParseReport(h, ratehdr.HeaderLimitTokens, ratehdr.HeaderRemainingTokens, ratehdr.HeaderResetTokens); ok {
		l.learn(l.tokens, r, now)
	}

	switch status := resp.StatusCode; {
	case status == http.StatusTooManyRequests && errors.Is(err, ErrQuotaExceeded):
		// Not a rate limit: the caller stops.
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		if status == http.StatusTooManyRequests {
			l.limited++
		}
		l.throttles++
		wait, said := ratehdr.RetryAfter(h, now)
		if !said && status == http.StatusTooManyRequests {
			if r, ok := ratehdr.ParseReport(h, ratehdr.HeaderLimitRequests, ratehdr.HeaderRemainingRequests, ratehdr.HeaderResetRequests); ok && r.Remaining < 1 {
				wait, said = l.requests.refillTime(1, r.Reset), true
			}
		}
		echo := p.sentAt.Before(l.pauseStart) // sent before the pause in force began
		if !said && status == http.StatusTooManyRequests {
			if !echo {
				l.backoff++
			}
			wait = min(throttleBackoffMax, throttleBackoffBase<<min(l.backoff-1, 10))
		}
		if wait > 0 {
			l.hold(now, wait, true)
		}
		if l.requests.source == sourceNone || l.requests.source == sourceAdaptive {
			l.adapt(now, p.sentAt, true)
		}
	case status < 400:
		l.backoff = 0
		if l.adaptive != nil {
			l.adapt(now, p.sentAt, false)
		}
	}
}

// hold stops new requests until now+d (capped at MaxPause); a pause (after
// a throttle) is counted apart from a hold (a budget about to run out).
// Holds never shorten one in force.
func (l *Limiter) hold(now time.Time, d time.Duration, pause bool) {
	until := now.Add(min(d, l.maxPause))
	if !until.After(l.pauseUntil) {
		return
	}
	if !l.pauseUntil.After(now) {
		l.pauseStart = now
		if pause {
			l.pauses++
		} else {
			l.holds++
		}
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: holding new requests",
			slog.Bool("throttled", pause), slog.Duration("for", until.Sub(now)))
	}
	l.pauseUntil = until
	l.wake()
}

// learn applies a report to b, logging what changed.
func (l *Limiter) learn(b *budget, r ratehdr.Report, now time.Time) {
	limit, window := b.limit, b.window
	b.observe(r, now)
	if b.limit != limit || b.window != window {
		l.wake()
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: learned "+b.name+" budget",
			slog.Float64("limit", b.limit), slog.Duration("window", b.window))
	}
}

// adapt moves the adaptive rate after a throttle or a success of a request
// sent at sentAt. A throttle of a request sent before the last cut is the
// echo of what caused that cut, and does not cut again.
func (l *Limiter) adapt(now, sentAt time.Time, throttled bool) {
	measured := l.meter.estimate(now)
	if l.adaptive == nil {
		if !throttled || measured == 0 {
			return // no rate measured yet to cut from: backoffs and pauses do
		}
		l.adaptive = &cubic{}
	}
	var r float64
	if throttled {
		if sentAt.Before(l.adaptive.lastThrottle) {
			return
		}
		r = l.adaptive.throttle(now, measured, l.requests.rate())
	} else {
		r = l.adaptive.success(now, measured)
	}
	if old := l.requests.rate(); math.IsInf(old, 1) || math.Abs(r-old) > 0.1*old {
		l.wake() // small steps wait for the next turn
	}
	l.requests.setRate(now, r, sourceAdaptive)
}

// Stats is a snapshot of a Limiter, for logs and progress displays.
type Stats struct {
	InFlight    int // requests between Acquire and Done
	MaxInFlight int // the current bound on InFlight (lower during the cautious start)
	Requests    BudgetStats
	Tokens      BudgetStats
	Audio       BudgetStats
	PausedUntil time.Time // zero or past when no pause is in force
	Pauses      int       // shared pauses begun after a throttle
	Holds       int       // holds begun because a budget was about to run out
	RateLimited int       // 429 rate_limit_exceeded answers seen (quota errors excluded)
	Throttles   int       // 429s and 503s seen
}

// BudgetStats describes one budget.
type BudgetStats struct {
	Source    string        // "none", "configured", "learned" (from headers) or "adaptive" (no headers)
	Limit     float64       // per Window; 0 when unknown
	Window    time.Duration // 0 when unknown
	Rate      float64       // per second, as paced now; +Inf when unlimited
	Remaining float64       // as the server last reported; -1 when it never did
}

// Snapshot returns the limiter's current state.
func (l *Limiter) Snapshot() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{
		InFlight: l.inFlight, MaxInFlight: l.maxInFlight - int(l.held),
		Requests: l.requests.stats(), Tokens: l.tokens.stats(), Audio: l.audio.stats(),
		Pauses: l.pauses, Holds: l.holds, RateLimited: l.limited, Throttles: l.throttles,
	}
	if l.pauseUntil.After(time.Now()) {
		s.PausedUntil = l.pauseUntil
	}
	return s
}
