package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"time"
)

// Timeouts bounds each attempt of a request, so that a server that stops
// answering costs a retry, not a hung call. The bounds fit uploads: none of
// them limits how long an upload or a transcript that keeps moving may take
// in all, as a fixed http.Client.Timeout would.
//
//   - Connect bounds getting a connection: waiting for one from the pool,
//     DNS, dialling, a proxy, the TLS handshake.
//   - Stall bounds each direction of the transfer while it is moving:
//     the upload, then the response's headers and body. A transfer stalls
//     when it moves fewer than MinRate × Stall bytes (at least 1) in a
//     stretch of Stall: the count starts afresh each time that many have
//     moved. With the defaults, a connection that moves nothing, or
//     trickles under 60 KiB, for a minute is a stall; a 25 MB upload at 20
//     KB/s (20 minutes) is not. A transfer of N bytes that is never
//     stalled thus ends within N / MinRate + Stall: the allowance scales
//     with its size, and a server that trickles its answer at 1 byte/s
//     fails after Stall. The response's headers must be complete within
//     Stall of its first byte.
//   - FirstByte bounds the server's work: from the end of the upload to
//     the first byte of its answer. Transcribing a long file takes time, so
//     the default is generous; raise it for a slow self-hosted server.
//
// An attempt that passes a bound is cancelled, and fails with a
// *TimeoutError, which is retried like a dropped connection (see
// RetryBudget for what a timed-out retry costs). A call to a server that
// hangs every attempt at the same point returns after WithMaxAttempts
// times that bound, plus the backoffs between attempts. The caller's
// context still bounds the whole call: its cancellation or deadline is
// returned as the context's error, never as a *TimeoutError.
//
// The upload ends when its last byte is handed to the connection, and the
// answer begins with its first byte, as the HTTP client reports them
// (net/http/httptrace). With a RoundTripper that reports no such events,
// connecting lasts from the start of the attempt to the first byte of
// upload it reads, and FirstByte from the upload's last byte to the
// response. The bounds cover one attempt from its start to the end of its
// response's body; waiting for the limiter comes before and is bounded by
// the caller's context.
//
// In WithTimeouts, a zero field takes its default and a negative one turns
// that bound off (MinRate < 0: only a transfer that moves nothing stalls).
type Timeouts struct {
	Connect   time.Duration
	Stall     time.Duration
	MinRate   int64 // bytes per second; see Stall
	FirstByte time.Duration
}

// The default Timeouts of a Client.
const (
	DefaultConnectTimeout   = 30 * time.Second
	DefaultStallTimeout     = time.Minute
	DefaultMinRate          = 1 << 10 // bytes per second
	DefaultFirstByteTimeout = 10 * time.Minute
)

// resolved returns t with its zero fields set to the defaults.
func (t Timeouts) resolved() Timeouts {
	if t.Connect == 0 {
		t.Connect = DefaultConnectTimeout
	}
	if t.Stall == 0 {
		t.Stall = DefaultStallTimeout
	}
	if t.MinRate == 0 {
		t.MinRate = DefaultMinRate
	}
	if t.FirstByte == 0 {
		t.FirstByte = DefaultFirstByteTimeout
	}
	return t
}

// ErrTimeout matches every *TimeoutError with errors.Is.
var ErrTimeout = errors.New("timeout")

// TimeoutPhase is the part of an attempt that a *TimeoutError bounded.
type TimeoutPhase int

// The phases of an attempt, in order.
const (
	PhaseConnect   TimeoutPhase = iota + 1 // getting a connection (Timeouts.Connect)
	PhaseUpload                            // sending the request (Timeouts.Stall)
	PhaseFirstByte                         // waiting for the answer after the upload (Timeouts.FirstByte)
	PhaseResponse                          // receiving the answer (Timeouts.Stall)
)

func (p TimeoutPhase) String() string {
	switch p {
	case PhaseConnect:
		return "connect"
	case PhaseUpload:
		return "upload"
	case PhaseFirstByte:
		return "first byte"
	case PhaseResponse:
		return "response"
	}
	return fmt.Sprintf("TimeoutPhase(%d)", int(p))
}

// TimeoutError is an attempt cancelled by one of its Timeouts. It matches
// ErrTimeout and os.ErrDeadlineExceeded (the error of an I/O deadline) with
// errors.Is, and has a Timeout method that reports true, as net.Error's do.
// It does not match context.DeadlineExceeded, which remains the sign that
// the caller's own deadline passed.
type TimeoutError struct {
	Phase   TimeoutPhase
	After   time.Duration // the bound that passed: Timeouts.Connect, Stall or FirstByte
	MinRate int64         // for a stall, the rate it was under, in bytes per second; 0: nothing moved
}

