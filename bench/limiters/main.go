// Command limiters measures, side by side, ways of sending many concurrent
// uploads to a transcription API with rate limits, in seven scenarios, and
// checks steno's limiter (package ratelimit) against a target in each.
//
// Every scenario but hostile runs against transcribetest.NewServer, the
// in-process fake of the API, over real loopback HTTP: each run of each
// contender gets a fresh server (whose budgets start whole) and a fresh
// HTTP transport. Budgets are counted over scaled-down windows so that a
// run takes seconds, not hours (see Scaling).
//
// # Running it
//
// From bench/, the benchmarks' own module:
//
//	go run ./limiters                          # everything, 3 rounds (about 3 minutes)
//	go run ./limiters -scenario bucket,audio   # some scenarios
//	go run ./limiters -only steno-learned      # one contender (and the reference)
//	go run ./limiters -runs 5 -window 3s       # more rounds, a shorter window
//	go run ./limiters -serial                  # one run at a time (about 50 minutes)
//
// The flags:
//
//	-scenario list   scenarios to run, comma-separated (default: all):
//	                 bucket, sliding, fixed, quantised, highlimit, audio, hostile
//	-only list       contenders to run, comma-separated (default: all); the
//	                 scenario's reference contender (xrate in bucket, plain in
//	                 highlimit) runs too, and hostile runs only for steno-learned
//	-runs n          rounds (default 3); each figure is the median of the rounds
//	-window d        the budget scenarios' window, a scaled minute (default 6s);
//	                 hostile's MaxPause is a third of it, its deadline a sixth
//	-requests n      the budget scenarios' requests (default 300)
//	-budget n        the budget scenarios' requests per window (default 50)
//	-audio-hour d    the audio scenario's scaled hour (default 1m)
//	-serial          run the contenders one at a time instead of side by side
//
// # Rounds and verification
//
// Every contender of a scenario runs in the same invocation, over -runs
// rounds: round 1 runs contenders A, B, C…, round 2 runs A, B, C again,
// and so on, so that a drift of the machine's speed over the minutes of a
// run touches every contender alike. Within a round, the contenders of
// bucket, sliding, fixed, quantised and audio run side by side, at the same
// time, each against its own server: their work is waiting, not computing
// (a whole default run keeps a fraction of one core busy, about 15 %), and
// one round then takes as long as its slowest run, about 50 s, instead of
// the sum of all, about 16 minutes. -serial runs them one after another in
// the order A B C A B C…, for a check that running side by side does not
// change the figures. The highlimit uploads are limited by the machine, not
// the budget, so they always run alone and one at a time, after the other
// rounds (A B A B A B). Hostile runs last.
//
// A run succeeds when every request has been answered 200 with a verified
// transcript (verbose_json whose text is not empty and whose duration is
// the clip's) or, for a contender that gives up (openai-go), returned to
// its caller as a failed upload, and the server answered nothing but 200s
// and 429s, a 200 for every transcript read, and as many 429s as the
// client read. A run that loses a
// request, gets any other answer or does not finish within four times the
// scenario's ideal plus 30 s (2 minutes for highlimit) has failed: it is
// listed under its table, left out of the medians, and counted in the
// target column; the command then exits with status 1 after printing
// everything.
//
// # The tables
//
// One table per scenario. Each row is a contender: the time until its last
// upload ended, its 200 read or (openai-go) its failure returned (the
// median of the rounds, and the fastest and slowest),
// that median as a multiple of the scenario's reference (xrate's median in
// bucket, the plain client's in highlimit, the ideal elsewhere), the 429s
// the server sent (the median, and the range in brackets when the rounds
// differ; in audio also apart, those for the requests budget and those for
// seconds of audio, told apart by the body's "seconds of audio"), the
// uploads the contender gave up on ("failed": the files its caller must
// send again), the requests that brought no transcript as a share of all
// the server received ("wasted": here the 429s, each a request of the
// budget spent for nothing, as OpenAI counts them), in the budget
// scenarios the most requests the server saw in
// any window of the budget's length (429'd ones included: a server that
// starts whole and refills continuously lets up to twice the budget through
// in one window), and the most requests the server was handling at once.
//
// The target column judges steno's rows: PASS or MISS on the medians
// (time against the median reference, 429s), then how many rounds met the
// target on their own (each against the reference's run in the same round).
// A steno row with a failed upload misses its target. Other contenders
// show "—". Under the table: what each steno limiter ended
// with (the shape, size and window of each budget it mirrors, where the
// numbers come from, its pauses, whether it spreads), and the failed runs.
//
// # Scenarios and targets
//
// The budget scenarios send 300 uploads of a 0.2 s WAV clip under a budget
// of 50 requests per 6 s window, whole at the start, with a server latency
// of 1/30 of the window and at most 20 requests in flight for every
// contender. The ideal is requests ÷ budget × window, 36 s: the time of a
// client that spends the budget's rate and nothing more (one that spends the
// whole first budget at once ends a window earlier, at about 30.2 s).
//
//   - bucket: a token bucket that refills continuously (OpenAI's). Target:
//     ≤ 1.02 × xrate's time and ≤ 1 429, for steno learned and configured.
//   - sliding: the same budget as a sliding window (at most 50 in any 6 s).
//     Target: ≤ 1.15 × the ideal, 429s ≤ 2 % of the requests (6).
//   - fixed: the same budget in fixed windows of 6 s, following each other
//     from the first request. Target: as sliding.
//   - quantised: the same bucket enforced in 5 slices (at most 10 per 1.2 s
//     on top of the bucket), while its headers describe the whole budget,
//     as OpenAI documents it may. Target: ≤ 1.1 × the ideal, ≤ 3 429s; a
//     third steno contender, steno-spread, is told the budget and to spread
//     (Config.Spread).
//   - highlimit: 200 uploads of a 1 MiB WAV file (real multipart bodies)
//     under 10,000 requests per real minute, which never binds, all at once
//     with at most 64 in flight and 100 ms of latency: what the limiter
//     costs when it has nothing to do. Target: steno-learned ≤ 1.1 × the
//     plain client's time.
//   - audio: a Groq-like server (see Scaling): a bucket of 20 requests per
//     scaled minute, reported in headers, and of 72 seconds of audio per
//     scaled hour, reported only in 429 messages; 40 clips of 3 s, of which
//     24 fit the whole budget and 16 wait for its refill. The ideal is what
//     the audio budget allows: (120 − 72) s of audio ÷ 72 s per hour = 40 s.
//     Target: ≤ 1.1 × the ideal and ≤ 2 429s; for steno-learned only the
//     429s for audio count, as its first blind burst draws 429s for the
//     requests budget that it cannot know before the first answer (20 of the
//     40 sent at once); they are reported apart.
//   - hostile: a server of the benchmark's own that answers every request 200
//     with x-ratelimit-limit-requests: 1 (and, in a second variant, 0.001),
//     remaining 0 and reset 86400s: a day. For steno-learned with MaxPause
//     2 s, it measures how long the second request waits, which must be at
//     most MaxPause (+10 ms for timers), and what a caller whose context
//     has a 1 s deadline gets, which must be ratelimit.ErrWouldExceedDeadline
//     within 50 ms. Its own table: the wait (median, min–max), what the
//     callers got, how soon.
//
// # Contenders
//
//   - steno-learned: a ratelimit.Limiter with the scenario's MaxInFlight
//     and no budget configured: it learns them from the server's headers
//     and 429s. steno-configured: the same, told the requests budget
//     (Config.Requests), and in audio the audio budget too
//     (Config.AudioSeconds). steno-spread: configured and Config.Spread.
//     Every request is a goroutine of its own that sends it until it is
//     answered 200; in the budget scenarios and highlimit they go through
//     lim.Transport. In audio, each attempt acquires its permit itself with
//     the clip's seconds as its cost (lim.Acquire(ctx,
//     ratelimit.Cost{AudioSeconds: 3})), sends the request with that permit
//     in its context (ratelimit.ContextWithPermit) through an http.Client
//     whose Transport is lim.Transport, and hands the answer to Permit.Done,
//     with a 429's body as the error so that the limiter reads the audio
//     budget from its message.
//   - xrate: a golang.org/x/time/rate limiter told the exact requests
//     budget, rate budget per window and burst the whole budget (it starts
//     full like the server), under a semaphore of the scenario's in-flight
//     bound; a 429 is sent again after its retry-after-ms (else
//     retry-after), waiting on the limiter again. In audio it knows the
//     requests budget only, as most clients would.
//   - cookbook: the loop of OpenAI cookbook's
//     api_request_parallel_processor.py: a dispatcher that takes a
//     request's worth from a bucket of the budget that starts full (polling
//     every millisecond), and after any 429 holds every request until 15 s
//     (scaled) have passed since it; the 429'd request goes again. Here
//     with at most 20 in flight.
//   - forum: what forum answers suggest: a semaphore of 20; after each
//     answer whose x-ratelimit-remaining-requests is below 10 % of
//     x-ratelimit-limit-requests the worker sleeps 5 s (scaled), and a 429
//     is sent again after the same sleep.
//   - openai-go (budget scenarios and audio): github.com/openai/openai-go/v3
//     with its defaults, as a user would write it: a semaphore of the
//     scenario's in-flight bound, and in each slot one call of
//     Audio.Transcriptions.New (verbose_json). The SDK retries a 429
//     twice, after its retry-after-ms (else retry-after, else 0.5 s × 2ⁿ
//     less up to 25 % of jitter), then returns it as an error: that upload
//     is failed, and the run goes on without it.
//   - all-at-once: the naive client, no limiter: a semaphore of 20, and a
//     429 sent again as soon as its retry-after header's whole seconds have
//     passed (the worker holding its slot meanwhile).
//   - plain (highlimit): the standard library's client with a semaphore of
//     64 and nothing else (a 429, which never comes, is handled as
//     all-at-once does).
//
// # Scaling
//
// The budget scenarios' window of 6 s stands for a minute: a budget of 50
// requests a minute becomes 50 per 6 s, and the waits that the cookbook and
// the forum take in seconds of a minute (15 s, 5 s) are scaled by the same
// factor (to 1.5 s and 0.5 s). -window changes the factor; the server's
// latency, 1/30 of the window, follows it. So does hostile, whose MaxPause
// of 2 s (window/3) and deadline of 1 s (window/6) stand for what they
// would be against a real server: a cap well below the server's day.
//
// The audio scenario scales time and audio apart. Groq's free tier allows
// 20 requests a minute and 7,200 seconds of audio an hour; 40 clips of 5
// minutes are 12,000 s, of which 24 clips fit the hour's budget and 16
// wait for its refill, 40 minutes at 2 s of audio a second. Here an hour
// lasts 1 minute (time ÷ 60: the requests budget is 20 per second) and
// audio is divided by 100: a clip of 5 minutes is 3 s of audio, the budget
// 72 s per scaled hour. The numbers of clips that fit and that wait are
// those of the real case, and so is each clip's refill, 150 s a clip in
// real time, 2.5 s here (3 s ÷ 1.2 s of audio a second); the whole batch
// takes 40 s instead of 40 minutes. The fake names a budget of 1m0s "per
// minute", which the limiter reads as the window of the budget the 429
// message names: -audio-hour 1h works too (and takes an hour), but any
// other value is named "per 30s" or the like, whose window the limiter
// cannot read.
//
// Highlimit's budget is per real minute: it never binds, and the scenario
// measures the cost of the limiter, not a wait.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
)

