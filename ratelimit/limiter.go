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

	// Store, when set, holds the budgets' state for every limiter that
	// names the same Store (one per account: see redisstore), across
	// processes: what the server said remains, what is in flight across
	// them all, the learned shapes, the shared pause. See Store. A fleet
	// that has never heard from the server and was told no requests
	// budget sends one request first, and learns the budget from its
	// answer, rather than every process's first burst blind at once.
	Store Store
	// StoreTimeout bounds each call of the Store; 0 means
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// FallbackShare is the share of each budget this limiter spends on its
	// own while the Store is unreachable; 0 means DefaultFallbackShare. Set
	// it to 1/N for a fleet of N processes to keep the fleet within the
	// budget while the store is down.
	FallbackShare float64
	// FailClosed makes Acquire fail with ErrStoreUnavailable while the
	// Store is unreachable, instead of limiting locally at FallbackShare.
	FailClosed bool
	// LeaseTTL is how long the permits of a limiter that stopped calling
	// the Store (a crashed process) count as in flight; 0 means
	// DefaultLeaseTTL. A live limiter renews its lease while it holds
	// permits.
	LeaseTTL time.Duration
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
// concurrent use; share one among every client that spends the same budget
// (and a Store among processes that do).
type Limiter struct {
	maxInFlight int
	maxPause    time.Duration
	log         *slog.Logger
	cfg         Config
	shared      *sharing // nil: the state is the limiter's own

	mu       sync.Mutex
	s        *state // the state a step works on: the limiter's own, or the store's (see sharing)
	inFlight int    // this limiter's permits between Acquire and Done
	freeing  int    // of them, those a step in progress gives back
	cost     costs  // what they cost
	queue    []*waiter
	held     []*Permit   // this limiter's permits between Acquire and Done, in the order granted
	granted  uint64      // permits granted so far: the next one's seq
	timer    *time.Timer // runs a step when the head of the queue may go
	timerAt  time.Time
	adaptive *cubic // nil until the first throttle of a server without headers
	meter    meter
}

// state is what a limiter knows of the account's budgets: what limiters
// sharing a Store share, saved there as JSON.
type state struct {
	Version    int
	Budgets    [nBudgets]*mirror
	InFlight   int // permits in flight, across every limiter sharing the state
	Spread     bool
	Pace       *pacer `json:",omitempty"` // even spacing of requests; nil: bursts allowed
	PauseUntil time.Time
	PauseStart time.Time
	Backoff    int // throttles without a server's word since the last success
	Pauses     int
	Limited    int
	Throttles  int
	// Heard is set once the server has answered one request: until then,
	// limiters sharing a store send one request to learn the budget.
	Heard bool
	// Leases are the permits in flight of each limiter sharing the
	// state, by its id, so that those of one that stopped renewing its
	// lease (a crashed process) can be freed.
	Leases map[string]*lease `json:",omitempty"`
	// share scales the server's reports while the state is a fallback
	// (see sharing); 0 or 1: none.
	share float64
}

// stateVersion is the Version of the state this code saves; a store
// holding another version is started afresh.
const stateVersion = 1

// newState returns the state of a limiter that knows only its
// configuration.
func newState(cfg Config, now time.Time) *state {
	s := &state{Version: stateVersion, Spread: cfg.Spread}
	s.Budgets[bRequests] = newMirror("requests", cfg.Requests, now)
	s.Budgets[bTokens] = newMirror("tokens", cfg.Tokens, now)
	s.Budgets[bAudio] = newMirror("audio seconds", cfg.AudioSeconds, now)
	s.Budgets[bAudio].refuses = true
	return s
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
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Store != nil {
		sh, err := newSharing(cfg)
		if err != nil {
			return nil, err
		}
		l.shared = sh
	}
	l.cfg = cfg
	now := time.Now()
	l.s = newState(cfg, now)
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
	seq    uint64 // its place in the order the limiter granted its permits
	paced  *rate.Reservation
	ended  bool // Done or Cancel called; guarded by l.mu
}