func (e *TimeoutError) Error() string {
	switch e.Phase {
	case PhaseConnect:
		return fmt.Sprintf("timeout: no connection within %v", e.After)
	case PhaseFirstByte:
		return fmt.Sprintf("timeout: no answer within %v of the upload's end", e.After)
	}
	if e.MinRate > 0 {
		return fmt.Sprintf("timeout: %s stalled (under %d bytes/s for %v)", e.Phase, e.MinRate, e.After)
	}
	return fmt.Sprintf("timeout: %s stalled (nothing moved for %v)", e.Phase, e.After)
}

// Is reports whether target is ErrTimeout or os.ErrDeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == os.ErrDeadlineExceeded
}

// Timeout reports true.
func (e *TimeoutError) Timeout() bool { return true }

// A watchdog enforces Timeouts on one attempt. It follows the attempt
// through its phases from the HTTP client's trace events and from the
// bytes read from the request body (the upload) and the response body,
// and cancels the attempt's context, with a *TimeoutError as the cause,
// when the phase in force passes its bound. It holds one timer, moved
// lazily: progress only records the new deadline, which the timer finds
// when it fires.
type watchdog struct {
	t      Timeouts // resolved
	need   int64    // bytes that must move within Stall
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	phase    TimeoutPhase // 0: not yet sent, or the response ended
	bound    time.Duration
	deadline time.Time // zero: no bound in force
	moved    int64     // bytes moved in the current stretch
	gen      int       // the newest reading of the upload: 1 for the request's body, more for GetBody's
	doneGen  int       // the newest reading read to its end
	timer    *time.Timer
	timerAt  time.Time
	fired    *TimeoutError
	stopped  bool
}

// newWatchdog returns a watchdog whose context, derived from ctx, is the
// attempt's. Call stop when the attempt is over.
func newWatchdog(ctx context.Context, t Timeouts) *watchdog {
	t = t.resolved()
	w := &watchdog{t: t, need: 1}
	if t.MinRate > 0 && t.Stall > 0 {
		w.need = max(1, int64(float64(t.MinRate)*t.Stall.Seconds()))
	}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	w.ctx = httptrace.WithClientTrace(w.ctx, &httptrace.ClientTrace{
		GetConn: func(string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.phase != PhaseConnect {
				w.enter(PhaseConnect)
			}
		},
		GotConn: func(httptrace.GotConnInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.enter(PhaseUpload)
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.phase == PhaseConnect || w.phase == PhaseUpload {
				w.enter(PhaseFirstByte)
			}
		},
		GotFirstResponseByte: func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.enter(PhaseResponse)
		},
	})
	return w
}

// stop ends the attempt: no bound applies any more, and the attempt's
// context is released. Idempotent.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.cancel(nil)
}

// timedOut returns the timeout that cancelled the attempt, or nil.
func (w *watchdog) timedOut() *TimeoutError {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// do sends req, whose context must be the watchdog's, through hc, watching
// its upload and its response. A response's Body reports a timeout as the
// *TimeoutError; so does the error returned.
func (w *watchdog) do(hc *http.Client, req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		size := req.ContentLength
		req.Body = w.upload(req.Body, size)
		if getBody := req.GetBody; getBody != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := getBody()
				if err != nil {
					return nil, err
				}
				return w.upload(b, size), nil
			}
		}
	}
	w.mu.Lock()
	w.enter(PhaseConnect)
	w.mu.Unlock()
	resp, err := hc.Do(req)
	if err != nil {
		if te := w.timedOut(); te != nil {
			return nil, te
		}
		return nil, err
	}
	w.mu.Lock()
	w.enter(PhaseResponse)
	w.mu.Unlock()
	resp.Body = &watchedResponse{resp.Body, w}
	return resp, nil
}

// enter starts phase p now, with its bound. w.mu is held.
func (w *watchdog) enter(p TimeoutPhase) {
	if w.stopped || w.fired != nil {
		return
	}
	w.phase, w.moved = p, 0
	switch p {
	case PhaseConnect:
		w.bound = w.t.Connect
	case PhaseFirstByte:
		w.bound = w.t.FirstByte
	case PhaseUpload, PhaseResponse:
		w.bound = w.t.Stall
	default:
		w.bound = -1
	}
	w.deadline = time.Time{}
	now := time.Now()
	if w.bound > 0 {
		w.deadline = now.Add(w.bound)
	}
	w.arm(now)
}

