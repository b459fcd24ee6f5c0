package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/steno-go/steno/internal/ratehdr"
)

// Defaults of a Limiter.
const (
	// DefaultMaxInFlight is how many requests may be in flight at once
	// when Config.MaxInFlight is 0: enough that a budget of 50 requests a
	// minute is spent at once, not the bound.
	DefaultMaxInFlight = 64
	// DefaultMaxPause caps any wait that a server's word alone imposes (a
	// pause after a 429, a reset, a learned budget's refill) when
	// Config.MaxPause is 0.
	DefaultMaxPause = 2 * time.Minute
)

// Backoff for 429s that say nothing about when to come back.
const (
	throttleBackoffBase = 500 * time.Millisecond
	throttleBackoffMax  = 30 * time.Second
)

// paceMargin is the share of a budget's rate that even spreading paces at:
// 1 % is left for the jitter of clocks and networks.
const paceMargin = 0.99

// ErrQuotaExceeded is the error for a 429 insufficient_quota: the account
// has no credit left. It is not a rate limit and is never waited out. Pass
// an error matching it to Permit.Done (transcribe's APIError does) so the
// limiter does not take it for one.
var ErrQuotaExceeded = errors.New("quota exceeded")

// ErrWouldExceedDeadline is returned (wrapped, matching
// context.DeadlineExceeded too) by Acquire when the wait is known to
// outlast the context's deadline.
var ErrWouldExceedDeadline = fmt.Errorf("ratelimit: wait would exceed the context deadline: %w", context.DeadlineExceeded)

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
	// Requests, Tokens and AudioSeconds are budgets to start from, whole
	// at the start and refilling continuously (a token bucket of N that
	// refills N per Per). The zero Limit means unknown: requests and tokens
	// are then learned from the server's headers, audio seconds from its
	// 429 messages. The server's reports correct a configured budget's
	// size, level and shape; waits from a configured budget are not capped
	// by MaxPause.
	Requests, Tokens, AudioSeconds Limit
	// MaxPause caps any wait that the server's word alone imposes; 0
	// means DefaultMaxPause.
	MaxPause time.Duration
	// Spread paces requests evenly at the requests budget's rate from
	// the start, for a server known to refuse bursts that its budget
	// allows. Without it, the limiter spreads only once the server has
	// shown that (see the package doc).
	Spread bool
	// Logger receives a line for each pause, each budget learned and
	// each change of model; nil logs nothing.
	Logger *slog.Logger
}

// Cost is what one request spends beyond the request itself.
type Cost struct {
	Tokens       float64 // counted against the tokens budget
	AudioSeconds float64 // counted against the audio-seconds budget
}

// Indexes of the budgets.
const (
	bRequests = iota
	bTokens
	bAudio
	nBudgets
)

type costs [nBudgets]float64

func (c Cost) costs() costs { return costs{1, c.Tokens, c.AudioSeconds} }

func (c costs) add(d costs) costs {
	for i := range c {
		c[i] += d[i]
	}
	return c
}

// Limiter keeps requests within one account's budgets. It is safe for
// concurrent use; share one among every client that spends the same budget.
type Limiter struct {
	maxInFlight int
	maxPause    time.Duration
	log         *slog.Logger

	mu         sync.Mutex
	budgets    [nBudgets]*mirror
	inFlight   int
	queue      []*waiter
	timer      *time.Timer // runs dispatch when the head of the queue may go
	timerAt    time.Time
	pace       *rate.Limiter // even spacing of requests; nil: bursts allowed
	spread     bool          // configured, or the server refused a burst its budget allowed
	adaptive   *cubic        // nil until the first throttle of a server without headers
	meter      meter
	pauseUntil time.Time
	pauseStart time.Time
	backoff    int // throttles without a server's word since the last success
	pauses     int
	limited    int
	throttles  int
}

