package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/ratelimit/redisstore"
	"github.com/steno-go/steno/transcribe"
)

// Defaults of a worker.
const (
	defaultConcurrency   = 4
	defaultVisibility    = time.Minute
	defaultMaxDeliveries = 5
	defaultDrain         = 30 * time.Second
)

// workConfig is what `fleet work` is asked.
type workConfig struct {
	redis         redisFlags
	out           string
	name          string
	concurrency   int
	budgets       ratelimit.Config // Requests, Tokens, AudioSeconds, FallbackShare, FailClosed, LeaseTTL
	visibility    time.Duration
	maxDeliveries int
	drain         time.Duration
	untilEmpty    bool
	req           transcribe.Request
}

// formats are the accepted values of -format.
var formats = []transcribe.ResponseFormat{transcribe.JSON, transcribe.Text, transcribe.SRT,
	transcribe.VTT, transcribe.VerboseJSON, transcribe.DiarizedJSON}

func parseWorkFlags(args []string, stderr io.Writer) (workConfig, int) {
	var c workConfig
	fs := flag.NewFlagSet("fleet work", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: fleet work [flags]

Takes jobs from the queue, transcribes them within the fleet's shared
budget, and writes each transcript into -out the moment it arrives, as the
batch CLI would; until stopped (SIGINT, SIGTERM), or with -until-empty
until the queue has nothing left.

The API is read from the environment, as the batch CLI reads it:
OPENAI_API_KEY and OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT and
AZURE_OPENAI_API_KEY, GROQ_API_KEY. For the simulated API of
'fleet simulate': OPENAI_BASE_URL=<its URL> OPENAI_API_KEY=sk-simulated.

exit status: 0 stopped as asked; 1 could not start; 2 usage error; 3 the
fleet is halted (quota exhausted, key or model refused, output unwritable).

flags:
`)
		fs.PrintDefaults()
	}
	host, _ := os.Hostname()
	c.redis.register(fs)
	var format string
	fs.StringVar(&c.out, "out", "transcripts", "`folder` the transcripts go to, shared by the workers (created if missing)")
	fs.StringVar(&c.name, "name", fmt.Sprintf("%s-%d", host, os.Getpid()), "this worker's `name` in the queue and the logs")
	fs.IntVar(&c.concurrency, "concurrency", defaultConcurrency, "jobs worked on at once by this worker")
	fs.Var(&c.budgets.Requests, "requests", "the fleet's request budget, as `N/WINDOW`: 50/1m (default: learned from the server's headers)")
	fs.Var(&c.budgets.Tokens, "tokens", "the fleet's token budget (gpt-4o models), as `N/WINDOW` (default: learned)")
	fs.Var(&c.budgets.AudioSeconds, "audio-seconds", "the fleet's audio-seconds budget, as `N/WINDOW`: 7200/1h (default: learned from 429s)")
	fs.Float64Var(&c.budgets.FallbackShare, "fallback-share", 0, "share of each budget this worker spends alone while Redis is unreachable (0: ratelimit's default, 0.25; give 1/N for N workers)")
	fs.BoolVar(&c.budgets.FailClosed, "fail-closed", false, "send nothing while Redis is unreachable, instead of spending -fallback-share")
	fs.DurationVar(&c.budgets.LeaseTTL, "lease-ttl", 0, "how long the requests of a worker that died count against the fleet's budget (0: ratelimit's default, 30s)")
	fs.DurationVar(&c.visibility, "visibility", defaultVisibility, "a job whose worker has not renewed its hold for this long is taken over by another (the hold is renewed every third of it)")
	fs.IntVar(&c.maxDeliveries, "max-deliveries", defaultMaxDeliveries, "a job delivered this many times without finishing goes to the failed list")
	fs.DurationVar(&c.drain, "drain", defaultDrain, "on SIGINT or SIGTERM, time given to the jobs in progress to finish before they are cut and handed back")
	fs.BoolVar(&c.untilEmpty, "until-empty", false, "stop once the queue has no job left (none waiting, none in progress anywhere)")
	fs.StringVar(&format, "format", "json", "json | text | srt | vtt | verbose_json | diarized_json (json and text are written as .txt)")
	fs.StringVar(&c.req.Model, "model", "", "model, or Azure's deployment (default: the provider's, whisper-1 for OpenAI)")
	fs.StringVar(&c.req.Language, "language", "", "ISO-639-1 language of the audio, e.g. en (default: detected)")
	fs.StringVar(&c.req.Prompt, "prompt", "", "text to guide the transcripts' style or vocabulary")
	if code := parse(fs, args); code >= 0 {
		return c, code
	}
	c.req.ResponseFormat = transcribe.ResponseFormat(format)
	problems := c.redis.check()
	if !containsFormat(c.req.ResponseFormat) {
		problems = append(problems, fmt.Sprintf("-format %q: want json, text, srt, vtt, verbose_json or diarized_json", format))
	}
	if c.out == "" {
		problems = append(problems, "-out: want a folder")
	}
	if c.name == "" || strings.ContainsFunc(c.name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		problems = append(problems, "-name: want a name without spaces or control characters")
	}
	if c.concurrency < 1 {
		problems = append(problems, fmt.Sprintf("-concurrency %d: want at least 1", c.concurrency))
	}
	if c.visibility < 300*time.Millisecond {
		problems = append(problems, fmt.Sprintf("-visibility %v: want at least 300ms (and more than a hiccup of Redis or the network)", c.visibility))
	}
	if c.maxDeliveries < 1 {
		problems = append(problems, fmt.Sprintf("-max-deliveries %d: want at least 1", c.maxDeliveries))
	}
	if c.drain < 0 {
		problems = append(problems, fmt.Sprintf("-drain %v: want 0 or more", c.drain))
	}
	if !(c.budgets.FallbackShare >= 0 && c.budgets.FallbackShare <= 1) {
		problems = append(problems, fmt.Sprintf("-fallback-share %v: want 0 to 1", c.budgets.FallbackShare))
	}
	if c.budgets.LeaseTTL < 0 {
		problems = append(problems, fmt.Sprintf("-lease-ttl %v: want 0 or more", c.budgets.LeaseTTL))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %s (jobs come from the queue: see 'fleet produce')", transcribe.PrintableLine(fs.Arg(0))))
	}
	if len(problems) > 0 {
		return c, usage(stderr, "work", problems)
	}
	return c, -1
}

func containsFormat(f transcribe.ResponseFormat) bool {
	for _, g := range formats {
		if f == g {
			return true
		}
	}
	return false
}

// apiKey returns the key the client of provider p sends: the provider's
// own variable, as transcribe.NewClient reads it. It is used only for its
// fingerprint (redisstore.Account), never printed.
func apiKey(p transcribe.Provider) string {
	switch p.Name {
	case "Azure OpenAI":
		return os.Getenv("AZURE_OPENAI_API_KEY")
	case "Groq":
		return os.Getenv("GROQ_API_KEY")
	}
	return os.Getenv("OPENAI_API_KEY")
}

// runWork is `fleet work`.
func runWork(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseWorkFlags(args, stderr)
	if code >= 0 {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("worker", cfg.name)

	// The provider, and the account whose budget the fleet shares: a
	// fingerprint of the key (or, for a server that needs none, of its
	// URL), never the key.
	probe, err := transcribe.NewClient()
	if err != nil {
		fmt.Fprintf(stderr, "fleet work: %s\n", strings.TrimPrefix(err.Error(), "transcribe: "))
		return exitUsage
	}
	p := probe.Provider()
	account := redisstore.Account(p.BaseURL)
	if key := apiKey(p); key != "" {
		account = redisstore.Account(key)
	}
	if cfg.req.Model == "" {
		if cfg.req.Model = p.DefaultModel; cfg.req.Model == "" {
			fmt.Fprintf(stderr, "fleet work: %s needs -model DEPLOYMENT, the deployment to send to\n", p.Name)
			return exitUsage
		}
	}

	rdb, where, err := cfg.redis.connect(ctx)
	if err != nil {
		log.Error("fleet work: cannot reach Redis", "error", err)
		return exitFailed
	}
	defer rdb.Close()
	q := newQueue(rdb, cfg.redis.queue)
	gctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	err = q.ensureGroup(gctx)
	cancel()
	if err != nil {
		log.Error("fleet work: cannot create the queue", "redis", where, "error", err)
		return exitFailed
	}

	lc := cfg.budgets
	lc.MaxInFlight = cfg.concurrency
	lc.Logger = log
	lc.Store = redisstore.New(rdb, account)
	lim, err := ratelimit.New(lc)
	if err != nil {
		fmt.Fprintln(stderr, "fleet work:", err)
		return exitUsage
	}
	client, err := transcribe.NewClient(transcribe.WithLimiter(lim))
	if err != nil {
		fmt.Fprintf(stderr, "fleet work: %s\n", strings.TrimPrefix(err.Error(), "transcribe: "))
		return exitUsage
	}
	out := newSharedOutput(cfg.out)
	out.log = log
	if err := out.with(ctx, func(*transcribe.OutputWriter) error { return nil }); err != nil {
		log.Error("fleet work: output folder", "error", err)
		return exitFailed
	}

	budget := "learned from the server's headers"
	if r := cfg.budgets.Requests; r.N > 0 {
		budget = fmt.Sprintf("%g requests per %v, for the fleet", r.N, r.Per)
	}
	log.Info("fleet work: started", "provider", p.String(), "model", cfg.req.Model, "format", string(cfg.req.ResponseFormat),
		"redis", where, "queue", cfg.redis.queue, "out", cfg.out, "concurrency", cfg.concurrency, "budget", budget)

	finished := make(chan struct{})
	defer close(finished)
	hard, cutJobs := context.WithCancel(context.Background())
	defer cutJobs()
	go func() { // after the first signal, -drain for the jobs in progress
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		log.Info("fleet work: stopping: no more jobs taken; waiting for those in progress", "drain", cfg.drain)
		t := time.NewTimer(cfg.drain)
		defer t.Stop()
		select {
		case <-t.C:
			log.Warn("fleet work: drain time over: cutting the jobs in progress and handing them back")
			cutJobs()
		case <-finished:
		}
	}()

	take, stopTaking := context.WithCancel(ctx)
	defer stopTaking()
	w := &worker{cfg: cfg, q: q, client: client, out: out, log: log, hard: hard, stopTaking: stopTaking, cursor: "0-0"}
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Go(func() { w.slot(take) })
	}
	wg.Wait()

	lctx, cancel := context.WithTimeout(context.Background(), redisOpTimeout)
	defer cancel()
	if err := q.leave(lctx, cfg.name); err != nil {
		log.Warn("fleet work: could not leave the queue's group", "error", err)
	}
	if reason := w.halt.Load(); reason != nil {
		log.Error("fleet work: stopped: the fleet is halted", "reason", *reason)
		return exitHalted
	}
	log.Info("fleet work: stopped", "jobs", w.jobs.Load())
	return exitOK
}

// worker is one `fleet work` process.
type worker struct {
	cfg        workConfig
	q          *queue
	client     *transcribe.Client
	out        *sharedOutput
	log        *slog.Logger
	hard       context.Context // done when the jobs in progress must be cut
	stopTaking context.CancelFunc

	mu     sync.Mutex
	cursor string // where the next scan for jobs to take over starts

	halt    atomic.Pointer[string] // why the fleet is halted, once seen
	jobs    atomic.Int64           // jobs finished (done, or failed for good)
	emptied atomic.Bool            // the queue was found empty (-until-empty)
}

// slot takes jobs one after another until take is done, the fleet is
// halted, or, with -until-empty, the queue is empty.
func (w *worker) slot(take context.Context) {
	backoff := 100 * time.Millisecond
	retryWait := minRetryWait
	for take.Err() == nil {
		if w.halted(take) {
			w.stopTaking()
			return
		}
		d, err := w.next(take)
		if err != nil {
			if take.Err() != nil {
				return
			}
			if strings.Contains(err.Error(), "NOGROUP") {
				// The stream is gone (a Redis restarted without
				// persistence, a key deleted): wait on a new one.
				ctx, cancel := context.WithTimeout(take, redisOpTimeout)
				err = errors.Join(err, w.q.ensureGroup(ctx))
				cancel()
			}
			w.log.Warn("fleet work: cannot take jobs from Redis; trying again", "in", backoff, "error", err)
			sleep(take, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if d == nil {
			if w.cfg.untilEmpty && w.empty(take) {
				if w.emptied.CompareAndSwap(false, true) {
					w.log.Info("fleet work: the queue is empty")
				}
				w.stopTaking()
				return
			}
			continue
		}
		if w.process(*d) == outRetry {
			// The API or the output failing: do not run through the
			// queue meanwhile.
			sleep(take, retryWait/2+rand.N(retryWait))
			retryWait = min(2*retryWait, maxRetryWait)
		} else {
			retryWait = minRetryWait
		}
	}
}

// The pause of a slot after a job failed in a way that may pass (the API
// down, the output folder held): doubled after each failure in a row,
// jittered.
const (
	minRetryWait = time.Second
	maxRetryWait = time.Minute
)

// halted reports whether the fleet is halted (an error that stops every
// worker), remembering why.
func (w *worker) halted(ctx context.Context) bool {
	if w.halt.Load() != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	reason, err := w.q.halted(ctx)
	if err != nil || reason == "" {
		return false // Redis unreachable: taking a job fails the same way
	}
	w.halt.CompareAndSwap(nil, &reason)
	return true
}

// empty reports whether the queue has no job left.
func (w *worker) empty(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	n, err := w.q.left(ctx)
	return err == nil && n == 0
}

// next returns a job: one a dead worker left, else a new one, waiting a
// little for it; nil when there is none.
func (w *worker) next(ctx context.Context) (*delivery, error) {
	w.mu.Lock()
	cursor := w.cursor
	w.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	d, next, err := w.q.claim(cctx, w.cfg.name, w.cfg.visibility, cursor)
	cancel()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.cursor = next
	w.mu.Unlock()
	if d != nil {
		return d, nil
	}
	block := min(time.Second, w.cfg.visibility/2)
	rctx, cancel := context.WithTimeout(ctx, block+redisOpTimeout)
	defer cancel()
	return w.q.read(rctx, w.cfg.name, block)
}

// op returns a context for one Redis operation that must run even while
// the worker stops (acknowledging, handing back).
func op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), redisOpTimeout)
}

// outcome is how a job ended, which decides what becomes of its entry.
type outcome int

const (
	outDone     outcome = iota // transcript recorded (now or before): acknowledged
	outFailed                  // cannot succeed: to the failed list
	outRetry                   // may succeed later: left pending, taken again after -visibility
	outGiveBack                // the worker stops: handed back at once
	outLost                    // another worker took it over: left alone
)

// errLost is the cause of a job's context when its hold was lost.
var errLost = errors.New("the job was taken over by another worker")

// process works on one delivered job, settles its entry, and returns how
// the job ended.
func (w *worker) process(d delivery) outcome {
	log := w.log.With("job", d.Job.ID, "entry", d.MsgID)
	if d.Bad != "" {
		w.settle(d, log, outFailed, d.Bad)
		return outFailed
	}
	if d.Claimed {
		ctx, cancel := op()
		n, err := w.q.deliveries(ctx, d.MsgID)
		cancel()
		switch {
		case err != nil:
			log.Warn("fleet work: cannot reach Redis; the job will be taken again", "error", err)
			return outRetry
		case n > int64(w.cfg.maxDeliveries):
			w.settle(d, log, outFailed, fmt.Sprintf("delivered %d times without finishing (its workers died, were stopped or kept failing)", n-1))
			return outFailed
		}
		log.Info("fleet work: taking over a job whose worker went silent", "delivery", n)
	}
	ctx, cancel := op()
	holder, err := w.q.takeLease(ctx, d, w.cfg.visibility)
	cancel()
	switch {
	case err != nil:
		log.Warn("fleet work: cannot reach Redis; the job will be taken again", "error", err)
		return outRetry
	case holder != "":
		// Another entry of the same file is in progress: it stays
		// pending until that one records the transcript, so this one
		// can go.
		log.Info("fleet work: the same file is in progress under another entry; dropping this one", "other", holder)
		w.settle(d, log, outDone, "")
		return outDone
	}

	job, cancelJob := context.WithCancelCause(w.hard)
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		w.heartbeat(job, cancelJob, d, log)
	}()
	how, why := w.work(job, d, log)
	cancelJob(nil)
	<-beat
	if errors.Is(context.Cause(job), errLost) && how != outDone {
		how = outLost
	}
	w.settle(d, log, how, why)
	return how
}

// settle does with d's entry what its outcome says.
func (w *worker) settle(d delivery, log *slog.Logger, how outcome, why string) {
	ctx, cancel := op()
	defer cancel()
	var err error
	switch how {
	case outDone:
		w.jobs.Add(1)
		if err = w.q.ack(ctx, d); err != nil {
			log.Warn("fleet work: could not acknowledge the job; it will be delivered again, and skipped: its transcript is recorded", "error", err)
		}
	case outFailed:
		w.jobs.Add(1)
		log.Error("fleet work: failed for good; see the failed list", "error", why)
		if err = w.q.fail(ctx, w.cfg.name, d, why); err != nil {
			log.Warn("fleet work: could not move the job to the failed list; it will be delivered again", "error", err)
		}
	case outRetry:
		log.Warn("fleet work: failed; another try after the visibility timeout", "error", why, "visibility", w.cfg.visibility)
	case outGiveBack:
		if err = w.q.giveBack(ctx, w.cfg.name, d, w.cfg.visibility); err != nil {
			log.Warn("fleet work: could not hand the job back; it will be taken over after the visibility timeout", "error", err)
		} else {
			log.Info("fleet work: handed the job back")
		}
		return // the lease went with it
	case outLost:
		log.Warn("fleet work: " + errLost.Error() + "; left to it")
		return
	}
	if err := w.q.dropLease(ctx, d); err != nil {
		log.Warn("fleet work: could not release the file's lease; it expires by itself", "error", err)
	}
}

// heartbeat renews the hold on d every third of the visibility timeout
// until ctx is done; when the hold is lost, it cancels the job with
// errLost.
func (w *worker) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, d delivery, log *slog.Logger) {
	every := w.cfg.visibility / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, hcancel := context.WithTimeout(ctx, min(every, redisOpTimeout))
		ok, err := w.q.heartbeat(hctx, w.cfg.name, d, w.cfg.visibility)
		hcancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("fleet work: cannot renew the hold on the job; trying again", "error", err)
		case !ok:
			cancel(errLost)
			return
		}
	}
}

// work transcribes d's file unless its transcript is recorded, and
// records it.
func (w *worker) work(ctx context.Context, d delivery, log *slog.Logger) (outcome, string) {
	start := time.Now()
	st, err := os.Stat(d.Job.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		return outFailed, err.Error()
	case err != nil:
		return outRetry, err.Error()
	case !st.Mode().IsRegular():
		return outFailed, fmt.Sprintf("%s is not a regular file", d.Job.Path)
	}
	in := transcribe.Input{ID: d.Job.ID, Path: d.Job.Path, Size: st.Size(), ModTime: st.ModTime()}
	path, done, err := w.out.done(ctx, in, w.cfg.req)
	if err != nil {
		return w.failure(ctx, d, err)
	}
	if done {
		log.Info("fleet work: already transcribed: not sent again", "path", path)
		return outDone, ""
	}
	if w.halted(ctx) {
		return outGiveBack, ""
	}
	t, err := w.client.TranscribeFile(ctx, d.Job.Path, w.cfg.req)
	if err != nil {
		return w.failure(ctx, d, err)
	}
	// Paid for: written however long the folder is held by another
	// process, and even once the jobs in progress are cut, for
	// writeGrace more.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(w.hard, func() { time.AfterFunc(writeGrace, cancel) })()
	path, first, err := w.out.write(wctx, in, w.cfg.req, t)
	if err != nil {
		log.Error("fleet work: a transcript paid for could not be written", "error", err)
		return w.failure(ctx, d, err)
	}
	if !first {
		log.Warn("fleet work: another worker recorded this file first: it was paid for twice", "path", path)
	}
	log.Info("fleet work: transcribed", "path", path, "attempts", t.Attempts, "elapsed", time.Since(start).Round(time.Millisecond))
	return outDone, ""
}

// writeGrace is how long a transcript that arrived is still waited to be
// written after the jobs in progress were cut.
const writeGrace = 10 * time.Second

// failure decides what an error of d's job means for its entry, and
// halts the fleet for an error that would fail every job.
func (w *worker) failure(ctx context.Context, d delivery, err error) (outcome, string) {
	var inErr *transcribe.InputError
	switch {
	case ctx.Err() != nil && !transcribe.Fatal(err):
		return outGiveBack, err.Error()
	case transcribe.Fatal(err):
		reason := fmt.Sprintf("worker %s, job %s: %v", w.cfg.name, d.Job.ID, err)
		w.log.Error("fleet work: halting the fleet: no job can succeed until this is fixed", "job", d.Job.ID, "error", err)
		hctx, cancel := op()
		herr := w.q.setHalt(hctx, reason)
		cancel()
		if herr != nil {
			w.log.Warn("fleet work: could not halt the fleet in Redis", "error", herr)
		}
		w.halt.CompareAndSwap(nil, &reason)
		w.stopTaking()
		return outGiveBack, err.Error()
	case errors.As(err, &inErr), errors.Is(err, transcribe.ErrBadRequest), errors.Is(err, transcribe.ErrInvalidAudio),
		errors.Is(err, transcribe.ErrFileTooLarge), errors.Is(err, transcribe.ErrEmptyFile):
		return outFailed, err.Error()
	}
	return outRetry, err.Error()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
