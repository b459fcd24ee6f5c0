package transcribe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
)

// reply is one canned answer.
type reply struct {
	status      int
	contentType string
	body        string
}

// replies answers requests in memory, in the order of its script; the
// last reply answers every request after it.
type replies struct {
	mu     sync.Mutex
	script []reply
	n      int // requests answered
}

func (s *replies) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	s.mu.Lock()
	rep := s.script[min(s.n, len(s.script)-1)]
	s.n++
	s.mu.Unlock()
	h := http.Header{"X-Request-Id": {"req_" + strconv.Itoa(s.n)}}
	if rep.contentType != "" {
		h.Set("Content-Type", rep.contentType)
	}
	return &http.Response{
		StatusCode: rep.status, Status: fmt.Sprintf("%d %s", rep.status, http.StatusText(rep.status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(rep.body)), ContentLength: int64(len(rep.body)), Request: r,
	}, nil
}

func (s *replies) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func repliesClient(t testing.TB, s *replies, opts ...transcribe.Option) *transcribe.Client {
	t.Helper()
	c, err := transcribe.NewClient(append([]transcribe.Option{transcribe.WithBaseURL("http://fake.invalid/v1"),
		transcribe.WithAPIKey(testKey), transcribe.WithHTTPClient(&http.Client{Transport: s})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const loginPage = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form action=/login>…</form></body></html>"

// garbage200 are 200s that are not transcripts, with the formats they are
// garbage for.
var garbage200 = []struct {
	name   string
	reply  reply
	format transcribe.ResponseFormat
}{
	{"empty object", reply{200, "application/json", `{}`}, transcribe.JSON},
	{"null", reply{200, "application/json", `null`}, transcribe.VerboseJSON},
	{"array", reply{200, "application/json", `[]`}, transcribe.DiarizedJSON},
	{"empty body", reply{200, "application/json", ``}, transcribe.JSON},
	{"login page", reply{200, "text/html; charset=utf-8", loginPage}, transcribe.JSON},
	{"login page for text", reply{200, "text/html; charset=utf-8", loginPage}, transcribe.Text},
	{"internal server error", reply{200, "text/plain", "Internal Server Error"}, transcribe.VerboseJSON},
	{"wrong types", reply{200, "application/json", `{"text":["a"],"segments":"none"}`}, transcribe.VerboseJSON},
	{"verbose without text", reply{200, "application/json", `{"task":"transcribe","language":"english","duration":2,"segments":[]}`}, transcribe.VerboseJSON},
	{"garbage srt", reply{200, "application/x-subrip", "upstream connect error or disconnect/reset before headers"}, transcribe.SRT},
	{"garbage vtt", reply{200, "text/vtt", "WEBVTT\n\n<b>503</b> try later\n"}, transcribe.VTT},
	{"empty object as text", reply{200, "text/plain", `{}`}, transcribe.Text},
}

// A 200 that is not a transcript is an *InvalidResponseError, never a
// transcript: the client retries it (a proxy's garbage may not come
// again) within its attempts, and returns the error when it persists.
func TestGarbage200IsNeverATranscript(t *testing.T) {
	for _, tc := range garbage200 {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &replies{script: []reply{tc.reply}}
				tr, err := repliesClient(t, s).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{ResponseFormat: tc.format})
				var invalid *transcribe.InvalidResponseError
				if tr != nil || !errors.Is(err, transcribe.ErrInvalidResponse) || !errors.As(err, &invalid) {
					t.Fatalf("%+v, %v", tr, err)
				}
				if invalid.StatusCode != 200 || invalid.Format != tc.format || invalid.ContentType != tc.reply.contentType || !strings.HasPrefix(invalid.RequestID, "req_") {
					t.Fatalf("%+v", invalid)
				}
				if n := s.requests(); n != transcribe.DefaultMaxAttempts {
					t.Fatalf("%d requests, want %d", n, transcribe.DefaultMaxAttempts)
				}
				if errors.Is(err, transcribe.ErrQuotaExceeded) || transcribe.Fatal(err) {
					t.Fatalf("garbage classified as %v", err)
				}
			})
		})
	}
}

// A garbage 200 then a transcript: the transcript, after two requests.
func TestGarbage200ThenTranscript(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &replies{script: []reply{{200, "text/html", loginPage}, {200, "application/json", `{"text":"hello"}`}}}
		tr, err := repliesClient(t, s).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
		if err != nil || tr.Text != "hello" || tr.Attempts != 2 || s.requests() != 2 {
			t.Fatalf("%+v, %v after %d requests", tr, err, s.requests())
		}
	})
}