// New returns a Limiter configured by cfg, or an error for a negative or
// incomplete setting.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxInFlight < 0 || cfg.MaxPause < 0 {
		return nil, fmt.Errorf("ratelimit: negative MaxInFlight (%d) or MaxPause (%v)", cfg.MaxInFlight, cfg.MaxPause)
	}
	for _, c := range []struct {
		name string
		l    Limit
	}{{"Requests", cfg.Requests}, {"Tokens", cfg.Tokens}, {"AudioSeconds", cfg.AudioSeconds}} {
		if c.l.N < 0 || math.IsNaN(c.l.N) || math.IsInf(c.l.N, 0) || c.l.Per < 0 || (c.l.N > 0) != (c.l.Per > 0) {
			return nil, fmt.Errorf("ratelimit: %s limit %v per %v: want a positive number per positive duration", c.name, c.l.N, c.l.Per)
		}
	}
	l := &Limiter{
		maxInFlight: cmpOr(cfg.MaxInFlight, DefaultMaxInFlight),
		maxPause:    cmpOr(cfg.MaxPause, DefaultMaxPause),
		log:         cfg.Logger,
		spread:      cfg.Spread,
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	now := time.Now()
	l.budgets[bRequests] = newMirror("requests", cfg.Requests, now)
	l.budgets[bTokens] = newMirror("tokens", cfg.Tokens, now)
	l.budgets[bAudio] = newMirror("audio seconds", cfg.AudioSeconds, now)
	l.updatePace(now)
	return l, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// A waiter is a call of Acquire in the queue.
type waiter struct {
	cost     costs
	deadline time.Time // zero: none
	ready    chan struct{}
	permit   *Permit // set, or err, when ready is closed
	err      error
}

// A Permit is one request's right to be sent. Call Done exactly once, with
// what came back, when the request is over (or Cancel if it was never
// sent).
type Permit struct {
	l      *Limiter
	cost   costs
	sentAt time.Time
	paced  *rate.Reservation
	ended  bool // Done or Cancel called; guarded by l.mu
}

// Acquire waits until a request costing cost may be sent: for a free slot
// among MaxInFlight, for every budget to allow it, for the end of any
// shared pause, and for its turn: callers are served in the order they
// arrived. It returns at once with ErrWouldExceedDeadline when the wait is
// known to outlast ctx's deadline (counting the callers ahead of it), and
// with the context's error when ctx is done while waiting; either way it
// gives back what it took.
func (l *Limiter) Acquire(ctx context.Context, cost Cost) (*Permit, error) {
	if !(cost.Tokens >= 0) || !(cost.AudioSeconds >= 0) || math.IsInf(cost.Tokens, 0) || math.IsInf(cost.AudioSeconds, 0) {
		return nil, fmt.Errorf("ratelimit: invalid cost %+v", cost)
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	w := &waiter{cost: cost.costs(), ready: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		w.deadline = dl
	}
	l.mu.Lock()
	l.queue = append(l.queue, w)
	l.dispatch(time.Now())
	l.mu.Unlock()
	select {
	case <-w.ready:
		return w.permit, w.err
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.queue, w); i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
	} else if w.permit != nil {
		l.cancel(w.permit)
	}
	l.dispatch(time.Now())
	return nil, context.Cause(ctx)
}

// dispatch grants what may go now, in order, fails the waiters whose
// deadline the wait would pass, and sets the timer for the next grant.
// l.mu is held.
func (l *Limiter) dispatch(now time.Time) {
	for len(l.queue) > 0 && l.inFlight < l.maxInFlight {
		w := l.queue[0]
		if d, _ := l.delay(now, w.cost, 1); d > 0 {
			break
		}
		l.queue = l.queue[1:]
		l.grant(now, w)
	}
	l.failLate(now)
	l.schedule(now)
}

// delay returns how long from now until the budgets, the pacer and any
// pause allow cost (n requests' worth, for the pacer), and whether that is
// known: false when it waits for an answer to come back.
func (l *Limiter) delay(now time.Time, cost costs, n int) (time.Duration, bool) {
	d := max(0, l.pauseUntil.Sub(now))
	busy := l.inFlight > 0
	for i, m := range l.budgets {
		md, ok := m.wait(now, cost[i], busy)
		if !ok {
			return d, false
		}
		d = max(d, md)
	}
	if l.pace != nil && n > 0 {
		need := float64(n) - l.pace.TokensAt(now.Add(d))
		if need > 0 {
			d += time.Duration(math.Ceil(need / float64(l.pace.Limit()) * float64(time.Second)))
		}
	}
	return d, true
}

// grant gives w its permit. l.mu is held.
func (l *Limiter) grant(now time.Time, w *waiter) {
	p := &Permit{l: l, cost: w.cost, sentAt: now}
	for i, m := range l.budgets {
		m.take(now, w.cost[i])
	}
	if l.pace != nil {
		p.paced = l.pace.ReserveN(now, 1)
	}
	l.inFlight++
	w.permit = p
	close(w.ready)
}

// failLate fails at once every waiter whose deadline its turn would pass,
// counting the costs of those ahead of it. l.mu is held.
func (l *Limiter) failLate(now time.Time) {
	var ahead costs
	kept := l.queue[:0]
	for i, w := range l.queue {
		upTo := ahead.add(w.cost)
		if !w.deadline.IsZero() {
			if d, ok := l.estimate(now, upTo, i+1); ok && now.Add(d).After(w.deadline) {
				w.err = ErrWouldExceedDeadline
				close(w.ready)
				continue
			}
		}
		ahead = upTo
		kept = append(kept, w)
	}
	clear(l.queue[len(kept):])
	l.queue = kept
}

// estimate returns how long until the costs of n requests may all have been
// spent, as far as the budgets, the pacer and the pause tell.
func (l *Limiter) estimate(now time.Time, cost costs, n int) (time.Duration, bool) {
	d := max(0, l.pauseUntil.Sub(now))
	for i, m := range l.budgets {
		md, ok := m.estimate(now, cost[i])
		if !ok {
			return 0, false
		}
		d = max(d, md)
	}
	if l.pace != nil {
		if need := float64(n) - l.pace.TokensAt(now); need > 0 {
			d = max(d, time.Duration(need/float64(l.pace.Limit())*float64(time.Second)))
		}
	}
	return d, true
}

// schedule sets the timer for when the head of the queue may go, if the
// time is known. l.mu is held.
func (l *Limiter) schedule(now time.Time) {
	var at time.Time
	if len(l.queue) > 0 && l.inFlight < l.maxInFlight {
		if d, ok := l.delay(now, l.queue[0].cost, 1); ok && d > 0 {
			at = now.Add(d)
		}
	}
	if at.Equal(l.timerAt) {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.timerAt = at
	if !at.IsZero() {
		l.timer = time.AfterFunc(at.Sub(now), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.timerAt = time.Time{}
			l.timer = nil
			l.dispatch(time.Now())
		})
	}
}

// Cancel gives back a permit whose request was never sent: its share of
// every budget returns. Calls after Done or Cancel do nothing.
func (p *Permit) Cancel() {
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.ended {
		return
	}
	l.cancel(p)
	l.dispatch(time.Now())
}

// cancel gives back p. l.mu is held.
func (l *Limiter) cancel(p *Permit) {
	now := time.Now()
	p.ended = true
	l.inFlight--
	for i, m := range l.budgets {
		m.giveBack(now, p.cost[i])
	}
	if p.paced != nil {
		p.paced.CancelAt(now)
	}
}

// Settle records what the request actually cost, when the answer says (its
// usage), so that the budgets are charged that instead of the estimate
// given to Acquire. Call it before Done; calls after do nothing.
func (p *Permit) Settle(actual Cost) {
	if !(actual.Tokens >= 0) || !(actual.AudioSeconds >= 0) || math.IsInf(actual.Tokens, 0) || math.IsInf(actual.AudioSeconds, 0) {
		return
	}
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.ended {
		return
	}
	now := time.Now()
	c := actual.costs()
	for i, m := range l.budgets {
		m.settle(now, p.cost[i], c[i])
	}
	p.cost = c
	l.dispatch(now)
}

// Done reports how the request went: its response (nil when none came) and
// its error. For a 429, err tells a rate limit from an exhausted quota (an
// error matching ErrQuotaExceeded is the latter), and err's text is read
// for the budget that the server's message names ("… on audio seconds per
// hour (ASPH): Limit 7200, Used 7134, Requested 120. Please try again in
// 1m2.5s."), which some servers report nowhere else. Done frees the
// request's slot and learns from the response's headers and status; calls
// after the first (or after Cancel) do nothing.
func (p *Permit) Done(resp *http.Response, err error) {
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	now := time.Now()
	l.inFlight--
	for i, m := range l.budgets {
		m.inFlight -= p.cost[i]
	}
	if resp != nil { // a connection error says nothing about the budget
		l.observe(p, now, resp, err)
	}
	l.dispatch(now)
}

// observe learns from one answer. l.mu is held.
func (l *Limiter) observe(p *Permit, now time.Time, resp *http.Response, err error) {
	status, h := resp.StatusCode, resp.Header
	if status < 400 {
		l.meter.record(now)
	}
	rep, hasReq := ratehdr.ParseReport(h, ratehdr.HeaderLimitRequests, ratehdr.HeaderRemainingRequests, ratehdr.HeaderResetRequests)
	if hasReq {
		l.learn(l.budgets[bRequests], rep, p.sentAt, now, p.cost[bRequests])
	}
	if r, ok := ratehdr.ParseReport(h, ratehdr.HeaderLimitTokens, ratehdr.HeaderRemainingTokens, ratehdr.HeaderResetTokens); ok {
		l.learn(l.budgets[bTokens], r, p.sentAt, now, p.cost[bTokens])
	}
	if hasReq && l.adaptive != nil {
		l.adaptive = nil // the server speaks: its numbers, not guesses
		l.updatePace(now)
	}

	if status == http.StatusTooManyRequests {
		// A refused request was not charged its tokens or audio.
		for _, i := range []int{bTokens, bAudio} {
			l.budgets[i].refund(now, p.cost[i])
		}
	}
	switch {
	case status == http.StatusTooManyRequests && errors.Is(err, ErrQuotaExceeded):
		// Not a rate limit: the caller stops.
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		l.throttled(p, now, resp, err, rep, hasReq)
	case status < 400:
		l.backoff = 0
		if l.adaptive != nil {
			l.adapt(now, p.sentAt, false)
		}
	}
}

// throttled handles a 429 rate limit or a 503: the shared pause, what the
// message says of its budget, and the models. l.mu is held.
func (l *Limiter) throttled(p *Permit, now time.Time, resp *http.Response, err error, rep ratehdr.Report, hasReq bool) {
	status, h := resp.StatusCode, resp.Header
	if status == http.StatusTooManyRequests {
		l.limited++
	}
	l.throttles++
	named := ""
	if status == http.StatusTooManyRequests && err != nil {
		if msg, ok := ratehdr.ParseLimitMessage(err.Error()); ok {
			named = msg.Budget
			if msg.Budget == "audio seconds" { // no header reports it
				l.budgets[bAudio].learnMessage(msg, now, l.maxPause)
				l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: learned "+msg.Budget+" budget from a 429",
					slog.Float64("limit", msg.Limit), slog.Float64("used", msg.Used), slog.Duration("window", msg.Window))
			}
		}
	}
	// The server refused a request although its own count says the
	// budget has room: it does not honour bursts (it enforces the budget
	// in slices). Spread requests evenly from now on.
	if status == http.StatusTooManyRequests && hasReq && rep.Remaining >= 1 && (named == "" || named == "requests") && !l.spread {
		l.spread = true
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit: the server refused a burst its budget allowed; spreading requests evenly",
			slog.Float64("remaining", rep.Remaining), slog.Float64("limit", rep.Limit))
		l.updatePace(now)
	}
	wait, said := ratehdr.RetryAfter(h, now)
	if !said && status == http.StatusTooManyRequests && hasReq && rep.Remaining < 1 && rep.Reset > 0 {
		wait, said = rep.Reset, true
	}
	echo := p.sentAt.Before(l.pauseStart) // sent before the pause in force began
	if !said && status == http.StatusTooManyRequests {
		if !echo {
			l.backoff++
		}
		wait = min(throttleBackoffMax, throttleBackoffBase<<min(max(l.backoff, 1)-1, 10))
	}
	if wait > 0 {
		l.pause(now, wait)
	}
	// Only a 429 says the rate is too high. A 503 is a server in trouble
	// (overloaded, restarting, loading a model): its retry-after pauses
	// everyone, but it does not slow the pace for good.
	if src := l.budgets[bRequests].source; status == http.StatusTooManyRequests && (src == sourceNone || src == sourceAdaptive) {
		l.adapt(now, p.sentAt, true)
	}
}

