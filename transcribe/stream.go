package transcribe

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// Streaming transcripts: stream=true asks gpt-4o-transcribe and its kin to
// send the transcript as it is made, as server-sent events
// (https://html.spec.whatwg.org/multipage/server-sent-events.html), each
// event's data a JSON object whose "type" says what it is:
// transcript.text.delta (more text), transcript.text.segment (a finished
// diarized segment) and transcript.text.done (the whole text and its usage).

// StreamEventType is the kind of a StreamEvent: the "type" the server gave
// its event.
type StreamEventType string

// The kinds of StreamEvent.
const (
	// EventDelta carries text added to the transcript (StreamEvent.Delta).
	EventDelta StreamEventType = "transcript.text.delta"
	// EventSegment carries a finished diarized segment
	// (StreamEvent.Segment): gpt-4o-transcribe-diarize with DiarizedJSON.
	EventSegment StreamEventType = "transcript.text.segment"
	// EventDone ends a stream that succeeded: StreamEvent.Transcription
	// holds the whole transcript.
	EventDone StreamEventType = "transcript.text.done"
)

// StreamEvent is one event of a streamed transcript. Type says which of
// its fields are set.
type StreamEvent struct {
	Type StreamEventType

	// Delta is the text an EventDelta adds: the deltas, in order, spell
	// the transcript so far (with a space added between the pieces of a
	// file that was cut).
	Delta string
	// SegmentID is the id of the diarized segment ("seg_001") an
	// EventDelta belongs to, when the server says (the diarize model).
	SegmentID string
	// Logprobs are the log probabilities of an EventDelta's tokens, when
	// Request.Include asks for "logprobs".
	Logprobs []Logprob

	// Segment is an EventSegment's diarized segment: SegmentID, Start and
	// End (seconds), Text and Speaker; ID is its position in the stream.
	Segment *Segment

	// Piece is the index of the piece of audio the event comes from: 0
	// unless the file was cut (see TranscribeFileStream).
	Piece int

	// Transcription is an EventDone's whole transcript: Text, Logprobs,
	// Usage, the diarized Segments, RequestID and Attempts, and Pieces when
	// the file was cut. Raw is the transcript as one body in the format
	// asked for holds it: from an event stream, rendered (json, text or
	// diarized_json; a stream tells no duration); from a server that
	// answered in one body instead, that body, as Transcribe returns it.
	Transcription *Transcription
}

// TranscribeStream transcribes the audio read from r, as Transcribe does,
// asking the server to stream the transcript (stream=true), and returns
// the events as they arrive: EventDelta for each piece of text,
// EventSegment for each diarized segment (gpt-4o-transcribe-diarize with
// DiarizedJSON), then one EventDone with the whole transcript. On a
// failure the sequence yields the error, once, and ends. Nothing is sent
// until the sequence is ranged over, and each range sends the request
// anew.
//
// req.Stream is ignored: the call always asks for a stream. A server or
// model that does not stream (whisper-1 ignores stream=true) answers in
// one body, in the format asked for; the sequence is then that answer as
// one EventDone, with no deltas.
//
// The upload is the one of Transcribe: streamed from r with an exact
// Content-Length, through the client's limiter, and retried while nothing
// has been received (a connection error, a 429 or a 5xx, a stream that
// breaks before its first event). Once an event has been yielded, a
// failure is returned and never retried: the transcript was partly
// delivered, and billed. An error event sent in the stream (an error
// object under HTTP 200) is an *APIError, so that an exhausted quota still
// matches ErrQuotaExceeded. A stream that ends without its done event, or
// whose events are not the JSON the API sends, is an *InvalidResponseError.
//
// Timeouts apply as for Transcribe up to the response's headers. Then, as
// an event stream may be quiet for long while the server works, the
// stream's own rule applies: its first byte must come within
// Timeouts.FirstByte, and after that it stalls only when nothing at all
// (no event, no comment) arrives for Timeouts.Stall; Timeouts.MinRate does
// not apply, since a stream of words is slow by nature. The time the loop's
// body holds an event is not counted.
//
// Audio that must be cut streams piece after piece, as
// TranscribeFileStream says. Breaking out of the loop, or cancelling ctx,
// ends the request and closes its body; the call starts no goroutine of
// its own.
func (c *Client) TranscribeStream(ctx context.Context, r io.Reader, req Request) iter.Seq2[StreamEvent, error] {
	return func(yield func(StreamEvent, error) bool) {
		src, err := c.openReader(ctx, r, req)
		if err != nil {
			yield(StreamEvent{}, err)
			return
		}
		defer src.close()
		c.stream(ctx, src, req, yield)
	}
}

