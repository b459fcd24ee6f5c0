package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// uploadCase is one set of files sent at once in the uploads scenario.
type uploadCase struct {
	files int
	bytes int64
	name  string // "50 × 10 MiB"

	dir      string            // where its files are
	list     string            // the file listing their paths
	expected map[string]string // base name → the transcript the fake makes
}

// upFigures are the measurements of one run of one contender on one case.
type upFigures struct {
	err         error // the run failed: see verify
	wall        time.Duration
	cpu         time.Duration // user + system time of the contender's process
	rssKB       int64         // its peak resident set
	startRSSKB  int64         // its resident set before the first request
	allocBytes  uint64
	mallocs     uint64
	numGC       uint32
	peakFlight  int // the most requests the server handled at once
	statuses    map[int]int
	chunked     int64 // requests the server received without a Content-Length
	serverBytes int64
	sendCPU     time.Duration // user + system time of the process while it sent (getrusage in the child)
	syscalls    int64         // read and write system calls meanwhile
}

// makeCase writes c's files into dir (a tone with noise, different in every
// file, every byte written) and computes the transcript the fake answers
// for each.
func makeCase(ctx context.Context, c *uploadCase, dir string) error {
	c.dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	paths := make([]string, c.files)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("clip%03d.wav", i+1))
	}
	c.expected = make(map[string]string, c.files)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, runtime.NumCPU())
	)
	for i, p := range paths {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := writeClip(p, i, c.bytes)
			var want string
			if err == nil {
				want, err = expectedText(ctx, p)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			c.expected[filepath.Base(p)] = want
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.list = filepath.Join(dir, "list.txt")
	return os.WriteFile(c.list, []byte(strings.Join(paths, "\n")+"\n"), 0o644)
}

// writeClip writes clip number i of size bytes: a 16 kHz mono 16-bit WAV
// file of a tone whose pitch depends on i, with seeded noise.
func writeClip(path string, i int, size int64) error {
	const rate = 16000
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	freq := 200 + 3*float64(i)
	w := bufio.NewWriterSize(f, 1<<20)
	err = audio.SynthWAV(w, rate, int((size-44)/2), func(n int) float64 {
		return 0.25*math.Sin(2*math.Pi*freq*float64(n)/rate) + 0.05*(rng.Float64()-0.5)
	})
	return errors.Join(err, w.Flush(), f.Close())
}

// expectedText is the text the fake API answers, in json, for the audio at
// path.
func expectedText(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	t, err := transcribetest.DefaultTranscriber(ctx, &transcribetest.Audio{
		Task: "transcribe", Filename: filepath.Base(path), Model: "whisper-1", ResponseFormat: "json",
		Size: st.Size(), File: f,
	})
	if err != nil {
		return "", err
	}
	if t.Text != "" {
		return t.Text, nil
	}
	texts := make([]string, len(t.Segments))
	for i, s := range t.Segments {
		texts[i] = strings.TrimSpace(s.Text)
	}
	return strings.Join(texts, " "), nil
}

// fakeServer is the fake API on a loopback port, counting the requests
// that come without a Content-Length (chunked), which it refuses as the
// API does.
type fakeServer struct {
	h       *transcribetest.Handler
	srv     *http.Server
	url     string
	chunked atomic.Int64
	done    chan error
}

// startFake starts a fresh fake API configured by cfg (for the uploads:
// the zero Config, no rate limit, no latency).
func startFake(cfg transcribetest.Config) (*fakeServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &fakeServer{h: transcribetest.NewHandler(cfg), url: "http://" + ln.Addr().String() + "/v1", done: make(chan error, 1)}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength < 0 || slices.Contains(r.TransferEncoding, "chunked") {
				s.chunked.Add(1)
			}
			s.h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// stop shuts the server down, waiting for the requests in flight.
func (s *fakeServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
}

// runUpload runs contender name once on c in a process of its own against
// a fresh fake, and verifies every answer.
func runUpload(ctx context.Context, self string, name string, c *uploadCase, timeout time.Duration) upFigures {
	srv, err := startFake(transcribetest.Config{})
	if err != nil {
		return upFigures{err: err}
	}
	defer srv.stop()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-contender", name, "-url", srv.url, "-list", c.list)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &stdout, n: 64 << 20}
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	runErr := cmd.Run()
	st := srv.h.Stats()
	f := upFigures{
		peakFlight:  st.MaxInFlight,
		statuses:    st.ByStatus,
		chunked:     srv.chunked.Load(),
		serverBytes: st.BytesReceived,
	}
	if cmd.ProcessState != nil {
		f.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if runErr != nil {
		f.err = fmt.Errorf("the contender's process: %w: %s", runErr, lastLine(stderr.String()))
		if ctx.Err() != nil {
			f.err = fmt.Errorf("did not finish within %v", timeout)
		}
		return f
	}
	var rep childReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		f.err = fmt.Errorf("the contender's report: %w", err)
		return f
	}
	f.wall = time.Duration(rep.WallNs)
	f.rssKB, f.startRSSKB = rep.VmHWMkB, rep.StartRSSkB
	f.allocBytes, f.mallocs, f.numGC = rep.AllocBytes, rep.Mallocs, rep.NumGC
	f.sendCPU, f.syscalls = time.Duration(rep.CPUNs), rep.Syscalls
	f.err = verify(name, c, rep.Answers, f)
	return f
}

// verify checks a run: for every contender but the chunked reference,
// every file answered 200 with its own transcript, the server having
// answered nothing else and received no chunked request; for the chunked
// reference, every file refused with a 400 as the API refuses it, and
// every request chunked.
func verify(name string, c *uploadCase, answers []answer, f upFigures) error {
	if len(answers) != c.files {
		return fmt.Errorf("%d answers for %d files", len(answers), c.files)
	}
	if name == cPipe {
		for _, a := range answers {
			if a.Status != http.StatusBadRequest {
				return fmt.Errorf("%s: want the API's 400 for a chunked upload, got status %d (%s)", a.File, a.Status, a.Err)
			}
		}
		if f.chunked != int64(c.files) || f.statuses[http.StatusBadRequest] != c.files {
			return fmt.Errorf("the server saw %d chunked requests and answered %v; want %d chunked, all 400", f.chunked, f.statuses, c.files)
		}
		return nil
	}
	wrong := 0
	var first string
	for _, a := range answers {
		want, ok := c.expected[a.File]
		switch {
		case !ok:
			first = cmpOr(first, fmt.Sprintf("%s: an answer for a file not sent", a.File))
		case a.Err != "" || a.Status != http.StatusOK:
			first = cmpOr(first, fmt.Sprintf("%s: status %d: %s", a.File, a.Status, a.Err))
		case strings.TrimSpace(a.Text) != want:
			first = cmpOr(first, fmt.Sprintf("%s: wrong transcript %.40q…, want %.40q…", a.File, a.Text, want))
		default:
			continue
		}
		wrong++
	}
	switch {
	case wrong > 0:
		return fmt.Errorf("%d of %d transcripts missing or wrong; first: %s", wrong, c.files, first)
	case f.chunked != 0:
		return fmt.Errorf("%d chunked requests", f.chunked)
	case f.statuses[http.StatusOK] != c.files || len(f.statuses) != 1:
		return fmt.Errorf("the server answered %v; want %d 200s and nothing else", f.statuses, c.files)
	}
	return nil
}

// cmpOr returns a unless it is empty, else b.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// limitedWriter keeps the first n bytes written to it and drops the rest,
// so that a contender cannot make benchall hold an unbounded output.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	n, err := l.w.Write(q)
	l.n -= int64(n)
	if err != nil {
		return n, err
	}
	return len(p), nil
}
