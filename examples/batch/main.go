// Command batch transcribes many audio files at once through an
// OpenAI-compatible speech-to-text API, within the account's rate limit,
// writing each transcript the moment it arrives; a re-run skips what is
// done. It is the program to run first:
//
//	go run ./examples/batch -simulate             # no API key: a simulated API and demo clips
//	go run ./examples/batch -dry-run recordings/  # count and estimate, send nothing
//	go run ./examples/batch recordings/ calls/x.mp3
//
// Usage:
//
//	batch [flags] PATH...
//
// Each PATH is a file or a directory. A file named on the command line is
// always sent (one that is not audio fails with a clear error); directories
// are searched recursively for files with an audio extension (flac m4a mp3
// mp4 mpeg mpga oga ogg wav webm), whose content is then checked before it is
// sent. A file found under a directory D is written to
// OUT/<D's name>/<path under D> with the format's extension, so
// "batch recordings/" writes transcripts/recordings/sub/a.txt.
//
// It reads the environment as the official SDKs do, and names the provider
// it uses on its first line: OPENAI_API_KEY (needed for OpenAI's own API,
// unless -simulate) and OPENAI_BASE_URL (default https://api.openai.com/v1);
// AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY for Azure OpenAI, with
// OPENAI_API_VERSION (default 2024-10-21) and -model naming the deployment;
// GROQ_API_KEY for Groq. OPENAI_BASE_URL comes first, then
// AZURE_OPENAI_ENDPOINT, OPENAI_API_KEY and GROQ_API_KEY.
//
// Files over the API's 25 MB are cut at silences, their pieces sent in
// parallel and stitched back; -cut cuts long files sooner, for speed, and
// -shrink re-encodes WAV and MP3 files that must be cut to 16 kHz mono
// FLAC first, often avoiding a cut (other formats are always re-encoded
// to be cut; both need ffmpeg).
//
// Exit status: 0 when every file is done (or was already), 1 when some
// failed, 2 for a usage error, 3 when the batch was aborted (the account's
// quota is exhausted, the key or model was refused, the -max-cost budget
// was reached, a transcript could not be written (a full disk), or another
// run is writing to the same -out), 130 when interrupted (Ctrl-C, SIGTERM).
// After 1, 3 or 130, running the same command again sends only what is not
// done yet.
//
// Only regular files are read: a FIFO or a device named like audio fails
// at once, without waiting for a writer.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/ratelimit/redisstore"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1   // some jobs failed, or the batch could not start
	exitUsage       = 2   // bad flags or arguments, no API key
	exitAborted     = 3   // quota exhausted, key or model refused, budget reached, output unwritable or in use
	exitInterrupted = 130 // SIGINT or SIGTERM, as shells report a SIGINT
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is what the command line asks for.
type config struct {
	paths       []string
	out         string
	req         transcribe.Request
	concurrency int
	rpm         int
	budgets     ratelimit.Config // Requests, Tokens, AudioSeconds, Spread
	redis       string           // the Redis URL that shares the budget; "": none
	maxCost     float64
	dryRun      bool
	simulate    bool
	json        bool
	split       transcribe.SplitOptions
	timeouts    transcribe.Timeouts // -stall, -first-byte
}

const usageText = `usage: batch [flags] PATH...

Transcribes audio files and directories (searched recursively) into -out,
at most -concurrency at once and within the API's rate limit. A re-run
skips what is done. Try it with no API key: batch -simulate

environment (the first line of output names the provider chosen):
  OPENAI_API_KEY         the API key (not needed with -simulate, nor for
                         servers other than OpenAI's that need none)
  OPENAI_BASE_URL        default https://api.openai.com/v1
  AZURE_OPENAI_ENDPOINT  Azure OpenAI (https://NAME.openai.azure.com), with
  AZURE_OPENAI_API_KEY   its key and OPENAI_API_VERSION (default 2024-10-21);
                         -model names the deployment
  GROQ_API_KEY           Groq, when OPENAI_API_KEY is not set
  STENO_REDIS_URL        the default of -redis

timeouts: an attempt whose upload or answer moves under 1 KiB/s for -stall
(default 1m0s), or whose answer has not begun -first-byte after its upload
(default 10m0s; raise it for a slow self-hosted server), or that has no
connection after 30s, is cancelled and retried. A long upload that keeps
moving is never cut.

exit status: 0 all done (or already done); 1 some files failed; 2 usage
error; 3 aborted (quota exhausted, key or model refused, -max-cost reached,
-out full or unwritable, or in use by another run); 130 interrupted.
Finished transcripts are always kept.

flags:
`

