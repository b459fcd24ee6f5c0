package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// Job is one input of a batch: a file named by Path, or any other source
// given by Open, Size and Name.
type Job struct {
	// ID names the job in results and places its output (see Input.ID).
	// It defaults to Path.
	ID string
	// Path is a file to transcribe: a regular file (a FIFO, a device or
	// a directory fails its job, without being opened).
	Path string
	// Open, Size and Name describe a source other than a file: Open
	// returns its bytes from the start (it is called again for each
	// attempt), Size is their number, Name the file name to send.
	Open func() (io.ReadCloser, error)
	Size int64
	Name string
	// Request overrides BatchOptions.Request for this job.
	Request *Request
}

func (j Job) id() string {
	if j.ID != "" {
		return j.ID
	}
	if j.Path != "" {
		return j.Path
	}
	return j.Name
}

// Status is how a job of a batch ended.
type Status int

// The statuses of a BatchResult.
const (
	StatusDone         Status = iota // transcribed (and written, with an OutputWriter); in part if Transcription.Missing is set (SplitOptions.AllowPartial)
	StatusFailed                     // its own error: bad input, a request that failed, pieces that failed (a *PartialError)
	StatusSkipped                    // done by an earlier run (OutputWriter.Done)
	StatusNotAttempted               // not sent: the batch was aborted, a budget reached, or ctx cancelled
	StatusPlanned                    // dry run: probed and counted, not sent
)