// pause stops every new request until now+d (capped at MaxPause). Pauses
// never shorten one in force. l.mu is held.
func (l *Limiter) pause(now time.Time, d time.Duration) {
	until := now.Add(min(d, l.maxPause))
	if !until.After(l.pauseUntil) {
		return
	}
	if !l.pauseUntil.After(now) {
		l.pauseStart = now
		l.pauses++
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: pausing every request after a throttle",
			slog.Duration("for", until.Sub(now)))
	}
	l.pauseUntil = until
}

// learn applies a report to m, logging what changed. l.mu is held.
func (l *Limiter) learn(m *mirror, r ratehdr.Report, sent, now time.Time, cost float64) {
	if m.observe(r, sent, now, cost, l.maxPause) {
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: learned "+m.name+" budget",
			slog.Float64("limit", m.limit), slog.String("shape", m.shape), slog.Duration("window", m.window))
	}
	if m == l.budgets[bRequests] {
		l.updatePace(now) // the window may be known better
	}
}

// updatePace sets the pacer: the adaptive rate for a server without
// headers, the requests budget's rate when spreading, else none. l.mu is
// held.
func (l *Limiter) updatePace(now time.Time) {
	r := rate.Inf
	switch m := l.budgets[bRequests]; {
	case l.adaptive != nil && !math.IsInf(l.adaptive.rate, 1):
		r = rate.Limit(l.adaptive.rate)
	case l.spread && m.known():
		if w := m.windowEstimate(); w > 0 {
			r = rate.Limit(paceMargin * m.limit / w.Seconds())
			if m.source != sourceConfigured {
				// No server's word spaces requests further apart
				// than MaxPause.
				r = max(r, rate.Limit(1/l.maxPause.Seconds()))
			}
		}
	}
	switch {
	case r == rate.Inf:
		l.pace = nil
	case l.pace == nil:
		l.pace = rate.NewLimiter(r, 1)
		l.pace.ReserveN(now, 1) // evenly from now: the last request just left
	case l.pace.Limit() != r:
		l.pace.SetLimitAt(now, r)
	}
}