// formats are the accepted values of -format.
var formats = []transcribe.ResponseFormat{transcribe.JSON, transcribe.Text, transcribe.SRT,
	transcribe.VTT, transcribe.VerboseJSON, transcribe.DiarizedJSON}

// parseFlags reads the command line; a non-negative code means stop with
// it.
func parseFlags(args []string, stderr io.Writer) (config, int) {
	var c config
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var format string
	fs.StringVar(&c.out, "out", "transcripts", "directory the transcripts go to (created if missing)")
	fs.StringVar(&format, "format", "json", "json | text | srt | vtt | verbose_json | diarized_json (json and text are written as .txt)")
	fs.StringVar(&c.req.Model, "model", "", "model, or Azure's deployment (default: the provider's, whisper-1 for OpenAI)")
	fs.StringVar(&c.req.Language, "language", "", "ISO-639-1 language of the audio, e.g. en (default: detected)")
	fs.StringVar(&c.req.Prompt, "prompt", "", "text to guide the transcripts' style or vocabulary")
	fs.Float64Var(&c.req.Temperature, "temperature", 0, "sampling temperature, 0 to 1")
	fs.IntVar(&c.concurrency, "concurrency", ratelimit.DefaultMaxInFlight, "at most this many requests in flight (the budget, not this, should be what limits a batch)")
	fs.IntVar(&c.rpm, "rpm", 0, "requests per real minute to start from, the same as -requests N/1m (0: learn it from the server's headers)")
	fs.Var(&c.budgets.Requests, "requests", "request budget to start from, as `N/WINDOW`: 50/1m, 14400/day (default: learned from the server's headers)")
	fs.Var(&c.budgets.Tokens, "tokens", "token budget (gpt-4o models), as `N/WINDOW`: 100000/1m (default: learned from the server's headers)")
	fs.Var(&c.budgets.AudioSeconds, "audio-seconds", "audio-seconds budget, as `N/WINDOW`: 7200/1h for Groq's free tier (default: learned from 429 messages)")
	fs.StringVar(&c.redis, "redis", os.Getenv("STENO_REDIS_URL"), "share the rate limit with every process of the same account (the same key and provider) through the Redis server at `URL`: redis://HOST:PORT/DB (default $STENO_REDIS_URL)")
	fs.BoolVar(&c.budgets.Spread, "spread", false, "spread requests evenly over the budget's window instead of sending what it allows at once (for a server that refuses bursts)")
	fs.Float64Var(&c.maxCost, "max-cost", 0, "stop before the estimated spend passes this many US dollars (0: no cap)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "check, count and estimate the cost; send nothing")
	fs.BoolVar(&c.simulate, "simulate", false, "use a built-in simulated API (no key, no network); with no PATH, transcribe generated demo clips")
	fs.BoolVar(&c.json, "json", false, "at the end, print a JSON summary on stdout")
	fs.DurationVar(&c.split.MaxDuration, "cut", 0, "cut files into pieces of at most this long (e.g. 10m), sent in parallel; files over 25 MB are always cut at silences")
	fs.BoolVar(&c.split.Shrink, "shrink", false, "re-encode WAV or MP3 files that must be cut to 16 kHz mono FLAC first (needs ffmpeg)")
	fs.BoolVar(&c.split.AllowPartial, "partial", false, "when some pieces of a cut file fail, write the others' transcript (a re-run sends only the missing pieces)")
	fs.BoolVar(&c.split.SkipSilence, "skip-silence", false, "leave silence out of what is sent (at the ends, and pauses of 2 s or more): not billed, timestamps unchanged")
	fs.DurationVar(&c.timeouts.Stall, "stall", transcribe.DefaultStallTimeout, "retry an attempt whose upload or answer moves under 1 KiB/s for this long (0: never)")
	fs.DurationVar(&c.timeouts.FirstByte, "first-byte", transcribe.DefaultFirstByteTimeout, "retry an attempt whose answer has not begun this long after its upload (0: never)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, exitOK
		}
		return c, exitUsage
	}
	c.paths = fs.Args()
	c.req.ResponseFormat = transcribe.ResponseFormat(format)
	var problems []string
	if !containsFormat(c.req.ResponseFormat) {
		problems = append(problems, fmt.Sprintf("-format %q: want json, text, srt, vtt, verbose_json or diarized_json", format))
	}
	if c.concurrency < 1 {
		problems = append(problems, fmt.Sprintf("-concurrency %d: want at least 1", c.concurrency))
	}
	switch {
	case c.rpm < 0:
		problems = append(problems, fmt.Sprintf("-rpm %d: want 0 (learn from the server) or more", c.rpm))
	case c.rpm > 0 && c.budgets.Requests.N > 0:
		problems = append(problems, "-rpm and -requests: give one of them")
	case c.rpm > 0:
		c.budgets.Requests = ratelimit.Limit{N: float64(c.rpm), Per: time.Minute}
	}
	if !(c.maxCost >= 0) { // catches NaN too
		problems = append(problems, fmt.Sprintf("-max-cost %v: want 0 (no cap) or more", c.maxCost))
	}
	for _, d := range []struct {
		flag string
		v    *time.Duration
	}{{"-stall", &c.timeouts.Stall}, {"-first-byte", &c.timeouts.FirstByte}} {
		switch {
		case *d.v < 0:
			problems = append(problems, fmt.Sprintf("%s %v: want a duration, or 0 for no limit", d.flag, *d.v))
		case *d.v == 0:
			*d.v = -1 // off, for transcribe.Timeouts
		}
	}
	if !(c.req.Temperature >= 0 && c.req.Temperature <= 1) {
		problems = append(problems, fmt.Sprintf("-temperature %v: want 0 to 1", c.req.Temperature))
	}
	if c.out == "" {
		problems = append(problems, "-out: want a directory")
	}
	if _, ok := transcribe.DefaultPricePerMinute[c.req.Model]; c.maxCost > 0 && c.req.Model != "" && !ok {
		problems = append(problems, fmt.Sprintf("-max-cost: no price known for model %q, so no cost can be estimated", c.req.Model))
	}
	if len(c.paths) == 0 && !c.simulate {
		problems = append(problems, "no PATH given (try -simulate for a demo)")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "batch:", p)
		}
		fmt.Fprintln(stderr, "run 'batch -h' for help")
		return c, exitUsage
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

