package ratelimit

import (
	"math"
	"slices"
	"time"

	"github.com/steno-go/steno/internal/ratehdr"
)

// Where a budget's numbers come from.
const (
	sourceNone       = "none"
	sourceConfigured = "configured"
	sourceLearned    = "learned"
	sourceAdaptive   = "adaptive"
)

// How a budget refills, as far as the server's reports tell.
const (
	shapeUnknown = "unknown" // too few reports to tell: whole at reset, nothing before
	shapeBucket  = "bucket"  // continuous refill at limit per window
	shapeWindow  = "window"  // fixed or sliding window: whole at reset, nothing before
)

// resetSlack allows for the rounding of reset times by the server (to 10 ms
// from a second up, to 1 ms below) and for the time a report spends on its
// way, when reports are compared.
const (
	resetSlackAbs = 10 * time.Millisecond
	resetSlackRel = 0.02
)

// bucketTight is how close the bounds on a bucket's window must be before
// the reports are taken to show a bucket: a report whose deficit is d bounds
// the window within a factor d/(d−1), so this needs a deficit of 5 or more,
// or several reports that agree.
const bucketTight = 1.25

// commonWindows are the windows servers count budgets over.
var commonWindows = []time.Duration{time.Second, 10 * time.Second, time.Minute, time.Hour, 24 * time.Hour}

// noResetProbe is when a budget reported spent, with no reset and no known
// window, is tried again.
const noResetProbe = time.Second

// mirror is the limiter's copy of one of the server's budgets (requests,
// tokens or audio seconds): how much may be spent now and how it comes
// back. Its fields are guarded by the Limiter's mutex.
//
// The server's last statement is the truth: at the time it arrived, level
// may be spent (what it said remained, less what was on its way and may not
// have been counted yet), and the whole budget is back by whole. Between
// statements, what the limiter grants is taken from level, and level grows
// back as the budget's shape says: continuously at limit per window for a
// bucket, all at once at whole otherwise.
type mirror struct {
	name       string
	configured Limit
	// refuses is set for a budget the server enforces by refusing what it
	// cannot hold, charging only what it admits (audio seconds, charged by
	// duration when the upload is read): the server's count of it is never
	// below zero. It is a property of the budget, not saved state.
	refuses bool
	// The rest is the state that limiters sharing a Store share (see
	// Config.Store), saved as JSON.

	Source string
	Shape  string
	Limit  float64       // the budget's size; 0: unknown (not limited)
	Window time.Duration // a bucket's refill time (limit per window); a window's length; 0: unknown
	Level  float64       // may be spent at time At (negative: overspent)
	At     time.Time
	Whole  time.Time // the budget is whole again by then, less what was spent since the statement; zero: unknown
	// WholeLo is the earliest the statement in force can have meant by
	// Whole: the reset counted from the request's grant, not its answer.
	WholeLo time.Time
	Since   float64   // spent since the statement, the uncounted in flight included
	Hold    time.Time // nothing is spent before then (a 429 message's "try again in")

	InFlight   float64       // the cost of the permits not yet done
	Lo, Hi     time.Duration // bounds on a bucket's window from the reports; Hi 0: unbounded
	MinD, MaxD float64       // the smallest and largest deficit among them
	MaxReset   time.Duration // the longest reset reported: a window's length
	Reports    int           // statements that bounded the window
	Remaining  float64       // the server's last word; -1 when it never spoke
}

func newMirror(name string, l Limit, now time.Time) *mirror {
	m := &mirror{name: name, Source: sourceNone, Shape: shapeUnknown, Remaining: -1, configured: l}
	if l.N > 0 {
		// A configured budget starts whole and refills continuously,
		// as an x/time/rate bucket of burst N.
		m.Source, m.Shape = sourceConfigured, shapeBucket
		m.Limit, m.Window, m.Level, m.At = l.N, l.Per, l.N, now
	}
	return m
}

// known reports whether the budget limits anything.
func (m *mirror) known() bool { return m.Limit > 0 }

// refillRate returns what comes back per second between statements: a
// bucket's rate, 0 for any other shape.
func (m *mirror) refillRate() float64 {
	if m.Shape != shapeBucket || m.Window <= 0 {
		return 0
	}
	return m.Limit / m.Window.Seconds()
}

// levelAt returns what may be spent at now, which is not before m.At.
func (m *mirror) levelAt(now time.Time) float64 {
	if !m.known() {
		return math.Inf(1)
	}
	lvl := m.Level
	if r := m.refillRate(); r > 0 && now.After(m.At) && lvl < m.Limit {
		lvl = min(m.Limit, lvl+r*now.Sub(m.At).Seconds())
	}
	if !m.Whole.IsZero() && !now.Before(m.Whole) {
		lvl = max(lvl, m.Limit-m.Since)
	}
	return lvl
}

