package transcribe_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "sk-test-0123456789SUPERSECRETabcdef"

// writeWAV writes seconds of a 16 kHz tone to a file in dir.
func writeWAV(t testing.TB, dir, name string, seconds float64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const rate = 16000
	err = audio.SynthWAV(f, rate, int(seconds*rate), func(i int) float64 { return 0.5 * math.Sin(float64(i)*0.1) })
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// newClient returns a client of a fake server run with cfg over loopback.
func newClient(t testing.TB, cfg transcribetest.Config, opts ...transcribe.Option) (*transcribe.Client, *transcribetest.Server) {
	t.Helper()
	cfg.APIKey = testKey
	srv := transcribetest.NewServer(cfg)
	t.Cleanup(srv.Close)
	c, err := transcribe.NewClient(append([]transcribe.Option{
		transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey(testKey), transcribe.WithHTTPClient(srv.Client()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// newVirtualClient returns a client of a fake run in memory, for tests in
// a synctest bubble, where time is virtual.
func newVirtualClient(t testing.TB, cfg transcribetest.Config, opts ...transcribe.Option) (*transcribe.Client, *transcribetest.Handler) {
	t.Helper()
	cfg.APIKey = testKey
	h := transcribetest.NewHandler(cfg)
	c, err := transcribe.NewClient(append([]transcribe.Option{
		transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
		transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, h
}

func TestEveryResponseFormat(t *testing.T) {
	c, _ := newClient(t, transcribetest.Config{})
	path := writeWAV(t, t.TempDir(), "talk.wav", 12)
	for _, req := range []transcribe.Request{
		{},
		{ResponseFormat: transcribe.Text},
		{ResponseFormat: transcribe.SRT},
		{ResponseFormat: transcribe.VTT},
		{ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord, transcribe.GranularitySegment}},
		{Model: "gpt-4o-transcribe-diarize", ResponseFormat: transcribe.DiarizedJSON},
		{Model: "gpt-4o-transcribe", Include: []string{"logprobs"}},
	} {
		tr, err := c.TranscribeFile(context.Background(), path, req)
		if err != nil {
			t.Fatalf("%s: %v", req.ResponseFormat, err)
		}
		if len(strings.Fields(tr.Text)) < 10 || tr.Attempts != 1 || tr.RequestID == "" || len(tr.Raw) == 0 {
			t.Errorf("%s: text %q, attempts %d, request id %q", req.ResponseFormat, tr.Text, tr.Attempts, tr.RequestID)
		}
		switch req.ResponseFormat {
		case transcribe.SRT, transcribe.VTT, transcribe.DiarizedJSON:
			if len(tr.Segments) == 0 || tr.Segments[len(tr.Segments)-1].End < 11 {
				t.Errorf("%s: segments %+v", req.ResponseFormat, tr.Segments)
			}
		case transcribe.VerboseJSON:
			if len(tr.Words) < 10 || len(tr.Segments) == 0 || math.Abs(tr.Duration-12) > 0.01 || tr.Usage == nil || tr.Usage.Seconds != 12 {
				t.Errorf("verbose_json: %d words, %d segments, duration %v, usage %+v", len(tr.Words), len(tr.Segments), tr.Duration, tr.Usage)
			}
		}
		if req.Model == "gpt-4o-transcribe" && (len(tr.Logprobs) == 0 || tr.Usage == nil || tr.Usage.Type != "tokens") {
			t.Errorf("gpt-4o-transcribe json: logprobs %d, usage %+v", len(tr.Logprobs), tr.Usage)
		}
	}
}

func TestTranslate(t *testing.T) {
	c, srv := newClient(t, transcribetest.Config{})
	f, err := os.Open(writeWAV(t, t.TempDir(), "talk.wav", 3))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := c.Translate(context.Background(), f, transcribe.Request{ResponseFormat: transcribe.VerboseJSON})
	if err != nil || tr.Task != "translate" || tr.Text == "" {
		t.Fatalf("translate: %+v, %v", tr, err)
	}
	if st := srv.Stats(); st.ByStatus[200] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The upload streams: a 20 MB file goes through a server that refuses
// chunked uploads (so Content-Length was set), and the heap never holds it.
func TestLargeUploadStreamsWithContentLength(t *testing.T) {
	dir := t.TempDir()
	path := writeWAV(t, dir, "long.wav", 625) // 625 s × 32 kB/s = 20 MB
	if st, _ := os.Stat(path); st.Size() < 20e6 {
		t.Fatalf("file is %d bytes", st.Size())
	}
	c, srv := newClient(t, transcribetest.Config{})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Text == "" || srv.Stats().BytesReceived < 20e6 {
		t.Fatalf("text %q, server got %d bytes", tr.Text, srv.Stats().BytesReceived)
	}
	grew := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %.2f MB at most while 20 MB streamed (client and server in one process)", float64(grew)/1e6)
	if grew > 6<<20 {
		t.Fatalf("heap grew by %d bytes during a 20 MB upload: the file is being buffered", grew)
	}
}

func TestQuotaErrorCostsOneRequest(t *testing.T) {
	c, srv := newClient(t, transcribetest.Config{QuotaRequests: 1})
	// 5 MB: the server answers the quota error before reading the body,
	// and the client must take that answer, not retry a broken upload.
	path := writeWAV(t, t.TempDir(), "a.wav", 160)
	if _, err := c.TranscribeFile(context.Background(), path, transcribe.Request{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
	var apiErr *transcribe.APIError
	if !errors.Is(err, transcribe.ErrQuotaExceeded) || errors.Is(err, transcribe.ErrRateLimited) || !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
		t.Fatalf("err = %v, want a 429 quota error", err)
	}
	if st := srv.Stats(); st.Requests != 2 || st.ByStatus[429] != 1 {
		t.Fatalf("the quota error cost %d requests (%v), want 1", st.Requests-1, st.ByStatus)
	}
}

// A transient 503 is retried after a jittered backoff (virtual time).
func TestTransientErrorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newVirtualClient(t, transcribetest.Config{Faults: []transcribetest.Fault{transcribetest.FaultOverloaded, transcribetest.FaultServerError}})
		path := writeWAV(t, t.TempDir(), "a.wav", 1)
		start := time.Now()
		tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
		if err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		// Two backoffs: 500 ms and 1 s, each ±25 %.
		if tr.Attempts != 3 || waited < 1125*time.Millisecond || waited > 1875*time.Millisecond {
			t.Fatalf("attempts %d after %v", tr.Attempts, waited)
		}
		if st := h.Stats(); st.ByStatus[503] != 1 || st.ByStatus[500] != 1 || st.ByStatus[200] != 1 {
			t.Fatalf("statuses %v", st.ByStatus)
		}
	})
}

func TestRetriesAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newVirtualClient(t, transcribetest.Config{FaultRate: 1, FaultKinds: []transcribetest.Fault{transcribetest.FaultBadGateway}},
			transcribe.WithMaxAttempts(5))
		path := writeWAV(t, t.TempDir(), "a.wav", 1)
		start := time.Now()
		_, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
		if !errors.Is(err, transcribe.ErrServer) || h.Stats().Requests != 5 {
			t.Fatalf("err %v after %d requests, want ErrServer after 5", err, h.Stats().Requests)
		}
		// 0.5 + 1 + 2 + 4 s, each ±25 %.
		if w := time.Since(start); w < 5625*time.Millisecond || w > 9375*time.Millisecond {
			t.Fatalf("retries took %v", w)
		}
	})
}

// A connection dropped mid-upload is retried, and the second attempt sends
// the whole file again from disk.
func TestDroppedConnectionReplaysFromDisk(t *testing.T) {
	var got atomic.Value
	c, srv := newClient(t, transcribetest.Config{
		Faults: []transcribetest.Fault{transcribetest.FaultDropConnection},
		Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
			b, err := io.ReadAll(io.NewSectionReader(a.File, 0, a.Size))
			got.Store(b)
			if err != nil {
				return nil, err
			}
			return transcribetest.DefaultTranscriber(ctx, a)
		},
	})
	path := writeWAV(t, t.TempDir(), "a.wav", 40) // 1.28 MB: the drop happens mid-body
	tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	if tr.Attempts != 2 || !bytes.Equal(got.Load().([]byte), want) {
		t.Fatalf("attempts %d; server received the file intact: %v", tr.Attempts, bytes.Equal(got.Load().([]byte), want))
	}
	if st := srv.Stats(); st.ByStatus[0] != 1 || st.ByStatus[200] != 1 {
		t.Fatalf("statuses %v", st.ByStatus)
	}
}

// scripted answers the requests of a test in turn with the given
// responses, recording when each arrived.
type scripted struct {
	mu    sync.Mutex
	steps []func(w http.ResponseWriter)
	times []time.Time
}

func (s *scripted) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
	rec := httptest.NewRecorder()
	if len(s.steps) == 0 {
		rec.Header().Set("Content-Type", "application/json")
		io.WriteString(rec, `{"text":"ok"}`)
	} else {
		s.steps[0](rec)
		s.steps = s.steps[1:]
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func answer(status int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const rateLimitBody = `{"error":{"message":"Rate limit reached for whisper-1","type":"requests","param":null,"code":"rate_limit_exceeded"}}`

func scriptedClient(t testing.TB, s *scripted, opts ...transcribe.Option) *transcribe.Client {
	c, err := transcribe.NewClient(append([]transcribe.Option{transcribe.WithBaseURL("http://fake.invalid/v1"),
		transcribe.WithAPIKey(testKey), transcribe.WithHTTPClient(&http.Client{Transport: s})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServerSaysWhenToRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		want   time.Duration
	}{
		{"retry-after-ms", []string{"Retry-After-Ms", "2500", "Retry-After", "9"}, 2500 * time.Millisecond},
		{"retry-after seconds", []string{"Retry-After", "7"}, 7 * time.Second},
		{"retry-after date", []string{"Retry-After", time.Date(2000, 1, 1, 0, 0, 4, 0, time.UTC).Format(http.TimeFormat)}, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The bubble's clock starts at 2000-01-01 00:00:00 UTC.
				s := &scripted{steps: []func(http.ResponseWriter){answer(429, rateLimitBody, tc.header...)}}
				tr, err := scriptedClient(t, s).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
				if err != nil || tr.Attempts != 2 {
					t.Fatalf("%v, %+v", err, tr)
				}
				if d := s.times[1].Sub(s.times[0]); d != tc.want {
					t.Fatalf("retried after %v, want %v", d, tc.want)
				}
			})
		})
	}
}

func TestNoRetryWhenItCannotHelp(t *testing.T) {
	for _, tc := range []struct {
		name string
		step func(http.ResponseWriter)
		is   error
	}{
		{"400", answer(400, `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`), transcribe.ErrBadRequest},
		{"401", answer(401, `{"error":{"message":"Incorrect API key provided: sk-test-***cdef.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`), transcribe.ErrUnauthorized},
		{"403", answer(403, `{"error":{"message":"no access","type":"invalid_request_error","param":null,"code":"model_not_found"}}`), transcribe.ErrPermissionDenied},
		{"404", answer(404, `{"error":{"message":"no model","type":"invalid_request_error","param":null,"code":"model_not_found"}}`), transcribe.ErrNotFound},
		{"413", answer(413, `{"error":{"message":"Maximum content size limit (26214400) exceeded (26214401 bytes read)","type":"server_error","param":null,"code":null}}`), transcribe.ErrFileTooLarge},
		{"quota", answer(429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, "Retry-After", "1"), transcribe.ErrQuotaExceeded},
		{"x-should-retry false", answer(500, `{"error":{"message":"no","type":"server_error","param":null,"code":null}}`, "X-Should-Retry", "false"), transcribe.ErrServer},
		{"wait too long", answer(429, rateLimitBody, "Retry-After", "3600"), transcribe.ErrRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &scripted{steps: []func(http.ResponseWriter){tc.step}}
				_, err := scriptedClient(t, s).TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
				if !errors.Is(err, tc.is) || len(s.times) != 1 {
					t.Fatalf("err %v after %d requests, want %v after 1", err, len(s.times), tc.is)
				}
				if strings.Contains(err.Error(), "SUPERSECRET") {
					t.Fatalf("key in error: %v", err)
				}
				var apiErr *transcribe.APIError
				if tc.name == "wait too long" && (!errors.As(err, &apiErr) || apiErr.RetryAfter != time.Hour) {
					t.Fatalf("RetryAfter not reported: %v", err)
				}
			})
		})
	}
}

func TestCancelStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &scripted{steps: []func(http.ResponseWriter){answer(503, `{}`, "Retry-After", "30")}}
		c := scriptedClient(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.TranscribeFile(ctx, writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 10*time.Second || len(s.times) != 1 {
			t.Fatalf("err %v after %v and %d requests", err, time.Since(start), len(s.times))
		}
		if !strings.Contains(err.Error(), "503") {
			t.Errorf("the last attempt's error is lost: %v", err)
		}
	})
}

