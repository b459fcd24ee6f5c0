// Command limiters measures, side by side, four ways of sending many
// concurrent requests to an API with a rate limit, and shows how well each
// spends the budget: how long the batch takes, how many 429s it provokes,
// and whether it keeps to the budget.
//
// Each strategy sends the same requests (small multipart transcription
// uploads of a 0.2 s WAV clip) to its own fresh transcribetest server,
// which enforces a budget of requests per window as OpenAI does: a token
// bucket of the budget's size that refills continuously, x-ratelimit-*
// headers on every answer, and 429 rate_limit_exceeded with retry-after
// when it is empty. The window is scaled down (a "minute" of 2 s by
// default) so that a run takes seconds of real time, and every wait that a
// strategy takes in seconds of a real minute is scaled with it. The
// server's latency is 1/30 of the window. Every strategy retries its 429s
// until all requests are answered 200.
//
// The strategies:
//
//   - steno-learned: a ratelimit.Limiter with MaxInFlight 20 and no
//     configured budget, learning it from the server's headers; requests go
//     through lim.Transport, and a 429 is simply sent again (the limiter's
//     shared pause does the waiting).
//   - steno-configured: the same, told the budget (Config.Requests).
//   - forum: what forum answers suggest: a semaphore of 20 requests in
//     flight; after each answer whose x-ratelimit-remaining-requests is
//     below 10 % of x-ratelimit-limit-requests the worker sleeps 5 s, and
//     a 429 is retried after sleeping the same 5 s (both scaled).
//   - cookbook: OpenAI cookbook's api_request_parallel_processor.py: a
//     token bucket of requests per minute at the budget that starts full
//     (so a whole minute's worth may go at once), here with at most 20 in
//     flight; after any 429 every request waits until 15 s (scaled) have
//     passed since it, and the 429'd request is queued to be sent again.
//
// For each it reports the time until the last request was answered 200,
// that time as a multiple of the ideal (requests ÷ budget × window: the
// time a client takes that spends exactly the budget and nothing more), the
// 429s the server sent, the most requests the server saw in any window of
// the budget's length, 429'd ones included, and the most requests the
// server was handling at once. The fake's bucket starts full and refills
// continuously, so a client that bursts can finish below the ideal and have
// up to twice the budget answered in one window; a server that counts
// requests in fixed or sliding windows would refuse what is over the
// budget. Under the table, the steno rows are followed by the budget the
// limiter was pacing at when it finished.
//
// Run it from the module's root:
//
//	go run ./bench/limiters
//	go run ./bench/limiters -runs 3               # medians of three runs
//	go run ./bench/limiters -only cookbook -budget 100 -window 5s
//
// The flags are -requests (300), -budget (50 per window), -window (2s),
// -only (one strategy by name) and -runs (1; with more, each figure is the
// median of the runs). A default run takes a minute or two.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// maxInFlight bounds the requests in flight, for every strategy.
const maxInFlight = 20

// apiKey is the key the fake servers require.
const apiKey = "sk-bench"

// params are the conditions of a run.
type params struct {
	requests int           // requests to have answered 200
	budget   int           // requests per window the server allows
	window   time.Duration // the scaled "minute"
}

// ideal is the time a client that spends exactly the budget takes.
func (p params) ideal() time.Duration {
	return time.Duration(float64(p.requests) / float64(p.budget) * float64(p.window))
}

// latency is how long the server takes to answer each request.
func (p params) latency() time.Duration { return p.window / 30 }

// scaled returns d, a wait meant for a window of one minute, scaled to
// p.window.
func (p params) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * float64(p.window) / float64(time.Minute))
}

// A strategy sends p.requests requests with u and returns once each has
// been answered 200, or with the first error. Its note, if any, says what
// it learned.
type strategy struct {
	name string
	run  func(ctx context.Context, p params, u *uploader) (note string, err error)
}

// strategies returns the strategies, in the order of the table.
func strategies() []strategy {
	return []strategy{
		{"steno-learned", func(ctx context.Context, p params, u *uploader) (string, error) {
			return runSteno(ctx, p, u, ratelimit.Config{MaxInFlight: maxInFlight})
		}},
		{"steno-configured", func(ctx context.Context, p params, u *uploader) (string, error) {
			return runSteno(ctx, p, u, ratelimit.Config{
				MaxInFlight: maxInFlight,
				Requests:    ratelimit.Limit{N: float64(p.budget), Per: p.window},
			})
		}},
		{"forum", runForum},
		{"cookbook", runCookbook},
	}
}

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

