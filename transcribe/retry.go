package transcribe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// The retry policy, in one place. Every failed attempt goes through
// classify, which says whether another attempt can succeed, whether the
// failure was a timeout, and what wait the server asked for; decide then
// applies the client's bounds: WithMaxAttempts, WithMaxRetryWait and the
// retry budget. The wait before a retry is the server's (retry-after-ms,
// retry-after), else a jittered exponential backoff.

// Backoff between retries when the server does not say how long to wait:
// exponential from backoffBase, ±25 % jitter, at most backoffCap.
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 8 * time.Second
	jitterPct   = 25
)

// The default retry budget of a Client (see RetryBudget): 500 tokens, a
// retry costs 5 (10 after a timeout), a success gives 1 back. As in the AWS
// SDK's standard retryer, a failing server gets about 100 retries in all
// from one client, not two for every request.
const (
	DefaultRetryTokens      = 500
	DefaultRetryCost        = 5
	DefaultRetryTimeoutCost = 10
	DefaultRetryRefund      = 1
)

// ErrRetryBudgetExhausted is matched, with errors.Is, by the error of a
// request that could have been retried but was not because the client's
// retry budget was empty. The error matches the attempt's own error too.
var ErrRetryBudgetExhausted = errors.New("retry budget exhausted")

// RetryBudget bounds the retries of a whole client, in the manner of the
// AWS SDK's retry quota: while a server fails most requests, the client
// stops retrying instead of multiplying the load (a server that is down
// gets each request once, plus what the budget allows), and it retries
// again as soon as the server recovers.
//
// The budget holds Tokens tokens and starts full. A retry takes RetryCost
// tokens, or TimeoutCost after an attempt that timed out (it held a
// connection for a whole timeout); with too few left, the request is not
// retried and its error is returned, matching ErrRetryBudgetExhausted. A
// retry that succeeds gives its tokens back, and every successful attempt
// adds Refund, up to Tokens. A retry that is never sent (the call was
// cancelled while it waited) gives its tokens back.
//
// In WithRetryBudget, zero fields take the defaults (DefaultRetryTokens,
// DefaultRetryCost, DefaultRetryTimeoutCost, DefaultRetryRefund), and a
// negative Tokens turns the budget off: retries are then bounded by
// WithMaxAttempts alone.
type RetryBudget struct {
	Tokens      int
	RetryCost   int
	TimeoutCost int
	Refund      int
}

// resolved returns b with its zero fields set to the defaults.
func (b RetryBudget) resolved() RetryBudget {
	if b.Tokens == 0 {
		b.Tokens = DefaultRetryTokens
	}
	if b.RetryCost == 0 {
		b.RetryCost = DefaultRetryCost
	}
	if b.TimeoutCost == 0 {
		b.TimeoutCost = DefaultRetryTimeoutCost
	}
	if b.Refund == 0 {
		b.Refund = DefaultRetryRefund
	}
	return b
}

// retryBudget is a client's RetryBudget and its tokens. One turned off,
// and a nil *retryBudget, allow every retry.
type retryBudget struct {
	cfg RetryBudget // resolved
	off bool        // cfg.Tokens < 0

	mu    sync.Mutex
	level int
}

// newRetryBudget returns a full budget configured by b (zero fields: the
// defaults).
func newRetryBudget(b RetryBudget) *retryBudget {
	b = b.resolved()
	return &retryBudget{cfg: b, off: b.Tokens < 0, level: b.Tokens}
}

