package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// transportError is the error of an attempt at u that got no answer: ctx's
// cause when the caller gave up, a redirect refused by the policy in
// redirect.go as it is, a source that vanished or changed size as final,
// anything else (a connection refused, reset or dropped; a timeout) as it
// is, for retry.go to judge.
func (c *Client) transportError(ctx context.Context, u string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var refused *APIError
	if errors.As(err, &refused) {
		return refused
	}
	if errors.Is(err, multipart.ErrSizeMismatch) || errors.Is(err, os.ErrNotExist) {
		err = permanent{err}
	}
	return fmt.Errorf("transcribe: POST %s: %w", sanitizeURL(u), err)
}

// newRequest builds the POST of form to endpoint ("/audio/transcriptions"),
// with the URL and the headers (auth among them) the server expects: its
// provider's URL shape (Azure's deployment path and api-version) and auth
// header (Azure's api-key, else Authorization: Bearer).
func (c *Client) newRequest(ctx context.Context, endpoint string, form *multipart.Form) (*http.Request, error) {
	u, err := c.prov.requestURL(c.baseURL, endpoint, form)
	if err != nil {
		return nil, permanent{err}
	}
	req, err := form.NewRequest(ctx, http.MethodPost, u)
	if err != nil {
		return nil, fmt.Errorf("transcribe: %w", err)
	}
	switch {
	case c.apiKey == "":
	case c.prov.auth == authAPIKey:
		req.Header.Set("Api-Key", c.apiKey)
	default:
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if c.org != "" {
		req.Header.Set("OpenAI-Organization", c.org)
	}
	if c.project != "" {
		req.Header.Set("OpenAI-Project", c.project)
	}
	req.Header.Set("User-Agent", "steno (+https://github.com/steno-go/steno)")
	return req, nil
}

// attempt makes one HTTP request, when the limiter allows it at cost est.
// The request carries its permit in its context, so that the limiter's own
// Transport, if the HTTP client sends through it, takes no second one.
func (c *Client) attempt(ctx context.Context, endpoint string, form *multipart.Form, format ResponseFormat, est ratelimit.Cost, before func() error, after func(error)) (t *Transcription, err error) {
	permit, err := c.limiter.Acquire(ctx, est)
	if err != nil {
		return nil, permanent{err} // cancelled, or the wait would pass the deadline
	}
	if before != nil {
		if err := before(); err != nil {
			permit.Cancel()
			return nil, permanent{err}
		}
	}
	// The attempt runs under its Timeouts: w cancels it, with a
	// *TimeoutError as the cause, when one passes (see timeout.go).
	w := newWatchdog(ctx, c.timeouts)
	defer w.stop()
	req, err := c.newRequest(ratelimit.ContextWithPermit(w.ctx, permit), endpoint, form)
	if err != nil {
		permit.Cancel()
		return nil, err
	}
	u := req.URL.String()
	var resp *http.Response
	defer func() {
		if after != nil && resp != nil {
			after(err)
		}
		if t != nil {
			permit.Settle(actualCost(est, t.Usage))
		}
		permit.Done(resp, err)
	}()
	start := time.Now()
	resp, err = w.do(c.http, req) // a timeout comes back as the *TimeoutError, from Do or from reading resp.Body
	if err != nil {
		return nil, c.transportError(ctx, u, err)
	}
	defer resp.Body.Close()
	c.log.LogAttrs(ctx, slog.LevelDebug, "transcribe: response",
		slog.String("url", sanitizeURL(u)), slog.Int("status", resp.StatusCode),
		slog.String("request_id", resp.Header.Get("X-Request-Id")), slog.Duration("elapsed", time.Since(start)))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, c.apiError(resp, body)
	}
	// A 2xx is a transcript only once it decodes as one (see decode.go).
	return c.readTranscription(resp, format)
}

// sanitizeURL drops user info and query values, which may hold secrets,
// from u for display.
func sanitizeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	if p.RawQuery != "" {
		p.RawQuery = "…"
	}
	return p.String()
}
