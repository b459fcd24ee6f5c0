package transcribe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// Backoff between retries when the server does not say how long to wait:
// exponential from backoffBase, at most backoffCap, less up to 25 % jitter.
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 8 * time.Second
	jitterPct   = 25
)

// sendForm sends form, whose audio costs the account's budgets est,
// retrying what can succeed later, and returns the transcription and the
// number of requests sent.
func (c *Client) sendForm(ctx context.Context, endpoint, name string, form *multipart.Form, format ResponseFormat, est ratelimit.Cost, h hooks) (*Transcription, int, error) {
	var (
		attempts   int
		serverWait time.Duration // what the last failed attempt's server asked for
		lastErr    error
	)
	base := retry.WithMaxRetries(uint64(c.maxAttempts-1),
		retry.WithCappedDuration(backoffCap, retry.WithJitterPercent(jitterPct, retry.NewExponential(backoffBase))))
	backoff := retry.BackoffFunc(func() (time.Duration, bool) {
		wait, stop := base.Next()
		if serverWait > 0 {
			wait = serverWait
		}
		if !stop {
			c.log.LogAttrs(ctx, slog.LevelInfo, "transcribe: retrying",
				slog.String("file", name), slog.Int("attempt", attempts), slog.Duration("wait", wait), slog.Any("error", lastErr))
			if h.onRetry != nil {
				h.onRetry(attempts, wait, lastErr)
			}
		}
		return wait, stop
	})
	before := func() error { // the attempt is about to be sent
		if h.beforeAttempt != nil {
			if err := h.beforeAttempt(); err != nil {
				return err
			}
		}
		attempts++
		return nil
	}
	t, err := retry.DoValue(ctx, backoff, func(ctx context.Context) (*Transcription, error) {
		serverWait = 0
		t, err := c.attempt(ctx, endpoint, form, format, est, before, h.afterAttempt)
		lastErr = err
		var apiErr *APIError
		switch {
		case err == nil:
			t.Attempts = attempts
			return t, nil
		case ctx.Err() != nil:
			return nil, err
		case errors.As(err, &apiErr):
			if !retryable(apiErr) {
				return nil, err
			}
			if apiErr.RetryAfter > c.maxRetryWait {
				return nil, err // the caller decides whether to wait that long
			}
			serverWait = apiErr.RetryAfter
			return nil, retry.RetryableError(err)
		case errors.As(err, new(permanent)):
			return nil, err
		default:
			return nil, retry.RetryableError(err)
		}
	})
	if err != nil && ctx.Err() != nil && lastErr != nil && !errors.Is(lastErr, ctx.Err()) {
		err = fmt.Errorf("%w (after %d attempts; last: %v)", err, attempts, lastErr)
	}
	return t, attempts, err
}

// permanent marks failures of our own making that another attempt cannot
// mend: the file changed size or vanished under the upload, a response too
// big to read, a wait past the deadline, an attempt vetoed by a batch.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

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
