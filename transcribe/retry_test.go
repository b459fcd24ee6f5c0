package transcribe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func TestClassify(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		name string
		err  error
		want failure
	}{
		{"500", &APIError{StatusCode: 500}, failure{retry: true}},
		{"502 HTML", fmt.Errorf("transcribe: %w", &APIError{StatusCode: 502}), failure{retry: true}},
		{"429 rate limit", &APIError{StatusCode: 429, Code: "rate_limit_exceeded", RetryAfter: 2 * time.Second}, failure{retry: true, rateLimited: true, wait: 2 * time.Second}},
		{"429 quota", &APIError{StatusCode: 429, Code: "insufficient_quota", RetryAfter: time.Second}, failure{wait: time.Second}},
		{"400", &APIError{StatusCode: 400}, failure{}},
		{"401", &APIError{StatusCode: 401}, failure{}},
		{"413", &APIError{StatusCode: 413}, failure{}},
		{"408", &APIError{StatusCode: 408}, failure{retry: true}},
		{"500 x-should-retry false", &APIError{StatusCode: 500, shouldRetry: &no}, failure{}},
		{"418 x-should-retry true", &APIError{StatusCode: 418, shouldRetry: &yes}, failure{retry: true}},
		{"400 x-should-retry true", &APIError{StatusCode: 400, shouldRetry: &yes}, failure{}},
		{"refused redirect", &APIError{StatusCode: 303}, failure{}},
		{"our timeout", fmt.Errorf("transcribe: POST x: %w", &TimeoutError{Phase: PhaseFirstByte, After: time.Minute}), failure{retry: true, timeout: true}},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, failure{retry: true, timeout: true}},
		{"http.Client.Timeout", &url.Error{Op: "Post", URL: "x", Err: context.DeadlineExceeded}, failure{retry: true, timeout: true}},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, failure{retry: true}},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, failure{retry: true}},
		{"dropped connection", fmt.Errorf("%w (%w)", transcribetest.ErrConnectionDropped, io.EOF), failure{retry: true}},
		{"truncated body", fmt.Errorf("transcribe: reading response: %w", io.ErrUnexpectedEOF), failure{retry: true}},
		{"permanent", permanent{errors.New("vetoed")}, failure{}},
		{"file changed size", fmt.Errorf("transcribe: POST x: %w", multipart.ErrSizeMismatch), failure{}},
		{"file vanished", &fs.PathError{Op: "open", Path: "a.wav", Err: fs.ErrNotExist}, failure{}},
		{"limiter wait past the deadline", ratelimit.ErrWouldExceedDeadline, failure{}},
		{"unknown CA", &url.Error{Op: "Post", URL: "x", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, failure{}},
		{"wrong host", x509.HostnameError{Host: "x"}, failure{}},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// budgetServer is the fake API, in memory, that fails every request with
// a 500 while down is set.
type budgetServer struct {
	h    *transcribetest.Handler
	down atomic.Bool
	path string
}

func newBudgetServer(t *testing.T) *budgetServer {
	s := &budgetServer{}
	s.h = transcribetest.NewHandler(transcribetest.Config{
		Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
			if s.down.Load() {
				return nil, errors.New("down") // a 500 server_error
			}
			return transcribetest.DefaultTranscriber(ctx, a)
		},
	})
	s.path = filepath.Join(t.TempDir(), "a.wav")
	f, err := os.Create(s.path)
	if err != nil {
		t.Fatal(err)
	}
	err = audio.SynthWAV(f, 16000, 16000, func(i int) float64 { return 0.5 * math.Sin(float64(i)*0.1) })
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *budgetServer) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(append([]Option{WithBaseURL("http://fake.invalid/v1"), WithAPIKey("sk-test"),
		WithHTTPClient(&http.Client{Transport: s.h.Transport()})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// calls makes n concurrent calls and returns how many requests reached
// the server, and their errors.
func (s *budgetServer) calls(c *Client, n int) (requests int, errs []error) {
	before := s.h.Stats().Requests
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.TranscribeFile(context.Background(), s.path, Request{})
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		})
	}
	wg.Wait()
	return s.h.Stats().Requests - before, errs
}