// advance moves the mirror's time to now.
func (m *mirror) advance(now time.Time) {
	if !m.known() || !now.After(m.At) {
		return
	}
	m.Level = m.levelAt(now)
	if !m.Whole.IsZero() && !now.Before(m.Whole) {
		m.Whole, m.WholeLo, m.Since = time.Time{}, time.Time{}, 0
	}
	m.At = now
}

// admits reports whether cost may be spent now. A cost larger than the
// whole budget goes when the budget is whole, as x/time/rate raises its
// burst for it.
func (m *mirror) admits(now time.Time, cost float64) bool {
	if cost <= 0 || !m.known() {
		return true
	}
	if now.Before(m.Hold) {
		return false
	}
	lvl := m.levelAt(now)
	return lvl >= cost-1e-9 || lvl >= m.Limit-1e-9
}

// take spends cost, at now (after admits said yes).
func (m *mirror) take(now time.Time, cost float64) {
	m.InFlight += cost
	if !m.known() || cost <= 0 {
		return
	}
	m.advance(now)
	m.Level -= cost
	m.Since += cost
}

// giveBack returns cost that was taken but never sent.
func (m *mirror) giveBack(now time.Time, cost float64) {
	m.InFlight -= cost
	if !m.known() || cost <= 0 {
		return
	}
	m.advance(now)
	m.Level = min(m.Limit, m.Level+cost)
	m.Since = max(0, m.Since-cost)
}

// refund gives back cost of a request that is over and was not charged
// it (a request the server refused).
func (m *mirror) refund(now time.Time, cost float64) {
	if !m.known() || cost <= 0 {
		return
	}
	m.advance(now)
	m.Level = min(m.Limit, m.Level+cost)
	m.Since = max(0, m.Since-cost)
}

// windowEstimate returns the best guess at the budget's window: the
// learned or configured one, else the middle of the bounds the reports
// put on a bucket's window, else 0.
func (m *mirror) windowEstimate() time.Duration {
	switch {
	case m.Window > 0:
		return m.Window
	case m.Lo > 0 && m.Hi > 0 && m.Lo <= m.Hi:
		return time.Duration(math.Sqrt(float64(m.Lo) * float64(m.Hi)))
	}
	return m.MaxReset
}

// settle corrects a permit's cost, after it was taken, to what the server
// says it was.
func (m *mirror) settle(now time.Time, taken, actual float64) {
	if taken == actual {
		return
	}
	m.InFlight += actual - taken
	if !m.known() {
		return
	}
	m.advance(now)
	m.Level -= actual - taken
	m.Since = max(0, m.Since+actual-taken)
}

// wait returns how long from now until cost may be spent, and whether
// that is known. When the budget is spent and nothing is known to bring it
// back, the answers of the requests in flight (busy) will tell; with none
// in flight, it is tried again noResetProbe after the last statement, so
// that a limiter never starves.
func (m *mirror) wait(now time.Time, cost float64, busy bool) (time.Duration, bool) {
	if m.admits(now, cost) {
		return 0, true
	}
	if now.Before(m.Hold) {
		d, ok := m.wait(m.Hold, cost, busy)
		return m.Hold.Sub(now) + d, ok
	}
	d, ok := m.estimate(now, min(cost, m.Limit))
	switch {
	case ok:
		return d, true
	case busy:
		return 0, false
	}
	return max(0, m.At.Add(noResetProbe).Sub(now)), true
}

// estimate returns how long from now until a total of cost may have been
// spent, as far as the mirror tells without further statements: exactly,
// or a lower bound where the mirror does not know more.
func (m *mirror) estimate(now time.Time, cost float64) (time.Duration, bool) {
	if cost <= 0 || !m.known() {
		return 0, true
	}
	start := now
	if now.Before(m.Hold) {
		start = m.Hold
	}
	lvl := m.levelAt(start)
	if lvl >= cost-1e-9 {
		return start.Sub(now), true
	}
	best := time.Duration(-1)
	if r := m.refillRate(); r > 0 {
		best = start.Sub(now) + time.Duration(math.Ceil((cost-lvl)/r*float64(time.Second)))
	}
	if !m.Whole.IsZero() && m.Whole.After(start) {
		// By whole, the budget is back less what was spent since the
		// statement; after that, a window at a time, if its length is
		// known.
		// (A lower bound when the window is not known.)
		d := m.Whole.Sub(now)
		if extra := cost - max(lvl, m.Limit-m.Since); extra > 1e-9 && m.Window > 0 {
			d += time.Duration(math.Ceil(extra/m.Limit)) * m.Window
		}
		if best < 0 || d < best {
			best = d
		}
	}
	if best < 0 {
		return 0, false
	}
	return best, true
}

