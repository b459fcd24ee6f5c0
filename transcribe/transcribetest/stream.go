package transcribetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Streaming: a transcription sent with stream=true to a model that streams
// (OpenAI's gpt- models; whisper-1 ignores the field, as OpenAI's does, and
// so do the fake's other models) is answered as server-sent events
// (text/event-stream) as OpenAI sends them: one "data:" line of JSON per
// event, each event flushed on its own, Config.StreamDelay apart:
//
//   - transcript.text.delta for each word of the transcript (with the
//     space before it), with its logprobs when include[]=logprobs, and the
//     segment_id of its segment for gpt-4o-transcribe-diarize;
//   - transcript.text.segment after the words of each segment, for
//     gpt-4o-transcribe-diarize with response_format diarized_json;
//   - transcript.text.done with the whole text (the deltas joined), its
//     logprobs and the usage.
//
// A request is counted in Stats as answered 200 just before its done
// event is sent; one whose stream ends early (the client went away, or a
// FaultTruncatedBody, which sends half the events and then closes the
// connection) counts as dropped (status 0). FaultStall and Latency hold
// back the headers, as they do for a body.

// eventStream is the Content-Type of a streamed answer.
const eventStream = "text/event-stream; charset=utf-8"

// streams reports whether a's answer is an event stream.
func streams(a *Audio) bool {
	v := a.Fields["stream"]
	return a.Task == "transcribe" && strings.HasPrefix(a.Model, "gpt-") && len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), "true")
}

// Events of a stream, fields in OpenAI's order.
type (
	deltaEvent struct {
		Type      string    `json:"type"`
		Delta     string    `json:"delta"`
		Logprobs  []logprob `json:"logprobs,omitempty"`
		SegmentID string    `json:"segment_id,omitempty"`
	}
	doneEvent struct {
		Type     string    `json:"type"`
		Text     string    `json:"text"`
		Logprobs []logprob `json:"logprobs,omitempty"`
		Usage    any       `json:"usage,omitempty"`
	}
)

// word matches a word and the spaces before it.
var word = regexp.MustCompile(`\s*\S+`)

// streamResult renders t, normalized, as the events of a streamed answer:
// a body of "data: …\n\n" events that writeEvents sends one by one.
func streamResult(a *Audio, t *Transcript) result {
	withLogprobs := len(a.Include) > 0 // validate allows only logprobs
	var (
		b     bytes.Buffer
		text  strings.Builder
		probs []logprob
	)
	add := func(v any) bool {
		j, err := json.Marshal(v)
		if err != nil {
			return false
		}
		b.WriteString("data: ")
		b.Write(j)
		b.WriteString("\n\n")
		return true
	}
	deltas := func(s, segmentID string) bool {
		for _, w := range word.FindAllString(s, -1) {
			if text.Len() == 0 {
				w = strings.TrimLeft(w, " \t\r\n")
			}
			ev := deltaEvent{Type: "transcript.text.delta", Delta: w, SegmentID: segmentID}
			if withLogprobs {
				ev.Logprobs = []logprob{tokenLogprob(w)}
				probs = append(probs, ev.Logprobs...)
			}
			text.WriteString(w)
			if !add(ev) {
				return false
			}
		}
		return true
	}
	ok := true
	if a.Model == diarize {
		// Each segment's words, then, for diarized_json, the segment.
		for i, s := range t.Segments {
			id := fmt.Sprintf("seg_%03d", i+1)
			ok = ok && deltas(" "+strings.TrimSpace(s.Text), id)
			if a.ResponseFormat == "diarized_json" {
				ok = ok && add(diarizedSegment{
					Type: "transcript.text.segment", ID: id, Start: s.Start, End: s.End,
					Text: strings.TrimSpace(s.Text), Speaker: speaker(s, i),
				})
			}
		}
	} else {
		ok = deltas(t.Text, "")
	}
	ok = ok && add(doneEvent{Type: "transcript.text.done", Text: text.String(), Logprobs: probs, Usage: usage(a, t)})
	if !ok { // only for NaN or infinite times from a Transcriber
		return errorResult(errServer)
	}
	return result{http.StatusOK, eventStream, b.Bytes(), false}
}

// speaker returns the speaker of segment i, as diarized_json names it.
func speaker(s Segment, i int) string {
	if s.Speaker != "" {
		return s.Speaker
	}
	return []string{"A", "B"}[i%2]
}

// tokenLogprob returns a made-up log probability of one token, as the
// logprobs of a json answer have them.
func tokenLogprob(tok string) logprob {
	b := make([]int, len(tok))
	for i := range len(tok) {
		b[i] = int(tok[i])
	}
	return logprob{Token: tok, Logprob: -float64(hash32(tok)%5000) / 10000, Bytes: b}
}

// writeEvents sends res, an event stream, event by event: each flushed
// on its own, Config.StreamDelay after the one before (the first one
// StreamDelay after the headers). It records the request as answered 200
// before the last event, or as dropped when the stream ends early: when
// the client goes away, or, with truncate, after half the events, when
// the connection is closed as a FaultTruncatedBody closes it.
func (h *Handler) writeEvents(w http.ResponseWriter, r *http.Request, res result, arrival time.Time, truncate bool) {
	var events [][]byte
	for ev := range bytes.SplitAfterSeq(res.body, []byte("\n\n")) {
		if len(ev) > 0 {
			events = append(events, ev)
		}
	}
	last := len(events) - 1
	if truncate {
		events = events[:len(events)/2]
	}
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", res.contentType)
	hdr.Set("Cache-Control", "no-cache")
	w.WriteHeader(res.status)
	flush()
	recorded := false
	for i, ev := range events {
		if h.cfg.StreamDelay > 0 {
			sleep(r.Context(), h.cfg.StreamDelay)
		}
		if r.Context().Err() != nil {
			break
		}
		if i == last {
			h.record(res.status, arrival, res.admitted)
			recorded = true
		}
		if _, err := w.Write(ev); err != nil {
			break
		}
		flush()
	}
	if !recorded {
		h.record(0, arrival, res.admitted)
	}
	if truncate {
		panic(http.ErrAbortHandler)
	}
}
