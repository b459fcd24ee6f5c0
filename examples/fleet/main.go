// Command fleet transcribes a folder of audio files with several worker
// processes, on one machine or many, fed from a queue in Redis and spending
// one account's rate limit together:
//
//	fleet produce recordings/          # enqueue every audio file of the folder
//	fleet work -out transcripts        # a worker; run as many as you like
//	fleet status                       # what is left, in progress, failed
//
// The queue is a Redis stream read by a consumer group (XADD, XREADGROUP,
// XACK), through github.com/redis/go-redis/v9, which the main module
// already requires for ratelimit/redisstore: the example adds no
// dependency, so it stays in the main module. The workers share one
// budget through ratelimit/redisstore (-requests 50/1m is the budget of the
// whole fleet, not of each worker), and a 429 seen by one pauses them all.
//
// Every command takes -redis redis://HOST:PORT/DB, whose default is
// $STENO_REDIS_URL, and -queue NAME (default steno:fleet), so that several
// fleets can share one Redis. The queue lives in Redis: give Redis
// persistence (appendonly yes) if a restart must not lose the jobs not yet
// done (the transcripts written are on disk either way, and enqueuing the
// folder again costs only what is not done).
//
// # Results and what is paid for
//
// A worker writes each transcript where the batch CLI (examples/batch)
// would: "fleet produce recordings/" then "fleet work -out transcripts"
// writes transcripts/recordings/sub/a.txt and its record under
// transcripts/.steno/, the same files "batch -out transcripts recordings/"
// writes, so the two can take turns on one folder (not at once: a batch run
// holds the folder for its whole run, and the workers wait for it). The
// record decides: a job whose transcript is recorded is acknowledged
// without a request, however it came (a job redelivered after its worker
// died after writing, a folder enqueued twice). The workers must see the
// audio and the output folder at the same paths (one machine, or shared
// mounts).
//
// A job taken by a worker stays pending in Redis until the worker has
// written its transcript; while it works (waiting for the budget
// included), the worker renews its hold every -visibility/3. A worker that
// dies stops renewing, and after -visibility another worker takes its jobs
// over (XAUTOCLAIM): a killed worker loses at most the requests it had in
// flight. A job delivered -max-deliveries times without finishing, or
// whose file is not audio, goes to the failed list that "fleet status"
// counts. A lease per file keeps two entries of one file (a folder
// enqueued twice) from being sent at once.
//
// An error that no retry can fix, the account's quota exhausted, the key or
// the model refused, the output folder unwritable, halts the whole fleet:
// every worker stops taking jobs, and exits with status 3. "fleet resume"
// lifts the halt once the cause is fixed.
//
// # Commands
//
//	fleet produce [-redis URL] [-queue NAME] PATH...
//	fleet work [-redis URL] [-queue NAME] [-out DIR] [-concurrency N] [-requests N/WINDOW] ...
//	fleet status [-redis URL] [-queue NAME]
//	fleet resume [-redis URL] [-queue NAME]
//	fleet simulate [-addr HOST:PORT] [-requests N/WINDOW] [-latency D]
//
// "fleet simulate" runs a simulated API (transcribetest) on a loopback
// port and prints its URL, so that workers in separate processes share ONE
// fake server and its rate limit; stopped with Ctrl-C, it prints how many
// requests it answered and whether any file was paid for twice.
//
// A worker reads the API's address and key from the environment as the
// batch CLI does (OPENAI_API_KEY, OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT,
// AZURE_OPENAI_API_KEY, GROQ_API_KEY). The key is never printed, logged or
// sent to Redis: the workers find each other's budget under a fingerprint
// of it (redisstore.Account). Logs go to stderr, one line per job.
//
// A worker stops on SIGINT or SIGTERM: it takes no more jobs and gives
// those in progress -drain to finish; those still unfinished then are cut
// and handed back to the queue at once. A second signal stops it at once.
// With -until-empty it also stops when the queue has nothing left.
//
// Exit status: 0 stopped as asked, 1 could not start or run (Redis
// unreachable at the start, an output folder that cannot be made), 2 usage
// error, 3 the fleet is halted (see above).
package main

import (
	"context"
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

	"github.com/redis/go-redis/v9"

	"github.com/steno-go/steno/transcribe"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitHalted = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal stops the process at once
	}()
	// go-redis's own messages (a connection pool that cannot dial) go
	// to the log too, not raw to stderr.
	redis.SetLogger(redisLogger{slog.New(slog.NewTextHandler(os.Stderr, nil))})
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageText = `usage: fleet COMMAND [flags] [args]

commands:
  produce PATH...   enqueue the audio files of each folder (searched
                    recursively) and each file named
  work              take jobs, transcribe them under the fleet's shared
                    budget, write them into -out, until stopped
  status            show the jobs left, in progress and failed, and the workers
  resume            lift a halt (after an exhausted quota, a refused key…)
  simulate          run a simulated API for the workers to share, on a
                    loopback port (no key, no network)

Every command but simulate needs Redis: -redis redis://HOST:PORT/DB, or
$STENO_REDIS_URL. Run 'fleet COMMAND -h' for a command's flags.
`

