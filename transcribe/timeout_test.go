package transcribe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// pipeNet is a real net/http server and a real http.Transport joined by
// net.Pipe connections instead of sockets, so that it runs inside a
// synctest bubble with HTTP/1.1 framing, trace events and cancellation as
// they are on the wire. A pipe buffers nothing: a server that stops
// reading stops the upload at once.
type pipeNet struct {
	conns     chan net.Conn
	done      chan struct{} // closed when the server closes: stalled handlers return
	closeOnce sync.Once
	srv       *http.Server
	tr        *http.Transport
	dialStall atomic.Bool // dials hang until cancelled
	dials     atomic.Int32
}

func newPipeNet(t *testing.T, h http.Handler) *pipeNet {
	p := &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
	p.srv = &http.Server{Handler: h}
	p.tr = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		p.dials.Add(1)
		if p.dialStall.Load() {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.done:
				return nil, net.ErrClosed
			}
		}
		c, s := net.Pipe()
		select {
		case p.conns <- s:
			return c, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.done:
			return nil, net.ErrClosed
		}
	}}
	go p.srv.Serve(p)
	t.Cleanup(func() {
		p.tr.CloseIdleConnections()
		p.srv.Close()
	})
	return p
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80} }

// stall blocks a handler until its request is cancelled or the server
// closes.
func (p *pipeNet) stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.done:
	}
}

// client returns a client that sends through p.
func (p *pipeNet) client(t *testing.T, opts ...transcribe.Option) *transcribe.Client {
	t.Helper()
	c, err := transcribe.NewClient(append([]transcribe.Option{
		transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
		transcribe.WithHTTPClient(&http.Client{Transport: p.tr}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// backoffs bounds the waits between the attempts of a call that failed
// three times: 500 ms and 1 s, each ±25 %.
const minBackoffs, maxBackoffs = 1125 * time.Millisecond, 1875 * time.Millisecond

// checkTimeout checks that err is the *TimeoutError of phase, and not the
// caller's own deadline.
func checkTimeout(t *testing.T, err error, phase transcribe.TimeoutPhase, after time.Duration) {
	t.Helper()
	var te *transcribe.TimeoutError
	if !errors.As(err, &te) || te.Phase != phase || te.After != after {
		t.Fatalf("err %v, want a %v timeout after %v", err, phase, after)
	}
	if !errors.Is(err, transcribe.ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Fatalf("%v: matches ErrTimeout %v, os.ErrDeadlineExceeded %v, context.DeadlineExceeded %v, context.Canceled %v",
			err, errors.Is(err, transcribe.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled))
	}
	if strings.Contains(err.Error(), "SUPERSECRET") {
		t.Fatalf("key in error: %v", err)
	}
}

// Each way a server can hang costs a bounded time per attempt, and each
// timed-out attempt is retried: a call that meets the hang every time
// returns after three attempts, three bounds and two backoffs, with a
// *TimeoutError naming the phase.
func TestEveryHangTimesOutAndIsRetried(t *testing.T) {
	jsonHeaders := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "10000")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
	}
	for _, tc := range []struct {
		name    string
		handler func(p *pipeNet) http.HandlerFunc
		setup   func(p *pipeNet)
		phase   transcribe.TimeoutPhase
		bound   time.Duration
	}{
		{
			name:  "connection never made",
			setup: func(p *pipeNet) { p.dialStall.Store(true) },
			phase: transcribe.PhaseConnect, bound: transcribe.DefaultConnectTimeout,
		},
		{
			name: "server stops reading the upload",
			handler: func(p *pipeNet) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.CopyN(io.Discard, r.Body, 64<<10)
					p.stall(r)
				}
			},
			phase: transcribe.PhaseUpload, bound: transcribe.DefaultStallTimeout,
		},
		{
			name: "silence after the upload",
			handler: func(p *pipeNet) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					p.stall(r)
				}
			},
			phase: transcribe.PhaseFirstByte, bound: transcribe.DefaultFirstByteTimeout,
		},
		{
			name: "stall after the headers",
			handler: func(p *pipeNet) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					jsonHeaders(w)
					p.stall(r)
				}
			},
			phase: transcribe.PhaseResponse, bound: transcribe.DefaultStallTimeout,
		},
		{
			name: "stall in the body",
			handler: func(p *pipeNet) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					jsonHeaders(w)
					io.WriteString(w, `{"text":"hello`)
					w.(http.Flusher).Flush()
					p.stall(r)
				}
			},
			phase: transcribe.PhaseResponse, bound: transcribe.DefaultStallTimeout,
		},
		{
			name: "body trickled at 1 byte/s",
			handler: func(p *pipeNet) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					jsonHeaders(w)
					body := `{"text":"` + strings.Repeat("a", 10000-11) + `"}`
					for i := range len(body) {
						if _, err := io.WriteString(w, body[i:i+1]); err != nil {
							return
						}
						w.(http.Flusher).Flush()
						select {
						case <-time.After(time.Second):
						case <-r.Context().Done():
							return
						case <-p.done:
							return
						}
					}
				}
			},
			phase: transcribe.PhaseResponse, bound: transcribe.DefaultStallTimeout,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var requests atomic.Int32
				var p *pipeNet
				p = newPipeNet(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					requests.Add(1)
					tc.handler(p)(w, r)
				}))
				if tc.setup != nil {
					tc.setup(p)
				}
				c := p.client(t)
				path := writeWAV(t, t.TempDir(), "a.wav", 5) // 160 kB
				start := time.Now()
				_, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
				took := time.Since(start)
				checkTimeout(t, err, tc.phase, tc.bound)
				if took < 3*tc.bound+minBackoffs || took > 3*tc.bound+maxBackoffs {
					t.Errorf("returned after %v, want 3 × %v and two backoffs", took, tc.bound)
				}
				if tc.phase != transcribe.PhaseConnect && requests.Load() != 3 {
					t.Errorf("%d requests reached the server, want 3", requests.Load())
				}
			})
		})
	}
}

