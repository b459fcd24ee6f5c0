package transcribetest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// RateLimit configures the fake's rate limits. The zero value enforces
// nothing and sends no x-ratelimit-* headers, like a self-hosted server.
//
// There are up to three budgets, each an amount per window:
//
//   - Requests: every request admitted costs one; reported in the
//     x-ratelimit-{limit,remaining,reset}-requests headers.
//   - Tokens: every request admitted costs ceil(Content-Length / 1000)
//     tokens (a stand-in: the real API counts audio and text tokens, which
//     it knows only after decoding); reported in x-ratelimit-*-tokens.
//   - AudioSeconds: seconds of audio, charged after the upload and reported
//     only in 429 messages, as Groq does (see the field).
//
// Requests and tokens are spent when the request is admitted, before its
// body is read, so requests that later fail still count, as with the real
// API; a request refused by one budget spends nothing of the other.
//
// Shape says how every budget is counted over its window; x-ratelimit-limit-*
// is always the budget, and the other headers depend on the shape:
//
//   - [Bucket] (the default): a token bucket, full at first, that refills
//     continuously at the budget per window. remaining is what it holds
//     (rounded down); reset is the time until it is full again, which is
//     what OpenAI's x-ratelimit-reset-* means. A 429's retry-after is the
//     time until the request's cost has refilled.
//   - [FixedWindow]: at most the budget in each of consecutive windows.
//     remaining is the budget less what the current window has spent; reset
//     is the time until the window ends, when remaining jumps back to the
//     whole budget. A 429's retry-after is that same time.
//   - [SlidingWindow]: at most the budget in any interval of one window,
//     kept as a log of what was spent when. remaining is the budget less
//     what the last window spent; reset is the time until that window is
//     empty, when the newest charge in it leaves ("0s" when it is empty
//     already), which is what many gateways report. A 429's retry-after is
//     the time until enough has left for the request, oldest first.
//
// Fixed windows (and the slices below) follow each other from the first
// request that reaches the rate limiter: the first past the key check that
// is not a FaultBadGateway or FaultDropConnection (those never reach the
// API).
type RateLimit struct {
	Requests int           // requests per Window (x-ratelimit-*-requests); 0: not enforced, headers omitted
	Tokens   int           // tokens per Window (x-ratelimit-*-tokens); 0: not enforced, headers omitted
	Window   time.Duration // default time.Minute; tests shrink it so that a "minute" passes fast
	Shape    Shape         // how Requests, Tokens and AudioSeconds are counted; the zero value is Bucket

	// Slices, if above 1, quantises the enforcement of Requests and Tokens,
	// as OpenAI documents that it may ("60,000 requests/minute may be
	// enforced as 1,000 requests/second"): on top of its budget, each
	// admits at most budget/Slices (rounded down, at least 1) in each fixed
	// slice of Window/Slices. The headers still describe the whole budget,
	// as Shape says, never the slice: a client sees the slices only through
	// 429s, which carry the usual rate_limit_exceeded body (with the whole
	// budget's Limit and Used) and a retry-after of the time until the
	// request can pass, at least until the next slice. A request that costs
	// more tokens than a slice holds passes only as the first of its slice.
	// AudioSeconds is not sliced.
	Slices int

	// AudioSeconds, if positive, is a budget of seconds of audio per
	// AudioWindow (default time.Hour), counted as Shape says, like Groq's
	// limits for its whisper models (free tier: 7,200 seconds of audio an
	// hour and 28,800 a day). It is charged after the upload, once the file
	// is parsed and its duration known, before transcription: the duration
	// is measured as DefaultTranscriber measures it (a WAV file's header,
	// else 16,000 bytes a second), whatever the Transcriber later reports,
	// and rounded up to whole seconds; a file whose duration cannot be read
	// is not charged. By then the request has spent its request and token
	// budgets, and they stay spent if the audio is refused.
	//
	// No x-ratelimit-* header ever reports this budget. A request whose
	// audio does not fit gets Groq's 429, with retry-after and
	// retry-after-ms and the body
	//
	//	{"error":{"message":"Rate limit reached for model `whisper-1` in organization `org_fake` service tier `on_demand` on seconds of audio per hour (ASPH): Limit 7200, Used 7134, Requested 120. Please try again in 1m2.5s. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing","type":"seconds","code":"rate_limit_exceeded"}}
	//
	// naming the request's model and, for an AudioWindow of a day, "seconds
	// of audio per day (ASPD)" (a minute: "per minute"; else "per
	// <AudioWindow>", like "per 10s"). Audio longer
	// than the whole budget can never pass: it gets Groq's 413 "Request too
	// large for model … on seconds of audio per hour (ASPH): Limit 7200,
	// Requested 9000, please reduce your message size and try again. …",
	// with the same type and code and no retry-after.
	//
	// Verified from real Groq 429s quoted in public code (2025): the hourly
	// wording, the message's layout, type "seconds", code
	// "rate_limit_exceeded", the body without "param", and "try again in"
	// as a Go duration to the millisecond (1m39.738s). Assumed: the daily
	// and other units' wording, the 413 for audio (Groq sends that 413 for
	// tokens), whole seconds rounded up, no 10-second minimum (Groq bills
	// one, but whether this budget counts it is unknown), and the shape of
	// Groq's windows.
	AudioSeconds int
	AudioWindow  time.Duration // default time.Hour

	// Silent enforces the budgets without x-ratelimit-* headers, as
	// gateways and self-hosted servers that throttle do; 429s still carry
	// retry-after.
	Silent bool
}

