package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// A Store holds the state of an account's budgets for every Limiter that
// shares it, so that processes spending one budget (a fleet of workers,
// several web containers) stay within it together: what the server said
// remains, what is in flight across them all, the learned shapes, the
// shared pause after a 429. Package redisstore keeps it in Redis.
//
// Each step of a limiter that changes the state (a request granted or
// answered) reads it, changes it and saves it in one Update. The limiters
// compare the times in the state with their own clocks: keep the clocks of
// the machines sharing a store synchronised (NTP).
type Store interface {
	// Update reads the state (nil when there is none), calls f with it and
	// saves what f returns, atomically: if the state changed in between,
	// it calls f again with the new state, until the save succeeds or ctx
	// is done. When f returns nil bytes, nothing is saved; when it
	// returns an error, Update returns it. Update must honour ctx's
	// deadline: a limiter waits no longer than Config.StoreTimeout on it.
	Update(ctx context.Context, f func(state []byte) ([]byte, error)) error
}

// ErrStoreUnavailable is returned (wrapped with the store's error) by
// Acquire while the Store is unreachable, when Config.FailClosed is set.
var ErrStoreUnavailable = errors.New("ratelimit: the shared store is unavailable")

// Defaults of a Limiter with a Store.
const (
	// DefaultStoreTimeout bounds each call of the Store when
	// Config.StoreTimeout is 0.
	DefaultStoreTimeout = time.Second
	// DefaultFallbackShare is the share of each budget a limiter spends
	// on its own while its Store is unreachable, when Config.FallbackShare
	// is 0: a fleet of four stays within the budget.
	DefaultFallbackShare = 0.25
	// DefaultLeaseTTL is how long a limiter's permits count as in flight
	// after it stopped renewing its lease, when Config.LeaseTTL is 0.
	DefaultLeaseTTL = 30 * time.Second
)

const (
	// sharedPoll is how often a limiter with callers waiting reads the
	// shared state again: other limiters' answers may free budget sooner
	// than its own copy says.
	sharedPoll = 50 * time.Millisecond
	// storeProbe is how often an unreachable store is tried again while
	// the limiter is in use.
	storeProbe = time.Second
)

// sharing is how a Limiter shares its state through a Store. Its fields
// are guarded by the Limiter's mutex, but probing.
type sharing struct {
	store      Store
	timeout    time.Duration
	share      float64
	failClosed bool
	ttl        time.Duration
	me         string // this limiter's lease in the state

	last     *state // the state as last saved in the store; nil: never
	err      error  // why the store is unreachable; nil: it is not
	fallback *state // the limiter's own state while err is set
	probing  bool   // a try of the store is under way or set
	stale    bool   // the store held a state that could not be read (logged once)
}

func newSharing(cfg Config) (*sharing, error) {
	if cfg.StoreTimeout < 0 || cfg.LeaseTTL < 0 || !(cfg.FallbackShare >= 0 && cfg.FallbackShare <= 1) {
		return nil, fmt.Errorf("ratelimit: StoreTimeout (%v) and LeaseTTL (%v) must not be negative, FallbackShare (%v) must be within [0, 1]",
			cfg.StoreTimeout, cfg.LeaseTTL, cfg.FallbackShare)
	}
	var id [8]byte
	rand.Read(id[:])
	return &sharing{
		store:      cfg.Store,
		timeout:    cmpOr(cfg.StoreTimeout, DefaultStoreTimeout),
		share:      cmpOr(cfg.FallbackShare, DefaultFallbackShare),
		failClosed: cfg.FailClosed,
		ttl:        cmpOr(cfg.LeaseTTL, DefaultLeaseTTL),
		me:         hex.EncodeToString(id[:]),
	}, nil
}

// id returns the limiter's lease id; "" for a limiter without a store.
func (sh *sharing) id() string {
	if sh == nil || sh.err != nil {
		return ""
	}
	return sh.me
}

// down reports whether the store is unreachable.
func (sh *sharing) down() bool { return sh != nil && sh.err != nil }

// closed returns the error for waiters while the store is unreachable and
// the limiter fails closed; nil otherwise.
func (sh *sharing) closed() error {
	if sh == nil || sh.err == nil || !sh.failClosed {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrStoreUnavailable, sh.err)
}