// adapt moves the adaptive rate after a throttle or a success of a request
// sent at sentAt. A throttle of a request sent before the last cut is the
// echo of what caused that cut, and does not cut again. l.mu is held.
func (l *Limiter) adapt(now, sentAt time.Time, throttled bool) {
	measured := l.meter.estimate(now)
	if l.adaptive == nil {
		if !throttled || measured == 0 {
			return // no rate measured yet to cut from: backoffs and pauses do
		}
		l.adaptive = &cubic{rate: math.Inf(1)}
	}
	if throttled {
		if sentAt.Before(l.adaptive.lastThrottle) {
			return
		}
		l.adaptive.throttle(now, measured)
	} else {
		l.adaptive.success(now, measured)
	}
	l.budgets[bRequests].source = sourceAdaptive
	l.updatePace(now)
}

// Stats is a snapshot of a Limiter, for logs and progress displays.
type Stats struct {
	InFlight    int // requests between Acquire and Done
	MaxInFlight int // the bound on InFlight
	Waiting     int // callers of Acquire waiting for their turn
	Requests    BudgetStats
	Tokens      BudgetStats
	Audio       BudgetStats
	// Spread is true when requests are paced evenly instead of in bursts:
	// Config.Spread, or the server refused a request that its own count
	// said the budget allowed (it enforces the budget in slices).
	Spread      bool
	Pace        float64   // requests per second when paced evenly (spread, or the adaptive rate); +Inf otherwise
	PausedUntil time.Time // zero or past when no pause is in force
	Pauses      int       // shared pauses begun after a throttle
	RateLimited int       // 429 rate_limit_exceeded answers seen (quota errors excluded)
	Throttles   int       // 429s and 503s seen
}

