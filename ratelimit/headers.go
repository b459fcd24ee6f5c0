// Package ratelimit will hold steno's adaptive, header-aware rate limiter.
// For now it holds the parsing of the headers servers use to say when to
// come back.
package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names that servers speaking OpenAI's protocol use to tell clients
// when to try again.
const (
	HeaderRetryAfter   = "Retry-After"    // seconds (integer or decimal) or an HTTP date
	HeaderRetryAfterMs = "Retry-After-Ms" // milliseconds, possibly fractional (Azure, newer OpenAI)
	HeaderShouldRetry  = "X-Should-Retry" // "true" or "false": the server's own verdict
)

// maxHeaderWait bounds any wait read from a header, so that a garbled or
// hostile value cannot produce an overflowing or absurd duration. Callers
// apply their own, smaller caps.
const maxHeaderWait = 24 * time.Hour

// RetryAfter returns how long h asks the client to wait before trying
// again: Retry-After-Ms first, then Retry-After as seconds or as an HTTP date
// (counted from now). ok is false when neither header holds a usable value.
// The wait is never negative and never more than a day.
func RetryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	if v := strings.TrimSpace(h.Get(HeaderRetryAfterMs)); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
			return clampWait(ms * float64(time.Millisecond)), true
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