// wake returns when the limiter should step again, given when its state
// says the head of the queue may go (zero: unknown), whether callers are
// waiting for a free slot and whether it holds permits: with a store, soon
// enough to see what other limiters freed, and to renew its lease.
func (sh *sharing) wake(now, at time.Time, waiting, holding bool) time.Time {
	if sh == nil || sh.err != nil {
		return at
	}
	var poll time.Time
	switch {
	case waiting:
		poll = now.Add(sharedPoll)
	case holding:
		poll = now.Add(sh.ttl / 3)
	default:
		return at
	}
	if at.IsZero() || poll.Before(at) {
		return poll
	}
	return at
}

// step runs run on the store's state and saves it, and reports whether it
// did; if not, the store is unreachable, l.s is the limiter's fallback,
// and the caller runs run on that. l.mu is held.
func (sh *sharing) step(l *Limiter, run func(now time.Time)) bool {
	if sh.err != nil {
		sh.probe(l)
		l.s = sh.fallback
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
	defer cancel()
	var s *state
	err := sh.store.Update(ctx, func(b []byte) ([]byte, error) {
		now := time.Now()
		s = sh.load(l, b, now)
		l.s = s
		l.updatePace(now)
		run(now)
		if le := s.Leases[sh.me]; le.N > 0 || le.Cost != (costs{}) {
			le.Expires = now.Add(sh.ttl)
		} else {
			delete(s.Leases, sh.me)
		}
		return json.Marshal(s)
	})
	if err == nil {
		sh.last = s
		return true
	}
	sh.err = err
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit: the shared store is unreachable; limiting locally at a share of each budget",
		slog.Float64("share", sh.share), slog.Bool("fail_closed", sh.failClosed), slog.String("error", err.Error()))
	sh.fallback = sh.fallbackState(l, time.Now())
	l.s = sh.fallback
	l.updatePace(time.Now())
	sh.probe(l)
	return false
}

// load returns the state read from the store, with the leases that
// expired freed and this limiter's lease made to match its permits. When
// the store holds none (a Redis that restarted empty), the limiter's own
// last knowledge starts it again, or its configuration; when it holds one
// this code cannot read, the configuration.
func (sh *sharing) load(l *Limiter, b []byte, now time.Time) *state {
	s := newState(l.cfg, now)
	if b == nil && sh.last != nil {
		s = sh.last.clone(l.cfg, now)
		s.Leases = nil
	}
	if b != nil {
		read := newState(l.cfg, now)
		if err := json.Unmarshal(b, read); err == nil && read.valid() {
			s = read
		} else if !sh.stale {
			sh.stale = true
			l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit: the shared store holds a state this version cannot read; starting afresh")
		}
	}
	if s.Leases == nil {
		s.Leases = map[string]*lease{}
	}
	for id, le := range s.Leases {
		if id != sh.me && le.Expires.Before(now) {
			s.drop(le)
			delete(s.Leases, id)
			l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit: a limiter sharing the store stopped renewing its lease; its permits are freed",
				slog.Int("permits", le.N))
		}
	}
	mine := s.Leases[sh.me]
	if mine == nil {
		mine = &lease{}
		s.Leases[sh.me] = mine
	}
	s.drop(mine)
	*mine = lease{N: l.inFlight, Cost: l.cost}
	s.InFlight += mine.N
	for i, m := range s.Budgets {
		m.InFlight += mine.Cost[i]
	}
	s.Spread = s.Spread || l.cfg.Spread
	return s
}

// fallbackState returns the limiter's own state while the store is
// unreachable: the last state it saw, at its share of each budget, with
// only its own permits in flight.
func (sh *sharing) fallbackState(l *Limiter, now time.Time) *state {
	s := newState(l.cfg, now)
	if sh.last != nil {
		s = sh.last.clone(l.cfg, now)
	}
	s.Leases, s.InFlight, s.share = nil, l.inFlight, sh.share
	s.scale(sh.share)
	for i, m := range s.Budgets {
		m.InFlight = l.cost[i]
		m.configured.N *= sh.share // reports are scaled: so is what they are checked against
	}
	return s
}