// TranscribeFileStream is TranscribeStream for the audio file at path,
// checked as TranscribeFile checks it and streamed from disk.
//
// A file that must be cut (see WithSplitting) streams piece after piece,
// in order: each piece is sent when the previous one is done, and its
// events carry its index in Piece. A piece whose server does not stream
// comes as one EventDelta of its whole text. The EventDone at the end
// holds the stitched transcript, in the format asked for. Where a cut
// fell outside a pause, the pieces share a little audio, whose words the
// deltas may give twice; the done event's text has them once (see
// Transcription.Pieces). A piece that fails ends the sequence with a
// *PartialError; with SplitOptions.AllowPartial the next pieces are sent
// all the same, and the done event's transcript lists what is missing. A
// diarized transcript keeps its speakers' names across the pieces (see
// SplitOptions): EventSegment's speaker and times are the file's.
func (c *Client) TranscribeFileStream(ctx context.Context, path string, req Request) iter.Seq2[StreamEvent, error] {
	return func(yield func(StreamEvent, error) bool) {
		src, err := c.openPath(path, req)
		if err != nil {
			yield(StreamEvent{}, err)
			return
		}
		defer src.close()
		c.stream(ctx, src, req, yield)
	}
}

// errStopped is a stream whose consumer stopped ranging over it: nothing
// to report.
var errStopped = errors.New("transcribe: stream stopped by its consumer")

// withStream returns req asking for a stream. Request.fields refuses
// Stream, which the non-streaming calls cannot honour, so the field is
// sent through Extra, after the standard ones.
func withStream(req Request) Request {
	req.Stream = false
	extra := make(map[string]string, len(req.Extra)+1)
	maps.Copy(extra, req.Extra)
	extra["stream"] = "true"
	req.Extra = extra
	return req
}

// stream sends src and yields its events.
func (c *Client) stream(ctx context.Context, src *source, req Request, yield func(StreamEvent, error) bool) {
	const endpoint = "/audio/transcriptions"
	form, size, err := c.form(endpoint, src, withStream(req))
	if err != nil {
		yield(StreamEvent{}, err)
		return
	}
	var t *Transcription
	if c.inPieces(src, size, req, false) {
		t, err = c.streamPieces(ctx, endpoint, src, req, yield, func() (*Transcription, error) {
			e := &emitter{yield: yield}
			t, _, err := c.streamForm(ctx, endpoint, src.name, form, req.format(), cost(req.model(), src.seconds()), e.emit)
			return t, err
		})
	} else {
		e := &emitter{yield: yield}
		t, _, err = c.streamForm(ctx, endpoint, src.name, form, req.format(), cost(req.model(), src.seconds()), e.emit)
	}
	switch {
	case errors.Is(err, errStopped):
	case err != nil:
		c.log.LogAttrs(ctx, slog.LevelWarn, "transcribe: stream failed", slog.String("file", src.name), slog.Any("error", err))
		yield(StreamEvent{}, err)
	default:
		yield(StreamEvent{Type: EventDone, Transcription: t}, nil)
	}
}

// emitter yields the deltas and segments of one stream, or of the pieces
// of one file in turn, putting a space between pieces where neither side
// has one.
type emitter struct {
	yield func(StreamEvent, error) bool
	// speakers and clock, for the pieces of a diarized file, rename a
	// segment's speaker as the file names it and move its times to the
	// file's.
	speakers *speakerMap
	clock    part
	piece    int  // the piece under way
	fresh    bool // no text of this piece yielded yet
	text     bool // text has been yielded
	endsSep  bool // the last text yielded ends with a space
}

