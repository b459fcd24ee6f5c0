// Command benchall runs steno's published benchmarks and regenerates
// docs/BENCHMARKS.md: steno side by side with the clients a user would pick
// instead, on one machine, in one run.
//
// From bench/, the benchmarks' own module (so that the peer SDKs never
// enter steno's go.mod):
//
//	go run ./cmd/benchall            # everything: about 8 minutes on 2 cores
//	go run ./cmd/benchall -quick     # a smoke test of a few seconds; writes nothing unless -out is given
//	go run ./cmd/benchall -scenario uploads -rounds 3
//
// The flags:
//
//	-scenario list  scenarios to run, comma-separated: uploads, limits (default both)
//	-rounds n       rounds of the uploads scenario (default 7)
//	-quick          small files, one round, the limits scenario shrunk: a smoke test
//	-out file       the document to write (default ../docs/BENCHMARKS.md from
//	                bench/; with -quick, nothing unless given; "-" for stdout)
//	-work dir       where the audio files go (default a temporary directory, removed after)
//
// # Scenario 1: uploads
//
// 50 files of 10 MiB, then 200 files of 1 MiB, each set sent all at once to
// the fake API (transcribetest, no rate limit, no latency) on a loopback
// port, by each contender in a process of its own: benchall runs itself
// with -contender NAME, and the child sends every file from its own
// goroutine, then reports its wall time (first request to last answer),
// the Go heap it allocated meanwhile (runtime.MemStats), and its peak
// resident set (VmHWM in /proc/self/status, the figure GNU time reports as
// the maximum resident set size); benchall adds the child's CPU time (user
// + system, from wait4) and what the server saw (most requests in flight
// at once, statuses, chunked requests). Every run gets a fresh server.
//
// The contenders run interleaved: round 1 runs steno, go-openai,
// openai-go, the floor and the pipe on the first set, then on the second;
// round 2 the same again; and so on (after one uncounted warm-up run of
// the floor on each set), so that a drift of the machine's
// speed touches every contender alike. Each figure is the median of the
// rounds, with the fastest and slowest.
//
// Every answer is verified: a run succeeds only when every file was
// answered 200 with its own transcript (the text the fake's
// DefaultTranscriber makes of that file), the server answered nothing else
// and received no chunked request. A wrong or missing transcript fails the
// run; a failed run is listed under its table, left out of the medians,
// and makes benchall exit 1 after writing the document. The io.Pipe
// contender is a reference: its upload is chunked, which the API refuses;
// its run succeeds when every request was refused with a 400.
//
// # Scenario 2: rate limits
//
// The limiters benchmark (bench/limiters; see its doc), built and run as it
// is with its defaults, its tables copied into the document.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// errUsage is what run returns for a command line in error, which it has
// reported.
var errUsage = errors.New("usage error")

// errFailed is what run returns when runs failed (after writing the
// document).
var errFailed = errors.New("runs failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := mainCode(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// mainCode runs benchall, or a contender when args start with -contender,
// and returns the exit status.
func mainCode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	if len(args) > 0 && strings.TrimLeft(args[0], "-") == "contender" {
		err = contenderMain(ctx, args, stdout, stderr)
	} else {
		err = run(ctx, args, stdout, stderr)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "benchall:", err)
		return 1
	}
}

// settings are what a run of benchall does.
type settings struct {
	scenarios []string
	rounds    int
	quick     bool
	cases     []*uploadCase
	timeout   time.Duration // of one contender's run
	limiters  []string      // the limiters benchmark's arguments
	command   string        // as the document quotes it
}

// scenarioNames are the scenarios, in the order they run.
var scenarioNames = []string{"uploads", "limits"}