// run is the whole command, minus the process: tests drive it in-process.
// It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	lcfg := limiterConfig(cfg)
	if cfg.redis != "" {
		rdb, err := redisstore.Dial(cfg.redis)
		if err != nil {
			fmt.Fprintln(stderr, "batch: -redis:", transcribe.PrintableLine(err.Error()))
			return exitUsage
		}
		defer rdb.Close()
		lcfg.Store = redisstore.New(rdb, account(cfg))
		// Say when Redis is lost and found again.
		lcfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	lim, err := ratelimit.New(lcfg)
	if err != nil {
		fmt.Fprintln(stderr, "batch:", transcribe.PrintableLine(err.Error()))
		return exitUsage
	}
	opts := []transcribe.Option{transcribe.WithLimiter(lim), transcribe.WithSplitting(cfg.split), transcribe.WithTimeouts(cfg.timeouts)}
	jobs := walkJobs(ctx, cfg.paths, cfg.out)
	var notes []string // said after the provider
	if cfg.simulate {
		srv := transcribetest.NewServer(simulatedAPI)
		defer srv.Close()
		opts = append(opts, transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-simulated"))
		notes = append(notes, fmt.Sprintf("simulated API at %s: %d requests per %v (a scaled-down minute), %v latency",
			srv.BaseURL(), simulatedAPI.RateLimit.Requests, simulatedAPI.RateLimit.Window, simulatedAPI.Latency))
		if len(cfg.paths) == 0 {
			dir, err := os.MkdirTemp("", "steno-demo-")
			if err != nil {
				fmt.Fprintln(stderr, "batch:", transcribe.PrintableLine(err.Error()))
				return exitFailed
			}
			defer os.RemoveAll(dir)
			demo, err := writeDemoClips(dir)
			if err != nil {
				fmt.Fprintln(stderr, "batch: writing demo clips:", transcribe.PrintableLine(err.Error()))
				return exitFailed
			}
			jobs = demoJobs(demo)
			notes = append(notes, fmt.Sprintf("no PATH given: transcribing %d generated demo clips (tones and pauses, 2 to 7 s each)", len(demo)))
		}
	}
	client, err := transcribe.NewClient(opts...)
	if errors.Is(err, transcribe.ErrNoAPIKey) && cfg.dryRun {
		// Nothing is sent: the provider is chosen all the same.
		client, err = transcribe.NewClient(append(opts, transcribe.WithAPIKey("unused-by-dry-run"))...)
	}
	if err != nil {
		if errors.Is(err, transcribe.ErrNoAPIKey) {
			fmt.Fprintf(stderr, "batch: %s: export it, or try 'batch -simulate' (no key needed)\n", transcribe.PrintableLine(strings.TrimPrefix(err.Error(), "transcribe: ")))
		} else {
			fmt.Fprintln(stderr, "batch:", transcribe.PrintableLine(err.Error()))
		}
		return exitUsage
	}
	p := client.Provider()
	fmt.Fprintln(stderr, "batch: using", transcribe.PrintableLine(p.String()))
	for _, n := range notes {
		fmt.Fprintln(stderr, n)
	}
	if cfg.req.Model == "" {
		if cfg.req.Model = p.DefaultModel; cfg.req.Model == "" {
			fmt.Fprintf(stderr, "batch: %s needs -model DEPLOYMENT, the deployment to send to\n", p.Name)
			return exitUsage
		}
		if _, ok := transcribe.DefaultPricePerMinute[cfg.req.Model]; cfg.maxCost > 0 && !ok {
			fmt.Fprintf(stderr, "batch: -max-cost: no price known for model %q, so no cost can be estimated\n", cfg.req.Model)
			return exitUsage
		}
	}

	var output *transcribe.OutputWriter
	if _, statErr := os.Stat(cfg.out); !cfg.dryRun || statErr == nil {
		// A dry run creates nothing, but knows what an existing
		// output directory already holds.
		if output, err = transcribe.NewOutputWriter(cfg.out); err != nil {
			fmt.Fprintln(stderr, "batch:", transcribe.PrintableLine(strings.TrimPrefix(err.Error(), "transcribe: ")))
			if errors.Is(err, transcribe.ErrOutputLocked) {
				return exitAborted // another run is paying for these files
			}
			return exitFailed
		}
		defer output.Close() // the directory's lock
	}

	budget := "the request budget is learned from the server's headers"
	if r := cfg.budgets.Requests; r.N > 0 {
		budget = fmt.Sprintf("starting from %g requests per %v", r.N, r.Per)
	}
	if cfg.dryRun {
		fmt.Fprintf(stderr, "dry run: checking and counting, nothing is sent (%s, %s)\n", cfg.req.Model, cfg.req.ResponseFormat)
	} else {
		fmt.Fprintf(stderr, "%s (%s) into %s: at most %d requests in flight; %s\n",
			cfg.req.Model, cfg.req.ResponseFormat, cfg.out, cfg.concurrency, budget)
	}

	var disp display = newPlainDisplay(stderr)
	if isTerminal(stderr) && !cfg.dryRun {
		live := newLiveDisplay(stderr, lim)
		disp = live
		if len(cfg.paths) == 0 {
			live.setTotal(demoClipCount)
		} else {
			counted := make(chan struct{})
			go func() {
				defer close(counted)
				live.setTotal(countJobs(ctx, cfg.paths, cfg.out))
			}()
			defer func() { cancel(); <-counted }()
		}
	}

	seq, err := client.BatchTranscribe(ctx, jobs, transcribe.BatchOptions{
		Request:     cfg.req,
		Concurrency: cfg.concurrency,
		Output:      output,
		MaxCostUSD:  cfg.maxCost,
		DryRun:      cfg.dryRun,
		Progress: func(e transcribe.Event) {
			if e.Kind == transcribe.EventRetrying {
				disp.retrying(e)
			}
		},
	})
	if err != nil {
		disp.close()
		fmt.Fprintln(stderr, "batch:", transcribe.PrintableLine(strings.TrimPrefix(err.Error(), "transcribe: ")))
		return exitUsage
	}

	start := time.Now()
	sum := newSummary(cfg)
	for r := range seq {
		sum.add(ctx, r)
		disp.finished(r, interrupted(ctx, r))
	}
	sum.finish(time.Since(start), lim.Snapshot(), ctx.Err() != nil)
	disp.close()

	sum.print(stderr)
	if cfg.json {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err == nil {
			_, err = stdout.Write(append(transcribe.PrintableJSON(b), '\n'))
		}
		if err != nil {
			fmt.Fprintln(stderr, "batch:", transcribe.PrintableLine(err.Error()))
			return exitFailed
		}
	}
	return sum.exitCode()
}

// limiterConfig is the shared limiter of the batch: -concurrency requests
// in flight, and the budgets given (else learned from the server).
// account names the account whose budget -redis shares: a fingerprint of
// the keys and addresses in the environment (redisstore.Account never
// reveals them), so that processes with the same environment share one
// budget.
func account(cfg config) string {
	if cfg.simulate {
		return redisstore.Account("simulated")
	}
	var parts []string
	for _, v := range []string{"OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "GROQ_API_KEY"} {
		parts = append(parts, os.Getenv(v))
	}
	return redisstore.Account(parts...)
}

func limiterConfig(cfg config) ratelimit.Config {
	c := cfg.budgets
	c.MaxInFlight = cfg.concurrency
	return c
}

// simulatedAPI is the fake that -simulate runs: a 60-request "minute" of
// 10 s, so that the limiter visibly learns and paces, and some latency.
var simulatedAPI = transcribetest.Config{
	RateLimit: transcribetest.RateLimit{Requests: 60, Window: 10 * time.Second},
	Latency:   300 * time.Millisecond,
}