// Acquire waits until a request costing cost may be sent: for a free slot
// among MaxInFlight, for every budget to allow it, for the end of any
// shared pause, and for its turn: callers are served in the order they
// arrived. It returns at once with ErrWouldExceedDeadline when the wait is
// known to outlast ctx's deadline (counting the callers ahead of it), and
// with the context's error when ctx is done while waiting; either way it
// gives back what it took. With Config.FailClosed, it fails with an error
// matching ErrStoreUnavailable while the Store is unreachable.
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
	l.step(nil)
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
		l.step(nil)
	} else if w.permit != nil && !w.permit.ended {
		l.cancel(w.permit)
	}
	return nil, context.Cause(ctx)
}

// step runs event (nil: none) on the state, then grants what may go now,
// in order, fails the waiters whose deadline the wait would pass, and sets
// the timer for the next grant. With a Store, the state is the store's,
// read and saved around the step (see sharing.step), and event may run more
// than once: it changes nothing but the state. The limiter's own records
// (its permits, its queue) change after the state is saved. l.mu is held.
func (l *Limiter) step(event func(now time.Time)) {
	var d decision
	run := func(now time.Time) {
		if event != nil {
			event(now)
		}
		d = l.decide(now)
	}
	if l.shared == nil || !l.shared.step(l, run) {
		run(time.Now())
	}
	l.apply(d)
}

// decision is what a step decided for the waiters.
type decision struct {
	now    time.Time
	grants []*Permit // for the head of the queue, in order
	late   []bool    // of the rest of the queue, those to fail with err
	err    error
	at     time.Time // when the head of the queue may go; zero: unknown
}

// decide takes from the state what the head of the queue may spend now,
// in order, and finds the waiters that would wait past their deadline.
// l.mu is held.
func (l *Limiter) decide(now time.Time) decision {
	d := decision{now: now}
	if err := l.shared.closed(); err != nil {
		d.err, d.late = err, make([]bool, len(l.queue))
		for i := range d.late {
			d.late[i] = true
		}
		return d
	}
	n := l.inFlight - l.freeing
	for _, w := range l.queue {
		if n >= l.maxInFlight || l.probing() {
			break
		}
		if dl, ok := l.delay(now, w.cost, 1); !ok || dl > 0 {
			break // not yet, or not until an answer tells
		}
		d.grants = append(d.grants, l.take(now, w.cost))
		n++
	}
	rest := l.queue[len(d.grants):]
	d.err, d.late = ErrWouldExceedDeadline, make([]bool, len(rest))
	var ahead costs
	kept := 0
	for i, w := range rest {
		upTo := ahead.add(w.cost)
		if !w.deadline.IsZero() {
			if dl, ok := l.estimate(now, upTo, kept+1); ok && now.Add(dl).After(w.deadline) {
				d.late[i] = true
				continue
			}
		}
		ahead = upTo
		kept++
	}
	if i := slices.Index(d.late, false); i >= 0 && n < l.maxInFlight {
		if dl, ok := l.delay(now, rest[i].cost, 1); ok && dl > 0 {
			d.at = now.Add(dl)
		}
	}
	return d
}

// probing reports whether a limiter sharing a store waits for the first
// answer the fleet gets, to learn a requests budget nobody configured: a
// fleet's first burst, blind, would be every process's burst at once.
// l.mu is held.
func (l *Limiter) probing() bool {
	return l.shared != nil && !l.shared.down() && !l.s.Heard && l.s.InFlight > 0 && !l.s.Budgets[bRequests].known()
}

// take spends cost on the state for a new permit. l.mu is held.
func (l *Limiter) take(now time.Time, cost costs) *Permit {
	p := &Permit{l: l, cost: cost, sentAt: now}
	for i, m := range l.s.Budgets {
		m.take(now, cost[i])
	}
	if l.s.Pace != nil {
		p.paced = l.s.Pace.ReserveN(now, 1)
	}
	l.s.hold(l.shared.id(), 1, cost)
	return p
}

