package transcribe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// number decodes a JSON number, or a string holding one (vLLM sends
// verbose_json's duration as a string).
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	*n = number(f)
	return err
}

// wireSegment is a segment as verbose_json (integer id) or diarized_json
// (string id) sends it.
type wireSegment struct {
	Segment
	ID    json.RawMessage `json:"id"`
	Start number          `json:"start"`
	End   number          `json:"end"`
}

// decode fills a Transcription from a 2xx response body.
func decode(body []byte, contentType string, format ResponseFormat) (*Transcription, error) {
	t := &Transcription{Format: format, Raw: body}
	media, _, _ := mime.ParseMediaType(contentType)
	isJSON := media == "application/json" || format == JSON || format == VerboseJSON || format == DiarizedJSON
	if media == "text/plain" || media == "text/html" { // servers answer text to a JSON request only on error pages
		isJSON = isJSON && json.Valid(bytes.TrimSpace(body))
	}
	switch {
	case isJSON:
		var w struct {
			Text     string        `json:"text"`
			Language string        `json:"language"`
			Duration number        `json:"duration"`
			Task     string        `json:"task"`
			Segments []wireSegment `json:"segments"`
			Words    []Word        `json:"words"`
			Logprobs []Logprob     `json:"logprobs"`
			Usage    *Usage        `json:"usage"`
		}
		if err := json.Unmarshal(body, &w); err != nil {
			return nil, fmt.Errorf("transcribe: decoding %s response: %w", format, err)
		}
		t.Text, t.Language, t.Duration, t.Task = w.Text, w.Language, float64(w.Duration), w.Task
		t.Words, t.Logprobs, t.Usage = w.Words, w.Logprobs, w.Usage
		for i, s := range w.Segments {
			seg := s.Segment
			seg.Start, seg.End = float64(s.Start), float64(s.End)
			seg.ID = i
			if err := json.Unmarshal(s.ID, &seg.ID); err != nil {
				json.Unmarshal(s.ID, &seg.SegmentID)
			}
			t.Segments = append(t.Segments, seg)
		}
	case format == SRT || format == VTT:
		segs, err := parseCues(string(body))
		if err != nil {
			return nil, fmt.Errorf("transcribe: decoding %s response: %w", format, err)
		}
		t.Segments = segs
		texts := make([]string, len(segs))
		for i, s := range segs {
			texts[i] = s.Text
		}
		t.Text = strings.Join(texts, " ")
	default:
		t.Text = strings.TrimSpace(string(body))
	}
	return t, nil
}
