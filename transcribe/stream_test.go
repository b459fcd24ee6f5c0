package transcribe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

const streamKey = "sk-stream-0123456789SECRETabcdefghij"

// pipeTransport serves requests with h in memory, as a connection would:
// the response returns once its headers are written, and its body is a
// pipe the handler writes into, so that what the handler flushes reaches
// the client while the handler is still at work. It works in synctest
// bubbles. A handler that panics with http.ErrAbortHandler before its
// headers is a dropped connection, after them a body cut short.
// Cancelling the request's context fails the round trip, or the body's
// reads, at once. (The fake's own Handler.Transport answers only once the
// handler has returned.)
type pipeTransport struct{ h http.Handler }

type pipeWriter struct {
	header http.Header
	sent   http.Header // the headers as the client gets them
	status int
	pw     *io.PipeWriter
	ready  chan struct{}
	once   sync.Once
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status, w.sent = code, w.header.Clone()
	w.once.Do(func() { close(w.ready) })
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

func (w *pipeWriter) Flush() { w.WriteHeader(http.StatusOK) }

type pipeBody struct {
	*io.PipeReader
	ctx  context.Context
	stop func() bool
}

// Read fails with the context's error once it is done, as net/http's
// bodies do, even when the handler has ended the body meanwhile.
func (b pipeBody) Read(p []byte) (int, error) {
	n, err := b.PipeReader.Read(p)
	if err != nil && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

func (b pipeBody) Close() error {
	b.stop()
	return b.PipeReader.Close()
}

func (t pipeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	go func() {
		defer func() {
			p := recover()
			switch {
			case p == nil:
				pw.Close()
			case p == http.ErrAbortHandler:
				pw.CloseWithError(io.ErrUnexpectedEOF)
			default:
				pw.CloseWithError(fmt.Errorf("handler panicked: %v", p))
			}
			if req.Body != nil {
				req.Body.Close()
			}
			if p == nil {
				w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			}
			w.once.Do(func() { close(w.ready) })
		}()
		t.h.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	if w.status == 0 {
		pr.Close()
		return nil, fmt.Errorf("connection closed before the response: %w", io.EOF)
	}
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	return &http.Response{
		StatusCode: w.status, Status: http.StatusText(w.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pipeBody{pr, ctx, stop}, ContentLength: -1, Request: req,
	}, nil
}

// newStreamClient returns a client of h, served in memory by a
// pipeTransport.
func newStreamClient(t testing.TB, h http.Handler, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(append([]Option{
		WithBaseURL("http://fake.invalid/v1"), WithAPIKey(streamKey),
		WithHTTPClient(&http.Client{Transport: pipeTransport{h}}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newStreamFake returns the fake API, configured by cfg, and a client of it
// served in memory by a pipeTransport.
func newStreamFake(t testing.TB, cfg transcribetest.Config, opts ...Option) (*Client, *transcribetest.Handler) {
	t.Helper()
	cfg.APIKey = streamKey
	h := transcribetest.NewHandler(cfg)
	return newStreamClient(t, h, opts...), h
}

// streamed is what a stream yielded.
type streamed struct {
	events []StreamEvent
	err    error
}

func (s streamed) deltas() (n int, text string) {
	var b strings.Builder
	for _, ev := range s.events {
		if ev.Type == EventDelta {
			n++
			b.WriteString(ev.Delta)
		}
	}
	return n, b.String()
}

func (s streamed) done() *Transcription {
	if n := len(s.events); n > 0 && s.events[n-1].Type == EventDone {
		return s.events[n-1].Transcription
	}
	return nil
}

// drainStream ranges over seq to its end.
func drainStream(t testing.TB, seq func(func(StreamEvent, error) bool)) streamed {
	t.Helper()
	var s streamed
	for ev, err := range seq {
		if err != nil {
			if s.err != nil {
				t.Fatalf("a second error: %v after %v", err, s.err)
			}
			s.err = err
			continue
		}
		if s.err != nil {
			t.Fatalf("an event after the error %v", s.err)
		}
		s.events = append(s.events, ev)
	}
	if s.err == nil && s.done() == nil {
		t.Fatalf("the stream ended with neither a done event nor an error: %+v", s.events)
	}
	for i, ev := range s.events {
		if ev.Type == EventDone && i != len(s.events)-1 {
			t.Fatalf("a done event at %d of %d", i, len(s.events))
		}
	}
	return s
}

func wavReader(d time.Duration) *bytes.Reader { return bytes.NewReader(transcribetest.WAV(d)) }

// sseHandler answers every request with status 200 and the events that
// script writes, after reading the upload; n counts requests.
func sseHandler(n *atomic.Int32, script func(w http.ResponseWriter, r *http.Request, i int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1))
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Request-Id", fmt.Sprintf("req_%d", i))
		script(w, r, i)
	})
}

// sendEvents writes events and flushes them.
func sendEvents(w http.ResponseWriter, events ...string) {
	for _, ev := range events {
		io.WriteString(w, ev)
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

const (
	evHello = `data: {"type":"transcript.text.delta","delta":"Hello"}` + "\n\n"
	evWorld = `data: {"type":"transcript.text.delta","delta":" world."}` + "\n\n"
	evDone  = `data: {"type":"transcript.text.done","text":"Hello world.","usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":3,"total_tokens":17}}` + "\n\n"
)

// Against the fake, streaming one word every second: each delta arrives
// the moment the server sends it, in order, while the server has not
// finished the answer; the deltas spell the done event's text, which is
// the transcript Transcribe gets; logprobs and usage come through.
func TestStreamDeltasArriveBeforeTheAnswerCompletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = time.Second
		c, h := newStreamFake(t, transcribetest.Config{StreamDelay: delay})
		req := Request{Model: "gpt-4o-transcribe", Include: []string{"logprobs"}}
		start := time.Now()
		var (
			s       streamed
			at      []time.Duration
			billed  []int
			logprob int
		)
		for ev, err := range c.TranscribeStream(context.Background(), wavReader(4*time.Second), req) {
			if err != nil {
				t.Fatal(err)
			}
			s.events = append(s.events, ev)
			at = append(at, time.Since(start))
			billed = append(billed, h.Stats().ByStatus[200])
			logprob += len(ev.Logprobs)
		}
		n, text := s.deltas()
		done := s.done()
		if n < 5 || done == nil || len(s.events) != n+1 {
			t.Fatalf("%d deltas, %d events, done %v", n, len(s.events), done)
		}
		for i := range s.events {
			if want := time.Duration(i+1) * delay; at[i] != want {
				t.Errorf("event %d (%s) came at %v, want %v: the server sends one every %v", i, s.events[i].Type, at[i], want, delay)
			}
			if s.events[i].Type == EventDelta && billed[i] != 0 {
				t.Errorf("delta %d came after the server finished its answer", i)
			}
			if s.events[i].Type == EventDelta && (len(s.events[i].Logprobs) != 1 || s.events[i].Logprobs[0].Token != s.events[i].Delta) {
				t.Errorf("delta %d: logprobs %+v", i, s.events[i].Logprobs)
			}
		}
		if text != done.Text || strings.HasPrefix(text, " ") || len(done.Logprobs) != n || logprob != n {
			t.Errorf("deltas %q, done %q, %d logprobs", text, done.Text, len(done.Logprobs))
		}
		if u := done.Usage; u == nil || u.Type != "tokens" || u.TotalTokens == 0 || u.InputTokenDetails == nil || u.InputTokenDetails.AudioTokens != 40 {
			t.Errorf("usage %+v", u)
		}
		if done.Attempts != 1 || !strings.HasPrefix(done.RequestID, "req_") || done.Format != JSON || !bytes.HasPrefix(done.Raw, []byte(`{"text":"`+done.Text+`","logprobs":[{"token":`)) {
			t.Errorf("done: attempts %d, request id %q, format %q, raw %.80q", done.Attempts, done.RequestID, done.Format, done.Raw)
		}
		whole, err := c.Transcribe(context.Background(), wavReader(4*time.Second), req)
		if err != nil || whole.Text != done.Text {
			t.Errorf("Transcribe: %q, %v; the stream: %q", whole.Text, err, done.Text)
		}
		// Raw is the answer in one body, byte for byte.
		if !bytes.Equal(done.Raw, whole.Raw) {
			t.Errorf("Raw:\n%s\nTranscribe's:\n%s", done.Raw, whole.Raw)
		}
	})
}

// The same over a real connection, against a server that sends the next
// event only once the client has yielded the one before: each delta
// reaches the loop before the answer is complete.
func TestStreamDeltasOverLoopback(t *testing.T) {
	yielded := make(chan string)
	var requests atomic.Int32
	srv := httptest.NewServer(sseHandler(&requests, func(w http.ResponseWriter, r *http.Request, _ int) {
		for _, ev := range []string{evHello, evWorld} {
			sendEvents(w, ev)
			select {
			case <-yielded:
			case <-time.After(10 * time.Second):
				t.Error("the client did not yield the delta the server sent")
				return
			}
		}
		sendEvents(w, evDone)
	}))
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.URL+"/v1"), WithAPIKey(streamKey), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev, err := range c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-mini-transcribe"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Delta)
		if ev.Type == EventDelta {
			yielded <- ev.Delta
		} else if ev.Transcription.Text != "Hello world." || ev.Transcription.Usage.TotalTokens != 17 || ev.Transcription.RequestID != "req_1" {
			t.Errorf("done %+v", ev.Transcription)
		}
	}
	if !slices.Equal(got, []string{"Hello", " world.", ""}) || requests.Load() != 1 {
		t.Errorf("events %q after %d requests", got, requests.Load())
	}
}

// The fake over loopback: the wire format, as OpenAI sends it.
func TestStreamFakeWireFormat(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.BaseURL()), WithAPIKey(streamKey), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.openReader(context.Background(), wavReader(2*time.Second), Request{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	form, _, err := c.form("/audio/transcriptions", src, withStream(Request{Model: "gpt-4o-transcribe"}))
	if err != nil {
		t.Fatal(err)
	}
	req, err := c.newRequest(context.Background(), "/audio/transcriptions", form)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || resp.ContentLength != -1 {
		t.Fatalf("%d %q, length %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
	events := strings.SplitAfter(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	for i, ev := range events {
		wantType := `"type":"transcript.text.delta","delta":"`
		if i == len(events)-1 {
			wantType = `"type":"transcript.text.done","text":"`
		}
		newlines := 2
		if i == len(events)-1 {
			newlines = 0 // trimmed above
		}
		if !strings.HasPrefix(ev, "data: {"+wantType) || strings.Count(ev, "\n") != newlines {
			t.Errorf("event %d: %q", i, ev)
		}
	}
	if !strings.Contains(events[len(events)-1], `"usage":{"type":"tokens","input_tokens":20,"input_token_details":{"text_tokens":0,"audio_tokens":20},"output_tokens":`) {
		t.Errorf("done event %q", events[len(events)-1])
	}
}

// gpt-4o-transcribe-diarize with diarized_json: each segment's deltas,
// carrying its id, then the segment with its speaker; the done event's
// transcript holds the segments.
func TestStreamDiarizedSegments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newStreamFake(t, transcribetest.Config{StreamDelay: time.Millisecond})
		s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(20*time.Second),
			Request{Model: "gpt-4o-transcribe-diarize", ResponseFormat: DiarizedJSON, ChunkingStrategy: &ChunkingStrategy{Auto: true}}))
		if s.err != nil {
			t.Fatal(errString(s.err))
		}
		var segs []Segment
		var text strings.Builder // of the current segment
		for _, ev := range s.events {
			switch ev.Type {
			case EventDelta:
				if want := fmt.Sprintf("seg_%03d", len(segs)+1); ev.SegmentID != want {
					t.Fatalf("delta %q in segment %q, want %q", ev.Delta, ev.SegmentID, want)
				}
				text.WriteString(ev.Delta)
			case EventSegment:
				seg := *ev.Segment
				if seg.ID != len(segs) || seg.SegmentID != fmt.Sprintf("seg_%03d", len(segs)+1) || seg.Speaker != []string{"A", "B"}[len(segs)%2] ||
					seg.Text != strings.TrimSpace(text.String()) || !(seg.End > seg.Start) {
					t.Errorf("segment %+v after deltas %q", seg, text.String())
				}
				text.Reset()
				segs = append(segs, seg)
			}
		}
		done := s.done()
		_, all := s.deltas()
		if len(segs) < 2 || !slices.EqualFunc(done.Segments, segs, func(a, b Segment) bool { return a.SegmentID == b.SegmentID && a.Text == b.Text }) ||
			done.Text != all || done.Usage == nil || done.Usage.Type != "duration" || done.Usage.Seconds != 20 || done.Format != DiarizedJSON {
			t.Errorf("done %+v; %d segments streamed", done, len(segs))
		}
		again, err := decode(done.Raw, "application/json", DiarizedJSON)
		if err != nil || again.Text != done.Text || !reflect.DeepEqual(again.Segments, done.Segments) {
			t.Errorf("Raw %s decodes to %+v, %v", done.Raw, again, err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// whisper-1 ignores stream=true and answers in one body: the stream is
// that transcript, as one done event, the same as Transcribe's.
func TestStreamWhisperAnswersWhole(t *testing.T) {
	var fields atomic.Value
	c, _ := newStreamFake(t, transcribetest.Config{
		Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
			fields.Store(a.Fields)
			return transcribetest.DefaultTranscriber(ctx, a)
		},
	})
	for _, format := range []ResponseFormat{JSON, VerboseJSON, SRT} {
		s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(3*time.Second), Request{ResponseFormat: format}))
		if s.err != nil || len(s.events) != 1 {
			t.Fatalf("%s: %d events, %v", format, len(s.events), s.err)
		}
		if got := fields.Load().(map[string][]string)["stream"]; !slices.Equal(got, []string{"true"}) {
			t.Errorf("%s: stream field %q", format, got)
		}
		whole, err := c.Transcribe(context.Background(), wavReader(3*time.Second), Request{ResponseFormat: format})
		done := s.done()
		if err != nil || done.Text != whole.Text || !bytes.Equal(done.Raw, whole.Raw) || done.Format != format || done.Attempts != 1 {
			t.Errorf("%s: stream %q (%s), Transcribe %q, %v", format, done.Text, done.Format, whole.Text, err)
		}
	}
}

// An error sent as an event under HTTP 200 is an *APIError, read from
// every shape servers use, with the key scrubbed: before the first event
// as after it, it is not retried.
func TestStreamErrorEvent(t *testing.T) {
	quota := `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	for _, tc := range []struct {
		name    string
		events  []string
		deltas  int
		is      error
		message string
		typ     string
	}{
		{"event error, first", []string{"event: error\ndata: " + quota + "\n\n"}, 0, ErrQuotaExceeded, "You exceeded your current quota", "insufficient_quota"},
		{"event error, after a delta", []string{evHello, "event: error\ndata: " + quota + "\n\n"}, 1, ErrQuotaExceeded, "You exceeded", "insufficient_quota"},
		{"type error", []string{evHello, `data: {"type":"error","error":{"type":"server_error","code":null,"message":"The server had an error"}}` + "\n\n"}, 1, nil, "The server had an error", "server_error"},
		{"error object", []string{`data: {"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}` + "\n\n"}, 0, nil, "Rate limit reached", "tokens"},
		{"top-level error", []string{evHello, evWorld, `data: {"type":"error","code":"internal","message":"stream aborted"}` + "\n\n"}, 2, nil, "stream aborted", "error"},
		{"plain text error", []string{"event: error\ndata: upstream timed out\n\n"}, 0, nil, "upstream timed out", ""},
		{"key echoed", []string{"event: error\r\ndata: {\"error\":{\"message\":\"Incorrect API key provided: " + streamKey + "\",\"code\":\"invalid_api_key\"}}\r\n\r\n"}, 0, nil, "Incorrect API key provided: [REDACTED]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, _ int) {
					sendEvents(w, tc.events...)
				}))
				s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
				var apiErr *APIError
				if !errors.As(s.err, &apiErr) || apiErr.StatusCode != 200 || !strings.Contains(apiErr.Message, tc.message) || apiErr.Type != tc.typ || apiErr.RequestID != "req_1" {
					t.Fatalf("err %#v, want an *APIError of type %q saying %q", s.err, tc.typ, tc.message)
				}
				if tc.is != nil && !errors.Is(s.err, tc.is) {
					t.Errorf("%v does not match %v", s.err, tc.is)
				}
				if deltas, _ := s.deltas(); deltas != tc.deltas || n.Load() != 1 {
					t.Errorf("%d deltas, %d requests; want %d and 1", deltas, n.Load(), tc.deltas)
				}
				if strings.Contains(fmt.Sprintf("%v %+v", s.err, apiErr), streamKey[10:22]) {
					t.Errorf("the key leaked: %v", s.err)
				}
			})
		})
	}
}