// run is the whole program, minus the process; it returns the exit
// status. ctx is cancelled by the first SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "produce":
		return runProduce(ctx, args, stdout, stderr)
	case "work":
		return runWork(ctx, args, stdout, stderr)
	case "status":
		return runStatus(ctx, args, stdout, stderr)
	case "resume":
		return runResume(ctx, args, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "fleet: unknown command %s\n%s", transcribe.PrintableLine(cmd), usageText)
	return exitUsage
}

// redisFlags are the flags of every command that uses the queue.
type redisFlags struct {
	url   string
	queue string
}

func (r *redisFlags) register(fs *flag.FlagSet) {
	// The default is read after parsing: the URL may hold a password,
	// which -h would print.
	fs.StringVar(&r.url, "redis", "", "Redis `URL`, redis://[:PASSWORD@]HOST:PORT/DB (default $STENO_REDIS_URL)")
	fs.StringVar(&r.queue, "queue", defaultQueue, "the queue's `name`: its keys begin with {NAME}")
}

// check returns the problems with the flags, for a usage error.
func (r *redisFlags) check() []string {
	var p []string
	if r.url == "" {
		r.url = os.Getenv("STENO_REDIS_URL")
	}
	if r.url == "" {
		p = append(p, "-redis: no Redis URL (give -redis redis://HOST:PORT/DB or set STENO_REDIS_URL)")
	}
	if r.queue == "" {
		p = append(p, "-queue: want a name")
	}
	return p
}

// Timeouts of Redis calls: no call waits on a dead Redis for longer.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 3 * time.Second
	redisOpTimeout   = 5 * time.Second // one operation, retries included
)

// connect returns a client of the Redis at r.url, after a PING, and a
// description of it fit to log (without its password).
func (r *redisFlags) connect(ctx context.Context) (*redis.Client, string, error) {
	opts, err := redis.ParseURL(r.url)
	if err != nil {
		// The URL may hold a password: not repeated.
		return nil, "", errors.New("-redis: not a Redis URL (want redis://[:PASSWORD@]HOST:PORT/DB)")
	}
	opts.ContextTimeoutEnabled = true // every call honours its context's deadline
	if opts.DialTimeout == 0 {
		opts.DialTimeout = redisDialTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = redisIOTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = redisIOTimeout
	}
	opts.DisableIdentity = true // no CLIENT SETINFO: older servers refuse it
	where := fmt.Sprintf("%s db %d", opts.Addr, opts.DB)
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, where, fmt.Errorf("redis at %s: %w", where, err)
	}
	return rdb, where, nil
}

// redisLogger passes go-redis's messages to a slog.Logger.
type redisLogger struct{ log *slog.Logger }

// Printf logs one message of go-redis as a warning.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}

// usage prints problems and a hint, and returns exitUsage.
func usage(stderr io.Writer, cmd string, problems []string) int {
	for _, p := range problems {
		fmt.Fprintf(stderr, "fleet %s: %s\n", cmd, p)
	}
	fmt.Fprintf(stderr, "run 'fleet %s -h' for help\n", cmd)
	return exitUsage
}

// parse parses args with fs; a non-negative code means stop with it.
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

// runStatus prints the queue's state.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return onQueue(ctx, "status", args, stderr, func(ctx context.Context, q *queue) error {
		s, err := q.status(ctx)
		if err == nil {
			fmt.Fprint(stdout, s)
		}
		return err
	})
}

// runResume lifts a halt.
func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return onQueue(ctx, "resume", args, stderr, func(ctx context.Context, q *queue) error {
		reason, err := q.halted(ctx)
		if err == nil {
			err = q.resume(ctx)
		}
		switch {
		case err != nil:
		case reason == "":
			fmt.Fprintln(stdout, "the fleet was not halted")
		default:
			fmt.Fprintln(stdout, "halt lifted; it was:", transcribe.PrintableLine(reason))
		}
		return err
	})
}

// onQueue runs the subcommand cmd, which takes the Redis flags and no
// arguments: it connects, and runs f on the queue within redisOpTimeout.
func onQueue(ctx context.Context, cmd string, args []string, stderr io.Writer, f func(context.Context, *queue) error) int {
	fs := flag.NewFlagSet("fleet "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf redisFlags
	rf.register(fs)
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if p := rf.check(); len(p) > 0 || fs.NArg() > 0 {
		if fs.NArg() > 0 {
			p = append(p, "no arguments expected")
		}
		return usage(stderr, cmd, p)
	}
	rdb, _, err := rf.connect(ctx)
	if err == nil {
		defer rdb.Close()
		octx, cancel := context.WithTimeout(ctx, redisOpTimeout)
		defer cancel()
		err = f(octx, newQueue(rdb, rf.queue))
	}
	if err != nil {
		fmt.Fprintln(stderr, "fleet "+cmd+":", err)
		return exitFailed
	}
	return exitOK
}