// emit yields ev, and reports whether the consumer wants more.
func (e *emitter) emit(ev StreamEvent) bool {
	ev.Piece = e.piece
	if ev.Segment != nil && e.speakers != nil {
		seg := *ev.Segment
		seg.Speaker = e.speakers.name(seg.Speaker)
		seg.Start, seg.End = e.clock.original(seg.Start, false), e.clock.original(seg.End, true)
		ev.Segment = &seg
	}
	if ev.Type == EventDelta && ev.Delta != "" {
		if e.fresh && e.text && !e.endsSep {
			if r, _ := utf8.DecodeRuneInString(ev.Delta); !unicode.IsSpace(r) {
				ev.Delta = " " + ev.Delta
			}
		}
		e.fresh, e.text = false, true
		r, _ := utf8.DecodeLastRuneInString(ev.Delta)
		e.endsSep = unicode.IsSpace(r)
	}
	return e.yield(ev, nil)
}

// startPiece makes the events that follow piece i's.
func (e *emitter) startPiece(i int) { e.piece, e.fresh = i, true }

// streamPieces cuts src as sendPieces does (to leave silence out, a file
// that fits is one piece), streams its pieces one after the other, and
// returns the stitched transcript; whole streams src as it is, when it
// need not be cut and its silence cannot be looked for.
func (c *Client) streamPieces(ctx context.Context, endpoint string, src *source, req Request, yield func(StreamEvent, error) bool, whole func() (*Transcription, error)) (*Transcription, error) {
	_, size, err := c.form(endpoint, src, withStream(req))
	if err != nil {
		return nil, err
	}
	must := c.mustSplit(src, size, req, false)
	if !must && !c.split.SkipSilence {
		return whole()
	}
	plan := c.planOptionsFor(req, false)
	pieces, err := audio.Plan(ctx, src.readerAt(), src.file.Size, plan)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil && !must: // no silence can be looked for in it
		return whole()
	case err != nil:
		return nil, cutError(src, err)
	}
	defer audio.Release(pieces)
	c.log.InfoContext(ctx, "transcribe: cutting", "file", src.name, "pieces", len(pieces))

	// As in sendPieces: timestamps where the model gives them (whisper-1
	// ignores stream=true and answers verbose_json), so that the pieces
	// stitch.
	pieceReq := req
	pieceReq.ResponseFormat = JSON
	var sp *speakers // diarized: the speakers known so far (see diarize.go)
	switch {
	case req.format() == DiarizedJSON:
		pieceReq = c.diarizedPieceRequest(req)
		clip, _ := speakerClipLimit(cmp.Or(plan.MaxBytes, DefaultMaxPieceBytes))
		sp = c.newSpeakers(src, req, clip)
	case req.model() == "whisper-1" || req.format() == VerboseJSON || req.format() == SRT || req.format() == VTT:
		pieceReq.ResponseFormat = VerboseJSON
		pieceReq.TimestampGranularities = []Granularity{GranularityWord, GranularitySegment}
	}
	e := &emitter{yield: yield}
	parts := make([]part, len(pieces))
	errs := make([]error, len(pieces))
	total := 0
	for i, p := range pieces {
		r := pieceReq
		if c.split.ChainPrompts && i > 0 && parts[i-1].t != nil {
			r.Prompt = promptTail(parts[i-1].t.Text)
		}
		sub := src.piece(i, len(pieces), p)
		e.startPiece(i)
		if sp != nil {
			r = sp.request(r)
			e.speakers, e.clock = sp.mapper(r), partOf(p, nil)
		}
		t, n, err := c.streamPiece(ctx, endpoint, sub, r, e)
		total += n
		if errors.Is(err, errStopped) {
			return nil, err
		}
		if errs[i] = err; err != nil {
			if !c.split.AllowPartial || stopsPieces(err) || ctx.Err() != nil {
				break
			}
			continue
		}
		if sp != nil {
			sp.learn(ctx, t, e.speakers, p)
		}
		parts[i] = partOf(p, t)
	}
	t, err := c.stitchPieces(ctx, src, pieces, parts, errs, req.format())
	if err != nil {
		return nil, err
	}
	t.Attempts = total
	return t, nil
}