// A stream that is not one: it ends before its done event, or its data is
// not JSON, or is [DONE] too early. Before any event such an answer is
// retried like a dropped connection; after one it is returned at once.
func TestStreamInvalid(t *testing.T) {
	for _, tc := range []struct {
		name     string
		events   []string
		requests int32
		deltas   int
		says     string
	}{
		{"empty", nil, 3, 0, "the event stream ended before transcript.text.done"},
		{"comments only", []string{": keep-alive\n\n: still here\n\n"}, 3, 0, "ended before transcript.text.done"},
		{"cut after a delta", []string{evHello, evWorld}, 1, 2, "ended before transcript.text.done"},
		{"done unterminated", []string{evHello, strings.TrimSuffix(evDone, "\n")}, 1, 1, "ended before transcript.text.done"},
		{"not JSON", []string{"data: Hello\n\n"}, 3, 0, "event data is not JSON"},
		{"not an object", []string{evHello, "data: [1,2]\n\n"}, 1, 1, "JSON array, not an object"},
		{"delta without delta", []string{`data: {"type":"transcript.text.delta","text":"x"}` + "\n\n"}, 3, 0, `without "delta"`},
		{"done without text", []string{evHello, `data: {"type":"transcript.text.done"}` + "\n\n"}, 1, 1, `without "text"`},
		{"delta of the wrong type", []string{`data: {"type":"transcript.text.delta","delta":5}` + "\n\n"}, 3, 0, "malformed transcript.text.delta event"},
		{"DONE first", []string{evHello, "data: [DONE]\n\n"}, 1, 1, "[DONE] before transcript.text.done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, _ int) {
					sendEvents(w, tc.events...)
				}))
				s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
				if !errors.Is(s.err, ErrInvalidResponse) || !strings.Contains(s.err.Error(), tc.says) {
					t.Fatalf("err %v, want an invalid response saying %q", s.err, tc.says)
				}
				if deltas, _ := s.deltas(); n.Load() != tc.requests || deltas != tc.deltas {
					t.Errorf("%d requests, %d deltas; want %d and %d", n.Load(), deltas, tc.requests, tc.deltas)
				}
			})
		})
	}
}