// observe folds in a statement of the server, read at now from the
// answer to a permit granted at sent whose cost was thisCost (already out
// of inFlight). maxWait caps how far ahead a learned statement may put the
// budget's return. It reports whether the budget's size or shape changed.
func (m *mirror) observe(r ratehdr.Report, sent, now time.Time, thisCost float64, maxWait time.Duration) (changed bool) {
	m.Remaining = r.Remaining
	if r.Limit != m.Limit {
		changed = true
		m.Limit = r.Limit
		m.Lo, m.Hi, m.Reports, m.MaxReset = 0, 0, 0, 0
		if m.configured.N != r.Limit {
			m.Shape, m.Window = shapeUnknown, 0
		}
	}
	if m.Source != sourceConfigured || changed {
		m.Source = sourceLearned
	}
	maxWait = max(maxWait, m.configured.Per) // a configured budget's own window is no surprise
	reset := r.Reset
	if reset > maxWait {
		reset = maxWait // one per day, from a server's word alone, is not believed
	}
	var whole time.Time
	switch {
	case reset > 0:
		whole = now.Add(reset)
	case r.Remaining < r.Limit:
		// Spent with no reset: try again after a window if one is
		// known, else soon.
		whole = now.Add(min(maxWait, cmpOr(m.Window, noResetProbe)))
	}
	// Answers overtake each other, so the statement that arrives last is
	// not always the latest. A budget's whole time only moves later as the
	// budget is spent, whatever its shape, so it orders the statements. The
	// server made the statement between the request's grant (sent) and
	// now, so its whole time lies between sent+reset and now+reset: a
	// statement wholly before the one in force is older, and tells only
	// that its own request was counted; one wholly after is newer, and
	// replaces it; when they overlap, the lower level is the later one (a
	// window's count only grows until it resets), and is kept.
	var wholeLo time.Time
	if !whole.IsZero() {
		wholeLo = sent.Add(reset)
	}
	older := !changed && !m.Whole.IsZero() && !whole.IsZero() && whole.Before(m.WholeLo)
	newer := changed || m.Whole.IsZero() || whole.IsZero() || wholeLo.After(m.Whole)
	level := r.Remaining - m.InFlight
	switch {
	case older:
		if thisCost > 0 {
			m.advance(now)
			m.Level = min(m.Limit, m.Level+thisCost)
			m.Since = max(0, m.Since-thisCost)
		}
	case newer || level < m.levelAt(now):
		m.advance(now)
		m.Level, m.At, m.Since = level, now, m.InFlight
		if !newer {
			whole, wholeLo = later(whole, m.Whole), later(wholeLo, m.WholeLo)
		}
		m.Whole, m.WholeLo = whole, wholeLo
	default:
		// The same time, a higher level: this statement was made
		// before the one in force, which stands; this request was counted
		// by it.
		if thisCost > 0 {
			m.advance(now)
			m.Level = min(m.Limit, m.Level+thisCost, level)
			m.Since = max(0, m.Since-thisCost)
		}
	}
	if m.learnShape(r) {
		changed = true
	}
	return changed
}

