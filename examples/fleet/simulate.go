package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// simulatedKey is the key to give workers for the simulated API, which
// takes any.
const simulatedKey = "sk-simulated"

// runSimulate is `fleet simulate`: a simulated API on a loopback port, for
// workers in other processes to share.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: fleet simulate [flags]

Runs a simulated transcription API (transcribetest: OpenAI's wire format,
rate limit headers and 429s, deterministic transcripts of any audio) until
interrupted, and prints on its first line of output its base URL as
OPENAI_BASE_URL=http://HOST:PORT/v1. Point workers at it with that and
OPENAI_API_KEY=sk-simulated (any key is taken). Stopped (Ctrl-C), it prints
what it answered, and every file it answered 200 for more than once: a file
paid for twice.

flags:
`)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:0", "`address` to listen on (port 0: any free port)")
	budget := ratelimit.Limit{N: 60, Per: 10 * time.Second}
	fs.Var(&budget, "requests", "the simulated account's request budget, as `N/WINDOW` (0: none)")
	latency := fs.Duration("latency", 300*time.Millisecond, "time each answer takes")
	faults := fs.Float64("fault-rate", 0, "share of requests answered with a random 500, 502, 503 or dropped connection, 0 to 1")
	clips := fs.String("clips", "", "first write -n generated audio clips (WAV tones of 1 to 3 s) into this `folder`, to have something to transcribe")
	nClips := fs.Int("n", 60, "how many clips -clips writes")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	var problems []string
	if budget.N > 0 && (budget.N != float64(int(budget.N)) || budget.Per <= 0) {
		problems = append(problems, fmt.Sprintf("-requests %v: want a whole number per a window", budget))
	}
	if *latency < 0 {
		problems = append(problems, fmt.Sprintf("-latency %v: want 0 or more", *latency))
	}
	if !(*faults >= 0 && *faults <= 1) {
		problems = append(problems, fmt.Sprintf("-fault-rate %v: want 0 to 1", *faults))
	}
	if *nClips < 1 || *nClips > 10000 {
		problems = append(problems, fmt.Sprintf("-n %d: want 1 to 10000", *nClips))
	}
	if fs.NArg() > 0 {
		problems = append(problems, "no arguments expected")
	}
	if len(problems) > 0 {
		return usage(stderr, "simulate", problems)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *clips != "" {
		if err := writeClips(*clips, *nClips); err != nil {
			log.Error("fleet simulate: writing clips", "error", err)
			return exitFailed
		}
		log.Info("fleet simulate: wrote clips", "folder", *clips, "n", *nClips)
	}
	cfg := transcribetest.Config{Latency: *latency, FaultRate: *faults, Seed: uint64(time.Now().UnixNano())}
	if budget.N > 0 {
		cfg.RateLimit = transcribetest.RateLimit{Requests: int(budget.N), Window: budget.Per}
	}
	m := newMeter(cfg)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("fleet simulate: cannot listen", "error", err)
		return exitFailed
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "OPENAI_BASE_URL=http://%s/v1\n", ln.Addr())
	limit := "no rate limit"
	if budget.N > 0 {
		limit = fmt.Sprintf("%g requests per %v", budget.N, budget.Per)
	}
	log.Info("fleet simulate: serving; Ctrl-C stops it and prints what it answered",
		"url", fmt.Sprintf("http://%s/v1", ln.Addr()), "key", simulatedKey+" (any is taken)", "limit", limit, "latency", *latency)

	code := exitOK
	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("fleet simulate: the server stopped", "error", err)
		code = exitFailed
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("fleet simulate: shutting down", "error", err)
	}
	srv.Close()
	fmt.Fprint(stdout, m.report())
	return code
}

// meter is the fake API, counting the requests it answers 200 for each
// file: a request answered 200 is one paid for. A file appears under the
// name the client sent it with (its base name).
type meter struct {
	h *transcribetest.Handler

	mu   sync.Mutex
	paid map[string]int
	lost map[string]int // of which answered after the client had gone (its worker died)
}

// fileKey holds, in a request's context, the name of the file it sent,
// set by the fake's Transcriber.
type fileKey struct{}

type fileSlot struct {
	mu   sync.Mutex
	name string
}

// newMeter returns the fake of cfg, counting.
func newMeter(cfg transcribetest.Config) *meter {
	m := &meter{paid: map[string]int{}, lost: map[string]int{}}
	inner := cfg.Transcriber
	if inner == nil {
		inner = transcribetest.DefaultTranscriber
	}
	cfg.Transcriber = func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		if s, ok := ctx.Value(fileKey{}).(*fileSlot); ok {
			s.mu.Lock()
			s.name = a.Filename
			s.mu.Unlock()
		}
		return inner(ctx, a)
	}
	m.h = transcribetest.NewHandler(cfg)
	return m
}

// ServeHTTP answers as the fake does, and counts.
func (m *meter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	slot := &fileSlot{}
	sw := &statusWriter{ResponseWriter: w}
	m.h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), fileKey{}, slot)))
	slot.mu.Lock()
	name := slot.name
	slot.mu.Unlock()
	if sw.status == http.StatusOK && name != "" {
		m.mu.Lock()
		m.paid[name]++
		if r.Context().Err() != nil {
			// The connection closed before the answer was written:
			// the transcript was made, and billed, for no one.
			m.lost[name]++
		}
		m.mu.Unlock()
	}
}

// Paid returns, for each file, the requests answered 200.
func (m *meter) Paid() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.paid)
}

// report describes what the fake answered.
func (m *meter) report() string {
	st := m.h.Stats()
	paid := m.Paid()
	var b strings.Builder
	fmt.Fprintf(&b, "simulated API: %d requests", st.Requests)
	for _, code := range slices.Sorted(maps.Keys(st.ByStatus)) {
		what := fmt.Sprintf("answered %d", code)
		if code == 0 {
			what = "cut (no answer)"
		}
		fmt.Fprintf(&b, ", %d %s", st.ByStatus[code], what)
	}
	m.mu.Lock()
	lost := maps.Clone(m.lost)
	m.mu.Unlock()
	twice, lostTwice := 0, 0
	for name, n := range paid {
		if n > 1 {
			twice++
			if lost[name] > 0 {
				lostTwice++
			}
		}
	}
	fmt.Fprintf(&b, "\nfiles paid for (answered 200): %d; paid for more than once: %d\n", len(paid), twice)
	for _, name := range slices.Sorted(maps.Keys(paid)) {
		if paid[name] > 1 {
			fmt.Fprintf(&b, "  %s: %d times", transcribe.PrintableLine(name), paid[name])
			if lost[name] > 0 {
				fmt.Fprintf(&b, ", %d of them answered after its worker had gone", lost[name])
			}
			b.WriteString("\n")
		}
	}
	if lostTwice > 0 {
		fmt.Fprintf(&b, "(%d of these were in flight when their worker died: a request in flight is paid for and its answer lost with the worker; a dead worker costs at most its -concurrency)\n", lostTwice)
	}
	return b.String()
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader remembers the first status written.
func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write writes b, with the status 200 if none was written.
func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets the fake stream and cut answers as it does on a real
// connection.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// writeClips writes n WAV clips of 1 to 3 seconds into dir, each
// different, named clip-0001.wav and on.
func writeClips(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		d := time.Second + time.Duration(i%21)*100*time.Millisecond + time.Duration(i/21)*time.Millisecond
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("clip-%04d.wav", i+1)), transcribetest.WAV(d), 0o644); err != nil {
			return err
		}
	}
	return nil
}