// Events steno does not know, events without data, ids and retries, an
// "event:" field naming the type, CR line ends: all read as the spec says.
func TestStreamTolerates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, _ int) {
			sendEvents(w, "\ufeff: hello\r\r", "retry: 3000\nid: 1\n\n",
				`data: {"type":"transcript.text.languages","languages":[{"code":"en"}]}`+"\n\n",
				"event: transcript.text.delta\ndata: {\"delta\":\"Hello\"}\r\n\r\n",
				"data: {\"type\":\"transcript.text.delta\",\r", "data: \"delta\":\" world.\"}\r\r",
				evDone, "data: [DONE]\n\n")
		}))
		s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
		if s.err != nil {
			t.Fatal(s.err)
		}
		if n, text := s.deltas(); n != 2 || text != "Hello world." || s.done().Text != text {
			t.Fatalf("%d deltas %q, done %+v", n, text, s.done())
		}
	})
}

// Failures before the first event (a 500, a dropped connection, a 429,
// headers and then a closed connection) are retried like any attempt; the
// deltas come once, from the attempt that streamed.
func TestStreamRetriesBeforeTheFirstEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newStreamFake(t, transcribetest.Config{StreamDelay: time.Second, Faults: []transcribetest.Fault{
			transcribetest.FaultServerError, transcribetest.FaultRateLimited, transcribetest.FaultDropConnection,
		}})
		s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(2*time.Second), Request{Model: "gpt-4o-transcribe"}))
		if s.err != nil {
			t.Fatal(s.err)
		}
		n, text := s.deltas()
		if done := s.done(); done.Attempts != 4 || text != done.Text || n != len(strings.Fields(text)) {
			t.Errorf("attempts %d, %d deltas %q, done %q", done.Attempts, n, text, done.Text)
		}
		if st := h.Stats(); st.Requests != 4 || st.ByStatus[200] != 1 || st.ByStatus[500] != 1 || st.ByStatus[429] != 1 || st.ByStatus[0] != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, i int) {
			if i == 1 {
				sendEvents(w, ": working\n\n")
				panic(http.ErrAbortHandler) // the connection drops before any event
			}
			sendEvents(w, evHello, evWorld, evDone)
		}))
		s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
		if _, text := s.deltas(); s.err != nil || text != "Hello world." || n.Load() != 2 || s.done().Attempts != 2 {
			t.Fatalf("%q, %v after %d requests", text, s.err, n.Load())
		}
	})
}