// streamPiece streams the piece sub with r, yielding its events through
// e, and returns its transcript and the number of requests sent.
func (c *Client) streamPiece(ctx context.Context, endpoint string, sub *source, r Request, e *emitter) (*Transcription, int, error) {
	form, size, err := c.form(endpoint, sub, withStream(r))
	if err != nil {
		return nil, 0, err
	}
	if c.overLimit(size) {
		return nil, 0, c.tooLarge(sub, size)
	}
	t, n, err := c.streamForm(ctx, endpoint, sub.name, form, r.format(), cost(r.model(), sub.seconds()), e.emit)
	if err != nil {
		return nil, n, err
	}
	if e.fresh && strings.TrimSpace(t.Text) != "" { // answered whole: its text is the piece's delta
		if !e.emit(StreamEvent{Type: EventDelta, Delta: t.Text}) {
			return nil, n, errStopped
		}
	}
	return t, n, nil
}

// streamForm sends form, retrying what can succeed later while no event
// has been yielded, and returns the transcript of its done event (or of
// an answer in one body) and the number of requests sent.
func (c *Client) streamForm(ctx context.Context, endpoint, name string, form *multipart.Form, format ResponseFormat, est ratelimit.Cost, emit func(StreamEvent) bool) (*Transcription, int, error) {
	attempts := 0
	r := c.newRetrier(name)
	for {
		t, sent, delivered, err := c.streamAttempt(ctx, endpoint, form, format, est, emit)
		if sent {
			attempts++
		} else {
			r.unsent()
		}
		switch {
		case err == nil:
			r.succeeded()
			t.Attempts = attempts
			return t, attempts, nil
		case errors.Is(err, errStopped):
			r.unsent()
			return nil, attempts, err
		case ctx.Err() != nil:
			return nil, attempts, stopped(ctx, err, attempts)
		case delivered: // part of the transcript was yielded, and billed
			return nil, attempts, err
		}
		if err := r.again(ctx, err, attempts, nil); err != nil {
			return nil, attempts, err
		}
	}
}

// streamAttempt makes one request for a stream, when the limiter allows it
// at cost est, and passes its events to emit as they arrive. sent reports
// whether the request left; delivered whether emit was given an event.
func (c *Client) streamAttempt(ctx context.Context, endpoint string, form *multipart.Form, format ResponseFormat, est ratelimit.Cost, emit func(StreamEvent) bool) (t *Transcription, sent, delivered bool, err error) {
	permit, err := c.limiter.Acquire(ctx, est)
	if err != nil {
		return nil, false, false, permanent{err} // cancelled, or the wait would pass the deadline
	}
	w := newWatchdog(ctx, c.timeouts)
	defer w.stop()
	req, err := c.newRequest(ratelimit.ContextWithPermit(w.ctx, permit), endpoint, form)
	if err != nil {
		permit.Cancel()
		return nil, false, false, err
	}
	u := req.URL.String()
	var resp *http.Response
	defer func() {
		if t != nil {
			permit.Settle(actualCost(est, t.Usage))
		}
		permit.Done(resp, err)
	}()
	start := time.Now()
	resp, err = w.do(c.http, req)
	if err != nil {
		return nil, true, false, c.transportError(ctx, u, err)
	}
	defer resp.Body.Close()
	c.log.LogAttrs(ctx, slog.LevelDebug, "transcribe: response",
		slog.String("url", sanitizeURL(u)), slog.Int("status", resp.StatusCode),
		slog.String("content_type", resp.Header.Get("Content-Type")),
		slog.String("request_id", resp.Header.Get("X-Request-Id")), slog.Duration("elapsed", time.Since(start)))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, true, false, c.apiError(resp, body)
	}
	if !isEventStream(resp.Header.Get("Content-Type")) {
		// The server did not stream (whisper-1 ignores stream=true): its
		// answer is a transcript in one body, checked as Transcribe's.
		t, err = c.readTranscription(resp, format)
		return t, true, false, err
	}
	s := &eventStream{c: c, ctx: ctx, w: w, resp: resp, format: format, emit: emit}
	t, err = s.read()
	return t, true, s.delivered, err
}

