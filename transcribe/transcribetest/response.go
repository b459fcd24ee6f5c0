package transcribetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strings"
)

// maxSeconds is the longest audio each model accepts; whisper-1 is limited
// by size only.
var maxSeconds = map[string]float64{
	"gpt-transcribe":                    1500,
	"gpt-4o-transcribe":                 1500,
	"gpt-4o-mini-transcribe":            1500,
	"gpt-4o-mini-transcribe-2025-12-15": 1500,
	diarize:                             1400,
}

// languageNames maps ISO-639-1 codes to the names verbose_json reports.
var languageNames = map[string]string{
	"ar": "arabic", "cs": "czech", "da": "danish", "de": "german", "el": "greek",
	"en": "english", "es": "spanish", "fi": "finnish", "fr": "french", "he": "hebrew",
	"hi": "hindi", "hu": "hungarian", "id": "indonesian", "it": "italian", "ja": "japanese",
	"ko": "korean", "nl": "dutch", "no": "norwegian", "pl": "polish", "pt": "portuguese",
	"ro": "romanian", "ru": "russian", "sv": "swedish", "th": "thai", "tr": "turkish",
	"uk": "ukrainian", "vi": "vietnamese", "zh": "chinese",
}

// transcribeAndRender runs the Transcriber and renders its transcript;
// a diarized one with its speakers named (see nameSpeakers), known the
// voices of the known speakers.
func (h *Handler) transcribeAndRender(ctx context.Context, a *Audio, known map[int]string) result {
	t, err := h.transcribe(ctx, a)
	var e *Error
	switch {
	case errors.As(err, &e):
		return errorResult(e)
	case err != nil || t == nil:
		return errorResult(errServer)
	}
	if limit := maxSeconds[a.Model]; limit > 0 && t.Duration > limit {
		return errorResult(badRequest("file", "invalid_value",
			"audio duration %.2f seconds is longer than %g seconds which is the maximum for this model", t.Duration, limit))
	}
	if a.ResponseFormat == "diarized_json" {
		t = nameSpeakers(ctx, a, t, known)
	}
	if streams(a) {
		return streamResult(a, normalize(a, t))
	}
	return render(a, normalize(a, t))
}

// normalize returns a copy of t with its defaults filled in: language, text
// and at least one segment when there is text.
func normalize(a *Audio, t *Transcript) *Transcript {
	n := *t
	n.Language = cmp.Or(n.Language, a.Language, "en")
	if a.Task == "translate" {
		n.Language = "en"
	}
	if n.Text == "" {
		texts := make([]string, len(n.Segments))
		for i, s := range n.Segments {
			texts[i] = strings.TrimSpace(s.Text)
		}
		n.Text = strings.Join(texts, " ")
	}
	if len(n.Segments) == 0 && n.Text != "" {
		n.Segments = []Segment{{Start: 0, End: n.Duration, Text: n.Text}}
	}
	return &n
}

// JSON shapes of the responses, fields in OpenAI's order.
type (
	durationUsage struct {
		Type    string  `json:"type"`
		Seconds float64 `json:"seconds"`
	}
	tokenUsage struct {
		Type              string `json:"type"`
		InputTokens       int    `json:"input_tokens"`
		InputTokenDetails struct {
			TextTokens  int `json:"text_tokens"`
			AudioTokens int `json:"audio_tokens"`
		} `json:"input_token_details"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	}
	logprob struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
	}
	segmentJSON struct {
		ID               int     `json:"id"`
		Seek             int     `json:"seek"`
		Start            float64 `json:"start"`
		End              float64 `json:"end"`
		Text             string  `json:"text"`
		Tokens           []int   `json:"tokens"`
		Temperature      float64 `json:"temperature"`
		AvgLogprob       float64 `json:"avg_logprob"`
		CompressionRatio float64 `json:"compression_ratio"`
		NoSpeechProb     float64 `json:"no_speech_prob"`
	}
	wordJSON struct {
		Word  string  `json:"word"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
	}
	diarizedSegment struct {
		Type    string  `json:"type"`
		ID      string  `json:"id"`
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Text    string  `json:"text"`
		Speaker string  `json:"speaker"`
	}
)

// render encodes t in a's response format.
func render(a *Audio, t *Transcript) result {
	switch a.ResponseFormat {
	case "text":
		return result{http.StatusOK, "text/plain; charset=utf-8", []byte(t.Text + "\n"), false}
	case "srt":
		return result{http.StatusOK, "application/x-subrip; charset=utf-8", subtitles(t.Segments, false), false}
	case "vtt":
		return result{http.StatusOK, "text/vtt; charset=utf-8", subtitles(t.Segments, true), false}
	case "verbose_json":
		v := struct {
			Task     string        `json:"task"`
			Language string        `json:"language"`
			Duration float64       `json:"duration"`
			Text     string        `json:"text"`
			Segments []segmentJSON `json:"segments,omitzero"`
			Words    []wordJSON    `json:"words,omitzero"`
			Usage    any           `json:"usage,omitempty"`
		}{Task: a.Task, Language: cmp.Or(languageNames[t.Language], t.Language), Duration: t.Duration, Text: t.Text, Usage: usage(a, t)}
		g := a.TimestampGranularities
		if len(g) == 0 || slices.Contains(g, "segment") {
			v.Segments = verboseSegments(t.Segments, a.Temperature)
		}
		if slices.Contains(g, "word") {
			v.Words = timedWords(t.Segments)
		}
		return jsonResult(v)
	case "diarized_json":
		v := struct {
			Task     string            `json:"task"`
			Duration float64           `json:"duration"`
			Text     string            `json:"text"`
			Segments []diarizedSegment `json:"segments"`
			Usage    any               `json:"usage,omitempty"`
		}{Task: a.Task, Duration: t.Duration, Text: t.Text, Segments: []diarizedSegment{}, Usage: usage(a, t)}
		for i, s := range t.Segments {
			v.Segments = append(v.Segments, diarizedSegment{
				Type: "transcript.text.segment", ID: fmt.Sprintf("seg_%03d", i+1),
				Start: s.Start, End: s.End, Text: strings.TrimSpace(s.Text),
				Speaker: cmp.Or(s.Speaker, []string{"A", "B"}[i%2]),
			})
		}
		return jsonResult(v)
	}
	v := struct {
		Text     string    `json:"text"`
		Logprobs []logprob `json:"logprobs,omitzero"`
		Usage    any       `json:"usage,omitempty"`
	}{Text: t.Text, Usage: usage(a, t)}
	if slices.Contains(a.Include, "logprobs") {
		v.Logprobs = logprobs(t.Text)
	}
	return jsonResult(v)
}

