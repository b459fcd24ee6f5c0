package ratelimit

import (
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/steno-go/steno/internal/ratehdr"
)

// Where a budget's numbers come from.
const (
	sourceNone       = "none"
	sourceConfigured = "configured"
	sourceLearned    = "learned"
	sourceAdaptive   = "adaptive"
)

// commonWindows are the windows servers count budgets over. A learned
// window is rounded up to one of them.
var commonWindows = []time.Duration{time.Second, 10 * time.Second, time.Minute, time.Hour, 24 * time.Hour}

// windowSlack allows for reset times rounded by the server (to 10 ms, or
// 1 ms under a second) when matching a measured window to a common one.
const windowSlack = 1.25

// paceMargin is the share of a budget the limiter paces at: 1 % is left for
// the jitter of clocks and networks, so that requests spaced exactly one
// budget's interval apart never arrive closer than that.
const paceMargin = 0.99

// budget paces one kind of spending (requests, tokens, audio seconds).
// Its fields are guarded by the Limiter's mutex.
type budget struct {
	name      string
	pace      *rate.Limiter // rate.Inf while nothing is known
	source    string
	limit     float64       // per window; 0 when unknown
	window    time.Duration // 0 when unknown
	preset    time.Duration // the configured window, preferred while the reports allow it
	minWindow time.Duration // bounds on the window from the server's reports (see observe);
	maxWindow time.Duration // maxWindow 0 means unbounded
	remaining float64       // the server's last word; -1 when it never spoke
}

func newBudget(name string, l Limit, now time.Time) *budget {
	b := &budget{name: name, pace: rate.NewLimiter(rate.Inf, 1), source: sourceNone, remaining: -1}
	if l.N > 0 {
		b.limit, b.window, b.preset = l.N, l.Per, l.Per
		b.setRate(now, paceMargin*l.N/l.Per.Seconds(), sourceConfigured)
	}
	return b
}

// setRate paces b at r per second. Leaving rate.Inf starts a fresh bucket,
// as an unlimited one keeps no count: full when nothing was sent yet (a
// configured budget), else empty, since requests left while nothing was
// known.
func (b *budget) setRate(now time.Time, r float64, source string) {
	fresh := b.source == sourceNone && source == sourceConfigured
	b.source = source
	if b.pace.Limit() == rate.Inf {
		b.pace = rate.NewLimiter(rate.Limit(r), b.pace.Burst())
		if !fresh {
			b.pace.ReserveN(now, b.pace.Burst())
		}
		return
	}
	b.pace.SetLimitAt(now, rate.Limit(r))
}

// rate returns the pace, per second.
func (b *budget) rate() float64 { return float64(b.pace.Limit()) }

// reserve takes n from the budget, raising its burst when a single cost is
// larger (a token cost over 1, say), and returns the reservation.
func (b *budget) reserve(now time.Time, n int) *rate.Reservation {
	if n > b.pace.Burst() {
		b.pace.SetBurstAt(now, n)
	}
	return b.pace.ReserveN(now, n)
}

// observe learns from a server's report: the limit as said, the window as
// inferred (see the package doc).
//
// The server's remaining count is a whole number, floor(r) of a real r, so
// a report with deficit d = limit − remaining bounds the window W between
// reset × limit / d (as if r were whole) and reset × limit / (d − 1) (r
// just under the next whole number; unbounded for d = 1). The bounds of all
// reports are intersected; reports that contradict the bounds (the budget
// changed) start them afresh.
func (b *budget) observe(r ratehdr.Report, now time.Time) {
	b.remaining = r.Remaining
	if r.Limit != b.limit {
		b.minWindow, b.maxWindow = 0, 0 // a new budget: what was inferred of the old one is void
	}
	if d := r.Limit - r.Remaining; d > 0 && r.Reset > 0 {
		lo := time.Duration(float64(r.Reset) * r.Limit / d)
		var hi time.Duration
		if d > 1 {
			hi = time.Duration(float64(r.Reset) * r.Limit / (d - 1))
		}
		if (b.maxWindow > 0 && lo > b.maxWindow) || (hi > 0 && hi < b.minWindow) {
			b.minWindow, b.maxWindow = 0, 0
		}
		b.minWindow = max(b.minWindow, lo)
		if hi > 0 && (b.maxWindow == 0 || hi < b.maxWindow) {
			b.maxWindow = hi
		}
	}
	window := pickWindow(b.minWindow, b.maxWindow, b.preset)
	if window == 0 && b.source == sourceConfigured {
		window = b.window // the server confirms or corrects the size, not yet the window
	}
	if window == 0 || (b.source == sourceLearned && r.Limit == b.limit && window == b.window) {
		return
	}
	b.limit, b.window = r.Limit, window
	b.setRate(now, paceMargin*r.Limit/window.Seconds(), sourceLearned)
}

// pickWindow chooses the window that the bounds lo ≤ W ≤ hi (hi 0:
// unbounded) stand for, 0 when nothing is known:
//   - the configured window (preset), if the bounds allow it;
//   - else the shortest common window near lo (within windowSlack either
//     way) that the bounds allow: servers count over common windows, and
//     lo is exact when the report came just after a full budget lost one;
//   - else lo itself. Pacing at the lower bound is the faster guess, and
//     the one that corrects itself: if the window is longer, the budget
//     drains, the reports' deficits grow and their bounds close in (while
//     low remaining counts hold requests back). Pacing at a guess above
//     the truth would leave the budget full and the reports no wiser.
func pickWindow(lo, hi, preset time.Duration) time.Duration {
	if lo <= 0 {
		return 0
	}
	allowed := func(w time.Duration) bool {
		return float64(lo) <= float64(w)*windowSlack && (hi == 0 || float64(w) <= float64(hi)*windowSlack)
	}
	if preset > 0 && allowed(preset) {
		return preset
	}
	for _, w := range commonWindows {
		if allowed(w) && float64(w) <= float64(lo)*windowSlack {
			return w
		}
	}
	return lo
}

// refillTime returns how long until n more of the budget are back, at the
// known limit and window, or fallback when they are unknown.
func (b *budget) refillTime(n float64, fallback time.Duration) time.Duration {
	if b.limit <= 0 || b.window <= 0 {
		return fallback
	}
	return time.Duration(math.Ceil(n / b.limit * float64(b.window)))
}

func (b *budget) stats() BudgetStats {
	return BudgetStats{Source: b.source, Limit: b.limit, Window: b.window, Rate: b.rate(), Remaining: b.remaining}
}