// apply carries out d on the limiter's own records: gives the granted
// their permits, fails the late, and sets the timer. l.mu is held.
func (l *Limiter) apply(d decision) {
	for i, p := range d.grants {
		w := l.queue[i]
		l.inFlight++
		l.cost = l.cost.add(p.cost)
		p.seq = l.granted
		l.granted++
		l.held = append(l.held, p)
		w.permit = p
		close(w.ready)
	}
	rest := l.queue[len(d.grants):]
	kept := l.queue[:0]
	for i, w := range rest {
		if d.late[i] {
			w.err = d.err
			close(w.ready)
			continue
		}
		kept = append(kept, w)
	}
	clear(l.queue[len(kept):])
	l.queue = kept
	free := l.inFlight-l.freeing < l.maxInFlight
	l.schedule(d.now, l.shared.wake(d.now, d.at, len(l.queue) > 0 && free, l.inFlight-l.freeing > 0))
}

// delay returns how long from now until the budgets, the pacer and any
// pause allow cost (n requests' worth, for the pacer), and whether that is
// known: false when it waits for an answer to come back.
func (l *Limiter) delay(now time.Time, cost costs, n int) (time.Duration, bool) {
	d := max(0, l.s.PauseUntil.Sub(now))
	busy := l.s.InFlight > 0
	for i, m := range l.s.Budgets {
		md, ok := m.wait(now, cost[i], busy)
		if !ok {
			return d, false
		}
		d = max(d, md)
	}
	if l.s.Pace != nil && n > 0 {
		need := float64(n) - l.s.Pace.TokensAt(now.Add(d))
		if need > 0 {
			d += time.Duration(math.Ceil(need / float64(l.s.Pace.Limit()) * float64(time.Second)))
		}
	}
	return d, true
}

// estimate returns how long until the costs of n requests may all have been
// spent, as far as the budgets, the pacer and the pause tell.
func (l *Limiter) estimate(now time.Time, cost costs, n int) (time.Duration, bool) {
	d := max(0, l.s.PauseUntil.Sub(now))
	for i, m := range l.s.Budgets {
		md, ok := m.estimate(now, cost[i])
		if !ok {
			return 0, false
		}
		d = max(d, md)
	}
	if l.s.Pace != nil {
		if need := float64(n) - l.s.Pace.TokensAt(now); need > 0 {
			d = max(d, time.Duration(need/float64(l.s.Pace.Limit())*float64(time.Second)))
		}
	}
	return d, true
}

// schedule sets the timer to run a step at at (zero: none). l.mu is held.
func (l *Limiter) schedule(now, at time.Time) {
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
			l.step(nil)
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
}

// cancel gives back p. l.mu is held.
func (l *Limiter) cancel(p *Permit) {
	l.freeing = 1
	defer func() { l.freeing = 0 }()
	l.step(func(now time.Time) {
		for i, m := range l.s.Budgets {
			m.giveBack(now, p.cost[i])
		}
		if p.paced != nil {
			p.paced.CancelAt(now)
		}
		l.s.hold(l.shared.id(), -1, p.cost.neg())
	})
	l.release(p)
}

// release ends p in the limiter's own records. l.mu is held.
func (l *Limiter) release(p *Permit) {
	p.ended = true
	l.inFlight--
	l.cost = l.cost.add(p.cost.neg())
	if i := slices.Index(l.held, p); i >= 0 {
		l.held = slices.Delete(l.held, i, i+1)
	}
}

// grantedBefore returns what this limiter's permits in flight that were
// granted before p cost of budget i: the requests that most likely reached
// the server before p did. Those of other limiters sharing a store are not
// known here, and not counted. l.mu is held.
func (l *Limiter) grantedBefore(p *Permit, i int) float64 {
	c := 0.0
	for _, q := range l.held {
		if q.seq >= p.seq {
			break
		}
		c += q.cost[i]
	}
	return c
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
	c := actual.costs()
	delta := c.add(p.cost.neg())
	l.step(func(now time.Time) {
		for i, m := range l.s.Budgets {
			m.settle(now, p.cost[i], c[i])
		}
		l.s.hold(l.shared.id(), 0, delta)
	})
	l.cost = l.cost.add(delta)
	p.cost = c
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
	l.freeing = 1
	defer func() { l.freeing = 0 }()
	l.step(func(now time.Time) {
		for i, m := range l.s.Budgets {
			m.InFlight -= p.cost[i]
			m.answered(now)
		}
		l.s.hold(l.shared.id(), -1, p.cost.neg())
		if resp != nil { // a connection error says nothing about the budget
			l.observe(p, now, resp, err)
		}
	})
	l.release(p)
}