func (s Status) String() string {
	switch s {
	case StatusDone:
		return "done"
	case StatusFailed:
		return "failed"
	case StatusSkipped:
		return "skipped"
	case StatusNotAttempted:
		return "not attempted"
	case StatusPlanned:
		return "planned"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// BatchResult is the outcome of one job.
type BatchResult struct {
	Job           Job
	Status        Status
	Transcription *Transcription // StatusDone
	Err           error          // StatusFailed and StatusNotAttempted: why
	OutputPath    string         // StatusDone and StatusSkipped, with an OutputWriter
	Attempts      int            // requests sent for the job
	AudioSeconds  float64        // probed duration (estimated for some formats)
	CostUSD       float64        // estimated cost of the job's audio
	Started       time.Time
	Elapsed       time.Duration
}

// ErrBudgetReached is the cause of the jobs a batch did not send because
// a budget of BatchOptions would have been exceeded.
var ErrBudgetReached = errors.New("budget reached")

// AbortError is the cause of the jobs not attempted after a fatal error:
// an exhausted quota, a bad key, a missing model. Err is the error that
// aborted the batch; errors.Is(err, ErrQuotaExceeded) works through it.
type AbortError struct{ Err error }

func (e *AbortError) Error() string { return "batch aborted: " + e.Err.Error() }
func (e *AbortError) Unwrap() error { return e.Err }

// Fatal reports whether err must stop a whole batch: an exhausted quota,
// an invalid key (401), a forbidden or missing model or a wrong URL (403,
// 404, a refused redirect), or an output that cannot be written
// (ErrOutput: a full disk). Every
// later request would fail the same way, spend money that is not there,
// or pay for a transcript that could not be kept.
func Fatal(err error) bool {
	return errors.Is(err, ErrQuotaExceeded) || errors.Is(err, ErrUnauthorized) ||
		errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrOutput) ||
		errors.Is(err, ErrRedirect)
}

// DefaultPricePerMinute holds OpenAI's list prices, in US dollars per
// minute of audio, for cost estimates. Override them with
// BatchOptions.PricePerMinute.
var DefaultPricePerMinute = map[string]float64{
	"whisper-1":              0.006,
	"gpt-4o-transcribe":      0.006,
	"gpt-4o-mini-transcribe": 0.003,
	// Groq: $0.111 and $0.04 an hour (second-hand, 2026).
	"whisper-large-v3":       0.111 / 60,
	"whisper-large-v3-turbo": 0.04 / 60,
}

// DefaultBatchConcurrency is how many jobs a batch works on at once unless
// told otherwise: as many as a default limiter lets be in flight, so that
// the account's budget, not this number, is what limits a batch.
const DefaultBatchConcurrency = ratelimit.DefaultMaxInFlight

// BatchOptions configures BatchTranscribe. The zero value transcribes every
// job with the zero Request, DefaultBatchConcurrency at a time, writing
// nothing.
type BatchOptions struct {
	// Request is used for jobs without a Request of their own.
	Request Request
	// Concurrency is how many jobs are worked on at once (default
	// DefaultBatchConcurrency).
	// Requests in flight are bounded by the client's limiter as well.
	Concurrency int
	// Output, when set, receives each transcript as it arrives, and jobs
	// whose transcript it already holds are skipped. The pieces of a cut
	// file are kept there as they arrive, so that a file one of whose
	// pieces failed costs only that piece when it is sent again. An error
	// writing to it (ErrOutput: a full disk) stops the batch.
	Output *OutputWriter
	// MaxAudioSeconds, MaxRequests and MaxCostUSD cap the batch (0: no
	// cap). They are checked before each request, from each job's probed
	// duration; a job that would pass one is not sent and the batch ends,
	// its remaining jobs not attempted with ErrBudgetReached.
	MaxAudioSeconds float64
	MaxRequests     int
	MaxCostUSD      float64
	// PricePerMinute overrides DefaultPricePerMinute, per model.
	PricePerMinute map[string]float64
	// DryRun probes and counts every job and sends nothing: results are
	// StatusPlanned, with AudioSeconds and CostUSD, or StatusFailed for
	// input that would fail before it is sent (a file over the size limit
	// that cannot be cut among them: checked from its header, without
	// decoding it).
	DryRun bool
	// Progress, when set, is called with each event, one at a time.
	Progress func(Event)
}

// EventKind is the kind of a progress Event.
type EventKind int

// Progress events of a batch.
const (
	EventStarted  EventKind = iota // a job began (probing, then sending)
	EventRetrying                  // a request failed and will be retried after Wait
	EventFinished                  // a job ended: see Result
)

// Event is a step of a batch, for progress displays.
type Event struct {
	Kind    EventKind
	Job     Job
	Attempt int           // EventRetrying: the attempt that failed
	Wait    time.Duration // EventRetrying: the wait before the next
	Err     error         // EventRetrying: why
	Result  *BatchResult  // EventFinished
}

// batch is the shared state of one BatchTranscribe.
type batch struct {
	c    *Client
	opts BatchOptions

	mu       sync.Mutex
	abort    error // set once: *AbortError or ErrBudgetReached
	audio    float64
	cost     float64
	requests int
	progress sync.Mutex
}

// BatchTranscribe transcribes jobs concurrently and yields their results as
// they finish. It pulls jobs from the sequence only as workers free up, so
// the sequence may be endless or huge.
//
// A fatal error (see Fatal) aborts the batch: no request is sent after it,
// requests already in flight finish (and their transcripts are kept), and
// every job not yet sent is yielded as StatusNotAttempted with an
// *AbortError. Budgets end a batch the same way, with ErrBudgetReached.
// Bad input fails only its own job. With an Output, a transcript that
// cannot be written (a full disk) is fatal: the batch stops before another
// request is paid for.
//
// Cancelling ctx stops the batch as promptly: no job is pulled from the
// sequence after it, every job pulled and not yet sent is yielded as
// StatusNotAttempted with ctx's error, and requests in flight are cut (those
// jobs fail with ctx's error, unless their answer was in). The sequence then
// ends.
//
// Breaking out of the loop stops new work; BatchTranscribe returns once
// the jobs in progress have finished (their transcripts are written, but not
// yielded). No goroutine outlives it.
//
// It returns an error, and no sequence, for options that cannot work: a
// negative cap, or a cost cap for a model with no known price.
func (c *Client) BatchTranscribe(ctx context.Context, jobs iter.Seq[Job], opts BatchOptions) (iter.Seq[BatchResult], error) {
	if opts.Concurrency < 0 || opts.MaxAudioSeconds < 0 || opts.MaxRequests < 0 || opts.MaxCostUSD < 0 {
		return nil, errors.New("transcribe: negative concurrency or budget")
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultBatchConcurrency
	}
	b := &batch{c: c, opts: opts}
	if opts.MaxCostUSD > 0 {
		if _, ok := b.price(b.model(opts.Request)); !ok {
			return nil, fmt.Errorf("transcribe: no price known for model %q: set BatchOptions.PricePerMinute", b.model(opts.Request))
		}
	}
	return func(yield func(BatchResult) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		todo := make(chan Job)
		results := make(chan BatchResult)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // the feeder
			defer close(todo)
			// unsent reports j, pulled when ctx was done, as not
			// attempted; the feeder then pulls no more.
			unsent := func(j Job) {
				r := BatchResult{Job: j, Status: StatusNotAttempted, Err: context.Cause(ctx)}
				b.event(Event{Kind: EventFinished, Job: j, Result: &r})
				select {
				case results <- r:
				case <-stop:
				}
			}
			for j := range jobs {
				if ctx.Err() != nil {
					unsent(j)
					return
				}
				r := BatchResult{Job: j, Status: StatusNotAttempted, Err: b.aborted()}
				out, next := results, chan Job(nil) // an aborted batch reports jobs at once
				if r.Err == nil {
					out, next = nil, todo
				} else {
					b.event(Event{Kind: EventFinished, Job: j, Result: &r})
				}
				select {
				case out <- r:
				case next <- j:
				case <-ctx.Done():
					if next != nil {
						unsent(j)
					} else {
						select { // already reported as finished
						case results <- r:
						case <-stop:
						}
					}
					return
				case <-stop:
					return
				}
				if ctx.Err() != nil { // pull no more
					return
				}
			}
		})
		for range opts.Concurrency {
			wg.Go(func() {
				for j := range todo {
					results <- b.run(ctx, j)
				}
			})
		}
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			wg.Wait()
			close(results)
		}()
		defer func() { <-closed }()
		for r := range results {
			if !yield(r) {
				close(stop)
				for range results { // the jobs in progress finish
				}
				return
			}
		}
	}, nil
}