// A 200 whose body is an error object is an *APIError: a quota error in a
// 200 still matches ErrQuotaExceeded, costs one request and stops a batch.
func TestErrorObjectIn200(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		quota bool
	}{
		{"openai quota", `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, true},
		{"top-level quota", `{"code":"insufficient_quota","message":"You exceeded your current quota"}`, true},
		{"azure quota", `{"error":{"code":"InsufficientQuota","message":"Insufficient quota."}}`, true},
		{"fastapi quota", `{"detail":{"code":"insufficient_quota","message":"You exceeded your current quota"}}`, true},
		{"server error", `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &replies{script: []reply{{200, "application/json", tc.body}}}
				tr, err := repliesClient(t, s).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
				var apiErr *transcribe.APIError
				if tr != nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 200 || apiErr.Message == "" {
					t.Fatalf("%+v, %v", tr, err)
				}
				if errors.Is(err, transcribe.ErrQuotaExceeded) != tc.quota || transcribe.Fatal(err) != tc.quota {
					t.Fatalf("quota: %v, fatal %v; want %v", errors.Is(err, transcribe.ErrQuotaExceeded), transcribe.Fatal(err), tc.quota)
				}
				if errors.Is(err, transcribe.ErrRateLimited) || errors.Is(err, transcribe.ErrInvalidResponse) {
					t.Fatalf("classified as %v", err)
				}
				if tc.quota && s.requests() != 1 {
					t.Fatalf("%d requests for a quota error", s.requests())
				}
			})
		})
	}
}

// Quota bodies in every shape, and rate limits, as 429s: the client and
// ratelimit.Transport read them with the same classifier and agree. Quota
// costs one request and pauses nobody; a rate limit is retried and pauses
// the limiter.
func TestQuotaInEveryShapeOneClassifier(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		quota bool
	}{
		{"openai", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, true},
		{"openai, code null", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":null}}`, true},
		{"top level", `{"code":"insufficient_quota","message":"You exceeded your current quota"}`, true},
		{"fastapi detail object", `{"detail":{"code":"insufficient_quota","message":"You exceeded your current quota"}}`, true},
		{"fastapi detail text", `{"detail":"Error code: 429 - {'error': {'message': 'You exceeded your current quota', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}"}`, true},
		{"azure", `{"error":{"code":"InsufficientQuota","message":"The specified capacity '60' of account deployment is bigger than available capacity '0'."}}`, true},
		{"litellm", `{"error":{"message":"LiteLLM User: u1, exceeded budget for model=whisper-1","type":"budget_exceeded","param":null,"code":"429"}}`, true},
		{"rate limit", `{"error":{"message":"Rate limit reached for whisper-1 in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, false},
		{"azure rate limit", `{"error":{"code":"429","message":"Requests to the Whisper API have exceeded call rate limit. Please retry after 1 second."}}`, false},
		{"rate limit quoting quota", `{"error":{"message":"insufficient_quota is not this","type":"insufficient_quota","code":"rate_limit_exceeded"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tooMany := reply{http.StatusTooManyRequests, "application/json", tc.body}
				ok := reply{200, "application/json", `{"text":"ok"}`}

				// The client.
				s := &replies{script: []reply{tooMany, ok}}
				_, err := repliesClient(t, s, transcribe.WithMaxRetryWait(time.Minute)).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
				quota := errors.Is(err, transcribe.ErrQuotaExceeded)
				if quota != tc.quota {
					t.Fatalf("client: quota %v (%v), want %v", quota, err, tc.quota)
				}
				if want := map[bool]int{true: 1, false: 2}[tc.quota]; s.requests() != want {
					t.Fatalf("client: %d requests, want %d (%v)", s.requests(), want, err)
				}

				// ratelimit.Transport, for any HTTP client.
				lim, _ := ratelimit.New(ratelimit.Config{})
				hc := &http.Client{Transport: lim.Transport(&replies{script: []reply{tooMany}})}
				resp, err := hc.Post("http://fake.invalid/v1/audio/transcriptions", "text/plain", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != tc.body {
					t.Fatalf("transport: the caller got %q", body)
				}
				st := lim.Snapshot()
				if transportQuota := st.Throttles == 0; transportQuota != quota {
					t.Fatalf("transport: quota %v (%+v), client: %v", transportQuota, st, quota)
				}
			})
		})
	}
}

