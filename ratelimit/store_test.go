package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// memStore is a Store in memory, with compare-and-swap like Redis's
// WATCH/MULTI: what package redisstore does, without a server.
type memStore struct {
	mu      sync.Mutex
	state   []byte
	version int
	down    atomic.Bool
}

var errDown = errors.New("memstore: connection refused")

func (m *memStore) Update(ctx context.Context, f func([]byte) ([]byte, error)) error {
	for {
		if m.down.Load() {
			return errDown
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		b, v := bytes.Clone(m.state), m.version
		m.mu.Unlock()
		nb, err := f(b)
		if err != nil || nb == nil {
			return err
		}
		m.mu.Lock()
		if m.version == v {
			m.state, m.version = nb, v+1
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
	}
}

// cut is a Store that one limiter reaches through: cutting it is that
// limiter's process dying, or its network failing.
type cut struct {
	ratelimit.Store
	off atomic.Bool
}

func (c *cut) Update(ctx context.Context, f func([]byte) ([]byte, error)) error {
	if c.off.Load() {
		return errDown
	}
	return c.Store.Update(ctx, f)
}

// fleet sends n requests from each of the limiters at once, each through
// its own HTTP client, to one server, and returns what the server saw.
func fleet(t *testing.T, lims []*ratelimit.Limiter, cfg transcribetest.Config, n int) (transcribetest.Stats, time.Duration) {
	t.Helper()
	h := transcribetest.NewHandler(cfg)
	start := time.Now()
	var wg sync.WaitGroup
	for _, lim := range lims {
		c := &http.Client{Transport: lim.Transport(h.Transport())}
		for range n {
			wg.Go(func() {
				for post(t, c) == http.StatusTooManyRequests {
				}
			})
		}
	}
	wg.Wait()
	return h.Stats(), time.Since(start)
}

func newFleet(t *testing.T, n int, cfg ratelimit.Config) []*ratelimit.Limiter {
	t.Helper()
	var lims []*ratelimit.Limiter
	for range n {
		lim, err := ratelimit.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		lims = append(lims, lim)
	}
	return lims
}

// Four limiters sharing a store spend one budget of 30 per 3 s together:
// 360 requests, none refused, in the budget's own time. Each alone would
// send its 90 at 30 per 3 s, four times the budget.
func TestFleetSharesOneBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{}
		lims := newFleet(t, 4, ratelimit.Config{Store: store, Requests: ratelimit.Limit{N: 30, Per: 3 * time.Second}})
		const latency = 100 * time.Millisecond
		st, elapsed := fleet(t, lims, transcribetest.Config{
			RateLimit: transcribetest.RateLimit{Requests: 30, Window: 3 * time.Second},
			Latency:   latency,
		}, 90)
		// Whole at the start, then 10 a second: the last of 360 leaves
		// after 33 s.
		ideal := 33*time.Second + latency
		ratio := elapsed.Seconds() / ideal.Seconds()
		t.Logf("360 requests in %v (%.3f × ideal), statuses %v, %d in flight at most", elapsed, ratio, st.ByStatus, st.MaxInFlight)
		if st.ByStatus[200] != 360 || st.ByStatus[429] != 0 {
			t.Errorf("statuses %v: want 360 × 200 and no 429", st.ByStatus)
		}
		if ratio > 1.05 {
			t.Errorf("took %.3f × the budget's own time", ratio)
		}
		if st.MaxInFlight < 30 {
			t.Errorf("at most %d in flight: the whole budget of 30 should go at once", st.MaxInFlight)
		}
		for _, lim := range lims {
			if s := lim.Snapshot(); s.InFlight != 0 || s.SharedInFlight != 0 || s.Fallback {
				t.Errorf("after: %+v", s)
			}
		}
	})
}