// Once an event has been yielded, a failure is returned, not retried: the
// fake cuts its stream halfway (FaultTruncatedBody).
func TestStreamNoRetryAfterTheFirstEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newStreamFake(t, transcribetest.Config{StreamDelay: time.Second, Faults: []transcribetest.Fault{transcribetest.FaultTruncatedBody}})
		s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(4*time.Second), Request{Model: "gpt-4o-transcribe"}))
		n, _ := s.deltas()
		if !errors.Is(s.err, io.ErrUnexpectedEOF) || n < 4 {
			t.Fatalf("%d deltas, then %v; want some deltas and the cut", n, s.err)
		}
		if st := h.Stats(); st.Requests != 1 || st.ByStatus[0] != 1 {
			t.Errorf("stats %+v: retried after deltas", st)
		}
	})
}

// Cancelling the context mid-stream, or breaking out of the loop, ends the
// request: the server sees its client go, and no goroutine is left (the
// bubble ends only when all of its goroutines have; TestMain checks the
// rest with goleak).
func TestStreamCancelMidStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newStreamFake(t, transcribetest.Config{StreamDelay: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		deltas := 0
		var last error
		for ev, err := range c.TranscribeStream(ctx, wavReader(10*time.Second), Request{Model: "gpt-4o-transcribe"}) {
			if err != nil {
				last = err
				continue
			}
			if ev.Type == EventDelta {
				if deltas++; deltas == 3 {
					cancel()
				}
			}
		}
		if !errors.Is(last, context.Canceled) || deltas != 3 {
			t.Fatalf("%d deltas, then %v", deltas, last)
		}
		synctest.Wait()
		if st := h.Stats(); st.Requests != 1 || st.ByStatus[0] != 1 || st.ByStatus[200] != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c, h := newStreamFake(t, transcribetest.Config{StreamDelay: time.Second})
		start := time.Now()
		for ev, err := range c.TranscribeStream(context.Background(), wavReader(10*time.Second), Request{Model: "gpt-4o-transcribe"}) {
			if err != nil || ev.Type != EventDelta {
				t.Fatalf("%+v, %v", ev, err)
			}
			break
		}
		synctest.Wait()
		if st := h.Stats(); time.Since(start) != time.Second || st.ByStatus[0] != 1 {
			t.Errorf("after %v: stats %+v", time.Since(start), st)
		}
	})
	// Over a real connection: the server's handler ends (Close waits for
	// it) once the client breaks out.
	srv := transcribetest.NewServer(transcribetest.Config{StreamDelay: 10 * time.Millisecond})
	c, err := NewClient(WithBaseURL(srv.BaseURL()), WithAPIKey(streamKey), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range c.TranscribeStream(context.Background(), wavReader(10*time.Second), Request{Model: "gpt-4o-transcribe"}) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	srv.Close()
	if st := srv.Stats(); st.ByStatus[0] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The stream's timeouts: its first byte within FirstByte, then nothing
// moving for Stall is a stall, whatever the rate; the consumer's time is
// not counted.
func TestStreamTimeouts(t *testing.T) {
	timeouts := WithTimeouts(Timeouts{Stall: 10 * time.Second, FirstByte: 30 * time.Second})
	quiet := func(ctx context.Context) { <-ctx.Done() }

	t.Run("no first event", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var n atomic.Int32
			c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, _ int) {
				sendEvents(w)
				quiet(r.Context())
			}), timeouts)
			start := time.Now()
			s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
			var te *TimeoutError
			if !errors.As(s.err, &te) || te.Phase != PhaseFirstByte || te.After != 30*time.Second || n.Load() != 3 {
				t.Fatalf("%v after %d requests", s.err, n.Load())
			}
			// Three attempts of 30 s, and two backoffs of 0.5 and 1 s ± 25 %.
			if d := time.Since(start); d < 91*time.Second || d > 92*time.Second {
				t.Errorf("took %v", d)
			}
		})
	})
	t.Run("stall after a delta", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var n atomic.Int32
			c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, _ int) {
				time.Sleep(20 * time.Second) // under FirstByte
				sendEvents(w, evHello)
				quiet(r.Context())
			}), timeouts)
			start := time.Now()
			s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
			var te *TimeoutError
			if !errors.As(s.err, &te) || te.Phase != PhaseResponse || te.MinRate != 0 || n.Load() != 1 || len(s.events) != 1 {
				t.Fatalf("%v after %d requests and %d events", s.err, n.Load(), len(s.events))
			}
			if d := time.Since(start); d != 30*time.Second {
				t.Errorf("took %v, want 20 s to the delta and 10 s of stall", d)
			}
		})
	})
	t.Run("slow but moving", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var n atomic.Int32
			c := newStreamClient(t, sseHandler(&n, func(w http.ResponseWriter, r *http.Request, _ int) {
				for range 5 { // 60 bytes every 9 s, far under MinRate
					time.Sleep(9 * time.Second)
					sendEvents(w, evHello)
				}
				time.Sleep(9 * time.Second)
				sendEvents(w, ": still working\n\n")
				time.Sleep(9 * time.Second)
				sendEvents(w, evDone)
			}), timeouts)
			s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Model: "gpt-4o-transcribe"}))
			if s.err != nil || len(s.events) != 6 {
				t.Fatalf("%d events, %v", len(s.events), s.err)
			}
		})
	})
	t.Run("slow consumer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := newStreamFake(t, transcribetest.Config{}, timeouts)
			var s streamed
			for ev, err := range c.TranscribeStream(context.Background(), wavReader(2*time.Second), Request{Model: "gpt-4o-transcribe"}) {
				if err != nil {
					t.Fatal(err)
				}
				s.events = append(s.events, ev)
				time.Sleep(time.Minute) // the loop's work: the server waits for it
			}
			if n, text := s.deltas(); n < 4 || s.done() == nil || s.done().Text != text {
				t.Fatalf("%d deltas", n)
			}
		})
	})
}