// learnShape narrows the bounds on a bucket's window with one report, and
// decides the shape: a bucket while the reports agree on one window, a
// window (fixed or sliding) once they do not.
//
// For a bucket that refills at limit per window W, the reset is the
// deficit's refill time: reset = (limit − level) × W / limit. The server's
// remaining count is a whole number, floor(level), so a report with deficit
// d = limit − remaining bounds W between reset × limit / d and reset × limit
// / (d − 1) (unbounded for d = 1). The bounds of every report of a bucket
// overlap; those of a fixed or sliding window do not, since their reset
// hardly depends on the deficit (sliding: reset ≈ W after any request).
func (m *mirror) learnShape(r ratehdr.Report) (changed bool) {
	d := r.Limit - r.Remaining
	if d <= 0 || r.Reset <= 0 {
		return false
	}
	m.MaxReset = max(m.MaxReset, r.Reset)
	if m.Shape == shapeWindow {
		m.Window = m.MaxReset
		return false
	}
	// The bounds as the report states them, and widened by the rounding
	// of the reset for the test of agreement.
	lo := time.Duration(float64(r.Reset) * r.Limit / d)
	var hi time.Duration
	if d > 1 {
		hi = time.Duration(float64(r.Reset) * r.Limit / (d - 1))
	}
	slack := 1 + resetSlackRel + float64(resetSlackAbs)/float64(r.Reset)
	if m.Reports == 0 {
		m.Lo, m.Hi, m.MinD, m.MaxD = lo, hi, d, d
	} else {
		m.Lo = max(m.Lo, lo)
		if hi > 0 && (m.Hi == 0 || hi < m.Hi) {
			m.Hi = hi
		}
		m.MinD, m.MaxD = min(m.MinD, d), max(m.MaxD, d)
	}
	m.Reports++
	old := m.Shape
	switch {
	case m.Hi > 0 && float64(m.Lo) > float64(m.Hi)*slack*slack:
		// No single window fits every report: not a bucket.
		m.Shape, m.Window = shapeWindow, m.MaxReset
	case m.Hi > 0 && float64(m.Hi) <= bucketTight*float64(m.Lo) && m.MaxD >= 1.5*m.MinD:
		// Reports of deficits far apart agree on one window: the
		// configured one if it fits, else a common one (servers count per
		// second, minute, hour or day) if one fits, else the middle of
		// the bounds, within 12 % of the truth.
		m.Shape, m.Window = shapeBucket, time.Duration(math.Sqrt(float64(m.Lo)*float64(m.Hi)))
		fits := func(w time.Duration) bool {
			return float64(w)*slack >= float64(m.Lo) && float64(w) <= float64(m.Hi)*slack
		}
		if c := m.configured; c.N == r.Limit && fits(c.Per) {
			m.Window = c.Per
		} else if i := slices.IndexFunc(commonWindows, fits); i >= 0 {
			m.Window = commonWindows[i]
		}
	case m.Source == sourceConfigured && m.configured.N == r.Limit:
		// Too little to tell yet: the configured bucket stands.
	default:
		m.Shape = shapeUnknown
	}
	return m.Shape != old
}

// learnMessage folds in what a 429 message said of a budget no header
// reports: its size and window (from the unit: "per hour"), what was used,
// and when the refused request fits. Such a budget is taken for a bucket
// refilling at its size per window, the guess that matches the server's
// word at the one time it gives.
//
// The message's Used counts the requests in flight that reached the server
// before the refused one; the others will be charged, or refused, later,
// and what may be spent is what the message says is left less their cost.
// Which ones those are, nothing tells: no answer ever reports this budget
// again. counted is the caller's guess at the cost in flight that Used
// includes (those granted before the refused request; see
// Limiter.grantedBefore); it is taken at most at Used, since the server
// cannot have counted more than it says it used. A guess too low is a debt
// the server never had, which ends when their answers come (see answered);
// a guess too high lets a request go that the server refuses, and its 429
// corrects the budget.
func (m *mirror) learnMessage(msg ratehdr.LimitMessage, now time.Time, maxWait time.Duration, counted float64) {
	if msg.Limit != m.Limit || m.Source != sourceConfigured {
		m.Limit, m.Window, m.Shape = msg.Limit, msg.Window, shapeBucket
		if msg.Window <= 0 {
			m.Shape = shapeUnknown
		}
		m.Source = sourceLearned
	}
	// Used is rounded to a whole number; the server's "try again in" is
	// exact: by then, Requested is back.
	wait := min(msg.RetryIn, maxWait)
	level := msg.Limit - msg.Used
	if r := m.refillRate(); r > 0 && msg.RetryIn > 0 {
		level = max(level, msg.Requested-r*wait.Seconds())
	}
	inFlight := max(0, m.InFlight)
	uncounted := inFlight - min(max(0, counted), msg.Used, inFlight)
	m.Level = min(msg.Limit, level) - uncounted
	m.Remaining = max(0, msg.Limit-msg.Used)
	m.At, m.Whole, m.Since = now, time.Time{}, uncounted
	m.Hold = now.Add(wait)
}

// answered bounds the level when a request is over (before its answer is
// read), for a budget the server enforces by refusing (see refuses): the
// server's count never goes below zero, so, whatever the statements and
// guesses said, what may be spent now is at least zero less the cost still
// in flight, which the server may yet charge. Without it, a debt that only
// a guess made (see learnMessage) would last until the budget refilled it,
// since no answer reports this budget to correct it.
func (m *mirror) answered(now time.Time) {
	if !m.refuses || !m.known() {
		return
	}
	m.advance(now)
	m.Level = max(m.Level, -max(0, m.InFlight))
}

func (m *mirror) stats(now time.Time) BudgetStats {
	s := BudgetStats{Source: m.Source, Shape: m.Shape, Limit: m.Limit, Window: m.Window, Remaining: m.Remaining, InFlight: m.InFlight}
	if m.known() {
		s.Available = m.levelAt(now)
		if !m.Whole.IsZero() && m.Whole.After(now) {
			s.WholeAt = m.Whole
		}
	} else {
		s.Available = math.Inf(1)
	}
	return s
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