// isEventStream reports whether a response's Content-Type is
// text/event-stream.
func isEventStream(contentType string) bool {
	media, _, err := mime.ParseMediaType(contentType)
	return err == nil && media == "text/event-stream"
}

// maxEventBytes bounds one event of a stream, with the line being read:
// the done event carries the whole text, and with logprobs a record for
// each of its tokens, as large as a whole answer in one body can be.
const maxEventBytes = maxResponseBody

// maxStreamSegments bounds the bytes of the diarized segments a stream's
// transcript collects.
const maxStreamSegments = maxResponseBody

// errEventTooLarge is the cause of the *InvalidResponseError for an event,
// or a line of one, over maxEventBytes.
var errEventTooLarge = fmt.Errorf("event stream: an event or line over %d bytes", maxEventBytes)

// eventStream reads the events of one answer and passes them on.
type eventStream struct {
	c         *Client
	ctx       context.Context
	w         *watchdog
	resp      *http.Response
	format    ResponseFormat
	emit      func(StreamEvent) bool
	delivered bool // emit has been given an event

	segments []Segment
	segBytes int
}

// wireEvent is the data of an event: its type, and the fields of the
// events steno reads.
type wireEvent struct {
	Type      string          `json:"type"`
	Error     json.RawMessage `json:"error"`
	Delta     *string         `json:"delta"`
	Text      *string         `json:"text"`
	Logprobs  []Logprob       `json:"logprobs"`
	SegmentID string          `json:"segment_id"`
	ID        json.RawMessage `json:"id"`
	Start     number          `json:"start"`
	End       number          `json:"end"`
	Speaker   string          `json:"speaker"`
	Usage     *Usage          `json:"usage"`
}

// read reads the stream to its done event, and returns the transcript.
func (s *eventStream) read() (*Transcription, error) {
	s.w.awaitEvents()
	p := newSSEParser(&firstByteBody{r: s.resp.Body, w: s.w}, maxEventBytes)
	for {
		ev, err := p.next()
		switch {
		case err == nil:
		case s.ctx.Err() != nil: // the caller's cancellation or deadline, as the stream broke
			return nil, context.Cause(s.ctx)
		case s.w.timedOut() != nil: // a bound passed, as the stream broke
			return nil, s.w.timedOut()
		case err == io.EOF:
			return nil, s.invalid(nil, errors.New("the event stream ended before transcript.text.done"))
		case errors.Is(err, errEventTooLarge):
			return nil, permanent{s.invalid(nil, err)}
		default:
			return nil, fmt.Errorf("transcribe: reading event stream: %w", err)
		}
		t, err := s.handle(ev)
		if t != nil || err != nil {
			return t, err
		}
	}
}

// handle acts on one event: a delta or a segment is passed on (nil, nil),
// the done event returns the transcript, an error event its error.
func (s *eventStream) handle(ev sseEvent) (*Transcription, error) {
	data := bytes.TrimSpace(ev.data)
	switch {
	case ev.typ == "error":
		return nil, s.c.apiError(s.resp, data)
	case len(data) == 0:
		return nil, nil // an event without data, such as a keep-alive
	case string(data) == "[DONE]":
		return nil, s.invalid(data, errors.New("[DONE] before transcript.text.done"))
	}
	var w wireEvent
	if err := json.Unmarshal(data, &struct {
		Type  *string          `json:"type"`
		Error *json.RawMessage `json:"error"`
	}{&w.Type, &w.Error}); err != nil || data[0] != '{' {
		switch {
		case data[0] == '{':
			return nil, s.invalid(data, fmt.Errorf("malformed event: %w", err))
		case json.Valid(data):
			return nil, s.invalid(data, fmt.Errorf("event data is JSON %s, not an object", jsonKind(data[0])))
		}
		return nil, s.invalid(data, errors.New("event data is not JSON"))
	}
	typ := w.Type
	if typ == "" {
		typ = ev.typ // an event field naming the type
	}
	if typ == "error" || (len(w.Error) > 0 && string(w.Error) != "null") {
		return nil, s.c.apiError(s.resp, data)
	}
	switch StreamEventType(typ) {
	case EventDelta, EventSegment, EventDone:
	default:
		return nil, nil // an event steno does not know: later additions to the API
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, s.invalid(data, fmt.Errorf("malformed %s event: %w", typ, err))
	}
	switch StreamEventType(typ) {
	case EventDelta:
		if w.Delta == nil {
			return nil, s.invalid(data, fmt.Errorf(`%s event without "delta"`, typ))
		}
		return nil, s.pass(StreamEvent{Type: EventDelta, Delta: *w.Delta, SegmentID: w.SegmentID, Logprobs: w.Logprobs})
	case EventSegment:
		seg, err := s.segment(&w)
		if err != nil {
			return nil, s.invalid(data, err)
		}
		return nil, s.pass(StreamEvent{Type: EventSegment, Segment: &seg})
	}
	if w.Text == nil {
		return nil, s.invalid(data, fmt.Errorf(`%s event without "text"`, typ))
	}
	t := &Transcription{
		Text: *w.Text, Logprobs: w.Logprobs, Usage: w.Usage, Segments: s.segments,
		Format: s.format, RequestID: s.resp.Header.Get("X-Request-Id"),
	}
	raw, err := streamRaw(t, data)
	if err != nil {
		return nil, s.invalid(data, err)
	}
	t.Raw = raw
	return t, nil
}