// observe learns from one answer. l.mu is held.
func (l *Limiter) observe(p *Permit, now time.Time, resp *http.Response, err error) {
	status, h := resp.StatusCode, resp.Header
	l.s.Heard = true
	if status < 400 {
		l.meter.record(now)
	}
	rep, hasReq := ratehdr.ParseReport(h, ratehdr.HeaderLimitRequests, ratehdr.HeaderRemainingRequests, ratehdr.HeaderResetRequests)
	if hasReq {
		l.learn(l.s.Budgets[bRequests], rep, p.sentAt, now, p.cost[bRequests])
	}
	if r, ok := ratehdr.ParseReport(h, ratehdr.HeaderLimitTokens, ratehdr.HeaderRemainingTokens, ratehdr.HeaderResetTokens); ok {
		l.learn(l.s.Budgets[bTokens], r, p.sentAt, now, p.cost[bTokens])
	}
	if hasReq && l.adaptive != nil {
		l.adaptive = nil // the server speaks: its numbers, not guesses
		l.updatePace(now)
	}

	if status == http.StatusTooManyRequests {
		// A refused request was not charged its tokens or audio.
		for _, i := range []int{bTokens, bAudio} {
			l.s.Budgets[i].refund(now, p.cost[i])
		}
	}
	switch {
	case status == http.StatusTooManyRequests && errors.Is(err, ErrQuotaExceeded):
		// Not a rate limit: the caller stops.
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		l.throttled(p, now, resp, err, rep, hasReq)
	case status < 400:
		l.s.Backoff = 0
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
		l.s.Limited++
	}
	l.s.Throttles++
	named := ""
	if status == http.StatusTooManyRequests && err != nil {
		if msg, ok := ratehdr.ParseLimitMessage(err.Error()); ok {
			named = msg.Budget
			if msg.Budget == "audio seconds" { // no header reports it
				if sh := l.s.share; sh > 0 && sh < 1 {
					msg.Limit, msg.Used = msg.Limit*sh, msg.Used*sh
				}
				l.s.Budgets[bAudio].learnMessage(msg, now, l.maxPause, l.grantedBefore(p, bAudio))
				l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: learned "+msg.Budget+" budget from a 429",
					slog.Float64("limit", msg.Limit), slog.Float64("used", msg.Used), slog.Duration("window", msg.Window))
			}
		}
	}
	// The server refused a request although its own count says the
	// budget has room: it does not honour bursts (it enforces the budget
	// in slices). Spread requests evenly from now on.
	if status == http.StatusTooManyRequests && hasReq && rep.Remaining >= 1 && (named == "" || named == "requests") && !l.s.Spread {
		l.s.Spread = true
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit: the server refused a burst its budget allowed; spreading requests evenly",
			slog.Float64("remaining", rep.Remaining), slog.Float64("limit", rep.Limit))
		l.updatePace(now)
	}
	wait, said := ratehdr.RetryAfter(h, now)
	if !said && status == http.StatusTooManyRequests && hasReq && rep.Remaining < 1 && rep.Reset > 0 {
		wait, said = rep.Reset, true
	}
	echo := p.sentAt.Before(l.s.PauseStart) // sent before the pause in force began
	if !said && status == http.StatusTooManyRequests {
		if !echo {
			l.s.Backoff++
		}
		wait = min(throttleBackoffMax, throttleBackoffBase<<min(max(l.s.Backoff, 1)-1, 10))
	}
	if wait > 0 {
		l.pause(now, wait)
	}
	// Only a 429 says the rate is too high. A 503 is a server in trouble
	// (overloaded, restarting, loading a model): its retry-after pauses
	// everyone, but it does not slow the pace for good.
	if src := l.s.Budgets[bRequests].Source; status == http.StatusTooManyRequests && (src == sourceNone || src == sourceAdaptive) {
		l.adapt(now, p.sentAt, true)
	}
}