// Shape is how a budget of a [RateLimit] is counted over its window.
type Shape int

// The shapes; see [RateLimit] for the headers each sends.
const (
	Bucket        Shape = iota // a token bucket refilling continuously (OpenAI's); the default
	FixedWindow                // at most the budget in each of consecutive windows
	SlidingWindow              // at most the budget in any interval of one window
)

// String returns the shape's name, such as "SlidingWindow".
func (s Shape) String() string {
	names := []string{"Bucket", "FixedWindow", "SlidingWindow"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return "Shape(" + strconv.Itoa(int(s)) + ")"
}

// budget is one of the fake's limits: limit per window, counted as shape
// says. It reads only the times it is given (time.Now in the handler), so
// that synctest bubbles drive it. slice, if not nil, is the fixed-window
// budget of RateLimit.Slices that applies on top.
type budget struct {
	shape  Shape
	limit  float64
	window time.Duration
	slice  *budget

	avail float64   // Bucket: what the bucket holds at last
	last  time.Time // Bucket: when it was refilled; zero: not yet, full
	start time.Time // FixedWindow: start of the current window
	spent float64   // FixedWindow: spent in the current window
	log   []charge  // SlidingWindow: what the last window spent, oldest first
}

// charge is n spent at a time, in a sliding window's log.
type charge struct {
	at time.Time
	n  float64
}

// newBudget returns a budget of limit per window; slices above 1 add a
// slice budget of limit/slices (at least 1) per window/slices.
func newBudget(shape Shape, limit int, window time.Duration, slices int) *budget {
	b := &budget{shape: shape, limit: float64(limit), window: window}
	if slices > 1 {
		b.slice = &budget{shape: FixedWindow, limit: float64(max(1, limit/slices)), window: max(1, window/time.Duration(slices))}
	}
	return b
}

// eps absorbs float rounding, so that a client that waits exactly the
// advertised time finds its token.
const eps = 1e-9

// advance brings the budget to now; fixed windows follow each other from
// origin.
func (b *budget) advance(origin, now time.Time) {
	switch b.shape {
	case FixedWindow:
		start := origin
		if now.After(origin) {
			start = origin.Add(now.Sub(origin) / b.window * b.window)
		}
		if !start.Equal(b.start) {
			b.start, b.spent = start, 0
		}
	case SlidingWindow:
		i := 0
		for i < len(b.log) && !b.log[i].at.Add(b.window).After(now) {
			i++
		}
		b.log = b.log[i:]
	default:
		if b.last.IsZero() {
			b.avail, b.last = b.limit, now
		} else if now.After(b.last) {
			b.avail = min(b.limit, b.avail+float64(now.Sub(b.last))/float64(b.window)*b.limit)
			b.last = now
		}
	}
	if b.slice != nil {
		b.slice.advance(origin, now)
	}
}

// used returns what the budget has spent: in the current window, or what
// the bucket lacks.
func (b *budget) used() float64 {
	switch b.shape {
	case FixedWindow:
		return b.spent
	case SlidingWindow:
		n := 0.0
		for _, c := range b.log {
			n += c.n
		}
		return n
	}
	return b.limit - b.avail
}

// remaining returns what is left of the budget, rounded down (the slice
// aside).
func (b *budget) remaining() int { return max(0, int(math.Floor(b.limit-b.used()+eps))) }

// wait returns how long from now until n can be spent, by the budget and
// its slice alike; 0: now. n must not exceed the budget's limit.
func (b *budget) wait(now time.Time, n float64) time.Duration {
	var d time.Duration
	used := b.used()
	if used+n > b.limit+eps {
		switch b.shape {
		case FixedWindow:
			// A fresh window takes anything: only a slice is ever asked
			// for more than it holds.
			if used > 0 {
				d = b.start.Add(b.window).Sub(now)
			}
		case SlidingWindow:
			// The oldest charges leave first.
			for _, c := range b.log {
				used -= c.n
				if d = c.at.Add(b.window).Sub(now); used+n <= b.limit+eps {
					break
				}
			}
		default:
			d = time.Duration(math.Ceil((n - b.avail) / b.limit * float64(b.window)))
		}
	}
	if b.slice != nil {
		d = max(d, b.slice.wait(now, n))
	}
	return d
}

// reset returns the time until the budget is whole again (Bucket), its
// window ends (FixedWindow) or its window is empty (SlidingWindow): what
// x-ratelimit-reset-* reports.
func (b *budget) reset(now time.Time) time.Duration {
	switch b.shape {
	case FixedWindow:
		return b.start.Add(b.window).Sub(now)
	case SlidingWindow:
		if len(b.log) == 0 {
			return 0
		}
		return b.log[len(b.log)-1].at.Add(b.window).Sub(now)
	}
	if b.avail+eps >= b.limit {
		return 0
	}
	return time.Duration(math.Ceil((b.limit - b.avail) / b.limit * float64(b.window)))
}

// spend takes n from the budget and its slice.
func (b *budget) spend(now time.Time, n float64) {
	switch b.shape {
	case FixedWindow:
		b.spent += n
	case SlidingWindow:
		b.log = append(b.log, charge{now, n})
	default:
		b.avail -= n
	}
	if b.slice != nil {
		b.slice.spend(now, n)
	}
}

// setHeaders sets the x-ratelimit-*-<kind> trio, of the whole budget.
func (b *budget) setHeaders(h http.Header, kind string, now time.Time) {
	h.Set("x-ratelimit-limit-"+kind, strconv.Itoa(int(b.limit)))
	h.Set("x-ratelimit-remaining-"+kind, strconv.Itoa(b.remaining()))
	h.Set("x-ratelimit-reset-"+kind, formatReset(b.reset(now)))
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
	// groqOrganization is the organization that Groq-shaped messages name
	// (Groq's IDs look like org_01hxk43rj2fhsr8smsc4a2135t).
	groqOrganization = "org_fake"
	// groqUpgrade ends Groq's rate-limit messages on the free tier.
	groqUpgrade = "Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
)

// audioUnit names an audio-seconds budget of a window in Groq's words:
// "seconds of audio per hour (ASPH)".
func audioUnit(window time.Duration) string {
	switch window {
	case time.Hour:
		return "seconds of audio per hour (ASPH)"
	case 24 * time.Hour:
		return "seconds of audio per day (ASPD)"
	case time.Minute:
		return "seconds of audio per minute"
	}
	return "seconds of audio per " + window.String()
}

// audioLimited returns Groq's 429 for audio that does not fit the
// audio-seconds budget.
func audioLimited(model string, window time.Duration, limit, used, requested int, wait time.Duration) result {
	return groqError(http.StatusTooManyRequests, "seconds", fmt.Sprintf(
		"Rate limit reached for model `%s` in organization `%s` service tier `on_demand` on %s: Limit %d, Used %d, Requested %d. Please try again in %s. %s",
		model, groqOrganization, audioUnit(window), limit, used, requested, groqDuration(wait), groqUpgrade))
}

// audioTooLarge returns Groq's 413 for audio longer than the whole
// audio-seconds budget: it can never succeed, so it has no retry-after.
func audioTooLarge(model string, window time.Duration, limit, requested int) result {
	return groqError(http.StatusRequestEntityTooLarge, "seconds", fmt.Sprintf(
		"Request too large for model `%s` in organization `%s` service tier `on_demand` on %s: Limit %d, Requested %d, please reduce your message size and try again. %s",
		model, groqOrganization, audioUnit(window), limit, requested, groqUpgrade))
}

// groqError returns an error response as Groq sends it:
// {"error":{"message","type","code"}}, without OpenAI's "param".
func groqError(status int, typ, message string) result {
	var v struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	v.Error.Message, v.Error.Type, v.Error.Code = message, typ, "rate_limit_exceeded"
	b, _ := json.Marshal(v)
	return result{status, "application/json", append(b, '\n'), false}
}

// groqDuration formats a wait as Groq's "Please try again in" does: Go
// duration syntax to the millisecond ("1m39.738s"), rounded up here so
// that a client that waits that long gets in.
func groqDuration(d time.Duration) string {
	return (time.Duration(math.Ceil(float64(d)/float64(time.Millisecond))) * time.Millisecond).String()
}
