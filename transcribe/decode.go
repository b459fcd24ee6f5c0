package transcribe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/steno-go/steno/internal/apierr"
	"github.com/steno-go/steno/internal/ratehdr"
)

// maxResponseBody bounds the body of a 2xx answer: a longer body is an
// error (an *InvalidResponseError, not retried), and never costs more
// memory than this. Real transcripts are far smaller: the longest a 25 MB
// upload can hold is about 7 hours of speech (at 8 kbit/s), some 63,000
// words at 150 a minute; verbose_json with word timestamps spends about
// 50 bytes a word ({"word":"hello","start":1234.56,"end":1234.98},), 250
// a segment (one every 5 s, with its text and tokens) and the text once
// more: about 5 MB in all. A 25 MB file at ordinary bitrates gives well
// under 2 MB. 8 MiB leaves room above the extreme case, and is a
// sixty-fourth of a 512 MB machine.
const maxResponseBody = 8 << 20

// ErrInvalidResponse is matched, with errors.Is, by every
// *InvalidResponseError: a 2xx answer whose body is not a transcript in
// the format asked for.
var ErrInvalidResponse = errors.New("invalid response")

// InvalidResponseError is a 2xx answer whose body is not a transcript in
// the format asked for: empty where JSON was asked for, not JSON, JSON of
// the wrong shape ({}, null, [], no text, a field of the wrong type), an
// HTML page (in any format), SRT or VTT that is not a list of cues, or a
// body over the size bound. It is never returned as, nor saved as, a
// transcript. (A 2xx whose body is an error object is an *APIError
// instead, so that an exhausted quota still matches ErrQuotaExceeded and
// stops a batch.)
//
// The client retries it like a dropped connection, within WithMaxAttempts
// and the retry budget: a 200 that is not a transcript most often comes
// from something between the client and the API (a proxy that mangled or
// cut the answer, a gateway's error page sent with the wrong status), which
// the next attempt may not meet. The server may have billed the request,
// but its transcript is lost either way: a retry now costs no more than the
// re-run that would pay for it again. A server or proxy that answers
// garbage every time costs a few attempts, never a saved transcript. A
// body over the size bound is not retried: a server that sends one would
// send it again.
type InvalidResponseError struct {
	StatusCode  int
	ContentType string
	Format      ResponseFormat // the format asked for
	// Excerpt is the start of the body, for people: at most 120 bytes,
	// valid UTF-8, control characters replaced by spaces, the API key
	// removed. Empty for a body over the size bound.
	Excerpt   string
	RequestID string // the x-request-id header
	Err       error  // what is wrong, e.g. a *json.SyntaxError or *json.UnmarshalTypeError
}