func TestBadInputIsRefusedBeforeSending(t *testing.T) {
	dir := t.TempDir()
	c, srv := newClient(t, transcribetest.Config{})
	empty := filepath.Join(dir, "empty.wav")
	os.WriteFile(empty, nil, 0o600)
	notAudio := filepath.Join(dir, "notes.wav")
	os.WriteFile(notAudio, []byte(strings.Repeat("just some text, not audio\n", 100)), 0o600)
	huge := writeUnsplittable(t, dir, 26<<20)
	wav := writeWAV(t, dir, "ok.wav", 1)

	for _, tc := range []struct {
		name string
		call func() error
		is   error
		text string
	}{
		{"missing", func() error {
			_, err := c.TranscribeFile(context.Background(), filepath.Join(dir, "nope.mp3"), transcribe.Request{})
			return err
		}, fs.ErrNotExist, "nope.mp3"},
		{"directory", func() error { _, err := c.TranscribeFile(context.Background(), dir, transcribe.Request{}); return err }, nil, "not a regular file"},
		{"under a file", func() error {
			_, err := c.TranscribeFile(context.Background(), wav+"/x.wav", transcribe.Request{})
			return err
		}, nil, "not a directory"},
		{"empty", func() error {
			_, err := c.TranscribeFile(context.Background(), empty, transcribe.Request{})
			return err
		}, transcribe.ErrEmptyFile, "empty.wav"},
		{"not audio", func() error {
			_, err := c.TranscribeFile(context.Background(), notAudio, transcribe.Request{})
			return err
		}, transcribe.ErrInvalidAudio, "notes.wav"},
		{"too large", func() error { _, err := c.TranscribeFile(context.Background(), huge, transcribe.Request{}); return err }, transcribe.ErrFileTooLarge, "cannot be cut"},
		{"nil reader", func() error { _, err := c.Transcribe(context.Background(), nil, transcribe.Request{}); return err }, transcribe.ErrNilReader, ""},
		{"failing reader", func() error {
			_, err := c.Transcribe(context.Background(), io.MultiReader(strings.NewReader("RIFF"), iotestErr{}), transcribe.Request{})
			return err
		}, errBroken, ""},
		{"empty reader", func() error {
			_, err := c.Transcribe(context.Background(), bytes.NewReader(nil), transcribe.Request{})
			return err
		}, transcribe.ErrEmptyFile, ""},
	} {
		err := tc.call()
		var inErr *transcribe.InputError
		if !errors.As(err, &inErr) || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Fatalf("%d requests sent for bad input", n)
	}
}