// run parses args, runs the scenarios and writes the document.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarioList := fs.String("scenario", strings.Join(scenarioNames, ","), "scenarios to run, a comma-separated `list` of "+strings.Join(scenarioNames, ", "))
	rounds := fs.Int("rounds", 7, "rounds of the uploads scenario: each figure is the median of the rounds")
	quick := fs.Bool("quick", false, "a smoke test: small files, one round, the limits scenario shrunk")
	out := fs.String("out", "", "the `file` to write the document to (default ../docs/BENCHMARKS.md; with -quick, none); - for stdout")
	work := fs.String("work", "", "a `directory` for the audio files (default: a temporary one, removed after)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 || *rounds <= 0 {
		fmt.Fprintf(stderr, "benchall: unexpected arguments %q, or -rounds not positive\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	s := settings{rounds: *rounds, quick: *quick, timeout: 5 * time.Minute, command: "cd bench && go run ./cmd/benchall"}
	if len(args) > 0 {
		s.command += " " + strings.Join(args, " ")
	}
	for _, name := range strings.Split(*scenarioList, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(scenarioNames, name) {
			fmt.Fprintf(stderr, "benchall: no scenario %q (want %s)\n", name, strings.Join(scenarioNames, ", "))
			return errUsage
		}
		s.scenarios = append(s.scenarios, name)
	}
	s.cases = []*uploadCase{{files: 50, bytes: 10 << 20, name: "50 × 10 MiB"}, {files: 200, bytes: 1 << 20, name: "200 × 1 MiB"}}
	s.limiters = nil // its defaults
	if s.quick {
		s.rounds = 1
		s.timeout = time.Minute
		s.cases = []*uploadCase{{files: 4, bytes: 1 << 20, name: "4 × 1 MiB"}, {files: 16, bytes: 64 << 10, name: "16 × 64 KiB"}}
		s.limiters = []string{"-scenario", "bucket", "-runs", "1", "-window", "1s", "-requests", "40", "-budget", "20"}
	}

	benchDir, err := findBenchDir()
	if err != nil {
		return err
	}
	docPath := *out
	if docPath == "" && !s.quick {
		docPath = filepath.Join(benchDir, "..", "docs", "BENCHMARKS.md")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "steno-benchall-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}

	start := time.Now()
	doc := &document{settings: s, started: start.UTC()}
	failed := 0
	if slices.Contains(s.scenarios, "uploads") {
		res, err := runUploads(ctx, self, dir, s, stderr)
		if err != nil {
			return err
		}
		doc.uploads = res
		failed += res.failed()
	}
	if slices.Contains(s.scenarios, "limits") {
		fmt.Fprintln(stderr, "benchall: limits: building and running bench/limiters", strings.Join(s.limiters, " "))
		lr := runLimiters(ctx, benchDir, dir, s.limiters)
		doc.limits = &lr
		if lr.err != nil {
			failed++
		}
	}
	doc.took = time.Since(start)
	doc.machine = describeMachine(ctx, benchDir)

	var buf bytes.Buffer
	doc.write(&buf)
	switch docPath {
	case "":
		fmt.Fprintf(stdout, "benchall: done in %s; -quick writes no document unless -out is given\n", doc.took.Round(time.Second))
	case "-":
		stdout.Write(buf.Bytes())
	default:
		if err := writeFileAtomic(docPath, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "benchall: done in %s; wrote %s\n", doc.took.Round(time.Second), docPath)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d", errFailed, failed)
	}
	return nil
}

// runUploads makes the files of every case and runs every contender on
// them, interleaved over the rounds.
func runUploads(ctx context.Context, self, dir string, s settings, progress io.Writer) (*uploadResults, error) {
	res := &uploadResults{cases: s.cases, runs: map[*uploadCase]map[string][]upFigures{}}
	for i, c := range s.cases {
		fmt.Fprintf(progress, "benchall: uploads: writing %s of audio and computing the expected transcripts\n", c.name)
		if err := makeCase(ctx, c, filepath.Join(dir, fmt.Sprintf("case%d", i+1))); err != nil {
			return nil, err
		}
		res.runs[c] = map[string][]upFigures{}
	}
	// The files were just written: flush them, and send each set once,
	// uncounted, so that the first contender of round 1 does not pay for
	// the disk catching up or a cold page cache.
	syscall.Sync()
	for _, c := range s.cases {
		if f := runUpload(ctx, self, cFloor, c, s.timeout); f.err != nil {
			return nil, fmt.Errorf("the warm-up run on %s: %w", c.name, f.err)
		}
	}
	for round := range s.rounds {
		for _, c := range s.cases {
			for _, ct := range uploadContenders {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				f := runUpload(ctx, self, ct.name, c, s.timeout)
				res.runs[c][ct.name] = append(res.runs[c][ct.name], f)
				status := "ok"
				if f.err != nil {
					status = "FAILED: " + f.err.Error()
				}
				fmt.Fprintf(progress, "benchall: uploads round %d/%d, %s, %-12s %6.2fs wall, %6.2fs CPU, %5d MiB peak RSS: %s\n",
					round+1, s.rounds, c.name, ct.name, f.wall.Seconds(), f.cpu.Seconds(), f.rssKB/1024, status)
			}
		}
	}
	return res, nil
}

// limitsResult is the output of the limiters benchmark.
type limitsResult struct {
	output string
	err    error
	took   time.Duration
}

// runLimiters builds bench/limiters into dir and runs it with args.
func runLimiters(ctx context.Context, benchDir, dir string, args []string) limitsResult {
	start := time.Now()
	bin := filepath.Join(dir, "limiters")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./limiters")
	build.Dir = benchDir
	if b, err := build.CombinedOutput(); err != nil {
		return limitsResult{err: fmt.Errorf("go build ./limiters: %w: %s", err, b)}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: 4 << 20}
	cmd.Stderr = &limitedWriter{w: &errOut, n: 1 << 20}
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("bench/limiters: %w: %s", err, lastLine(errOut.String()))
	}
	return limitsResult{output: out.String(), err: err, took: time.Since(start)}
}

// findBenchDir returns the directory of the bench module: the working
// directory or the nearest one above it whose go.mod is the bench module's.
func findBenchDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(b, []byte("module github.com/steno-go/steno/bench\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run benchall inside bench/, the module github.com/steno-go/steno/bench")
		}
		dir = parent
	}
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".benchmarks-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