// run works one job through: open, check, resume, probe, budget, send,
// write.
func (b *batch) run(ctx context.Context, j Job) (r BatchResult) {
	r = BatchResult{Job: j, Started: time.Now()}
	b.event(Event{Kind: EventStarted, Job: j})
	defer func() {
		r.Elapsed = time.Since(r.Started)
		b.event(Event{Kind: EventFinished, Job: j, Result: &r})
	}()
	fail := func(st Status, err error) BatchResult {
		r.Status, r.Err = st, err
		return r
	}
	if cause := b.aborted(); cause != nil {
		return fail(StatusNotAttempted, cause)
	}
	if ctx.Err() != nil {
		return fail(StatusNotAttempted, context.Cause(ctx))
	}
	req := b.opts.Request
	if j.Request != nil {
		req = *j.Request
	}
	src, in, err := b.c.openJob(j, req)
	if err != nil {
		return fail(StatusFailed, err)
	}
	defer src.close()
	var kept pieceStore
	if w := b.opts.Output; w != nil {
		path, done, err := w.resume(in, req, !b.opts.DryRun)
		switch {
		case err != nil && Fatal(err):
			b.setAbort(&AbortError{Err: err})
			return fail(StatusFailed, err)
		case err != nil: // no name to write it under: found before it is paid for
			return fail(StatusFailed, err)
		case done:
			r.Status, r.OutputPath = StatusSkipped, path
			return r
		}
		if !b.opts.DryRun {
			p, err := w.pieces(in, req, func(err error) { b.setAbort(&AbortError{Err: err}) })
			if err != nil {
				return fail(StatusFailed, err)
			}
			kept = p
		}
	}
	info, err := src.info()
	if err != nil {
		return fail(StatusFailed, &InputError{Name: src.name, Size: src.file.Size, Err: fmt.Errorf("%w: %v", ErrInvalidAudio, err)})
	}
	r.AudioSeconds = info.Duration.Seconds()
	r.CostUSD = b.costOf(b.model(req), r.AudioSeconds)
	if b.opts.DryRun {
		if err := b.c.checkCut("/audio/transcriptions", src, req); err != nil {
			return fail(StatusFailed, err)
		}
		b.mu.Lock()
		b.audio += r.AudioSeconds
		b.cost += r.CostUSD
		b.mu.Unlock()
		r.Status = StatusPlanned
		return r
	}
	if err := b.spend(r.AudioSeconds, r.CostUSD); err != nil {
		return fail(StatusNotAttempted, err)
	}
	t, attempts, err := b.send(ctx, src, req, hooks{
		beforeAttempt: b.mayRequest,
		afterAttempt: func(err error) {
			if Fatal(err) { // before another request can leave
				b.setAbort(&AbortError{Err: err})
			}
		},
		onRetry: func(attempt int, wait time.Duration, err error) {
			b.event(Event{Kind: EventRetrying, Job: j, Attempt: attempt, Wait: wait, Err: err})
		},
	}, kept)
	r.Attempts = attempts
	switch {
	case err != nil && attempts == 0 && (errors.Is(err, ErrBudgetReached) || errors.As(err, new(*AbortError))):
		return fail(StatusNotAttempted, err)
	case err != nil && attempts == 0 && ctx.Err() != nil: // cancelled before it was sent
		return fail(StatusNotAttempted, context.Cause(ctx))
	case err != nil:
		if Fatal(err) { // a piece that could not be kept
			b.setAbort(&AbortError{Err: err})
		}
		return fail(StatusFailed, err)
	}
	r.Status, r.Transcription = StatusDone, t
	if b.opts.Output != nil {
		if r.OutputPath, err = b.opts.Output.Write(in, req, t); err != nil {
			if Fatal(err) { // a full disk: stop before another request is paid for
				b.setAbort(&AbortError{Err: err})
			}
			return fail(StatusFailed, err)
		}
	}
	return r
}