// An endless 200 body costs the client the response bound, no more, and
// is an error, not retried: over loopback, through the whole client.
func TestEndless200CostsTheBound(t *testing.T) {
	var requests sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n, _ := requests.LoadOrStore(r.URL.Path, new(int))
		*n.(*int)++
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/declared/") {
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		}
		if _, err := io.WriteString(w, `{"text":"`); err != nil {
			return
		}
		for r.Context().Err() == nil {
			if _, err := w.Write(endlessChunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	path := writeWAV(t, t.TempDir(), "a.wav", 1)
	for _, prefix := range []string{"", "/declared"} {
		c, err := transcribe.NewClient(transcribe.WithBaseURL(srv.URL+prefix+"/v1"), transcribe.WithAPIKey(testKey), transcribe.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		// Warm up what the first call allocates once (connections, pools).
		c.TranscribeFile(context.Background(), path, transcribe.Request{})
		requests.Clear()

		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("an endless 200 body (%q) cost %.2f MiB", prefix, float64(alloc)/(1<<20))
		if tr != nil || !errors.Is(err, transcribe.ErrInvalidResponse) {
			t.Fatalf("%+v, %v", tr, err)
		}
		n := 0
		requests.Range(func(_, v any) bool { n += *v.(*int); return true })
		if n != 1 {
			t.Fatalf("%d requests: an over-long body was retried", n)
		}
		// The bound (8 MiB), and room for the upload, the HTTP stack and
		// the server's side, which allocates in this process too (one run
		// of the whole package measured 34 MiB); the old 32 MiB ReadAll
		// cost over 64 MiB.
		if limit := uint64(40 << 20); alloc > limit {
			t.Errorf("an endless body cost %d bytes; want at most %d", alloc, limit)
		}
		srv.CloseClientConnections()
	}
}

var endlessChunk = []byte(strings.Repeat("la ", 10_000))

// A text answer cut short (a chunked body whose connection closes before
// its last chunk) is not a shorter transcript: it is retried.
func TestCutTextIsRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nHello \r\n")
			buf.Flush()
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello world.\n")
	}))
	defer srv.Close()
	c, err := transcribe.NewClient(transcribe.WithBaseURL(srv.URL+"/v1"), transcribe.WithAPIKey(testKey), transcribe.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{ResponseFormat: transcribe.Text})
	if err != nil || tr.Text != "Hello world." || tr.Attempts != 2 {
		t.Fatalf("%+v, %v", tr, err)
	}
}

// The key, echoed in a garbage 200 across the excerpt's end, or in its
// request id, is not in the error.
func TestInvalidResponseHidesTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := "<html><body>" + strings.Repeat("x", 100) + " Invalid key: " + testKey + " for " + strings.Repeat("y", 100) + "</body></html>"
		s := &replies{script: []reply{{200, "text/html", body}}}
		_, err := repliesClient(t, s, transcribe.WithMaxAttempts(1)).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
		var invalid *transcribe.InvalidResponseError
		if !errors.As(err, &invalid) {
			t.Fatal(err)
		}
		for _, out := range []string{err.Error(), fmt.Sprintf("%+v", invalid), fmt.Sprintf("%#v", invalid)} {
			for i := 0; i+12 <= len(testKey); i++ {
				if strings.Contains(out, testKey[i:i+12]) {
					t.Fatalf("%q of the key in %s", testKey[i:i+12], out)
				}
			}
		}
	})
}

// A batch keeps nothing from a garbage 200: the job fails, nothing is
// written, and the next job goes on.
func TestBatchKeepsNoGarbage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &replies{script: []reply{{200, "text/html", loginPage}}}
		c := repliesClient(t, s, transcribe.WithMaxAttempts(1))
		dir, out := t.TempDir(), t.TempDir()
		w, err := transcribe.NewOutputWriter(out)
		if err != nil {
			t.Fatal(err)
		}
		var jobs []transcribe.Job
		for i := range 3 {
			jobs = append(jobs, transcribe.Job{Path: writeWAV(t, dir, fmt.Sprintf("%d.wav", i), 1)})
		}
		results, err := c.BatchTranscribe(context.Background(), seqOf(jobs), transcribe.BatchOptions{Output: w, Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r := range results {
			n++
			if r.Status != transcribe.StatusFailed || r.Transcription != nil || r.OutputPath != "" || !errors.Is(r.Err, transcribe.ErrInvalidResponse) {
				t.Errorf("%s: %v %+v %q %v", r.Job.Path, r.Status, r.Transcription, r.OutputPath, r.Err)
			}
		}
		if n != 3 {
			t.Fatalf("%d results", n)
		}
		if files := writtenFiles(t, out); len(files) != 0 {
			t.Fatalf("written: %v", files)
		}
	})
}

func seqOf[T any](xs []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, x := range xs {
			if !yield(x) {
				return
			}
		}
	}
}

// writtenFiles lists the files under dir, but for the output writer's own
// (its records, its lock, its temporary files) in dot directories.
func writtenFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