// A fleet that never heard from the server sends one request first and
// learns the budget from it; then it spends what the server grants, and
// none is refused.
func TestColdFleetLearnsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lims := newFleet(t, 4, ratelimit.Config{Store: &memStore{}})
		const latency = 100 * time.Millisecond
		cfg := transcribetest.Config{RateLimit: transcribetest.RateLimit{Requests: 30, Window: 3 * time.Second}, Latency: latency}
		st, elapsed := fleet(t, lims, cfg, 90)
		ideal := 33*time.Second + latency
		t.Logf("360 requests in %v (%.3f × ideal), statuses %v, %d in flight at most", elapsed, elapsed.Seconds()/ideal.Seconds(), st.ByStatus, st.MaxInFlight)
		if st.ByStatus[200] != 360 || st.ByStatus[429] > 2 {
			t.Errorf("statuses %v: want 360 × 200 and at most 2 × 429", st.ByStatus)
		}
		if st.MaxInFlight < 29 {
			t.Errorf("at most %d in flight: what remained after the first answer should go at once", st.MaxInFlight)
		}
	})
}

// Once any limiter has learned the budget, a limiter that joins starts
// from it.
func TestFleetStartsFromWhatItLearned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{}
		lims := newFleet(t, 5, ratelimit.Config{Store: store})
		cfg := transcribetest.Config{RateLimit: transcribetest.RateLimit{Requests: 30, Window: 3 * time.Second}, Latency: 100 * time.Millisecond}
		fleet(t, lims[4:], cfg, 1) // one learns from one answer, of a shape it cannot tell yet
		time.Sleep(3 * time.Second)
		lims = lims[:4]
		st, elapsed := fleet(t, lims, cfg, 90)
		t.Logf("360 requests in %v, statuses %v; requests budget %+v", elapsed, st.ByStatus, lims[3].Snapshot().Requests)
		if st.ByStatus[429] > 2 {
			t.Errorf("statuses %v: want at most 2 × 429 once the budget is learned", st.ByStatus)
		}
		if s := lims[3].Snapshot().Requests; s.Limit != 30 || s.Source != "learned" {
			t.Errorf("a limiter that joined: requests budget %+v, want the learned 30", s)
		}
	})
}

// A 429 with retry-after: 2 answered to one limiter pauses all four: the
// server sees nothing from any of them for 2 s.
func TestA429PausesTheFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{}
		lims := newFleet(t, 4, ratelimit.Config{Store: store, MaxInFlight: 1})
		srv := &scripted{latency: 100 * time.Millisecond}
		var wg sync.WaitGroup
		for _, lim := range lims[1:] { // three limiters busy with one request at a time
			c := &http.Client{Transport: lim.Transport(srv)}
			wg.Go(func() {
				for range 40 {
					post(t, c)
				}
			})
		}
		time.Sleep(time.Second)
		victim := &scripted{latency: 100 * time.Millisecond, script: []func(http.Header) int{tooMany("2")}}
		status := post(t, &http.Client{Transport: lims[0].Transport(victim)})
		at := time.Now()
		wg.Wait()
		if status != 429 {
			t.Fatalf("status %d, want the scripted 429", status)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		var during int
		for _, a := range srv.arrived {
			if a.After(at) && a.Before(at.Add(2*time.Second)) {
				during++
			}
		}
		if during != 0 || len(srv.arrived) != 120 {
			t.Errorf("%d requests arrived in the 2 s after the 429, %d in all: want none from any limiter in the pause, 120 in all", during, len(srv.arrived))
		}
		if s := lims[2].Snapshot(); s.Pauses != 1 || s.RateLimited != 1 {
			t.Errorf("another limiter's stats: %d pauses, %d rate limited: want the shared 1 and 1", s.Pauses, s.RateLimited)
		}
	})
}