func jsonResult(v any) result {
	b, err := json.Marshal(v)
	if err != nil { // only for NaN or infinite times from a Transcriber
		return errorResult(errServer)
	}
	return result{http.StatusOK, "application/json", append(b, '\n'), false}
}

// usage returns the usage object: by duration (rounded up to whole seconds)
// for whisper-1 and the diarize model (as the spec's examples show), by
// tokens for the other gpt-4o models, none for translations (whose schema has
// none) nor for models that are not OpenAI's (Groq's, a self-hosted
// server's). Token counts are estimates: 10 audio tokens per second, a text
// token per 4 bytes of prompt and of transcript.
func usage(a *Audio, t *Transcript) any {
	switch {
	case a.Task == "translate", models[a.Model] == nil:
		return nil
	case a.Model == "whisper-1" || a.Model == diarize:
		return durationUsage{"duration", math.Ceil(t.Duration)}
	}
	u := tokenUsage{Type: "tokens"}
	u.InputTokenDetails.TextTokens = (len(a.Prompt) + 3) / 4
	u.InputTokenDetails.AudioTokens = int(math.Ceil(t.Duration * 10))
	u.InputTokens = u.InputTokenDetails.TextTokens + u.InputTokenDetails.AudioTokens
	u.OutputTokens = (len(t.Text) + 3) / 4
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// hash32 is a deterministic hash for fake token ids and scores.
func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// logprobs returns a token per word of text, with made-up log probabilities.
func logprobs(text string) []logprob {
	var out []logprob
	for i, w := range strings.Fields(text) {
		if i > 0 {
			w = " " + w
		}
		b := make([]int, len(w))
		for j := range len(w) {
			b[j] = int(w[j])
		}
		out = append(out, logprob{Token: w, Logprob: -float64(hash32(w)%5000) / 10000, Bytes: b})
	}
	return out
}

// verboseSegments renders segments as Whisper does: text with a leading
// space, seek at the start of the 30-second window, token ids framed by
// timestamp tokens relative to the window.
func verboseSegments(segs []Segment, temperature float64) []segmentJSON {
	const firstTimestamp = 50364 // <|0.00|>; each next one is 20 ms later
	out := make([]segmentJSON, len(segs))
	for i, s := range segs {
		text := " " + strings.TrimSpace(s.Text)
		window := math.Floor(s.Start/30) * 30
		tokens := []int{firstTimestamp + int(math.Round((s.Start-window)*50))}
		for _, w := range strings.Fields(text) {
			tokens = append(tokens, 220+int(hash32(w)%50000))
		}
		tokens = append(tokens, firstTimestamp+min(1500, int(math.Round((s.End-window)*50))))
		h := hash32(text)
		out[i] = segmentJSON{
			ID: i, Seek: int(window * 100), Start: s.Start, End: s.End, Text: text, Tokens: tokens,
			Temperature:      temperature,
			AvgLogprob:       -float64(1500+h%2500) / 10000,
			CompressionRatio: float64(11000+h/2500%4000) / 10000,
			NoSpeechProb:     float64(h/10000000%100) / 10000,
		}
	}
	return out
}

// timedWords spreads each segment's words evenly over its time, without
// punctuation, as word timestamps are.
func timedWords(segs []Segment) []wordJSON {
	out := []wordJSON{}
	for _, s := range segs {
		ws := strings.Fields(s.Text)
		step := (s.End - s.Start) / float64(max(1, len(ws)))
		for i, w := range ws {
			out = append(out, wordJSON{
				Word:  strings.Trim(w, ".,;:!?\"'"),
				Start: round2(s.Start + float64(i)*step),
				End:   round2(s.Start + float64(i+1)*step),
			})
		}
	}
	return out
}

// subtitles renders segments as SRT, or as WebVTT when vtt is set.
func subtitles(segs []Segment, vtt bool) []byte {
	var b bytes.Buffer
	sep := ','
	if vtt {
		b.WriteString("WEBVTT\n\n")
		sep = '.'
	}
	stamp := func(sec float64) string {
		ms := int64(math.Round(sec * 1000))
		return fmt.Sprintf("%02d:%02d:%02d%c%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
	}
	for i, s := range segs {
		if !vtt {
			fmt.Fprintf(&b, "%d\n", i+1)
		}
		fmt.Fprintf(&b, "%s --> %s\n%s\n\n", stamp(s.Start), stamp(s.End), strings.TrimSpace(s.Text))
	}
	return b.Bytes()
}