// run parses args, runs the strategies and prints the table to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("limiters", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p params
	fs.IntVar(&p.requests, "requests", 300, "requests to send with each strategy")
	fs.IntVar(&p.budget, "budget", 50, "requests per window the server allows")
	fs.DurationVar(&p.window, "window", 2*time.Second, "the budget's window: a scaled-down minute")
	only := fs.String("only", "", "run only the strategy of this `name`")
	runs := fs.Int("runs", 1, "run each strategy this many times and print the medians")
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
	if p.requests <= 0 || p.budget <= 0 || p.window <= 0 || *runs <= 0 {
		return usage("-requests, -budget, -window and -runs must be positive")
	}
	chosen := strategies()
	if *only != "" {
		i := slices.IndexFunc(chosen, func(s strategy) bool { return s.name == *only })
		if i < 0 {
			var names []string
			for _, s := range chosen {
				names = append(names, s.name)
			}
			return usage("no strategy %q: choose one of %q", *only, names)
		}
		chosen = chosen[i : i+1]
	}

	fmt.Fprintf(stdout, "%d requests; budget %d per %v window (a scaled minute); server latency %v; at most %d in flight\n",
		p.requests, p.budget, p.window, p.latency(), maxInFlight)
	fmt.Fprintf(stdout, "ideal time %.2fs (requests ÷ budget × window)", p.ideal().Seconds())
	if *runs > 1 {
		fmt.Fprintf(stdout, "; each figure the median of %d runs", *runs)
	}
	fmt.Fprint(stdout, "\n\n")

	var rows [][]string
	var notes []string
	for _, s := range chosen {
		var results []figures
		for range *runs {
			f, err := measure(ctx, s, p)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			results = append(results, f)
			if f.note != "" && !slices.Contains(notes, s.name+": "+f.note) {
				notes = append(notes, s.name+": "+f.note)
			}
		}
		elapsed := median(results, func(f figures) float64 { return f.elapsed.Seconds() })
		rows = append(rows, []string{
			s.name,
			strconv.FormatFloat(elapsed, 'f', 2, 64),
			strconv.FormatFloat(elapsed/p.ideal().Seconds(), 'f', 2, 64),
			formatCount(median(results, func(f figures) float64 { return float64(f.limited) })),
			formatCount(median(results, func(f figures) float64 { return float64(f.maxInWindow) })) + "/" + strconv.Itoa(p.budget),
			formatCount(median(results, func(f figures) float64 { return float64(f.peakInFlight) })),
		})
	}
	printTable(stdout, []string{"strategy", "time (s)", "× ideal", "429s", "max in any " + p.window.String(), "peak in flight"}, rows)
	if len(notes) > 0 {
		fmt.Fprintln(stdout)
		for _, n := range notes {
			fmt.Fprintln(stdout, n)
		}
	}
	return nil
}

// figures are the measurements of one run of one strategy.
type figures struct {
	elapsed      time.Duration // until the last 200 was read
	limited      int           // 429s the server sent
	maxInWindow  int           // the most requests the server saw in any window
	peakInFlight int           // the most requests the server handled at once
	note         string        // what the strategy reported

	server transcribetest.Stats // all the server's figures
}