// BudgetStats describes one budget as the limiter mirrors it.
type BudgetStats struct {
	// Source is where the numbers come from: "none" (not limited),
	// "configured", "learned" (from the server's headers or messages) or
	// "adaptive" (requests of a server without headers).
	Source string
	// Shape is how the budget comes back, as far as the reports tell:
	// "bucket" (continuously), "window" (fixed or sliding: whole at the
	// reset) or "unknown" (treated as a window).
	Shape     string
	Limit     float64       // the budget's size; 0 when unknown
	Window    time.Duration // a bucket's refill time, a window's length; 0 when unknown
	Available float64       // what may be spent now; +Inf when not limited
	InFlight  float64       // spent by requests not yet answered
	Remaining float64       // as the server last reported; -1 when it never did
	WholeAt   time.Time     // when the server said the budget is whole again; zero when past or unknown
}

// Snapshot returns the limiter's current state.
func (l *Limiter) Snapshot() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	s := Stats{
		InFlight: l.inFlight, MaxInFlight: l.maxInFlight, Waiting: len(l.queue),
		Requests: l.budgets[bRequests].stats(now), Tokens: l.budgets[bTokens].stats(now), Audio: l.budgets[bAudio].stats(now),
		Spread: l.spread, Pace: math.Inf(1),
		Pauses: l.pauses, RateLimited: l.limited, Throttles: l.throttles,
	}
	if l.pace != nil {
		s.Pace = float64(l.pace.Limit())
	}
	if l.pauseUntil.After(now) {
		s.PausedUntil = l.pauseUntil
	}
	return s
}