// take takes the cost of a retry, timeout or not, and returns it; ok is
// false, and nothing is taken, when too few tokens are left.
func (b *retryBudget) take(timeout bool) (cost int, ok bool) {
	if b == nil || b.off {
		return 0, true
	}
	cost = b.cfg.RetryCost
	if timeout {
		cost = b.cfg.TimeoutCost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.level < cost {
		return 0, false
	}
	b.level -= cost
	return cost, true
}

// giveBack returns n tokens, up to the budget's size.
func (b *retryBudget) giveBack(n int) {
	if b == nil || b.off || n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.level = min(b.cfg.Tokens, b.level+n)
}

// succeeded records a successful attempt, which was a retry that took
// held tokens, or a first attempt (held 0).
func (b *retryBudget) succeeded(held int) {
	if b != nil && !b.off {
		b.giveBack(held + b.cfg.Refund)
	}
}

// failure is classify's reading of a failed attempt.
type failure struct {
	retry       bool          // another attempt can succeed
	timeout     bool          // the attempt timed out: a retry costs TimeoutCost
	rateLimited bool          // a 429 rate limit: the limiter waits it out, see maxRateLimitRetries
	wait        time.Duration // what the server asked to wait; 0 when it did not say
}

// maxRateLimitRetries bounds the retries of one request after 429 rate
// limits. They count neither against MaxAttempts nor against the retry
// budget: the limiter shares the pause a 429 asks for and mirrors the
// budget, so such a retry waits its turn instead of adding load, and a
// request sent before the budget was known (or by a process that shares
// the account but not the limiter) is not failed for it.
const maxRateLimitRetries = 10

// classify is the one place that reads a failed attempt's error. Errors of
// our own making that another attempt cannot mend (permanent), certificates
// the client refuses, a file that vanished or changed size are final; an
// *APIError is retried by retryable's rules, after the wait the server gave;
// a timeout, ours (*TimeoutError) or the transport's, is retried and costs
// more of the budget; anything else (a connection refused, reset or dropped,
// a truncated body) is retried.
func classify(err error) failure {
	var (
		apiErr    *APIError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		timeout   interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, new(permanent)):
		return failure{}
	case errors.As(err, &apiErr):
		return failure{retry: retryable(apiErr), rateLimited: errors.Is(apiErr, ErrRateLimited), wait: apiErr.RetryAfter}
	case errors.Is(err, multipart.ErrSizeMismatch), errors.Is(err, fs.ErrNotExist),
		errors.Is(err, ratelimit.ErrWouldExceedDeadline),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return failure{}
	case errors.Is(err, ErrTimeout), errors.As(err, &timeout) && timeout.Timeout():
		return failure{retry: true, timeout: true}
	}
	return failure{retry: true}
}