// The fake API, in memory, with a transcriber that never finishes: the
// server's first byte never comes.
func TestFirstByteTimeoutInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newVirtualClient(t, transcribetest.Config{
			Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		}, transcribe.WithTimeouts(transcribe.Timeouts{FirstByte: 2 * time.Minute}))
		start := time.Now()
		_, err := c.TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
		took := time.Since(start)
		checkTimeout(t, err, transcribe.PhaseFirstByte, 2*time.Minute)
		if took < 6*time.Minute+minBackoffs || took > 6*time.Minute+maxBackoffs || h.Stats().Requests != 3 {
			t.Fatalf("%d requests in %v, want 3 in 6 minutes and two backoffs", h.Stats().Requests, took)
		}
	})
}

// stallingUpload is a RoundTripper that reads n bytes of the upload, then
// reads no more until the request is cancelled, as a server whose receive
// window stays shut.
type stallingUpload struct {
	n     int64
	calls atomic.Int32
}

func (s *stallingUpload) RoundTrip(r *http.Request) (*http.Response, error) {
	s.calls.Add(1)
	defer r.Body.Close()
	if _, err := io.CopyN(io.Discard, r.Body, s.n); err != nil {
		return nil, err
	}
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// A transport that reports no trace events still gets the upload's stall
// detected, from the body's reads alone; with MinRate off, only a transfer
// that moves nothing stalls.
func TestUploadStallWithoutTraceEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &stallingUpload{n: 1000}
		c, err := transcribe.NewClient(transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
			transcribe.WithHTTPClient(&http.Client{Transport: rt}),
			transcribe.WithTimeouts(transcribe.Timeouts{Stall: 10 * time.Second, MinRate: -1}))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 2), transcribe.Request{})
		took := time.Since(start)
		checkTimeout(t, err, transcribe.PhaseUpload, 10*time.Second)
		var te *transcribe.TimeoutError
		errors.As(err, &te)
		if te.MinRate != 0 || !strings.Contains(err.Error(), "nothing moved for 10s") {
			t.Errorf("error %q, MinRate %d", err, te.MinRate)
		}
		if took < 30*time.Second+minBackoffs || took > 30*time.Second+maxBackoffs || rt.calls.Load() != 3 {
			t.Fatalf("%d attempts in %v", rt.calls.Load(), took)
		}
	})
}

// Slow is not stalled: an upload and a response that keep moving above
// MinRate, and a transcription that takes minutes, succeed however long
// they take in all.
func TestSlowButMovingIsNotAStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 2 << 10 // bytes per second, each way: twice the default MinRate
		text := strings.Repeat("word ", 40000)
		var requests atomic.Int32
		p := newPipeNet(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			buf := make([]byte, rate)
			for { // the upload, read at rate
				_, err := io.ReadFull(r.Body, buf)
				if err != nil {
					break
				}
				time.Sleep(time.Second)
			}
			time.Sleep(5 * time.Minute) // a long transcription
			body := []byte(`{"text":"` + text + `"}`)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			for len(body) > 0 { // the answer, sent at rate
				n := min(rate, len(body))
				if _, err := w.Write(body[:n]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				if body = body[n:]; len(body) > 0 {
					time.Sleep(time.Second)
				}
			}
		}))
		c := p.client(t)
		path := writeWAV(t, t.TempDir(), "a.wav", 20) // 640 kB: over 5 minutes at 2 KiB/s
		start := time.Now()
		tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if tr.Attempts != 1 || requests.Load() != 1 || len(tr.Text) != len(text) || took < 11*time.Minute {
			t.Fatalf("%d attempts, %d requests, %d bytes of text, in %v", tr.Attempts, requests.Load(), len(tr.Text), took)
		}
		t.Logf("one attempt of %v: 640 kB up and 200 kB down at 2 KiB/s, 5 minutes of transcription", took)
	})
}