// A file that must be cut streams piece after piece, in order, one
// request at a time; the done event has the stitched transcript, the one
// TranscribeFile makes. whisper-1's pieces, answered whole, come as one
// delta each.
func TestStreamLongFileInPieces(t *testing.T) {
	for _, model := range []string{"gpt-4o-transcribe", "whisper-1"} {
		t.Run(model, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, h := newStreamFake(t, transcribetest.Config{StreamDelay: 100 * time.Millisecond}, WithSplitting(SplitOptions{MaxDuration: 10 * time.Second}))
				path := filepath.Join(t.TempDir(), "long.wav")
				if err := os.WriteFile(path, transcribetest.WAV(25*time.Second), 0o600); err != nil {
					t.Fatal(err)
				}
				req := Request{Model: model}
				s := drainStream(t, c.TranscribeFileStream(context.Background(), path, req))
				if s.err != nil {
					t.Fatal(s.err)
				}
				done := s.done()
				pieces := len(done.Pieces)
				perPiece := make([]int, pieces)
				last := 0
				for _, ev := range s.events[:len(s.events)-1] {
					if ev.Piece < last || ev.Piece >= pieces {
						t.Fatalf("an event of piece %d after piece %d", ev.Piece, last)
					}
					if perPiece[ev.Piece] == 0 && ev.Piece > 0 && !strings.HasPrefix(ev.Delta, " ") {
						t.Errorf("piece %d starts %q: no space after the piece before", ev.Piece, ev.Delta)
					}
					last = ev.Piece
					perPiece[ev.Piece]++
				}
				if pieces < 3 || slices.Contains(perPiece, 0) || (model == "whisper-1" && slices.ContainsFunc(perPiece, func(n int) bool { return n != 1 })) {
					t.Errorf("%d pieces, deltas per piece %v", pieces, perPiece)
				}
				if st := h.Stats(); st.MaxInFlight != 1 || st.Requests != pieces || done.Attempts != pieces {
					t.Errorf("%d requests for %d pieces, %d at once", st.Requests, pieces, st.MaxInFlight)
				}
				_, text := s.deltas()
				if strings.Join(strings.Fields(text), " ") != text || len(strings.Fields(text)) < len(strings.Fields(done.Text)) {
					t.Errorf("deltas %q; done %q", text, done.Text)
				}
				whole, err := c.TranscribeFile(context.Background(), path, req)
				if err != nil || whole.Text != done.Text || len(whole.Pieces) != pieces {
					t.Errorf("TranscribeFile %q, %v; stream %q", whole.Text, err, done.Text)
				}
			})
		})
	}
	// A diarized file is cut too: its segments come with their speakers,
	// at the file's times (see TestDiarizeAcrossPieces).
	c, _ := newStreamFake(t, transcribetest.Config{}, WithSplitting(SplitOptions{MaxDuration: 10 * time.Second}))
	s := drainStream(t, c.TranscribeStream(context.Background(), wavReader(25*time.Second), Request{Model: "gpt-4o-transcribe-diarize", ResponseFormat: DiarizedJSON}))
	if s.err != nil || s.done() == nil || len(s.done().Pieces) < 3 || len(s.done().Segments) == 0 || s.done().Segments[len(s.done().Segments)-1].End < 20 {
		t.Errorf("a diarized file to cut: %v", s.err)
	}
}