var errBroken = errors.New("disk on fire")

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errBroken }

// The server is told the right format through the file name, whatever the
// caller named it; readers of unknown size are spooled to disk and the
// spool is removed.
func TestNamingAndSpooling(t *testing.T) {
	var names []string
	var mu sync.Mutex
	c, _ := newClient(t, transcribetest.Config{Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		mu.Lock()
		names = append(names, a.Filename)
		mu.Unlock()
		return transcribetest.DefaultTranscriber(ctx, a)
	}}, transcribe.WithTempDir(t.TempDir()))
	dir := t.TempDir()
	wav := writeWAV(t, dir, "a.wav", 1)
	noExt := filepath.Join(dir, "recording")
	os.Rename(writeWAV(t, dir, "x.wav", 1), noExt)
	data, _ := os.ReadFile(wav)

	direct, err := c.TranscribeFile(context.Background(), noExt, transcribe.Request{})
	if err != nil {
		t.Fatal(err)
	}
	// An io.Reader with no size: spooled.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(func() error { _, err := pw.Write(data); return err }()) }()
	spooled, err := c.Transcribe(context.Background(), pr, transcribe.Request{FileName: "meeting.mp3"})
	if err != nil {
		t.Fatal(err)
	}
	// An io.ReadSeeker, from its current offset.
	rs := bytes.NewReader(append([]byte("junk"), data...))
	rs.Seek(4, io.SeekStart)
	seeked, err := c.Transcribe(context.Background(), rs, transcribe.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "recording.wav meeting.mp3.wav audio.wav" {
		t.Fatalf("sent names %q", got)
	}
	if spooled.Text != seeked.Text || direct.Text != seeked.Text {
		t.Fatalf("the same audio gave different transcripts: %q / %q / %q", direct.Text, spooled.Text, seeked.Text)
	}
}

