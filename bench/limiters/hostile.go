package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/steno-go/steno/ratelimit"
)

// hostileVariants are the hostile server's x-ratelimit-limit-requests
// values; every answer is a 200 that says none remain until a day from
// now.
var hostileVariants = []string{"1", "0.001"}

// hostileSlack allows for timers and the round trip when a wait is
// compared with MaxPause.
const hostileSlack = 10 * time.Millisecond

// atOnce is how soon a caller whose deadline its wait would pass must
// fail.
const atOnce = 50 * time.Millisecond

// hostileFigures are the measurements of one run against a hostile server.
type hostileFigures struct {
	err     error         // the measurement itself failed
	wait    time.Duration // how long the second request took, without a deadline
	capped  bool          // it had not come back after hostileCap and was cancelled
	dlErr   error         // what the caller with a deadline got
	dlAfter time.Duration // and after how long
}

// met reports whether the run meets the target: the wait within MaxPause,
// and the caller with a deadline failed at once with
// ErrWouldExceedDeadline.
func (f hostileFigures) met(maxPause time.Duration) bool {
	return f.err == nil && !f.capped && f.wait <= maxPause+hostileSlack &&
		errors.Is(f.dlErr, ratelimit.ErrWouldExceedDeadline) && f.dlAfter <= atOnce
}

