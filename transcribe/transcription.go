package transcribe

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
	Pieces    []Piece        // how the audio was cut, when it did not fit in one request (or silence was left out of it: SplitOptions.SkipSilence)
	// Missing lists the stretches of the audio the transcript lacks: the
	// pieces of a cut file that failed after their retries, when
	// SplitOptions.AllowPartial accepted the others' transcripts. Empty
	// for a whole transcript.
	Missing []TimeRange
	// SkippedSeconds is the audio, in seconds, that was not sent because
	// it was silence (SplitOptions.SkipSilence): neither transcribed nor
	// billed. Timestamps are the original audio's all the same.
	SkippedSeconds float64
}

// TimeRange is a stretch of audio, in seconds from the start of the
// file.
type TimeRange struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
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