func TestSpoolIsRemoved(t *testing.T) {
	tmp := t.TempDir()
	c, _ := newClient(t, transcribetest.Config{QuotaRequests: 1}, transcribe.WithTempDir(tmp))
	data, _ := os.ReadFile(writeWAV(t, t.TempDir(), "a.wav", 1))
	for range 2 { // a success, then a failure
		c.Transcribe(context.Background(), io.MultiReader(bytes.NewReader(data)), transcribe.Request{})
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("spool files left behind: %v", left)
	}
}

func TestKeyNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := transcribetest.NewServer(transcribetest.Config{APIKey: "sk-the-real-key-0000"})
	defer srv.Close()
	c, err := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey(testKey), transcribe.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TranscribeFile(context.Background(), writeWAV(t, t.TempDir(), "a.wav", 1), transcribe.Request{})
	if !errors.Is(err, transcribe.ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, testKey) || strings.Contains(s, "SUPERSECRET") {
			t.Fatalf("key leaked: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "status=401") {
		t.Fatalf("nothing logged: %s", logs.String())
	}
}

func TestNewClientOptions(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	if _, err := transcribe.NewClient(); err == nil {
		t.Error("no key for api.openai.com accepted")
	}
	if _, err := transcribe.NewClient(transcribe.WithBaseURL("http://localhost:8000/v1")); err != nil {
		t.Errorf("self-hosted without key: %v", err)
	}
	for _, opt := range []transcribe.Option{
		transcribe.WithBaseURL("ftp://x"), transcribe.WithBaseURL("not a url"), transcribe.WithMaxAttempts(0),
		transcribe.WithHTTPClient(nil), transcribe.WithLogger(nil), transcribe.WithMaxRetryWait(-1),
	} {
		if _, err := transcribe.NewClient(transcribe.WithAPIKey("k"), opt); err == nil {
			t.Error("a bad option was accepted")
		}
	}
	t.Setenv("OPENAI_BASE_URL", "https://user:pass@example.com/v1?key=x")
	t.Setenv("OPENAI_API_KEY", "k")
	if _, err := transcribe.NewClient(); err != nil {
		t.Errorf("env config: %v", err)
	}
}