// progress counts n bytes moved in the current phase: once w.need have
// moved, a new stretch of Stall begins. w.mu is held.
func (w *watchdog) progress(n int) {
	if n <= 0 || w.bound <= 0 {
		return
	}
	w.moved += int64(n)
	if w.moved >= w.need {
		w.moved = 0
		w.deadline = time.Now().Add(w.bound) // later: the timer finds it when it fires
	}
}

// arm makes the timer fire by the deadline. A timer set for later is
// moved earlier; one set for earlier fires and re-arms itself. w.mu is
// held.
func (w *watchdog) arm(now time.Time) {
	if w.deadline.IsZero() {
		return // a timer in flight finds no deadline and does nothing
	}
	if w.timer != nil && !w.timerAt.IsZero() && !w.timerAt.After(w.deadline) {
		return
	}
	w.timerAt = w.deadline
	if w.timer == nil {
		w.timer = time.AfterFunc(w.deadline.Sub(now), w.fire)
	} else {
		w.timer.Reset(w.deadline.Sub(now))
	}
}

// fire runs when the timer does: it cancels the attempt if the phase in
// force is past its deadline, and otherwise re-arms the timer for it.
func (w *watchdog) fire() {
	w.mu.Lock()
	if w.stopped || w.fired != nil {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	w.timerAt = time.Time{}
	if w.deadline.IsZero() || now.Before(w.deadline) {
		w.arm(now)
		w.mu.Unlock()
		return
	}
	te := &TimeoutError{Phase: w.phase, After: w.bound}
	if (w.phase == PhaseUpload || w.phase == PhaseResponse) && w.need > 1 {
		te.MinRate = w.t.MinRate
	}
	w.fired = te
	w.mu.Unlock()
	w.cancel(te)
}

// upload wraps one reading of the request body, of size bytes.
func (w *watchdog) upload(rc io.ReadCloser, size int64) io.ReadCloser {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	return &watchedUpload{rc: rc, w: w, gen: w.gen, size: size}
}

// watchedUpload is a reading of the request body, whose progress is the
// upload's.
type watchedUpload struct {
	rc   io.ReadCloser
	w    *watchdog
	gen  int
	size int64
	sent int64
}

func (b *watchedUpload) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	w := b.w
	w.mu.Lock()
	defer w.mu.Unlock()
	b.sent += int64(n)
	if b.gen < w.gen {
		return n, err // a reading given up for a newer one
	}
	switch {
	case w.phase == PhaseConnect, w.phase == PhaseFirstByte && b.gen > w.doneGen && n > 0:
		w.enter(PhaseUpload) // a transport without trace events; or a redirect's upload
	case w.phase != PhaseUpload:
		return n, err // the answer began before the upload's end
	}
	w.progress(n)
	if err == io.EOF || (b.size > 0 && b.sent >= b.size) {
		w.doneGen = b.gen
		w.enter(PhaseFirstByte)
	}
	return n, err
}

func (b *watchedUpload) Close() error { return b.rc.Close() }

// watchedResponse is a response body whose reading is the response's
// progress, and which reports the attempt's timeout as its error.
type watchedResponse struct {
	rc io.ReadCloser
	w  *watchdog
}

func (b *watchedResponse) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	w := b.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired != nil && err != nil && err != io.EOF {
		return n, w.fired
	}
	if w.phase == PhaseResponse {
		w.progress(n)
		if err == io.EOF {
			w.enter(0) // the answer is whole: no bound any more
		}
	}
	return n, err
}

func (b *watchedResponse) Close() error { return b.rc.Close() }

// The watchdog of an event stream (see TranscribeStream): from the
// response's headers to the body's first byte the bound is FirstByte, as
// the server is still at work; then the body stalls when nothing moves for
// Stall, whatever the rate; and while the consumer holds an event, no
// bound runs.

// awaitEvents switches w, whose response's headers have come, to the rule
// of an event stream.
func (w *watchdog) awaitEvents() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.need = 1 // only a stream that moves nothing stalls
	w.enter(PhaseFirstByte)
}

// eventsMoving starts, or starts again, the Stall bound of a stream whose
// body has begun.
func (w *watchdog) eventsMoving() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enter(PhaseResponse)
}

// hold suspends every bound while the consumer holds an event.
func (w *watchdog) hold() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enter(0)
}

// firstByteBody tells the watchdog when the first byte of a stream's body
// comes.
type firstByteBody struct {
	r     io.Reader
	w     *watchdog
	begun bool
}

func (b *firstByteBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && !b.begun {
		b.begun = true
		b.w.eventsMoving()
	}
	return n, err
}