// pause stops every new request until now+d (capped at MaxPause). Pauses
// never shorten one in force. l.mu is held.
func (l *Limiter) pause(now time.Time, d time.Duration) {
	until := now.Add(min(d, l.maxPause))
	if !until.After(l.s.PauseUntil) {
		return
	}
	if !l.s.PauseUntil.After(now) {
		l.s.PauseStart = now
		l.s.Pauses++
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: pausing every request after a throttle",
			slog.Duration("for", until.Sub(now)))
	}
	l.s.PauseUntil = until
}

// learn applies a report to m, logging what changed. l.mu is held.
func (l *Limiter) learn(m *mirror, r ratehdr.Report, sent, now time.Time, cost float64) {
	if sh := l.s.share; sh > 0 && sh < 1 { // a fallback spends its share of what the server says
		r.Limit, r.Remaining = r.Limit*sh, r.Remaining*sh
	}
	if m.observe(r, sent, now, cost, l.maxPause) {
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: learned "+m.name+" budget",
			slog.Float64("limit", m.Limit), slog.String("shape", m.Shape), slog.Duration("window", m.Window))
	}
	if m == l.s.Budgets[bRequests] {
		l.updatePace(now) // the window may be known better
	}
}

// updatePace sets the pacer: the adaptive rate for a server without
// headers, the requests budget's rate when spreading, else none. l.mu is
// held.
func (l *Limiter) updatePace(now time.Time) {
	r := rate.Inf
	switch m := l.s.Budgets[bRequests]; {
	case l.adaptive != nil && !math.IsInf(l.adaptive.rate, 1):
		r = rate.Limit(l.adaptive.rate)
	case l.s.Spread && m.known():
		if w := m.windowEstimate(); w > 0 {
			r = rate.Limit(paceMargin * m.Limit / w.Seconds())
			if m.Source != sourceConfigured {
				// No server's word spaces requests further apart
				// than MaxPause.
				r = max(r, rate.Limit(1/l.maxPause.Seconds()))
			}
		}
	}
	switch {
	case r == rate.Inf:
		l.s.Pace = nil
	case l.s.Pace == nil:
		l.s.Pace = &pacer{rate.NewLimiter(r, 1)}
		l.s.Pace.ReserveN(now, 1) // evenly from now: the last request just left
	case l.s.Pace.Limit() != r:
		l.s.Pace.SetLimitAt(now, r)
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
	l.s.Budgets[bRequests].Source = sourceAdaptive
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
	// With a Store, the figures above but InFlight, MaxInFlight and
	// Waiting are those of every limiter sharing it; SharedInFlight counts
	// their permits, and
	// Fallback is true while the store is unreachable (the figures are
	// then the limiter's own, at its FallbackShare of each budget).
	SharedInFlight int
	Fallback       bool
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

// Snapshot returns the limiter's current state. With a Store, it reads the
// state shared there (one call of the store).
func (l *Limiter) Snapshot() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shared != nil {
		l.step(nil)
	}
	now := time.Now()
	s := Stats{
		InFlight: l.inFlight, MaxInFlight: l.maxInFlight, Waiting: len(l.queue),
		Requests: l.s.Budgets[bRequests].stats(now), Tokens: l.s.Budgets[bTokens].stats(now), Audio: l.s.Budgets[bAudio].stats(now),
		Spread: l.s.Spread, Pace: math.Inf(1),
		Pauses: l.s.Pauses, RateLimited: l.s.Limited, Throttles: l.s.Throttles,
		SharedInFlight: l.s.InFlight, Fallback: l.shared.down(),
	}
	if l.s.Pace != nil {
		s.Pace = float64(l.s.Pace.Limit())
	}
	if l.s.PauseUntil.After(now) {
		s.PausedUntil = l.s.PauseUntil
	}
	return s
}