// measure runs s once against a fresh server.
func measure(ctx context.Context, s strategy, p params) (figures, error) {
	srv := transcribetest.NewServer(transcribetest.Config{
		APIKey:    apiKey,
		RateLimit: transcribetest.RateLimit{Requests: p.budget, Window: p.window},
		Latency:   p.latency(),
	})
	defer srv.Close()
	// The same transport for every strategy, keeping a connection for each
	// request in flight.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = maxInFlight
	defer base.CloseIdleConnections()
	u, err := newUploader(srv.BaseURL()+"/audio/transcriptions", base)
	if err != nil {
		return figures{}, err
	}

	start := time.Now()
	note, err := s.run(ctx, p, u)
	if err != nil {
		return figures{}, err
	}
	st := srv.Stats()
	if st.ByStatus[http.StatusOK] != p.requests || len(st.ByStatus) > 2 ||
		st.ByStatus[http.StatusOK]+st.ByStatus[http.StatusTooManyRequests] != st.Requests {
		return figures{}, fmt.Errorf("server answered %d requests with %v; want %d 200s and only 429s besides",
			st.Requests, st.ByStatus, p.requests)
	}
	return figures{
		elapsed:      u.done().Sub(start),
		limited:      st.ByStatus[http.StatusTooManyRequests],
		maxInWindow:  st.MaxInWindow(st.Sent, p.window),
		peakInFlight: st.MaxInFlight,
		note:         note,
		server:       st,
	}, nil
}

// uploader sends the benchmark's request: a small transcription upload.
type uploader struct {
	url         string
	body        []byte // the multipart form, a few KB
	contentType string
	base        http.RoundTripper // to the server, shared by the strategy's clients

	mu     sync.Mutex
	lastOK time.Time // when the last 200 was read
}

// done returns when the last 200 was read.
func (u *uploader) done() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastOK
}