// hostileServer answers every request 200 with a transcript and headers
// that say the budget is limit requests, none remain, and it is whole
// again in a day.
func hostileServer(limit string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("x-ratelimit-limit-requests", limit)
		h.Set("x-ratelimit-remaining-requests", "0")
		h.Set("x-ratelimit-reset-requests", "86400s")
		h.Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"text":"ok"}`+"\n")
	}))
}

// measureHostile runs steno, with MaxPause maxPause and nothing
// configured, against a hostile server of the given limit: one request,
// then a second without a deadline, timed; then, with a fresh limiter, one
// request and a second whose context has the given deadline.
func measureHostile(ctx context.Context, limit string, maxPause, deadline time.Duration) (f hostileFigures) {
	srv := hostileServer(limit)
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	get := func(ctx context.Context, c *http.Client) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	client := func() (*http.Client, error) {
		lim, err := ratelimit.New(ratelimit.Config{MaxPause: maxPause})
		if err != nil {
			return nil, err
		}
		return &http.Client{Transport: lim.Transport(base)}, nil
	}

	// The second request, without a deadline: cancelled (not given a
	// deadline, which would change the wait) if it has not come back long
	// after MaxPause.
	c, err := client()
	if err != nil {
		return hostileFigures{err: err}
	}
	if err := get(ctx, c); err != nil {
		return hostileFigures{err: fmt.Errorf("first request: %w", err)}
	}
	capCtx, cancel := context.WithCancel(ctx)
	limit2 := 10*maxPause + time.Second
	timer := time.AfterFunc(limit2, cancel)
	start := time.Now()
	err = get(capCtx, c)
	f.wait = time.Since(start)
	capped := !timer.Stop()
	cancel()
	switch {
	case capped:
		f.capped = true
	case err != nil:
		return hostileFigures{err: fmt.Errorf("second request: %w", err)}
	}

	// The second request, with a deadline.
	if c, err = client(); err != nil {
		return hostileFigures{err: err}
	}
	if err := get(ctx, c); err != nil {
		return hostileFigures{err: fmt.Errorf("first request: %w", err)}
	}
	dlCtx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start = time.Now()
	f.dlErr = get(dlCtx, c)
	f.dlAfter = time.Since(start)
	if f.dlErr == nil {
		f.dlErr = errors.New("200") // it went
	}
	return f
}

// runHostile measures every variant runs times, interleaved.
func runHostile(ctx context.Context, cfg config, runs int) ([][]hostileFigures, error) {
	res := make([][]hostileFigures, len(hostileVariants))
	for range runs {
		for i, limit := range hostileVariants {
			res[i] = append(res[i], measureHostile(ctx, limit, cfg.maxPause, cfg.deadline))
		}
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// reportHostile prints the hostile scenario's table and returns how many
// runs failed to measure.
func reportHostile(w io.Writer, cfg config, res [][]hostileFigures) (failed int) {
	fmt.Fprintf(w, "== %s: a server that answers every request 200 with x-ratelimit-limit-requests: <limit>, remaining 0, reset 86400s; "+
		"steno-learned with MaxPause %v\n", hostileName, fmtDur(cfg.maxPause))
	fmt.Fprintf(w, "   target: the second request waits ≤ MaxPause (+%v); a caller with a %v deadline gets ErrWouldExceedDeadline within %v\n",
		hostileSlack, fmtDur(cfg.deadline), atOnce)
	header := []string{"limit", "2nd request waited (s)", "min–max", "MaxPause", fmt.Sprintf("caller with a %v deadline got", fmtDur(cfg.deadline)), "after (ms)", "target"}
	var rows [][]string
	var failures []string
	for i, limit := range hostileVariants {
		var ok []hostileFigures
		for round, f := range res[i] {
			if f.err != nil {
				failed++
				failures = append(failures, fmt.Sprintf("limit %s, round %d: %v", limit, round+1, f.err))
				continue
			}
			ok = append(ok, f)
		}
		if len(ok) == 0 {
			rows = append(rows, []string{limit, "FAILED", "—", fmtDur(cfg.maxPause), "—", "—", fmt.Sprintf("FAILED %d/%d", len(res[i]), len(res[i]))})
			continue
		}
		wait := median(ok, func(f hostileFigures) float64 { return f.wait.Seconds() })
		lo := slices.MinFunc(ok, func(a, b hostileFigures) int { return int(a.wait - b.wait) }).wait
		hi := slices.MaxFunc(ok, func(a, b hostileFigures) int { return int(a.wait - b.wait) }).wait
		waited := fmt.Sprintf("%.3f", wait)
		if slices.ContainsFunc(ok, func(f hostileFigures) bool { return f.capped }) {
			waited = "> " + (10*cfg.maxPause + time.Second).String() + " (cancelled)"
		}
		// What the callers with a deadline got, each distinct answer with
		// its count.
		var got []string
		counts := map[string]int{}
		for _, f := range ok {
			s := describeErr(f.dlErr)
			if counts[s] == 0 {
				got = append(got, s)
			}
			counts[s]++
		}
		after := median(ok, func(f hostileFigures) float64 { return float64(f.dlAfter) / float64(time.Millisecond) })
		met := 0
		for _, f := range ok {
			if f.met(cfg.maxPause) {
				met++
			}
		}
		// The verdict on the medians, and on the answer most callers got.
		common := slices.MaxFunc(got, func(a, b string) int { return counts[a] - counts[b] })
		verdict := "MISS"
		if wait <= (cfg.maxPause+hostileSlack).Seconds() && !slices.ContainsFunc(ok, func(f hostileFigures) bool { return f.capped }) &&
			common == describeErr(ratelimit.ErrWouldExceedDeadline) && after <= float64(atOnce/time.Millisecond) {
			verdict = "PASS"
		}
		verdict += fmt.Sprintf(" %d/%d", met, len(res[i]))
		var counted []string
		for _, s := range got {
			counted = append(counted, fmt.Sprintf("%s ×%d", s, counts[s]))
		}
		rows = append(rows, []string{limit, waited, fmt.Sprintf("%.3f–%.3f", lo.Seconds(), hi.Seconds()), fmtDur(cfg.maxPause),
			strings.Join(counted, ", "), fmt.Sprintf("%.1f", after), verdict})
	}
	printTable(w, header, rows)
	for _, f := range failures {
		fmt.Fprintln(w, "   FAILED "+f)
	}
	fmt.Fprintln(w)
	return failed
}

// describeErr names what a caller got: ErrWouldExceedDeadline, the
// context's deadline, or another error.
func describeErr(err error) string {
	switch {
	case errors.Is(err, ratelimit.ErrWouldExceedDeadline):
		return "ErrWouldExceedDeadline"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}
