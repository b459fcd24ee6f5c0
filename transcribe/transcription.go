package transcribe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// Transcription is a transcript in any response format. JSON formats fill
// the fields the server sent; SRT and VTT bodies are parsed into Segments
// (with Text the cues' text joined); Text is the body of the text format.
// Raw always holds the body exactly as received, so srt, vtt and text can
// be saved verbatim.
type Transcription struct {
	Text     string
	Language string  // as the server names it: "en", or "english" in verbose_json
	Duration float64 // seconds of audio, when the server says (or the file was cut)
	Task     string  // "transcribe" or "translate", verbose and diarized JSON only
	Segments []Segment
	Words    []Word
	Logprobs []Logprob
	Usage    *Usage

	Format    ResponseFormat // the format asked for
	Raw       []byte         // the response body
	RequestID string         // the x-request-id header
	Attempts  int            // HTTP requests made, retries included
	Pieces    []Piece        // how the audio was cut, when it did not fit in one request
}

// Segment is a stretch of transcript with its time span. verbose_json fills
// the decoding statistics; diarized_json the speaker; SRT and VTT only the
// times and text.
type Segment struct {
	ID               int     `json:"id"`
	Seek             int     `json:"seek"`
	Start            float64 `json:"start"` // seconds
	End              float64 `json:"end"`   // seconds
	Text             string  `json:"text"`
	Tokens           []int   `json:"tokens,omitempty"`
	Temperature      float64 `json:"temperature"`
	AvgLogprob       float64 `json:"avg_logprob"`
	CompressionRatio float64 `json:"compression_ratio"`
	NoSpeechProb     float64 `json:"no_speech_prob"`
	// Speaker and SegmentID come from diarized_json, whose segment ids are
	// strings ("seg_001"); ID is then the segment's position.
	Speaker   string `json:"speaker,omitempty"`
	SegmentID string `json:"segment_id,omitempty"`
}

// Word is one word with its time span (verbose_json with word granularity).
type Word struct {
	Word  string  `json:"word"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// Logprob is the log probability of one token (include "logprobs").
type Logprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes,omitempty"`
}

// Usage is what the request was billed for: audio seconds (Type
// "duration") or tokens (Type "tokens").
type Usage struct {
	Type              string             `json:"type"`
	Seconds           float64            `json:"seconds,omitempty"`
	InputTokens       int                `json:"input_tokens,omitempty"`
	InputTokenDetails *InputTokenDetails `json:"input_token_details,omitempty"`
	OutputTokens      int                `json:"output_tokens,omitempty"`
	TotalTokens       int                `json:"total_tokens,omitempty"`
}

// InputTokenDetails splits Usage.InputTokens.
type InputTokenDetails struct {
	TextTokens  int `json:"text_tokens"`
	AudioTokens int `json:"audio_tokens"`
}

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

// parseCues reads the cues of an SRT or WebVTT document: blocks separated
// by blank lines, each with a "start --> end" line followed by text. Cue
// numbers, the WEBVTT header, NOTE and STYLE blocks are skipped.
func parseCues(doc string) ([]Segment, error) {
	doc = strings.ReplaceAll(strings.TrimPrefix(doc, "\ufeff"), "\r\n", "\n")
	var segs []Segment
	for block := range strings.SplitSeq(doc, "\n\n") {
		lines := strings.Split(strings.Trim(block, "\n"), "\n")
		if first := lines[0]; strings.HasPrefix(first, "NOTE") || strings.HasPrefix(first, "STYLE") || strings.HasPrefix(first, "REGION") {
			continue
		}
		for i, line := range lines {
			from, to, ok := strings.Cut(line, "-->")
			if !ok {
				continue
			}
			start, err1 := parseTimestamp(from)
			end, err2 := parseTimestamp(strings.Fields(to + " x")[0]) // VTT settings may follow
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad cue timing %q", line)
			}
			segs = append(segs, Segment{
				ID: len(segs), Start: start, End: end,
				Text: strings.TrimSpace(strings.Join(lines[i+1:], "\n")),
			})
			break
		}
	}
	return segs, nil
}

// parseTimestamp reads "HH:MM:SS,mmm" (SRT) or "[HH:]MM:SS.mmm" (VTT).
func parseTimestamp(s string) (float64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", ".")
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("bad timestamp %q", s)
	}
	var total float64
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("bad timestamp %q", s)
		}
		total = total*60 + v
	}
	return total, nil
}
