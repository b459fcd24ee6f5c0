// Command openai-sdk shows that programs written against OpenAI's official Go
// SDK (github.com/openai/openai-go/v3) get steno's shared, adaptive rate
// limiting without changing a single SDK call: give the SDK an HTTP client
// whose transport is a [ratelimit.Limiter]'s Transport.
//
//	lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 8})
//	client := openai.NewClient(
//		option.WithHTTPClient(&http.Client{Transport: lim.Transport(nil)}),
//	)
//
// Every request the SDK sends then waits for a slot (at most MaxInFlight in
// flight), for its turn in the request budget the limiter learns from the
// server's x-ratelimit-* headers, and for the end of any pause a 429 began;
// one limiter shared by every goroutine (and every client on the same
// account) keeps them all within the budget together. The program
// transcribes several audio files at once with
// client.Audio.Transcriptions.New, prints each transcript as it arrives, and
// ends with what the limiter learned: the request budget and its window, the
// pauses it took and the 429s it saw.
//
// The SDK's own retries are kept (by default it retries a 429, a 408, a
// 409, a 5xx or a dropped connection twice, after retry-after-ms,
// retry-after or an exponential backoff). Each retry goes through the same
// http.Client, so it too waits for its permit and for the shared pause: a
// 429 seen by one goroutine holds back every other one, instead of each
// discovering the limit on its own. The SDK retries a 429
// insufficient_quota (an empty account) like any other 429; the limiter
// knows it is not a rate limit and does not pause for it, and this program
// stops the whole batch at the first one instead of trying the next file.
//
// One difference from steno's own client: the SDK reads each file whole
// into memory to build the multipart body before the request reaches the
// transport, so the program bounds the files being worked on at once to
// MaxInFlight rather than starting them all.
//
// Run it offline against steno's in-process fake of the API, which allows
// 100 requests per 10 seconds (a scaled-down minute) so that the limiter has a
// budget to learn; with no files it transcribes 30 generated clips:
//
//	cd examples/openai-sdk && go run . -simulate
//
// or against the real API (or any OpenAI-compatible server) with the SDK's
// usual environment variables, OPENAI_API_KEY and OPENAI_BASE_URL:
//
//	cd examples/openai-sdk && go run . [-model gpt-transcribe] [-max-in-flight 8] FILE...
//
// The simulated run should end with a learned budget of 100 requests per
// 10 s and no 429s.
//
// This example is its own Go module, so that the SDK never becomes a
// dependency of steno itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// errUsage reports bad command-line arguments; the flag package has
// already said what was wrong.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	_, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "openai-sdk:", oneLine(err))
		os.Exit(1)
	}
}

// run parses args, transcribes the files and prints the transcripts to
// stdout and the limiter's figures to stderr. It returns the limiter's
// final state.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (ratelimit.Stats, error) {
	fs := flag.NewFlagSet("openai-sdk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	simulate := fs.Bool("simulate", false, "use steno's in-process fake API (no key, no network)")
	clips := fs.Int("clips", 30, "with -simulate and no FILE, how many demo clips to generate")
	// openai-go v3.98 marks whisper-1 and gpt-4o(-mini)-transcribe
	// deprecated (shutdown announced for 2027-02-26); -model whisper-1
	// still works where the server offers it.
	model := fs.String("model", openai.AudioModelGPTTranscribe, "transcription model")
	maxInFlight := fs.Int("max-in-flight", 8, "most requests in flight at once")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: openai-sdk [flags] FILE...\n       openai-sdk -simulate [flags] [FILE...]\n\n"+
			"environment (without -simulate): OPENAI_API_KEY, OPENAI_BASE_URL\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ratelimit.Stats{}, nil
		}
		return ratelimit.Stats{}, errUsage
	}
	files := fs.Args()
	if (len(files) == 0 && !*simulate) || *clips < 1 || *maxInFlight < 1 {
		fs.Usage()
		return ratelimit.Stats{}, errUsage
	}

	lim, err := ratelimit.New(ratelimit.Config{MaxInFlight: *maxInFlight})
	if err != nil {
		return ratelimit.Stats{}, err
	}
	// Everything the SDK sends goes through the limiter.
	opts := []option.RequestOption{
		option.WithHTTPClient(&http.Client{Transport: lim.Transport(nil)}),
	}
	if *simulate {
		srv := transcribetest.NewServer(transcribetest.Config{
			RateLimit: transcribetest.RateLimit{Requests: 100, Window: 10 * time.Second},
		})
		defer srv.Close()
		opts = append(opts, option.WithBaseURL(srv.BaseURL()), option.WithAPIKey("sk-simulated"))
		if len(files) == 0 {
			dir, err := os.MkdirTemp("", "steno-openai-sdk-")
			if err != nil {
				return ratelimit.Stats{}, err
			}
			defer os.RemoveAll(dir)
			if files, err = writeClips(dir, *clips); err != nil {
				return ratelimit.Stats{}, err
			}
		}
		fmt.Fprintf(stderr, "simulated API at %s (100 requests per 10s); transcribing %d files\n", srv.BaseURL(), len(files))
	} else if os.Getenv("OPENAI_API_KEY") == "" {
		return ratelimit.Stats{}, errors.New("OPENAI_API_KEY is not set (or use -simulate)")
	}
	client := openai.NewClient(opts...)

	start := time.Now()
	res, err := transcribeAll(ctx, client, *model, files, *maxInFlight, stdout, stderr)
	st := lim.Snapshot()
	printStats(stderr, st, res, time.Since(start))
	switch {
	case err != nil:
		return st, err
	case ctx.Err() != nil:
		return st, ctx.Err()
	case res.failed > 0:
		return st, fmt.Errorf("%d of %d files failed", res.failed, res.files)
	}
	return st, nil
}