func (e *InvalidResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transcribe: invalid %d response", e.StatusCode)
	if e.ContentType != "" {
		fmt.Fprintf(&b, " (%s)", apierr.Excerpt([]byte(e.ContentType), 80))
	}
	fmt.Fprintf(&b, " for %s: %v", e.Format, e.Err)
	if e.Excerpt != "" {
		fmt.Fprintf(&b, "; body starts %q", e.Excerpt)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *InvalidResponseError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidResponse.
func (e *InvalidResponseError) Is(target error) bool { return target == ErrInvalidResponse }

// excerptLen is the length of InvalidResponseError.Excerpt.
const excerptLen = 120

// The causes of an InvalidResponseError that name no position in the body.
var (
	errEmptyBody = errors.New("empty body")
	errHTML      = errors.New("an HTML page, not a transcript")
	errNoText    = errors.New(`no "text" field`)
	errTooLarge  = fmt.Errorf("body over %d bytes", maxResponseBody)
)

// errorObject is decode's error for a 2xx body that is an error object;
// readTranscription turns it into an *APIError (with the key removed).
type errorObject struct{}

func (errorObject) Error() string { return "transcribe: an error object in a 2xx response" }

// readTranscription reads and decodes the body of resp, a 2xx answer to a
// request for format.
func (c *Client) readTranscription(resp *http.Response, format ResponseFormat) (*Transcription, error) {
	ct := resp.Header.Get("Content-Type")
	body, err := readBody(resp.Body, resp.ContentLength, maxResponseBody)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, permanent{c.invalidResponse(resp, nil, &InvalidResponseError{ContentType: ct, Format: format, Err: err})}
	case err != nil: // a connection dropped, a body cut short, a stall: retried
		return nil, fmt.Errorf("transcribe: reading response: %w", err)
	}
	t, err := decode(body, ct, format)
	var invalid *InvalidResponseError
	switch {
	case err == nil:
		t.RequestID = resp.Header.Get("X-Request-Id")
		return t, nil
	case errors.As(err, new(errorObject)):
		return nil, c.apiError(resp, body)
	case errors.As(err, &invalid):
		return nil, c.invalidResponse(resp, body, invalid)
	}
	return nil, err
}

// invalidResponse completes e with what resp says, its excerpt of body
// included, without the key. The key is removed from a stretch of the
// body long enough to hold it whole, in any form, after the excerpt's
// last byte, before the excerpt is cut: a cut never leaves part of a key.
func (c *Client) invalidResponse(resp *http.Response, body []byte, e *InvalidResponseError) *InvalidResponseError {
	e.StatusCode = resp.StatusCode
	e.ContentType = redact(e.ContentType, c.apiKey)
	e.RequestID = apierr.Excerpt([]byte(redact(resp.Header.Get("X-Request-Id"), c.apiKey)), excerptLen)
	window := body[:min(len(body), 2*excerptLen+8*len(c.apiKey))]
	e.Excerpt = apierr.Excerpt([]byte(redact(string(window), c.apiKey)), excerptLen)
	return e
}

// apiError is the error for resp, an error answer whose body is body: any
// non-2xx, or a 2xx whose body is an error object. The wait it asks for
// is read as its provider sends it (see provider.retrySignal).
func (c *Client) apiError(resp *http.Response, body []byte) *APIError {
	e := newAPIError(resp, body, 0, c.apiKey)
	e.RetryAfter, _ = c.prov.retrySignal(resp.Header, e.Message, time.Now())
	if v, set := ratehdr.ShouldRetry(resp.Header); set {
		e.shouldRetry = &v
	}
	return e
}

// readBody reads r to its end into one buffer, of at most limit bytes.
// size is the length the server declared (resp.ContentLength), or -1.
// A declared length is allocated once, exactly, and one over limit is
// refused before reading. An undeclared one is read in chunks, so that an
// endless body costs limit bytes and no more before errTooLarge, and
// copied into one buffer at the end (or, when one chunk held it, kept).
// A body that goes on past its declared length (only a hand-made
// response's can: Go's transport ends it there) is read on in chunks; a
// ContentLength of 0 is taken as unknown, as hand-made responses leave it.
func readBody(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, errTooLarge
	}
	var (
		chunks [][]byte
		total  int64
	)
	if size > 0 {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n == 0 {
			return buf, nil
		}
		chunks, total = append(chunks, buf, []byte{one[0]}), size+1
	}
	const firstChunk, maxChunk = 16 << 10, 1 << 20
	for n := int64(firstChunk); ; n = min(2*n, maxChunk) {
		room := limit + 1 - total // one byte more tells a body over limit
		if room <= 0 {
			return nil, errTooLarge
		}
		chunk := make([]byte, min(n, room))
		k, err := fill(r, chunk)
		total += int64(k)
		if total > limit {
			return nil, errTooLarge
		}
		if k > 0 {
			chunks = append(chunks, chunk[:k:k])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	switch len(chunks) {
	case 0:
		return []byte{}, nil
	case 1:
		return chunks[0], nil
	}
	buf := make([]byte, 0, total)
	for _, c := range chunks {
		buf = append(buf, c...)
	}
	return buf, nil
}

// fill reads from r until buf is full or r fails, and returns the bytes
// read and r's error as it is: io.EOF at the end, and any other error,
// io.ErrUnexpectedEOF of a chunked body cut short included, as a failure
// (which io.ReadFull would not tell from the end).
func fill(r io.Reader, buf []byte) (int, error) {
	n, idle := 0, 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k > 0 {
			idle = 0
		} else if idle++; idle == 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// number decodes a JSON number, or a string holding one (vLLM sends
// verbose_json's duration as a string). null is 0; anything else, NaN and
// infinities included, is an error.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%q is not a number", apierr.Excerpt(b, 40))
	}
	*n = number(f)
	return nil
}

// wireSegment is a segment as verbose_json (integer id) or diarized_json
// (string id) sends it.
type wireSegment struct {
	Segment
	ID    json.RawMessage `json:"id"`
	Start number          `json:"start"`
	End   number          `json:"end"`
}

// wireTranscription is a JSON body as the formats send it. Text is a
// pointer to tell a missing or null text (not a transcript) from an empty
// one (a silent recording); Error holds an error object sent with a 2xx.
type wireTranscription struct {
	Text     *string         `json:"text"`
	Error    json.RawMessage `json:"error"`
	Language string          `json:"language"`
	Duration number          `json:"duration"`
	Task     string          `json:"task"`
	Segments []wireSegment   `json:"segments"`
	Words    []Word          `json:"words"`
	Logprobs []Logprob       `json:"logprobs"`
	Usage    *Usage          `json:"usage"`
}

// decode fills a Transcription from a 2xx response body, validated
// against format: it returns a transcript, or an error and no transcript.
// The error is errorObject for an error object, else an
// *InvalidResponseError (without StatusCode and RequestID, which
// readTranscription adds). The transcript's Raw is body itself, not a
// copy.
//
// A JSON format needs a JSON object with a string "text" (which may be
// empty: a silent recording) and fields of the right types. srt and vtt
// need cues (see parseCues; no cues at all is a silent recording). text
// takes any body but an HTML page, and an empty one is silence. A body
// sent as application/json, or one that is JSON while text, srt or vtt was
// asked for, is read as JSON: a server that answers JSON anyway is still
// understood, and an error object or {} sent as text is still an error.
func decode(body []byte, contentType string, format ResponseFormat) (*Transcription, error) {
	invalid := func(cause error) error {
		return &InvalidResponseError{ContentType: contentType, Format: format, Excerpt: apierr.Excerpt(body, excerptLen), Err: cause}
	}
	media, _, _ := mime.ParseMediaType(contentType)
	text := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\ufeff")))
	if apierr.IsHTML(contentType, text) {
		return nil, invalid(errHTML)
	}
	switch {
	case format == JSON, format == VerboseJSON, format == DiarizedJSON:
		return decodeJSON(body, text, format, invalid)
	case media == "application/json", looksLikeJSON(text):
		// JSON for text, srt or vtt: asked for as such from a server
		// that lacks the format, or sent by one that answers JSON anyway.
		// The transcript is rendered in the format asked for (render.go).
		t, err := decodeJSON(body, text, format, invalid)
		if err != nil {
			return nil, err
		}
		return renderLocal(t, invalid)
	case format == SRT, format == VTT:
		t, err := decodeCues(body, format)
		if err != nil {
			return nil, invalid(err)
		}
		return t, nil
	}
	return &Transcription{Format: format, Raw: body, Text: string(text)}, nil
}

// decodeCues decodes body, an srt or vtt document.
func decodeCues(body []byte, format ResponseFormat) (*Transcription, error) {
	segs, err := parseCues(string(body))
	if err != nil {
		return nil, fmt.Errorf("not %s: %w", format, err)
	}
	texts := make([]string, len(segs))
	for i, s := range segs {
		texts[i] = s.Text
	}
	return &Transcription{Format: format, Raw: body, Segments: segs, Text: strings.Join(texts, " ")}, nil
}

// looksLikeJSON reports whether text, the trimmed body of a text, srt or
// vtt answer, is JSON rather than a transcript: an object, an array or
// null. ("[Music] …" is text: it does not parse.)
func looksLikeJSON(text []byte) bool {
	if len(text) == 0 {
		return false
	}
	switch text[0] {
	case '{', '[':
		return json.Valid(text)
	}
	return string(text) == "null"
}

// decodeJSON decodes body, whose trimmed form is text, as one of the JSON
// formats.
func decodeJSON(body, text []byte, format ResponseFormat, invalid func(error) error) (*Transcription, error) {
	if len(text) == 0 {
		return nil, invalid(errEmptyBody)
	}
	if text[0] != '{' {
		if json.Valid(text) {
			return nil, invalid(fmt.Errorf("JSON %s, not an object", jsonKind(text[0])))
		}
		return nil, invalid(errors.New("not JSON"))
	}
	var w wireTranscription
	err := json.Unmarshal(text, &w)
	if len(w.Error) > 0 && string(w.Error) != "null" {
		return nil, errorObject{}
	}
	if w.Text == nil && apierr.Parse(http.StatusOK, nil, text).Shape.IsErrorObject() {
		return nil, errorObject{} // {"code":…,"message":…}, {"detail":…}
	}
	if err != nil {
		return nil, invalid(fmt.Errorf("malformed JSON: %w", err))
	}
	if w.Text == nil {
		return nil, invalid(errNoText)
	}
	t := &Transcription{
		Format: format, Raw: body,
		Text: *w.Text, Language: w.Language, Duration: float64(w.Duration), Task: w.Task,
		Words: w.Words, Logprobs: w.Logprobs, Usage: w.Usage,
	}
	if len(w.Segments) > 0 {
		t.Segments = make([]Segment, 0, len(w.Segments))
	}
	for i, s := range w.Segments {
		seg := s.Segment
		seg.Start, seg.End = float64(s.Start), float64(s.End)
		seg.ID = i
		switch id := s.ID; {
		case len(id) == 0 || string(id) == "null":
		case id[0] == '"': // diarized_json: "seg_001"
			if err := json.Unmarshal(id, &seg.SegmentID); err != nil {
				return nil, invalid(fmt.Errorf("segment %d: bad id: %w", i, err))
			}
		default:
			var v float64
			if err := json.Unmarshal(id, &v); err != nil {
				return nil, invalid(fmt.Errorf("segment %d: id is not a number or a string", i))
			}
			if v == math.Trunc(v) && math.Abs(v) <= math.MaxInt32 {
				seg.ID = int(v)
			}
		}
		t.Segments = append(t.Segments, seg)
	}
	return t, nil
}

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}