// Input errors come as the sequence's one error, before anything is sent.
func TestStreamInputErrors(t *testing.T) {
	c, h := newStreamFake(t, transcribetest.Config{})
	for name, seq := range map[string]func(func(StreamEvent, error) bool){
		"missing file": c.TranscribeFileStream(context.Background(), filepath.Join(t.TempDir(), "none.wav"), Request{}),
		"not audio":    c.TranscribeStream(context.Background(), strings.NewReader("hello, world"), Request{}),
		"bad request":  c.TranscribeStream(context.Background(), wavReader(time.Second), Request{Temperature: 2}),
	} {
		s := drainStream(t, seq)
		if s.err == nil || len(s.events) != 0 {
			t.Errorf("%s: %v", name, s.err)
		}
	}
	if h.Stats().Requests != 0 {
		t.Errorf("%d requests sent", h.Stats().Requests)
	}
}

func ExampleClient_TranscribeStream() {
	srv := transcribetest.NewServer(transcribetest.Config{}) // a fake API that streams
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.BaseURL()), WithAPIKey("sk-example"), WithHTTPClient(srv.Client()))
	if err != nil {
		panic(err)
	}
	audio := bytes.NewReader(transcribetest.WAV(2 * time.Second))
	for ev, err := range c.TranscribeStream(context.Background(), audio, Request{Model: "gpt-4o-transcribe"}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		switch ev.Type {
		case EventDelta:
			fmt.Printf("%s|", ev.Delta) // as each word arrives
		case EventDone:
			fmt.Printf("\n%q, %d tokens\n", ev.Transcription.Text, ev.Transcription.Usage.TotalTokens)
		}
	}
	// Output:
	// Air| line| find| night| fact.|
	// "Air line find night fact.", 27 tokens
}