// shrunk claims more bytes than it has, like a file truncated after it
// was checked.
type shrunk struct{ r *bytes.Reader }

func (s shrunk) Read(p []byte) (int, error)              { return s.r.Read(p) }
func (s shrunk) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }
func (s shrunk) Size() int64                             { return s.r.Size() * 2 }

// An upload whose source ends early fails at once: retrying would send
// the same broken body.
func TestSourceShorterThanDeclaredIsNotRetried(t *testing.T) {
	c, srv := newClient(t, transcribetest.Config{})
	data, _ := os.ReadFile(writeWAV(t, t.TempDir(), "a.wav", 1))
	_, err := c.Transcribe(context.Background(), shrunk{bytes.NewReader(data)}, transcribe.Request{})
	if !errors.Is(err, multipart.ErrSizeMismatch) {
		t.Fatalf("err = %v, want ErrSizeMismatch", err)
	}
	if n := srv.Stats().Requests; n > 1 {
		t.Fatalf("%d requests: a broken body was retried", n)
	}
}

// Two clients sharing one limiter share one budget: the first burst, sent
// before anything is known, is the only one the server refuses in part;
// after it, together they keep within the budget. Two clients with
// limiters of their own each send a first burst, then each learns from the
// server's counts, which include the other's requests but not the other's
// requests in flight: they draw more 429s (and a request may run out of
// attempts).
func TestClientsShareALimiter(t *testing.T) {
	limited := map[bool]int{}
	for _, shared := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			h := transcribetest.NewHandler(transcribetest.Config{
				APIKey:    testKey,
				RateLimit: transcribetest.RateLimit{Requests: 10, Window: time.Second},
				Latency:   300 * time.Millisecond,
			})
			lim, err := ratelimit.New(ratelimit.Config{MaxInFlight: 16})
			if err != nil {
				t.Fatal(err)
			}
			var clients []*transcribe.Client
			for range 2 {
				opts := []transcribe.Option{transcribe.WithBaseURL("http://fake.invalid/v1"), transcribe.WithAPIKey(testKey),
					transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()})}
				if shared {
					opts = append(opts, transcribe.WithLimiter(lim))
				} else {
					own, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 16})
					opts = append(opts, transcribe.WithLimiter(own))
				}
				c, err := transcribe.NewClient(opts...)
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			path := writeWAV(t, t.TempDir(), "a.wav", 1)
			var wg sync.WaitGroup
			var failed atomic.Int64
			for i := range 40 {
				wg.Go(func() {
					if _, err := clients[i%2].TranscribeFile(context.Background(), path, transcribe.Request{}); err != nil {
						failed.Add(1)
					}
				})
			}
			wg.Wait()
			st := h.Stats()
			limited[shared] = st.ByStatus[429]
			t.Logf("shared %v: statuses %v, %d failed", shared, st.ByStatus, failed.Load())
			if !shared {
				return
			}
			if failed.Load() != 0 || st.ByStatus[200] != 40 || st.ByStatus[429] > 16-10 {
				t.Fatalf("%d failed, statuses %v: want 40 × 200 and no more 429s than the first burst's 6", failed.Load(), st.ByStatus)
			}
			if s := clients[0].Limiter().Snapshot(); s.Requests.Source != "learned" || s.Requests.Limit != 10 {
				t.Fatalf("limiter %+v", s.Requests)
			}
		})
	}
	if limited[false] <= limited[true] {
		t.Fatalf("429s: %d with limiters of their own, %d sharing one", limited[false], limited[true])
	}
}

// writeUnsplittable writes a WAV file of size bytes (sparse) whose samples
// are ADPCM, which can be measured but not cut.
func writeUnsplittable(t testing.TB, dir string, size int64) string {
	t.Helper()
	path := filepath.Join(dir, "adpcm.wav")
	var h bytes.Buffer
	audio.WriteWAVHeader(&h, 16000, 1, 8, size-44)
	b := h.Bytes()
	b[20] = 2 // WAVE_FORMAT_ADPCM
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}