// send sends a job's source as Client.send does, keeping the pieces of a
// file that is cut in kept, when not nil, so that a re-run sends only the
// pieces that failed.
func (b *batch) send(ctx context.Context, src *source, req Request, h hooks, kept pieceStore) (*Transcription, int, error) {
	const endpoint = "/audio/transcriptions"
	if kept == nil {
		return b.c.send(ctx, endpoint, src, req, h)
	}
	_, size, err := b.c.form(endpoint, src, req)
	if err != nil || !b.c.inPieces(src, size, req, false) {
		return b.c.send(ctx, endpoint, src, req, h)
	}
	t, attempts, err := b.c.sendPiecesKept(ctx, endpoint, src, req, h, kept)
	if err != nil {
		b.c.log.LogAttrs(ctx, slog.LevelWarn, "transcribe: failed",
			slog.String("file", src.name), slog.Int("attempts", attempts), slog.Any("error", err))
	}
	return t, attempts, err
}

// event reports e to the progress callback, one event at a time.
func (b *batch) event(e Event) {
	if b.opts.Progress == nil {
		return
	}
	b.progress.Lock()
	defer b.progress.Unlock()
	b.opts.Progress(e)
}

// aborted returns why the batch stopped, or nil.
func (b *batch) aborted() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.abort
}

func (b *batch) setAbort(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.abort == nil {
		b.abort = cause
		b.c.log.LogAttrs(context.Background(), slog.LevelWarn, "transcribe: batch stopped", slog.Any("cause", cause))
	}
}

// spend counts a job's audio and cost against the caps, or ends the batch
// when they would pass one.
func (b *batch) spend(seconds, cost float64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.abort != nil {
		return b.abort
	}
	o := b.opts
	if (o.MaxAudioSeconds > 0 && b.audio+seconds > o.MaxAudioSeconds) || (o.MaxCostUSD > 0 && b.cost+cost > o.MaxCostUSD) {
		b.abort = fmt.Errorf("%w: %.0f s of audio and $%.4f spent of caps %.0f s and $%.4f", ErrBudgetReached, b.audio, b.cost, o.MaxAudioSeconds, o.MaxCostUSD)
		return b.abort
	}
	b.audio += seconds
	b.cost += cost
	return nil
}

// mayRequest vetoes a request once the batch is aborted or its request cap
// reached; it runs just before each request is sent.
func (b *batch) mayRequest() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.abort != nil {
		return b.abort
	}
	if b.opts.MaxRequests > 0 && b.requests >= b.opts.MaxRequests {
		b.abort = fmt.Errorf("%w: %d requests sent, the cap", ErrBudgetReached, b.requests)
		return b.abort
	}
	b.requests++
	return nil
}

// price returns the price per minute of model.
func (b *batch) price(model string) (float64, bool) {
	if p, ok := b.opts.PricePerMinute[model]; ok {
		return p, true
	}
	p, ok := DefaultPricePerMinute[model]
	return p, ok
}

// costOf estimates what seconds of audio cost with model, at least the
// provider's minimum billed length (Groq: 10 s); 0 when its price is
// unknown.
func (b *batch) costOf(model string, seconds float64) float64 {
	p, _ := b.price(model)
	seconds = max(seconds, b.c.prov.minBilled)
	return math.Round(p*seconds/60*1e6) / 1e6
}

// model is the model req is sent to: its own, else the provider's default.
func (b *batch) model(req Request) string {
	if req.Model != "" {
		return req.Model
	}
	return b.c.prov.defaultModel
}

// openJob makes a source of a job, and the Input that identifies it.
func (c *Client) openJob(j Job, req Request) (*source, Input, error) {
	in := Input{ID: j.id(), Path: j.Path, Size: j.Size}
	if j.Path != "" {
		src, err := c.openPath(j.Path, req)
		if err != nil {
			return nil, in, err
		}
		if src.stat != nil { // the file opened, not one put at its path since
			in.Size, in.ModTime = src.stat.Size(), src.stat.ModTime()
		}
		return src, in, nil
	}
	if j.Open == nil {
		return nil, in, &InputError{Name: in.ID, Err: errors.New("job has neither Path nor Open")}
	}
	src, err := c.newSource(in.ID, j.Name, req, multipart.File{Size: j.Size, Open: j.Open})
	return src, in, err
}