func TestSSEParser(t *testing.T) {
	type ev struct{ typ, data, id string }
	for _, tc := range []struct {
		name, in string
		want     []ev
		retry    time.Duration
	}{
		{"LF", "data: a\n\ndata: b\n\n", []ev{{"", "a", ""}, {"", "b", ""}}, 0},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []ev{{"", "a", ""}, {"", "b", ""}}, 0},
		{"CR", "data: a\r\rdata: b\r\r", []ev{{"", "a", ""}, {"", "b", ""}}, 0},
		{"mixed", "data: a\r\ndata: b\rdata: c\n\r\n", []ev{{"", "a\nb\nc", ""}}, 0},
		{"multi-line data", "data: {\ndata:  \"a\": 1\ndata\ndata: }\n\n", []ev{{"", "{\n \"a\": 1\n\n}", ""}}, 0},
		{"comments", ": hi\n:\ndata: a\n: between\n\n", []ev{{"", "a", ""}}, 0},
		{"event type", "event: error\ndata: x\n\ndata: y\n\n", []ev{{"error", "x", ""}, {"", "y", ""}}, 0},
		{"type without data", "event: ping\n\ndata: y\n\n", []ev{{"", "y", ""}}, 0},
		{"empty data", "data\n\ndata:\n\n", []ev{{"", "", ""}, {"", "", ""}}, 0},
		{"one space only", "data:  two\n\n", []ev{{"", " two", ""}}, 0},
		{"id kept", "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\x00y\ndata: d\n\n", []ev{{"", "a", "7"}, {"", "b", "7"}, {"", "c", ""}, {"", "d", ""}}, 0},
		{"retry", "retry: 1500\nretry: 1x\ndata: a\n\n", []ev{{"", "a", ""}}, 1500 * time.Millisecond},
		{"unknown fields", "foo: bar\nDATA: no\ndata: a\n\n", []ev{{"", "a", ""}}, 0},
		{"BOM", "\ufeffdata: a\n\n", []ev{{"", "a", ""}}, 0},
		{"one BOM only", "\ufeff\ufeffdata: a\n\ndata: b\n\n", []ev{{"", "b", ""}}, 0},
		{"unterminated event", "data: a\n\ndata: b\n", []ev{{"", "a", ""}}, 0},
		{"unterminated line", "data: a\n\ndata: b", []ev{{"", "a", ""}}, 0},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			p := newSSEParser(r, 64)
			var got []ev
			var retry time.Duration
			for {
				e, err := p.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				got = append(got, ev{e.typ, string(e.data), e.id})
				retry = e.retry
			}
			if !slices.Equal(got, tc.want) || retry != tc.retry {
				t.Errorf("%s (one byte at a time: %v): got %q, retry %v; want %q, %v", tc.name, oneByte, got, retry, tc.want, tc.retry)
			}
		}
	}
	// Lines and events are bounded.
	for name, in := range map[string]string{
		"long line":         "data: " + strings.Repeat("x", 100) + "\n\n",
		"line after data":   "data: " + strings.Repeat("x", 40) + "\nfoo: " + strings.Repeat("y", 30) + "\n\n",
		"long comment":      ":" + strings.Repeat("x", 100),
		"long event":        strings.Repeat("data: "+strings.Repeat("x", 20)+"\n", 4) + "\n",
		"endless line":      strings.Repeat("y", 1<<20),
		"endless CRLF-less": "data: a\r" + strings.Repeat("z", 1<<20),
	} {
		p := newSSEParser(iotest.HalfReader(strings.NewReader(in)), 64)
		var err error
		for err == nil {
			_, err = p.next()
		}
		if !errors.Is(err, errEventTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A read error is the parser's error.
	p := newSSEParser(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(io.ErrUnexpectedEOF)), 64)
	if e, err := p.next(); err != nil || string(e.data) != "a" {
		t.Fatalf("%q, %v", e.data, err)
	}
	if _, err := p.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("%v", err)
	}
}