// result counts the outcomes of a batch.
type result struct {
	files, done, failed, skipped int
}

// transcribeAll transcribes files concurrently, at most workers at a time
// (the SDK holds each one in memory), prints each transcript as it arrives
// and each failure on stderr. An exhausted quota (429 insufficient_quota)
// stops the batch: the files not yet started are skipped, and the error is
// returned.
func transcribeAll(ctx context.Context, client openai.Client, model openai.AudioModel, files []string, workers int, stdout, stderr io.Writer) (result, error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu       sync.Mutex // guards the writers, res and quotaErr
		res      = result{files: len(files)}
		quotaErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, workers)
	)
	for _, path := range files {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			mu.Lock()
			res.skipped++
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			text, err := transcribeFile(ctx, client, model, path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				fmt.Fprintf(stderr, "%s: %s\n", path, oneLine(err))
				if apiErr, ok := errors.AsType[*openai.Error](err); ok && apiErr.Code == "insufficient_quota" && quotaErr == nil {
					// No credit left: every other request would fail too.
					quotaErr = fmt.Errorf("quota exhausted, batch stopped: %w", err)
					stop()
				}
				return
			}
			res.done++
			fmt.Fprintf(stdout, "%s: %s\n", filepath.Base(path), text)
		})
	}
	wg.Wait()
	return res, quotaErr
}

// transcribeFile is the plain SDK call: nothing in it knows about the
// limiter.
func transcribeFile(ctx context.Context, client openai.Client, model openai.AudioModel, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	res, err := client.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
		File:  f, // an *os.File: the SDK names the part after it
		Model: model,
	})
	if err != nil {
		return "", err
	}
	return res.Text, nil
}

// printStats prints the limiter's view of the run.
func printStats(w io.Writer, st ratelimit.Stats, res result, took time.Duration) {
	r := st.Requests
	fmt.Fprintf(w, "\n%d files: %d transcribed, %d failed, %d not sent, in %v\n",
		res.files, res.done, res.failed, res.skipped, took.Round(10*time.Millisecond))
	if r.Limit > 0 {
		fmt.Fprintf(w, "request budget: %g per %v (%s, a %s), %g available\n", r.Limit, r.Window, r.Source, r.Shape, r.Available)
	} else {
		fmt.Fprintf(w, "request budget: unknown (%s)\n", r.Source)
	}
	fmt.Fprintf(w, "pauses: %d, 429 rate limited: %d, throttles (429/503): %d, spread: %v\n",
		st.Pauses, st.RateLimited, st.Throttles, st.Spread)
}

// writeClips writes n short demo WAV clips of varied length into dir and
// returns their paths.
func writeClips(dir string, n int) ([]string, error) {
	paths := make([]string, n)
	for i := range paths {
		d := time.Second + time.Duration(i%4)*500*time.Millisecond
		paths[i] = filepath.Join(dir, fmt.Sprintf("clip-%02d.wav", i+1))
		if err := os.WriteFile(paths[i], transcribetest.WAV(d), 0o600); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// oneLine returns err's message on a single line (the SDK's API errors span
// several).
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