// The permits of a limiter that stops reaching the store (its process
// died) count as in flight until its lease runs out, then no more.
func TestLeaseOfALostLimiterExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{}
		lost := &cut{Store: store}
		a, err := ratelimit.New(ratelimit.Config{Store: lost, LeaseTTL: 10 * time.Second, Requests: ratelimit.Limit{N: 10, Per: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := ratelimit.New(ratelimit.Config{Store: store, LeaseTTL: 10 * time.Second, Requests: ratelimit.Limit{N: 10, Per: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var held []*ratelimit.Permit
		for range 4 {
			p, err := a.Acquire(ctx, ratelimit.Cost{})
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, p)
		}
		lost.off.Store(true)
		start := time.Now()
		p, err := b.Acquire(ctx, ratelimit.Cost{})
		if err != nil {
			t.Fatal(err)
		}
		if s := b.Snapshot(); s.SharedInFlight != 5 {
			t.Fatalf("in flight across the fleet: %d, want a's 4 and b's 1", s.SharedInFlight)
		}
		// b renews its own lease while it holds a permit, and sees a's run out.
		time.Sleep(11 * time.Second)
		p2, err := b.Acquire(ctx, ratelimit.Cost{})
		if err != nil {
			t.Fatal(err)
		}
		if s := b.Snapshot(); s.SharedInFlight != 2 {
			t.Fatalf("after %v: %d in flight across the fleet, want b's 2 (a's lease ran out)", time.Since(start), s.SharedInFlight)
		}
		// The budget a's requests took stays spent: they may have been sent.
		if s := b.Snapshot().Requests; s.Available < 4 || s.Available > 4.1 {
			t.Fatalf("requests budget %+v: want 10 less 6 granted", s)
		}
		p.Done(nil, nil)
		p2.Done(nil, nil)
		for _, p := range held {
			p.Cancel()
		}
		lost.off.Store(false)
	})
}

// While the store is down, a limiter logs it and spends its share of the
// budget on its own; when the store is back, it rejoins within a second.
func TestStoreDownFallsBackToAShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		var logMu sync.Mutex
		log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
		store := &memStore{}
		lim, err := ratelimit.New(ratelimit.Config{Store: store, Logger: log, FallbackShare: 0.25,
			Requests: ratelimit.Limit{N: 40, Per: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &scripted{latency: 10 * time.Millisecond}
		c := &http.Client{Transport: lim.Transport(srv)}
		post(t, c)
		store.down.Store(true)
		start := time.Now()
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() { post(t, c) })
		}
		time.Sleep(5 * time.Second)
		if s := lim.Snapshot(); !s.Fallback || s.Requests.Limit != 10 {
			t.Fatalf("store down: %+v, want the fallback at a quarter of 40", s)
		}
		srv.mu.Lock()
		sent := len(srv.arrived) - 1
		srv.mu.Unlock()
		// A quarter of the 39 left, and the quarter-rate refill of 5 s.
		if sent > 15 || sent < 9 {
			t.Errorf("%d sent in the 5 s the store was down: want about a quarter of the budget", sent)
		}
		store.down.Store(false)
		time.Sleep(1100 * time.Millisecond)
		if s := lim.Snapshot(); s.Fallback {
			t.Errorf("store back for 1.1 s: still in fallback")
		}
		wg.Wait()
		logMu.Lock()
		defer logMu.Unlock()
		if !strings.Contains(logs.String(), "shared store is unreachable") || !strings.Contains(logs.String(), "shared store is back") {
			t.Errorf("logs: %s", logs.String())
		}
		t.Logf("down %v; logs:\n%s", time.Since(start), logs.String())
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// With FailClosed, a limiter refuses to grant while the store is down.
func TestStoreDownFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{}
		store.down.Store(true)
		lim, err := ratelimit.New(ratelimit.Config{Store: store, FailClosed: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = lim.Acquire(context.Background(), ratelimit.Cost{})
		if !errors.Is(err, ratelimit.ErrStoreUnavailable) || !errors.Is(err, errDown) {
			t.Fatalf("Acquire with the store down: %v, want ErrStoreUnavailable wrapping the store's error", err)
		}
		store.down.Store(false)
		time.Sleep(1100 * time.Millisecond)
		p, err := lim.Acquire(context.Background(), ratelimit.Cost{})
		if err != nil {
			t.Fatalf("store back: %v", err)
		}
		p.Done(nil, nil)
	})
}

// A store holding something this version cannot read is started afresh.
func TestStoreWithGarbageStartsAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{state: []byte(`{"Version": 99, "Budgets": null}`)}
		lim, err := ratelimit.New(ratelimit.Config{Store: store, Requests: ratelimit.Limit{N: 5, Per: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := lim.Acquire(context.Background(), ratelimit.Cost{})
		if err != nil {
			t.Fatal(err)
		}
		p.Done(nil, nil)
		if s := lim.Snapshot(); s.Fallback || s.Requests.Available != 4 {
			t.Fatalf("%+v", s)
		}
		if !strings.Contains(string(store.state), `"Version":1`) {
			t.Fatalf("store holds %s", store.state)
		}
	})
}