// errUsage is what run returns for a command line in error, which it has
// reported.
var errUsage = errors.New("usage error")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "limiters:", err)
		os.Exit(1)
	}
}

// run parses args, runs the scenarios and prints their tables to stdout,
// progress and failures to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("limiters", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := defaultConfig(6 * time.Second)
	scenarioList := fs.String("scenario", "", "run only these scenarios, a comma-separated `list` of "+strings.Join(scenarioNames, ", "))
	only := fs.String("only", "", "run only these contenders, a comma-separated `list` (and each scenario's reference)")
	runs := fs.Int("runs", 3, "rounds: run each contender this many times and print the medians")
	fs.DurationVar(&cfg.window, "window", cfg.window, "the budget scenarios' window: a scaled-down minute")
	fs.IntVar(&cfg.requests, "requests", cfg.requests, "requests to send in each budget scenario")
	fs.IntVar(&cfg.budget, "budget", cfg.budget, "requests per window the budget scenarios' server allows")
	fs.DurationVar(&cfg.audioHour, "audio-hour", cfg.audioHour, "the audio scenario's scaled hour (keep 1m: see the doc)")
	serial := fs.Bool("serial", false, "run the contenders of a round one at a time instead of side by side")
	usage := func(format string, args ...any) error {
		fmt.Fprintf(stderr, "limiters: "+format+"\n", args...)
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage // fs has reported it
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if cfg.requests <= 0 || cfg.budget <= 0 || cfg.window <= 0 || cfg.audioHour <= 0 || *runs <= 0 {
		return usage("-requests, -budget, -window, -audio-hour and -runs must be positive")
	}
	cfg.maxPause, cfg.deadline = cfg.window/3, cfg.window/6

	chosen, hostile, err := pick(scenarios(cfg), *scenarioList)
	if err != nil {
		return usage("%v", err)
	}
	if *only != "" {
		names := strings.Split(*only, ",")
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
		var kept []*scenario
		known := map[string]bool{}
		for _, sc := range chosen {
			for _, c := range sc.contenders {
				known[c.name] = true
			}
			if !slices.ContainsFunc(sc.contenders, func(c contender) bool { return slices.Contains(names, c.name) }) {
				continue
			}
			sc.contenders = slices.DeleteFunc(sc.contenders, func(c contender) bool {
				return !slices.Contains(names, c.name) && c.name != sc.ref
			})
			kept = append(kept, sc)
		}
		if hostile {
			known[stenoLearned] = true
			hostile = slices.Contains(names, stenoLearned)
		}
		for _, n := range names {
			if !known[n] {
				return usage("no contender %q in the scenarios chosen", n)
			}
		}
		chosen = kept
	}

	fmt.Fprintf(stdout, "limiters: %d rounds", *runs)
	if *runs > 1 {
		fmt.Fprint(stdout, "; each figure the median of the rounds")
	}
	if *serial {
		fmt.Fprint(stdout, "; contenders one at a time")
	} else {
		fmt.Fprint(stdout, "; within a round the contenders of bucket, sliding, fixed, quantised and audio side by side, highlimit's one at a time")
	}
	fmt.Fprint(stdout, "\n\n")

	start := time.Now()
	res, err := runScenarios(ctx, chosen, *runs, *serial, stderr)
	if err != nil {
		return err
	}
	failed := 0
	for _, sc := range chosen {
		failed += report(stdout, sc, res[sc])
	}
	if hostile {
		hr, err := runHostile(ctx, cfg, *runs)
		if err != nil {
			return err
		}
		failed += reportHostile(stdout, cfg, hr)
	}
	fmt.Fprintf(stdout, "limiters: done in %.0fs\n", time.Since(start).Seconds())
	if failed > 0 {
		return fmt.Errorf("%d runs failed", failed)
	}
	return nil
}