// The caller's own deadline and cancellation are returned as the
// context's errors, never as timeouts, even while an attempt is stalled.
func TestCallerContextIsNotATimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newVirtualClient(t, transcribetest.Config{
			Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		})
		path := writeWAV(t, t.TempDir(), "a.wav", 1)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		_, err := c.TranscribeFile(ctx, path, transcribe.Request{})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transcribe.ErrTimeout) || time.Since(start) != time.Minute {
			t.Fatalf("deadline: err %v after %v", err, time.Since(start))
		}

		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(30*time.Second, cancel)
		start = time.Now()
		_, err = c.TranscribeFile(ctx, path, transcribe.Request{})
		if !errors.Is(err, context.Canceled) || errors.Is(err, transcribe.ErrTimeout) || time.Since(start) != 30*time.Second {
			t.Fatalf("cancel: err %v after %v", err, time.Since(start))
		}
	})
}

// A batch of 40 files whose first request stalls: the other 39 are sent at
// once and finish while it hangs, and the stalled one fails with the
// timeout after its retries.
func TestBatchGoesOnBehindAStalledRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalled := make(chan struct{})
		var once sync.Once
		c, h := newVirtualClient(t, transcribetest.Config{
			Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
				if a.Filename == "stall.wav" {
					once.Do(func() { close(stalled) })
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return transcribetest.DefaultTranscriber(ctx, a)
			},
		})
		dir := t.TempDir()
		stall := writeWAV(t, dir, "stall.wav", 1)
		var others []string
		for i := range 39 {
			others = append(others, writeWAV(t, dir, fmt.Sprintf("f%02d.wav", i), 1))
		}
		jobs := iter.Seq[transcribe.Job](func(yield func(transcribe.Job) bool) {
			if !yield(transcribe.Job{Path: stall}) {
				return
			}
			<-stalled // the stalled request is the first the server sees, and in flight
			for _, p := range others {
				if !yield(transcribe.Job{Path: p}) {
					return
				}
			}
		})
		start := time.Now()
		var lastOther time.Duration
		rs := map[string]transcribe.BatchResult{}
		seq, err := c.BatchTranscribe(context.Background(), jobs, transcribe.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for r := range seq {
			rs[r.Job.Path] = r
			if r.Job.Path != stall {
				lastOther = time.Since(start)
			}
		}
		took := time.Since(start)
		done := 0
		for _, p := range others {
			if rs[p].Status == transcribe.StatusDone {
				done++
			}
		}
		if done != 39 || lastOther >= transcribe.DefaultFirstByteTimeout {
			t.Fatalf("%d of 39 done, the last after %v", done, lastOther)
		}
		r := rs[stall]
		if r.Status != transcribe.StatusFailed || r.Attempts != 3 {
			t.Fatalf("stalled job: %v after %d attempts: %v", r.Status, r.Attempts, r.Err)
		}
		checkTimeout(t, r.Err, transcribe.PhaseFirstByte, transcribe.DefaultFirstByteTimeout)
		if took > 3*transcribe.DefaultFirstByteTimeout+maxBackoffs || h.Stats().Requests != 42 {
			t.Fatalf("batch took %v and %d requests", took, h.Stats().Requests)
		}
		t.Logf("39 done by %v; the stalled one failed after %v", lastOther, took)
	})
}

func TestTimeoutErrorText(t *testing.T) {
	for _, tc := range []struct {
		e    transcribe.TimeoutError
		want string
	}{
		{transcribe.TimeoutError{Phase: transcribe.PhaseConnect, After: 30 * time.Second}, "timeout: no connection within 30s"},
		{transcribe.TimeoutError{Phase: transcribe.PhaseUpload, After: time.Minute, MinRate: 1024}, "timeout: upload stalled (under 1024 bytes/s for 1m0s)"},
		{transcribe.TimeoutError{Phase: transcribe.PhaseFirstByte, After: 10 * time.Minute}, "timeout: no answer within 10m0s of the upload's end"},
		{transcribe.TimeoutError{Phase: transcribe.PhaseResponse, After: time.Minute}, "timeout: response stalled (nothing moved for 1m0s)"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
		if !tc.e.Timeout() {
			t.Errorf("%v: Timeout() false", tc.e)
		}
	}
}