func count(errs []error, target error) int {
	n := 0
	for _, err := range errs {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

// While a server fails everything, 100 calls send 100 requests and the
// 100 retries that the default budget of 500 tokens at 5 a retry pays for,
// not 300; once it recovers, successes refill the budget and failures are
// retried again.
func TestRetryBudgetBoundsAFailingServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newBudgetServer(t)
		c := s.client(t, WithRetryBudget(RetryBudget{}))
		s.down.Store(true)
		requests, errs := s.calls(c, 100)
		want := 100 + DefaultRetryTokens/DefaultRetryCost
		if requests != want || count(errs, ErrServer) != 100 || count(errs, ErrRetryBudgetExhausted) != 100 {
			t.Fatalf("%d requests (want %d); %d ErrServer, %d ErrRetryBudgetExhausted of 100",
				requests, want, count(errs, ErrServer), count(errs, ErrRetryBudgetExhausted))
		}
		t.Logf("100 calls to a server that is down: %d requests, not %d", requests, 100*DefaultMaxAttempts)

		// Empty: a failure is not retried.
		if requests, errs = s.calls(c, 1); requests != 1 || count(errs, ErrRetryBudgetExhausted) != 1 {
			t.Fatalf("empty budget: %d requests, %v", requests, errs)
		}
		// The server recovers: 10 successes give back 10 tokens...
		s.down.Store(false)
		if requests, errs = s.calls(c, 10); requests != 10 || count(errs, nil) != 10 {
			t.Fatalf("recovered: %d requests, %v", requests, errs)
		}
		// ... which pay for two retries of the next failure, and no more.
		s.down.Store(true)
		if requests, errs = s.calls(c, 1); requests != 3 || count(errs, ErrRetryBudgetExhausted) != 0 {
			t.Fatalf("refilled by 10: %d requests, %v", requests, errs)
		}
		if requests, errs = s.calls(c, 1); requests != 1 || count(errs, ErrRetryBudgetExhausted) != 1 {
			t.Fatalf("empty again: %d requests, %v", requests, errs)
		}
		if !errors.Is(errs[0], ErrServer) {
			t.Fatalf("the attempt's own error is lost: %v", errs[0])
		}
	})
}

// A budget turned off leaves retries to WithMaxAttempts alone.
func TestRetryBudgetOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newBudgetServer(t)
		c := s.client(t, WithRetryBudget(RetryBudget{Tokens: -1}))
		s.down.Store(true)
		if requests, errs := s.calls(c, 100); requests != 300 || count(errs, ErrRetryBudgetExhausted) != 0 {
			t.Fatalf("%d requests, want 300", requests)
		}
	})
}

// A retry after a timeout costs TimeoutCost, twice a plain retry: a budget
// of 20 pays for two retries of one timed-out call, and four of failures.
func TestTimedOutRetryCostsMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newBudgetServer(t)
		stall := atomic.Bool{}
		stall.Store(true)
		h := transcribetest.NewHandler(transcribetest.Config{
			Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		})
		stalled := &budgetServer{h: h, path: s.path}
		c := stalled.client(t, WithRetryBudget(RetryBudget{Tokens: 20}), WithTimeouts(Timeouts{FirstByte: time.Minute}))
		if requests, errs := stalled.calls(c, 1); requests != 3 || count(errs, ErrTimeout) != 1 || count(errs, ErrRetryBudgetExhausted) != 0 {
			t.Fatalf("first stalled call: %d requests, %v", requests, errs)
		}
		if requests, errs := stalled.calls(c, 1); requests != 1 || count(errs, ErrTimeout) != 1 || count(errs, ErrRetryBudgetExhausted) != 1 {
			t.Fatalf("second stalled call: %d requests, %v", requests, errs)
		}

		c = s.client(t, WithRetryBudget(RetryBudget{Tokens: 20}))
		s.down.Store(true)
		for i, want := range []int{3, 3, 1} {
			if requests, _ := s.calls(c, 1); requests != want {
				t.Fatalf("failing call %d: %d requests, want %d", i, requests, want)
			}
		}
	})
}

