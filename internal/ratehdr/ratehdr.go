// Package ratehdr reads the headers in which servers speaking OpenAI's
// protocol state their rate limits and when to try again.
package ratehdr

import (
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Header names that servers speaking OpenAI's protocol use to tell clients
// their budgets and when to try again.
const (
	HeaderLimitRequests     = "X-Ratelimit-Limit-Requests"
	HeaderRemainingRequests = "X-Ratelimit-Remaining-Requests"
	HeaderResetRequests     = "X-Ratelimit-Reset-Requests" // time until the budget is whole again: "1s", "6m0s", "2m59.56s"
	HeaderLimitTokens       = "X-Ratelimit-Limit-Tokens"
	HeaderRemainingTokens   = "X-Ratelimit-Remaining-Tokens"
	HeaderResetTokens       = "X-Ratelimit-Reset-Tokens"

	HeaderRetryAfter   = "Retry-After"         // seconds (integer or decimal) or an HTTP date
	HeaderRetryAfterMs = "Retry-After-Ms"      // milliseconds, possibly fractional (Azure, newer OpenAI)
	HeaderMSRetryAfter = "X-Ms-Retry-After-Ms" // Azure's own name for the same
	HeaderShouldRetry  = "X-Should-Retry"      // "true" or "false": the server's own verdict
)

// maxHeaderWait bounds any wait read from a header, so that a garbled or
// hostile value cannot produce an overflowing or absurd duration. Callers
// apply their own, smaller caps.
const maxHeaderWait = 24 * time.Hour

// RetryAfter returns how long h asks the client to wait before trying
// again: Retry-After-Ms (or Azure's X-Ms-Retry-After-Ms) first, then
// Retry-After as seconds or as an HTTP date
// (counted from now). ok is false when neither header holds a usable value.
// The wait is never negative and never more than a day.
func RetryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	for _, k := range []string{HeaderRetryAfterMs, HeaderMSRetryAfter} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
				return clampWait(ms * float64(time.Millisecond)), true
			}
		}
	}
	v := strings.TrimSpace(h.Get(HeaderRetryAfter))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || math.IsInf(s, 0) {
			return 0, false
		}
		return clampWait(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampWait(float64(t.Sub(now))), true
	}
	return 0, false
}

// ShouldRetry reports the server's X-Should-Retry verdict: set is false
// when the header is absent or neither "true" nor "false".
func ShouldRetry(h http.Header) (retry, set bool) {
	switch strings.ToLower(strings.TrimSpace(h.Get(HeaderShouldRetry))) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func clampWait(ns float64) time.Duration {
	if ns != ns || ns <= 0 { // NaN or past
		return 0
	}
	return time.Duration(min(ns, float64(maxHeaderWait)))
}

// Report is what one response said about one budget: its size, what is
// left of it, and how long until it is whole again.
type Report struct {
	Limit     float64
	Remaining float64       // 0 ≤ Remaining ≤ Limit
	Reset     time.Duration // 0 when the header is absent or unusable
}

// ParseReport reads the budget whose headers are limitKey, remainingKey and
// resetKey (e.g. HeaderLimitRequests, HeaderRemainingRequests,
// HeaderResetRequests). ok is false unless both the limit and the remaining
// count are present and sane: a positive limit, a remaining count between 0
// and the limit. Reset accepts Go durations ("1s", "6m0s", "2m59.56s") and
// bare seconds ("7.66"); garbage leaves it 0, and it is capped at a day.
func ParseReport(h http.Header, limitKey, remainingKey, resetKey string) (r Report, ok bool) {
	limit, err1 := strconv.ParseFloat(strings.TrimSpace(h.Get(limitKey)), 64)
	remaining, err2 := strconv.ParseFloat(strings.TrimSpace(h.Get(remainingKey)), 64)
	if err1 != nil || err2 != nil || !(limit > 0) || math.IsInf(limit, 0) || !(remaining >= 0) || remaining > limit {
		return Report{}, false
	}
	r = Report{Limit: limit, Remaining: remaining}
	v := strings.TrimSpace(h.Get(resetKey))
	if d, err := time.ParseDuration(v); err == nil {
		r.Reset = clampWait(float64(d))
	} else if s, err := strconv.ParseFloat(v, 64); err == nil {
		r.Reset = clampWait(s * float64(time.Second))
	}
	return r, true
}

// LimitMessage is what a 429's message says of the budget it names, as
// OpenAI and Groq word it: "Rate limit reached for whisper-large-v3 in
// organization org_… on seconds of audio per hour (ASPH): Limit 7200, Used
// 7134, Requested 120. Please try again in 1m2.5s." Some budgets (Groq's
// audio seconds) are reported nowhere else.
type LimitMessage struct {
	Budget    string        // "requests", "tokens" or "audio seconds"
	Window    time.Duration // from "per min", "per hour", "per day"; 0 when another unit
	Limit     float64
	Used      float64
	Requested float64
	RetryIn   time.Duration // "try again in …"; 0 when absent or unreadable
}

var limitMessageRE = regexp.MustCompile(`(?i)\bon (requests|tokens|audio seconds|seconds of audio) per (\w+)[^:]*:\s*Limit ([0-9][0-9.,]*),\s*Used ([0-9][0-9.,]*),\s*Requested ([0-9][0-9.,]*)`)

var retryInRE = regexp.MustCompile(`(?i)try again in ((?:[0-9]+(?:\.[0-9]+)?(?:h|ms|m|s))+)`)

// ParseLimitMessage reads a rate-limit message (see LimitMessage); ok is
// false unless it names a budget with sane numbers (a positive limit, what
// was used and asked for not negative).
func ParseLimitMessage(msg string) (m LimitMessage, ok bool) {
	sub := limitMessageRE.FindStringSubmatch(msg)
	if sub == nil {
		return LimitMessage{}, false
	}
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(strings.TrimRight(strings.ReplaceAll(s, ",", ""), "."), 64)
		if err != nil || math.IsInf(f, 0) || f != f {
			return -1
		}
		return f
	}
	budget := strings.ToLower(sub[1])
	if budget == "seconds of audio" {
		budget = "audio seconds"
	}
	m = LimitMessage{Budget: budget, Limit: num(sub[3]), Used: num(sub[4]), Requested: num(sub[5])}
	if !(m.Limit > 0) || m.Used < 0 || m.Requested < 0 {
		return LimitMessage{}, false
	}
	switch strings.ToLower(sub[2]) {
	case "sec", "second":
		m.Window = time.Second
	case "min", "minute":
		m.Window = time.Minute
	case "hour":
		m.Window = time.Hour
	case "day":
		m.Window = 24 * time.Hour
	}
	if r := retryInRE.FindStringSubmatch(msg); r != nil {
		if d, err := time.ParseDuration(r[1]); err == nil {
			m.RetryIn = clampWait(float64(d))
		}
	}
	return m, true
}