func newUploader(url string, base http.RoundTripper) (*uploader, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if err := w.WriteField("model", "whisper-1"); err != nil {
		return nil, err
	}
	fw, err := w.CreateFormFile("file", "clip.wav")
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(transcribetest.WAV(200 * time.Millisecond)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return &uploader{url: url, body: body.Bytes(), contentType: w.FormDataContentType(), base: base}, nil
}

// post sends the request with c and returns the answer's status, 200 or
// 429, and headers; any other status is an error. The body is read and
// closed.
func (u *uploader) post(ctx context.Context, c *http.Client) (int, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(u.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", u.contentType)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		u.mu.Lock()
		u.lastOK = time.Now()
		u.mu.Unlock()
	case http.StatusTooManyRequests:
	default:
		return 0, nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	return resp.StatusCode, resp.Header, nil
}

// batch runs functions concurrently; the first error cancels the context
// they were given and is returned by wait.
type batch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

func newBatch(ctx context.Context) *batch {
	b := &batch{}
	b.ctx, b.cancel = context.WithCancelCause(ctx)
	return b
}

func (b *batch) goDo(f func(ctx context.Context) error) {
	b.wg.Go(func() {
		if err := f(b.ctx); err != nil {
			b.cancel(err)
		}
	})
}

func (b *batch) wait() error {
	b.wg.Wait()
	err := context.Cause(b.ctx)
	b.cancel(nil)
	return err
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// runSteno sends every request at once, each from its own goroutine,
// through a limiter configured by cfg, sending a request again when it is
// answered 429: the limiter paces them, bounds them in flight, and pauses
// them all after a 429.
func runSteno(ctx context.Context, p params, u *uploader, cfg ratelimit.Config) (string, error) {
	lim, err := ratelimit.New(cfg)
	if err != nil {
		return "", err
	}
	c := &http.Client{Transport: lim.Transport(u.base)}
	b := newBatch(ctx)
	for range p.requests {
		b.goDo(func(ctx context.Context) error {
			for {
				status, _, err := u.post(ctx, c)
				if err != nil || status == http.StatusOK {
					return err
				}
			}
		})
	}
	if err := b.wait(); err != nil {
		return "", err
	}
	s := lim.Snapshot()
	return fmt.Sprintf("the limiter ended with a %s of %g requests per %v (%s), after %d pauses for 429s; spread %v",
		s.Requests.Shape, s.Requests.Limit, s.Requests.Window, s.Requests.Source, s.Pauses, s.Spread), nil
}

// runForum is the pattern forum answers suggest: a semaphore of 20, and a
// worker that sleeps 5 s when the headers say less than 10 % of the budget
// remains, or after a 429 before sending the request again.
func runForum(ctx context.Context, p params, u *uploader) (string, error) {
	pause := p.scaled(5 * time.Second)
	c := &http.Client{Transport: u.base}
	sem := make(chan struct{}, maxInFlight)
	b := newBatch(ctx)
	for range p.requests {
		b.goDo(func(ctx context.Context) error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			defer func() { <-sem }()
			for {
				status, h, err := u.post(ctx, c)
				if err != nil {
					return err
				}
				if status == http.StatusTooManyRequests {
					if err := sleep(ctx, pause); err != nil {
						return err
					}
					continue
				}
				limit, err1 := strconv.Atoi(h.Get("x-ratelimit-limit-requests"))
				remaining, err2 := strconv.Atoi(h.Get("x-ratelimit-remaining-requests"))
				if err1 == nil && err2 == nil && remaining*10 < limit {
					return sleep(ctx, pause)
				}
				return nil
			}
		})
	}
	return "", b.wait()
}

// runCookbook is the loop of OpenAI cookbook's
// api_request_parallel_processor.py: one dispatcher takes the next request
// (a 429'd one to retry first), waits until 15 s (scaled) have passed since
// the last 429 and for a request's worth of capacity in a bucket that
// holds a full budget and refills at the budget per window, polling every
// millisecond as the cookbook does, and sends it. Here it also waits for
// one of 20 slots in flight.
func runCookbook(ctx context.Context, p params, u *uploader) (string, error) {
	const poll = time.Millisecond // the cookbook's seconds_to_sleep_each_loop
	cooldown := p.scaled(15 * time.Second)
	c := &http.Client{Transport: u.base}
	capacity := &bucket{size: float64(p.budget), window: p.window}

	var mu sync.Mutex
	var lastLimited time.Time // the last 429's arrival, guarded by mu
	retries := make(chan struct{}, p.requests)
	answered := make(chan struct{}, p.requests)
	slots := make(chan struct{}, maxInFlight)
	b := newBatch(ctx)
	ctx = b.ctx
	fresh, pending := p.requests, p.requests
dispatch:
	for pending > 0 {
		// The next request: a retry first, else a fresh one, else wait
		// for one in flight to be retried or answered.
		select {
		case <-retries:
		default:
			if fresh > 0 {
				fresh--
				break
			}
			select {
			case <-retries:
			case <-answered:
				pending--
				continue dispatch
			case <-ctx.Done():
				break dispatch
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break dispatch
		}
		for {
			now := time.Now()
			mu.Lock()
			resume := lastLimited.Add(cooldown)
			mu.Unlock()
			var err error
			if now.Before(resume) {
				err = sleep(ctx, resume.Sub(now))
			} else if capacity.take(now) {
				break
			} else {
				err = sleep(ctx, poll)
			}
			if err != nil {
				break dispatch
			}
		}
		b.goDo(func(ctx context.Context) error {
			defer func() { <-slots }()
			status, _, err := u.post(ctx, c)
			switch {
			case err != nil:
				return err
			case status == http.StatusTooManyRequests:
				mu.Lock()
				lastLimited = time.Now()
				mu.Unlock()
				retries <- struct{}{}
			default:
				answered <- struct{}{}
			}
			return nil
		})
	}
	return "", b.wait()
}

// bucket is the cookbook's request capacity: it starts full, holds up to
// size and refills continuously at size per window.
type bucket struct {
	size   float64
	window time.Duration
	avail  float64
	last   time.Time // zero until the first take
}

// take spends one request of capacity at now, if there is one.
func (b *bucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.avail = b.size
	} else {
		b.avail = min(b.size, b.avail+b.size*now.Sub(b.last).Seconds()/b.window.Seconds())
	}
	b.last = now
	if b.avail < 1 {
		return false
	}
	b.avail--
	return true
}

// median returns the median of f over fs.
func median(fs []figures, f func(figures) float64) float64 {
	v := make([]float64, len(fs))
	for i := range fs {
		v[i] = f(fs[i])
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// formatCount formats a count, or a median of counts that may end in .5.
func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// printTable prints rows under header in aligned columns: the first
// column left-aligned, the others right-aligned.
func printTable(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, cell := range r {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for _, r := range append([][]string{header}, rows...) {
		var line []byte
		for i, cell := range r {
			pad := width[i] - len([]rune(cell))
			if i == 0 {
				line = fmt.Appendf(line, "%s%*s", cell, pad, "")
			} else {
				line = fmt.Appendf(line, "  %*s%s", pad, "", cell)
			}
		}
		fmt.Fprintf(w, "%s\n", line)
	}
}