// A retry that succeeds gives its tokens back: a budget that holds one
// retry pays for one in every call that needs one.
func TestSuccessfulRetryGivesItsTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newBudgetServer(t)
		s.h = transcribetest.NewHandler(transcribetest.Config{Faults: []transcribetest.Fault{
			transcribetest.FaultServerError, transcribetest.FaultNone,
			transcribetest.FaultOverloaded, transcribetest.FaultNone,
			transcribetest.FaultBadGateway, transcribetest.FaultNone,
		}})
		c := s.client(t, WithRetryBudget(RetryBudget{Tokens: DefaultRetryCost, TimeoutCost: DefaultRetryCost}))
		for i := range 3 {
			tr, err := c.TranscribeFile(context.Background(), s.path, Request{})
			if err != nil || tr.Attempts != 2 {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
}

// The budget is charged only for retries that are sent: one cancelled
// while it waits gives its tokens back.
func TestCancelledRetryGivesItsTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newBudgetServer(t)
		c := s.client(t, WithRetryBudget(RetryBudget{Tokens: DefaultRetryCost, TimeoutCost: DefaultRetryCost}))
		s.down.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond) // shorter than any backoff
		defer cancel()
		if _, err := c.TranscribeFile(ctx, s.path, Request{}); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "500") {
			t.Fatalf("cancelled call: %v", err)
		}
		if requests, errs := s.calls(c, 1); requests != 2 || count(errs, ErrRetryBudgetExhausted) != 1 {
			t.Fatalf("after the cancelled retry: %d requests, %v", requests, errs)
		}
	})
}

func TestWithRetryBudgetRefusesNonsense(t *testing.T) {
	for _, b := range []RetryBudget{
		{RetryCost: -1},
		{TimeoutCost: -5},
		{Refund: -1},
		{Tokens: 3},                  // a retry costs 5
		{Tokens: 8, TimeoutCost: 10}, // a timed-out retry could never be paid
		{Tokens: -1, RetryCost: -1},
	} {
		if _, err := NewClient(WithAPIKey("k"), WithRetryBudget(b)); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
	for _, b := range []RetryBudget{{}, {Tokens: -1}, {Tokens: 10, RetryCost: 1, TimeoutCost: 10, Refund: 2}} {
		if _, err := NewClient(WithAPIKey("k"), WithRetryBudget(b)); err != nil {
			t.Errorf("%+v: %v", b, err)
		}
	}
}

// 429 rate limits are waited out by the limiter: they count neither
// against MaxAttempts nor against the retry budget, up to
// maxRateLimitRetries of them for one request.
func TestRateLimitsDoNotUseAttempts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limited int  // 429s before the answer
		ok      bool // whether the request ends with a transcript
	}{
		{"four 429s, then the transcript", 4, true},
		{"429s past the cap", maxRateLimitRetries + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				faults := make([]transcribetest.Fault, tc.limited)
				for i := range faults {
					faults[i] = transcribetest.FaultRateLimited
				}
				h := transcribetest.NewHandler(transcribetest.Config{Faults: faults})
				c, err := NewClient(WithBaseURL("http://fake.invalid/v1"), WithAPIKey("sk-test"),
					WithHTTPClient(&http.Client{Transport: h.Transport()}), WithMaxAttempts(3))
				if err != nil {
					t.Fatal(err)
				}
				tokens := c.retries.level
				_, err = c.Transcribe(context.Background(), bytes.NewReader(transcribetest.WAV(time.Second)), Request{})
				requests := h.Stats().Requests
				switch {
				case tc.ok && (err != nil || requests != tc.limited+1):
					t.Fatalf("%v after %d requests", err, requests)
				case !tc.ok && (!errors.Is(err, ErrRateLimited) || requests != maxRateLimitRetries+1):
					t.Fatalf("%v after %d requests; want ErrRateLimited after %d", err, requests, maxRateLimitRetries+1)
				}
				if c.retries.level < tokens {
					t.Fatalf("the retry budget went from %d to %d", tokens, c.retries.level)
				}
			})
		})
	}
}