// streamRaw renders t, the transcript of a stream whose done event's
// data is done, as one body in its format would hold it: json's
// {"text","logprobs","usage"}, the text and a newline, or diarized_json's
// {"task","text","segments","usage"} (without the duration, which a
// stream does not tell). Other formats, which no server streams, keep
// the done event's data.
func streamRaw(t *Transcription, done []byte) ([]byte, error) {
	switch t.Format {
	case JSON:
		return encodeJSON(struct {
			Text     string    `json:"text"`
			Logprobs []Logprob `json:"logprobs,omitempty"`
			Usage    *Usage    `json:"usage,omitempty"`
		}{t.Text, t.Logprobs, t.Usage})
	case Text:
		return []byte(t.Text + "\n"), nil
	case DiarizedJSON:
		type segment struct {
			Type    string  `json:"type"`
			ID      string  `json:"id"`
			Start   float64 `json:"start"`
			End     float64 `json:"end"`
			Text    string  `json:"text"`
			Speaker string  `json:"speaker"`
		}
		segs := make([]segment, len(t.Segments))
		for i, s := range t.Segments {
			segs[i] = segment{string(EventSegment), s.SegmentID, s.Start, s.End, s.Text, s.Speaker}
		}
		return encodeJSON(struct {
			Task     string    `json:"task"`
			Text     string    `json:"text"`
			Segments []segment `json:"segments"`
			Usage    *Usage    `json:"usage,omitempty"`
		}{"transcribe", t.Text, segs, t.Usage})
	}
	return bytes.Clone(done), nil
}

// segment reads a transcript.text.segment event, and keeps its segment
// for the transcript.
func (s *eventStream) segment(w *wireEvent) (Segment, error) {
	if w.Text == nil {
		return Segment{}, errors.New(`segment event without "text"`)
	}
	seg := Segment{ID: len(s.segments), Start: float64(w.Start), End: float64(w.End), Text: *w.Text, Speaker: w.Speaker}
	switch id := w.ID; {
	case len(id) == 0 || string(id) == "null":
	case id[0] == '"':
		if err := json.Unmarshal(id, &seg.SegmentID); err != nil {
			return Segment{}, fmt.Errorf("segment event: bad id: %w", err)
		}
	default:
		var v float64
		if err := json.Unmarshal(id, &v); err != nil || math.IsInf(v, 0) {
			return Segment{}, errors.New("segment event: id is not a string or a number")
		}
		seg.SegmentID = string(id)
	}
	s.segBytes += len(seg.Text) + len(seg.SegmentID) + len(seg.Speaker) + 64
	if s.segBytes > maxStreamSegments {
		return Segment{}, fmt.Errorf("diarized segments over %d bytes", maxStreamSegments)
	}
	s.segments = append(s.segments, seg)
	return seg, nil
}