// scale multiplies the size and level of every budget by f: a share of
// the budgets, or back from one.
func (s *state) scale(f float64) {
	for _, m := range s.Budgets {
		if m.known() {
			m.Limit *= f
			m.Level = min(m.Level*f, m.Limit)
			m.Since *= f
			m.MinD, m.MaxD = m.MinD*f, m.MaxD*f
			if m.Remaining > 0 {
				m.Remaining *= f
			}
		}
	}
}

// clone returns a deep copy of s, whose mirrors carry cfg's names and
// configured budgets.
func (s *state) clone(cfg Config, now time.Time) *state {
	c := newState(cfg, now)
	if b, err := json.Marshal(s); err == nil {
		_ = json.Unmarshal(b, c) // a state this code saved
	}
	c.share = s.share
	return c
}

// probe tries the store again storeProbe from now, unless a try is under
// way, and rejoins it when it answers. l.mu is held.
func (sh *sharing) probe(l *Limiter) {
	if sh.probing {
		return
	}
	sh.probing = true
	time.AfterFunc(storeProbe, func() {
		ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
		err := sh.store.Update(ctx, func([]byte) ([]byte, error) { return nil, nil })
		cancel()
		l.mu.Lock()
		defer l.mu.Unlock()
		sh.probing = false
		if err != nil {
			if len(l.queue) > 0 || l.inFlight > 0 {
				sh.probe(l) // in use: try again; idle: at the next step
			}
			return
		}
		// What the limiter learned on its own restarts the store if it
		// lost the state (a Redis that restarted empty).
		last := sh.fallback.clone(l.cfg, time.Now())
		last.scale(1 / sh.share)
		last.share = 0
		sh.err, sh.fallback, sh.last = nil, nil, last
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit: the shared store is back; sharing its budgets again")
		l.step(nil)
	})
}

// lease is what one limiter sharing a store holds in flight, renewed while
// it does.
type lease struct {
	Expires time.Time
	N       int
	Cost    costs
}

// hold adds n permits costing cost to the state's permits in flight, and
// to the lease of limiter id ("": a limiter without a store). The budgets'
// own counts in flight are the mirrors' to keep.
func (s *state) hold(id string, n int, cost costs) {
	s.InFlight += n
	if id == "" || s.Leases == nil {
		return
	}
	le := s.Leases[id]
	if le == nil {
		le = &lease{}
		s.Leases[id] = le
	}
	le.N += n
	le.Cost = le.Cost.add(cost)
}

// drop takes a lease's permits out of the state's counts in flight.
func (s *state) drop(le *lease) {
	s.InFlight -= le.N
	for i, m := range s.Budgets {
		m.InFlight -= le.Cost[i]
	}
}

// valid reports whether a state read from a store can be used.
func (s *state) valid() bool {
	if s.Version != stateVersion {
		return false
	}
	for _, m := range s.Budgets {
		if m == nil || math.IsNaN(m.Level) || m.Limit < 0 {
			return false
		}
	}
	return true
}

func (c costs) neg() costs {
	for i := range c {
		c[i] = -c[i]
	}
	return c
}

// pacer spaces requests evenly: an x/time/rate limiter of burst 1, saved
// in a store as its rate and the time its token is whole again.
type pacer struct{ *rate.Limiter }

type pacerJSON struct {
	Rate float64
	Next time.Time
}

func (p *pacer) MarshalJSON() ([]byte, error) {
	now := time.Now()
	r := float64(p.Limit())
	next := now.Add(time.Duration((1 - p.TokensAt(now)) / r * float64(time.Second)))
	return json.Marshal(pacerJSON{r, next})
}

func (p *pacer) UnmarshalJSON(b []byte) error {
	var v pacerJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if !(v.Rate > 0) || math.IsInf(v.Rate, 0) {
		return fmt.Errorf("ratelimit: pace of %v per second", v.Rate)
	}
	p.Limiter = rate.NewLimiter(rate.Limit(v.Rate), 1)
	// Spend the token a full interval before Next, so that it is whole
	// again at Next.
	p.ReserveN(v.Next.Add(-time.Duration(float64(time.Second)/v.Rate)), 1)
	return nil
}
