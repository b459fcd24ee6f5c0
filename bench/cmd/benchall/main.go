// Command benchall runs steno's published benchmarks and regenerates
// docs/BENCHMARKS.md: steno side by side with the clients a user would pick
// instead, on one machine, in one run.
//
// From bench/, the benchmarks' own module (so that the peer SDKs never
// enter steno's go.mod):
//
//	go run ./cmd/benchall            # everything: about 9 minutes on 2 cores
//	go run ./cmd/benchall -quick     # a smoke test of a few seconds; writes nothing unless -out is given
//	go run ./cmd/benchall -scenario uploads -rounds 3
//
// The flags:
//
//	-scenario list  scenarios to run, comma-separated: uploads, limits, long,
//	                overhead (default all four)
//	-rounds n       rounds of the uploads and overhead scenarios (default 7)
//	-long-rounds n  rounds of the long-audio scenario (default 5)
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
// is with its defaults, its tables copied into the document; below them,
// the steno rows that missed their target, and every contender that
// finished before steno's best row with the price it paid (429s, failed
// uploads, wasted requests, the most requests in a window), read from the
// tables.
//
// # Scenario 3: long audio
//
// One 60-minute file of speech-like audio (bench/internal/longaudio: tone
// "words" in sentences, pauses between sentences, noise), written as a
// 16 kHz mono 16-bit WAV file (115 MB) and encoded to a 64 kbps MP3 file by
// lame (29 MB; the MP3 rows are missing without lame).
//
// Cut planning: longaudio.MeasurePlans times steno's planner
// (internal/audio.Plan, default pieces and 8 MiB pieces) on each file
// against ffmpeg -af silencedetect (skipped without ffmpeg), and reading
// the WAV file whole, in -long-rounds interleaved rounds; every cut a plan
// claims to make in a pause is checked against the script's pauses (one
// that is not in one is a wrong plan: a failed run).
//
// End to end: the WAV file transcribed whole, by steno (TranscribeFile with
// the default client) and by the naive approach (decode the whole file into
// memory, cut it every 10 minutes, encode and send each piece in turn,
// join the texts), each in a process of its own (benchall -long NAME)
// against a fresh fake on a loopback port whose transcriber hears the
// audio's words sample-exactly (longaudio.Transcriber) and answers after
// 0.5 s + 0.25 s per minute of audio in the request; interleaved over
// -long-rounds rounds. steno's stitched transcript must be the whole
// file's, word for word (lower-case, without punctuation), exactly when
// every cut fell between words and with at most 4 words changed per hard
// cut; the naive approach must get back each of its pieces' transcripts,
// in order. Wall time, CPU, peak RSS, requests, cuts in pauses, and how
// many words differ from the whole file's are reported.
//
// # Scenario 4: overhead
//
// CPU per request and per MiB at high concurrency against a fast server:
// 2,000 files of 64 KiB, then 50 of 10 MiB (those of scenario 1 again),
// each set sent all at once by steno and by the floor, in processes of
// their own as in scenario 1, against the fake with no latency, over
// -rounds interleaved rounds. The child measures its own CPU (getrusage)
// from before its first request to its last answer, its read and write
// system calls and its Go allocations; the two sets' CPU times give a cost
// per request and a cost per MiB apart.
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
	mode := ""
	if len(args) > 0 {
		mode, _, _ = strings.Cut(strings.TrimLeft(args[0], "-"), "=")
	}
	switch mode {
	case "contender":
		err = contenderMain(ctx, args, stdout, stderr)
	case "long":
		err = longMain(ctx, args, stdout, stderr)
	default:
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
	rounds    int // of the uploads and of the overhead
	quick     bool
	cases     []*uploadCase // the uploads'
	overhead  []*uploadCase // the overhead's
	long      longSettings
	timeout   time.Duration // of one contender's run
	limiters  []string      // the limiters benchmark's arguments
	command   string        // as the document quotes it
}

// scenarioNames are the scenarios, in the order they run.
var scenarioNames = []string{"uploads", "limits", "long", "overhead"}

// run parses args, runs the scenarios and writes the document.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarioList := fs.String("scenario", strings.Join(scenarioNames, ","), "scenarios to run, a comma-separated `list` of "+strings.Join(scenarioNames, ", "))
	rounds := fs.Int("rounds", 7, "rounds of the uploads and overhead scenarios: each figure is the median of the rounds")
	longRounds := fs.Int("long-rounds", 5, "rounds of the long-audio scenario")
	quick := fs.Bool("quick", false, "a smoke test: small files, one round, the limits scenario shrunk")
	out := fs.String("out", "", "the `file` to write the document to (default ../docs/BENCHMARKS.md; with -quick, none); - for stdout")
	work := fs.String("work", "", "a `directory` for the audio files (default: a temporary one, removed after)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 || *rounds <= 0 || *longRounds <= 0 {
		fmt.Fprintf(stderr, "benchall: unexpected arguments %q, or -rounds or -long-rounds not positive\n", fs.Args())
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
	s.overhead = []*uploadCase{{files: 2000, bytes: 64 << 10, name: "2000 × 64 KiB"}, {files: 50, bytes: 10 << 20, name: "50 × 10 MiB"}}
	s.long = longSettings{minutes: 60, seed: 1, rounds: *longRounds, small: 8 << 20, naiveCut: 10 * time.Minute,
		base: 500 * time.Millisecond, perMin: 250 * time.Millisecond}
	s.limiters = nil // its defaults
	if s.quick {
		s.rounds = 1
		s.timeout = time.Minute
		s.cases = []*uploadCase{{files: 4, bytes: 1 << 20, name: "4 × 1 MiB"}, {files: 16, bytes: 64 << 10, name: "16 × 64 KiB"}}
		s.overhead = []*uploadCase{{files: 40, bytes: 64 << 10, name: "40 × 64 KiB"}, {files: 4, bytes: 1 << 20, name: "4 × 1 MiB"}}
		s.long = longSettings{minutes: 2, seed: 1, rounds: 1, small: 256 << 10, naiveCut: 30 * time.Second,
			stenoMaxBytes: 1 << 20, base: 10 * time.Millisecond, perMin: 10 * time.Millisecond}
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
	if slices.Contains(s.scenarios, "long") {
		res, err := runLong(ctx, self, filepath.Join(dir, "long"), s, stderr)
		if err != nil {
			return err
		}
		doc.long = res
		failed += res.failed()
	}
	if slices.Contains(s.scenarios, "overhead") {
		var made []*uploadCase
		if doc.uploads != nil {
			made = doc.uploads.cases
		}
		res, err := runOverhead(ctx, self, dir, s, made, stderr)
		if err != nil {
			return err
		}
		doc.overhead = res
		failed += res.failed()
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