// retryable reports whether another attempt at the request that got e can
// succeed. Quota, authentication, permission, missing model and malformed
// requests never can, whatever x-should-retry says: retrying them costs
// money or time for nothing. Otherwise the server's x-should-retry decides,
// and without it timeouts, conflicts, rate limits and server errors are
// retried.
func retryable(e *APIError) bool {
	switch {
	case errors.Is(e, ErrQuotaExceeded):
		return false
	case e.StatusCode == http.StatusBadRequest, e.StatusCode == http.StatusUnauthorized,
		e.StatusCode == http.StatusForbidden, e.StatusCode == http.StatusNotFound,
		e.StatusCode == http.StatusRequestEntityTooLarge, e.StatusCode == http.StatusUnsupportedMediaType,
		e.StatusCode == http.StatusUnprocessableEntity:
		return false
	case e.shouldRetry != nil:
		return *e.shouldRetry
	}
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusConflict ||
		e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// decide is the retry policy: after attempt n (from 1, rate-limited ones
// not counted) failed with err, and limited rate-limited ones before it,
// it returns how long to wait before the next one, the budget's tokens
// that retry took, and whether err was a rate limit; or, when there is to
// be no retry, the error to return.
func (c *Client) decide(n, limited int, err error, backoff retry.Backoff) (wait time.Duration, held int, rateLimited bool, final error) {
	f := classify(err)
	switch {
	case !f.retry:
		return 0, 0, false, err
	case f.wait > c.maxRetryWait:
		return 0, 0, false, err // the caller decides whether to wait that long
	case f.rateLimited && c.maxAttempts > 1:
		if limited >= maxRateLimitRetries {
			return 0, 0, false, err
		}
		wait, _ = backoff.Next()
		if f.wait > 0 {
			wait = f.wait
		}
		return wait, 0, true, nil
	case n >= c.maxAttempts:
		return 0, 0, false, err
	}
	held, ok := c.retries.take(f.timeout)
	if !ok {
		return 0, 0, false, fmt.Errorf("%w (not retried: %w)", err, ErrRetryBudgetExhausted)
	}
	wait, _ = backoff.Next()
	if f.wait > 0 {
		wait = f.wait
	}
	return wait, held, false, nil
}

// newBackoff returns the backoff of one request's retries: a fresh one
// for each request, as it counts them.
func newBackoff() retry.Backoff {
	return retry.WithCappedDuration(backoffCap, retry.WithJitterPercent(jitterPct, retry.NewExponential(backoffBase)))
}

// sendForm sends form, whose audio costs the account's budgets est,
// retrying what can succeed later, and returns the transcription and the
// number of requests sent.
func (c *Client) sendForm(ctx context.Context, endpoint, name string, form *multipart.Form, format ResponseFormat, est ratelimit.Cost, h hooks) (*Transcription, int, error) {
	attempts := 0 // requests sent
	// before runs when the attempt is about to be sent.
	before := func() error {
		if h.beforeAttempt != nil {
			if err := h.beforeAttempt(); err != nil {
				return err
			}
		}
		attempts++
		return nil
	}
	r := c.newRetrier(name)
	for {
		sent := attempts
		t, err := c.attempt(ctx, endpoint, form, format, est, before, h.afterAttempt)
		if attempts == sent {
			r.unsent()
		}
		if err == nil {
			r.succeeded()
			t.Attempts = attempts
			return t, attempts, nil
		}
		if ctx.Err() != nil {
			return nil, attempts, stopped(ctx, err, attempts)
		}
		if err := r.again(ctx, err, attempts, h.onRetry); err != nil {
			return nil, attempts, err
		}
	}
}

// retrier holds one request's retries: its backoff, its attempts counted
// against MaxAttempts and those answered by a 429 rate limit (which are
// not), and the retry budget's tokens taken by the retry under way.
type retrier struct {
	c       *Client
	name    string // of the file, for the log
	backoff retry.Backoff
	n       int // attempts that count against MaxAttempts, the failed one included
	limited int // attempts answered by a 429 rate limit
	held    int // budget tokens taken by the retry under way
}

func (c *Client) newRetrier(name string) *retrier {
	return &retrier{c: c, name: name, backoff: newBackoff(), n: 1}
}

// unsent gives back the tokens of a retry that never left.
func (r *retrier) unsent() {
	r.c.retries.giveBack(r.held)
	r.held = 0
}

// succeeded tells the retry budget the request succeeded.
func (r *retrier) succeeded() { r.c.retries.succeeded(r.held) }

// again decides, after an attempt failed with err (attempts requests sent
// so far), whether to try again: if so it waits (telling onRetry, when
// set) and returns nil; if not, or if ctx ends while it waits, it returns
// the request's error.
func (r *retrier) again(ctx context.Context, err error, attempts int, onRetry func(int, time.Duration, error)) error {
	wait, cost, rateLimited, final := r.c.decide(r.n, r.limited, err, r.backoff)
	if final != nil {
		return final
	}
	if rateLimited {
		r.limited++ // not one of MaxAttempts
	} else {
		r.n++
	}
	r.held = cost
	r.c.log.LogAttrs(ctx, slog.LevelInfo, "transcribe: retrying",
		slog.String("file", r.name), slog.Int("attempt", attempts), slog.Duration("wait", wait), slog.Any("error", err))
	if onRetry != nil {
		onRetry(attempts, wait, err)
	}
	if !sleep(ctx, wait) {
		r.c.retries.giveBack(r.held)
		return stopped(ctx, err, attempts)
	}
	return nil
}

// stopped is the error of a request whose context ended after an attempt
// that failed with err: the context's error, and err when it says more.
func stopped(ctx context.Context, err error, attempts int) error {
	if errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (after %d attempts; last: %v)", context.Cause(ctx), attempts, err)
}

// sleep waits for d, or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// permanent marks failures of our own making that another attempt cannot
// mend: the file changed size or vanished under the upload, a response too
// big to read, a wait past the deadline, an attempt vetoed by a batch.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }
