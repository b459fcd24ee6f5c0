package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
)

// display shows a batch's progress on stderr. Its methods may be called
// from any goroutine.
type display interface {
	// setTotal gives the number of jobs, once the walk has counted them.
	setTotal(n int)
	// retrying reports an EventRetrying.
	retrying(e transcribe.Event)
	// finished reports a job's result; gone tells a job cut short by
	// Ctrl-C from a failure.
	finished(r transcribe.BatchResult, gone bool)
	// close ends the display; nothing is written after it.
	close()
}

// isTerminal reports whether w is a terminal, which gets the live display.
// Tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// resultLine is the log line for a finished job; "" for none. File names
// and what the server said are made safe for a terminal (see safe).
func resultLine(r transcribe.BatchResult, gone bool) string {
	switch r.Status {
	case transcribe.StatusDone:
		return fmt.Sprintf("done %s (%.1f s audio, %s) -> %s", transcribe.PrintableLine(r.Job.ID), r.AudioSeconds, plural(r.Attempts, "attempt"), transcribe.PrintableLine(r.OutputPath))
	case transcribe.StatusFailed:
		if gone {
			return fmt.Sprintf("interrupted %s", transcribe.PrintableLine(r.Job.ID))
		}
		return fmt.Sprintf("failed %s: %s", transcribe.PrintableLine(r.Job.ID), reason(r.Err))
	case transcribe.StatusSkipped:
		return fmt.Sprintf("skipped %s (already done)", transcribe.PrintableLine(r.Job.ID))
	case transcribe.StatusPlanned:
		return fmt.Sprintf("planned %s (%.1f s audio, $%.4f)", transcribe.PrintableLine(r.Job.ID), r.AudioSeconds, r.CostUSD)
	}
	return "" // not attempted: the summary counts them
}

// retryLine is the log line for a retry.
func retryLine(e transcribe.Event) string {
	return fmt.Sprintf("retrying %s: attempt %d failed (%s); next in %v", transcribe.PrintableLine(e.Job.ID), e.Attempt, reason(e.Err), e.Wait.Round(time.Millisecond))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// plainDisplay writes one line per finished job and per retry, for logs
// and pipes.
type plainDisplay struct {
	mu sync.Mutex
	w  io.Writer
}

func newPlainDisplay(w io.Writer) *plainDisplay { return &plainDisplay{w: w} }

func (d *plainDisplay) setTotal(int) {}

func (d *plainDisplay) retrying(e transcribe.Event) { d.println(retryLine(e)) }

func (d *plainDisplay) finished(r transcribe.BatchResult, gone bool) { d.println(resultLine(r, gone)) }

func (d *plainDisplay) println(line string) {
	if line == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.w, line)
}

func (d *plainDisplay) close() {}

// liveDisplay redraws two lines in place on a terminal: a bar of files
// done out of the total, with the elapsed time and an ETA; and a line of
// audio minutes, request rate against the limit, requests in flight, 429s
// and failures. Finished jobs and retries are printed above them.
type liveDisplay struct {
	p           *mpb.Progress
	files, info *mpb.Bar
	lim         *ratelimit.Limiter
	start       time.Time

	mu       sync.Mutex
	total    int // -1 until counted
	ended    int // every result
	worked   int // results that were not skipped, for the ETA
	failed   int
	audio    float64
	attempts []time.Time // when recent attempts ended, for the measured rate
}

// rateSpan is the span over which the request rate is measured.
const rateSpan = time.Minute

// newLiveDisplay starts the display on w. It is not stopped by Ctrl-C: it
// shows what finished until close.
func newLiveDisplay(w io.Writer, lim *ratelimit.Limiter) *liveDisplay {
	d := &liveDisplay{lim: lim, start: time.Now(), total: -1}
	d.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(250*time.Millisecond))
	d.files = d.p.New(0, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return d.filesText() }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return d.etaText() })))
	d.info = d.p.New(0, mpb.NopStyle(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return d.infoText() })))
	return d
}

func (d *liveDisplay) setTotal(n int) {
	d.mu.Lock()
	d.total = n
	d.mu.Unlock()
	d.files.SetTotal(int64(n), false)
}

func (d *liveDisplay) retrying(e transcribe.Event) {
	d.mu.Lock()
	d.attempts = append(d.attempts, time.Now())
	d.mu.Unlock()
	fmt.Fprintln(d.p, retryLine(e))
}

func (d *liveDisplay) finished(r transcribe.BatchResult, gone bool) {
	d.mu.Lock()
	d.ended++
	if r.Status != transcribe.StatusSkipped {
		d.worked++
	}
	if r.Status == transcribe.StatusFailed && !gone {
		d.failed++
	}
	if r.Status == transcribe.StatusDone {
		d.audio += r.AudioSeconds
	}
	if r.Attempts > 0 { // the last attempt; earlier ones came as retries
		d.attempts = append(d.attempts, time.Now())
	}
	n := d.ended
	d.mu.Unlock()
	d.files.SetCurrent(int64(n))
	if line := resultLine(r, gone); line != "" {
		fmt.Fprintln(d.p, line)
	}
}

func (d *liveDisplay) close() {
	d.files.SetTotal(-1, true)
	d.info.SetTotal(-1, true)
	d.p.Wait()
}

func (d *liveDisplay) filesText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.total < 0 {
		return fmt.Sprintf("files %d/?", d.ended)
	}
	return fmt.Sprintf("files %d/%d", d.ended, d.total)
}

func (d *liveDisplay) etaText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	elapsed := time.Since(d.start)
	left := d.total - d.ended
	switch {
	case d.total < 0 || d.worked == 0:
		return fmt.Sprintf("elapsed %v  ETA ?", elapsed.Round(time.Second))
	case left <= 0:
		return fmt.Sprintf("elapsed %v", elapsed.Round(time.Second))
	}
	eta := time.Duration(float64(elapsed) / float64(d.worked) * float64(left))
	return fmt.Sprintf("elapsed %v  ETA %v", elapsed.Round(time.Second), eta.Round(time.Second))
}

func (d *liveDisplay) infoText() string {
	s := d.lim.Snapshot()
	d.mu.Lock()
	now := time.Now()
	i := 0
	for i < len(d.attempts) && now.Sub(d.attempts[i]) > rateSpan {
		i++
	}
	d.attempts = d.attempts[i:]
	span := min(rateSpan, max(time.Second, now.Sub(d.start)))
	perMin := float64(len(d.attempts)) / span.Minutes()
	audio, failed := d.audio, d.failed
	d.mu.Unlock()

	paused := ""
	if left := time.Until(s.PausedUntil); left > 0 {
		paused = fmt.Sprintf("  paused %v", left.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("audio %.1f min  requests %.0f/min of %s  in flight %d/%d  429s %d  failed %d%s",
		audio/60, perMin, limitText(s), s.InFlight, s.MaxInFlight, s.RateLimited, failed, paused)
}

// limitText renders a request budget as a rate per minute, comparable to
// the measured one: "50/min (learned)", "360/min (60 per 10s, learned)",
// "adaptive 150/min", or "none known yet" before the server said.
func limitText(s ratelimit.Stats) string {
	b := s.Requests
	switch {
	case b.Source == "adaptive" && !math.IsInf(s.Pace, 1):
		return fmt.Sprintf("adaptive %.0f/min", s.Pace*60)
	case b.Source == "none":
		return "none known yet"
	case b.Limit <= 0 || b.Window <= 0:
		return b.Source
	case b.Window == time.Minute:
		return fmt.Sprintf("%g/min (%s)", b.Limit, b.Source)
	}
	return fmt.Sprintf("%.0f/min (%g per %v, %s)", b.Limit/b.Window.Minutes(), b.Limit, b.Window, b.Source)
}
