package transcribetest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// RateLimit configures the fake's rate limits: token buckets that hold up to
// a budget and refill continuously at budget per Window, one for requests and
// one for tokens. The zero value enforces nothing and sends no x-ratelimit-*
// headers, like a self-hosted server.
//
// Every request admitted costs one request and, of the token budget,
// ceil(Content-Length / 1000) tokens (a stand-in: the real API counts audio
// and text tokens, which it knows only after decoding). Both are spent when
// the request is admitted, before its body is read, so requests that later
// fail still count, as with the real API.
type RateLimit struct {
	Requests int           // requests per Window (x-ratelimit-*-requests); 0: not enforced
	Tokens   int           // tokens per Window (x-ratelimit-*-tokens); 0: not enforced, headers omitted
	Window   time.Duration // default time.Minute; tests shrink it so that a "minute" passes fast
	// Silent enforces the budgets without x-ratelimit-* headers, as
	// gateways and self-hosted servers that throttle do; 429s still carry
	// retry-after.
	Silent bool
}

// bucket is a token bucket of capacity limit that refills at limit per
// window, read with time.Now so that synctest bubbles drive it.
type bucket struct {
	limit  float64
	window time.Duration
	avail  float64
	last   time.Time
}

// eps absorbs float rounding, so that a client that waits exactly the
// advertised time finds its token.
const eps = 1e-9

func (b *bucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.avail, b.last = b.limit, now
		return
	}
	if now.After(b.last) {
		b.avail = min(b.limit, b.avail+float64(now.Sub(b.last))/float64(b.window)*b.limit)
		b.last = now
	}
}

// wait returns how long until n tokens are available.
func (b *bucket) wait(n float64) time.Duration {
	if b.avail+eps >= n {
		return 0
	}
	return time.Duration(math.Ceil((n - b.avail) / b.limit * float64(b.window)))
}

func (b *bucket) remaining() int { return int(math.Floor(b.avail + eps)) }

// setHeaders sets the x-ratelimit-*-<kind> trio.
func (b *bucket) setHeaders(h http.Header, kind string) {
	h.Set("x-ratelimit-limit-"+kind, strconv.Itoa(int(b.limit)))
	h.Set("x-ratelimit-remaining-"+kind, strconv.Itoa(b.remaining()))
	h.Set("x-ratelimit-reset-"+kind, formatReset(b.wait(b.limit)))
}

// formatReset formats d as OpenAI's x-ratelimit-reset-* headers do: Go
// duration syntax, rounded to 10ms from one second up and to whole
// milliseconds below ("1s", "6m0s", "20ms", "2m59.56s", "7.66s"). A
// positive d never rounds to "0s".
func formatReset(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	default:
		d = max(time.Millisecond, d.Round(time.Millisecond))
	}
	return d.String()
}

// setRetryAfter sets retry-after (whole seconds, rounded up, at least 1) and
// retry-after-ms for a wait of d.
func setRetryAfter(h http.Header, d time.Duration) {
	h.Set("retry-after", strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10))
	h.Set("retry-after-ms", strconv.FormatInt(int64(math.Ceil(float64(d)/float64(time.Millisecond))), 10))
}

// rateLimited returns the 429 for a spent budget: kind is "requests" or
// "tokens".
func rateLimited(kind string, limit, used, requested int, wait time.Duration) *Error {
	unit := map[string]string{"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}[kind]
	return &Error{Status: http.StatusTooManyRequests, Type: kind, Code: "rate_limit_exceeded",
		Message: fmt.Sprintf("Rate limit reached for %s in organization %s on %s: Limit %d, Used %d, Requested %d. "+
			"Please try again in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
			limitModel, organization, unit, limit, used, requested, formatReset(wait))}
}

// tooLarge returns the 429 for a request that costs more tokens than the
// whole budget: it can never succeed, so it has no retry-after.
func tooLarge(limit, requested int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Type: "tokens", Code: "rate_limit_exceeded",
		Message: fmt.Sprintf("Request too large for %s in organization %s on tokens per min (TPM): Limit %d, Requested %d. "+
			"The input or output tokens must be reduced in order to run successfully. "+
			"Visit https://platform.openai.com/account/rate-limits to learn more.", limitModel, organization, limit, requested)}
}

const (
	// limitModel is the model that rate-limit messages name. The fake's
	// budgets are shared by all models and checked before the body (and so
	// the model field) is read.
	limitModel   = "whisper-1"
	organization = "org-fake"
)