// refSSE interprets an event stream as the spec's algorithm says, over
// the whole input at once: the reference FuzzSSE holds the parser to. It
// returns the events up to where the parser must fail for an event over
// max bytes with the line being read, and whether it must.
func refSSE(in []byte, max int) (events []sseEvent, tooLarge bool) {
	type line struct {
		b          []byte
		terminated bool
	}
	var lines []line
	for rest := in; len(rest) > 0; {
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			lines = append(lines, line{rest, false})
			break
		}
		lines = append(lines, line{rest[:i], true})
		if rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n' {
			i++
		}
		rest = rest[i+1:]
	}
	var (
		data     []byte
		typ, id  string
		retry    time.Duration
		hasFirst bool
	)
	for _, l := range lines {
		if len(data)+len(l.b) > max {
			return events, true
		}
		if !l.terminated {
			break // discarded, with the event it was part of
		}
		line := l.b
		if !hasFirst {
			hasFirst = true
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if len(line) == 0 {
			if len(data) > 0 {
				events = append(events, sseEvent{typ: typ, data: bytes.Clone(data[:len(data)-1]), id: id, retry: retry})
			}
			data, typ = nil, ""
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(name) {
		case "event":
			typ = string(value)
		case "data":
			if len(data)+len(value)+1 > max {
				return events, true
			}
			data = append(append(data, value...), '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id = string(value)
			}
		case "retry":
			if len(value) > 0 && strings.Trim(string(value), "0123456789") == "" {
				ms, _ := retryMillis(value)
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return events, false
}

// FuzzSSE holds the parser to the spec's algorithm (refSSE), however the
// bytes arrive, and to its bounds.
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n", "data: a\r\n\r\n", "data: a\r\rdata: b\r\r", "\ufeffdata: x\n\n", ": c\nevent: error\ndata: {}\n\n",
		"data\ndata:\ndata:  x\n\n", "id: 1\nretry: 99\ndata: y\n\n", "id: a\x00b\n\n", "data: " + strings.Repeat("x", 70) + "\n\n",
		"event: transcript.text.delta\ndata: {\"delta\":\"hi\"}\n\ndata: [DONE]\n\n", "\r\n\r\n\n\r", "data: a\r",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const max = 64
		want, tooLarge := refSSE(in, max)
		for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in)), &chunkReader{in, int(chunk%16) + 1}} {
			p := newSSEParser(r, max)
			var got []sseEvent
			var err error
			for {
				var e sseEvent
				if e, err = p.next(); err != nil {
					break
				}
				e.data = bytes.Clone(e.data)
				got = append(got, e)
			}
			if tooLarge != errors.Is(err, errEventTooLarge) || (!tooLarge && err != io.EOF) {
				t.Fatalf("%q: error %v, want too large: %v", in, err, tooLarge)
			}
			if !slices.EqualFunc(got, want, func(a, b sseEvent) bool {
				return a.typ == b.typ && bytes.Equal(a.data, b.data) && a.id == b.id && a.retry == b.retry
			}) {
				t.Fatalf("%q:\n got %+v\nwant %+v", in, got, want)
			}
		}
	})
}

// chunkReader returns its bytes n at a time.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}