// pass gives ev to the consumer, with no bound running while it holds
// it; errStopped when the consumer wants no more.
func (s *eventStream) pass(ev StreamEvent) error {
	s.w.hold()
	s.delivered = true
	more := s.emit(ev)
	s.w.eventsMoving()
	if !more {
		return errStopped
	}
	return nil
}

// invalid is the *InvalidResponseError for an event stream whose event
// data is not what the API sends.
func (s *eventStream) invalid(data []byte, cause error) error {
	ct := s.resp.Header.Get("Content-Type")
	return s.c.invalidResponse(s.resp, data, &InvalidResponseError{ContentType: ct, Format: s.format, Err: cause})
}

// sseEvent is one event dispatched by an sseParser.
type sseEvent struct {
	typ   string        // the event field; "" when none was given (the spec's "message")
	data  []byte        // the data lines joined by "\n"; valid until the next call to next
	id    string        // the last event ID so far
	retry time.Duration // the last reconnection time so far; 0 when none was given
}

// sseParser reads an event stream as the WHATWG HTML standard's
// "Interpreting an event stream" says: lines end with CRLF, LF or CR;
// a leading byte order mark is skipped; lines starting with a colon are
// comments; "event", "data", "id" and "retry" fields are read (the value
// after the first colon, less one leading space; a line without a colon
// is a field with an empty value), other fields are ignored; a blank line
// dispatches the event when it has data. An event cut off by the end of
// the stream is discarded. An event's data and the line being read are
// bounded by max bytes together: more is errEventTooLarge, never a bigger
// allocation. The parser never reads further than the line it needs.
type sseParser struct {
	r        *bufio.Reader
	max      int
	line     []byte
	data     []byte
	typ      string
	id       string
	retry    time.Duration
	skipLF   bool // the last line ended with CR: a LF that follows belongs to it
	lineSeen bool // a line has been read: no byte order mark any more
}

// newSSEParser returns a parser of r whose events, with the line being
// read, are at most max bytes.
func newSSEParser(r io.Reader, max int) *sseParser {
	return &sseParser{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// next returns the next event, io.EOF at the end of the stream, or the
// error of reading it.
func (p *sseParser) next() (sseEvent, error) {
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if len(p.data) == 0 {
				p.typ = ""
				continue
			}
			ev := sseEvent{typ: p.typ, data: p.data[:len(p.data)-1], id: p.id, retry: p.retry}
			p.data, p.typ = p.data[:0], ""
			return ev, nil
		}
		if line[0] == ':' {
			continue // a comment
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(name) {
		case "event":
			p.typ = string(value)
		case "data":
			if len(p.data)+len(value)+1 > p.max {
				return sseEvent{}, errEventTooLarge
			}
			p.data = append(append(p.data, value...), '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.id = string(value)
			}
		case "retry":
			if ms, ok := retryMillis(value); ok {
				p.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// retryMillis returns the value of b, a string of ASCII digits, capped so
// that it stays a valid time.Duration in milliseconds.
func retryMillis(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	const most = math.MaxInt64 / int64(time.Millisecond)
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = min(most, v*10+int64(c-'0'))
	}
	return v, true
}

// readLine returns the next line, without its end; it is valid until the
// next call. A line cut off by the end of the stream is not a line: io.EOF.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		if _, err := p.r.Peek(1); err != nil {
			return nil, err
		}
		buf, _ := p.r.Peek(p.r.Buffered())
		if p.skipLF {
			p.skipLF = false
			if buf[0] == '\n' {
				p.r.Discard(1)
				continue
			}
		}
		i := bytes.IndexAny(buf, "\r\n")
		chunk := buf
		if i >= 0 {
			chunk = buf[:i]
		}
		if len(p.data)+len(p.line)+len(chunk) > p.max {
			return nil, errEventTooLarge
		}
		p.line = append(p.line, chunk...)
		if i < 0 {
			p.r.Discard(len(buf))
			continue
		}
		p.skipLF = buf[i] == '\r'
		p.r.Discard(i + 1)
		if !p.lineSeen {
			p.lineSeen = true
			p.line = bytes.TrimPrefix(p.line, []byte("\ufeff"))
		}
		return p.line, nil
	}
}
