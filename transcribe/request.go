package transcribe

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// ResponseFormat is the form of the transcript the server returns.
type ResponseFormat string

// The response formats of /v1/audio/transcriptions. whisper-1 supports all
// but DiarizedJSON; gpt-4o-transcribe and gpt-4o-mini-transcribe JSON and
// Text; gpt-4o-transcribe-diarize JSON, Text and DiarizedJSON. Every format
// decodes into a Transcription.
const (
	JSON         ResponseFormat = "json"
	Text         ResponseFormat = "text"
	SRT          ResponseFormat = "srt"
	VTT          ResponseFormat = "vtt"
	VerboseJSON  ResponseFormat = "verbose_json"
	DiarizedJSON ResponseFormat = "diarized_json"
)

// Granularity is a level of timestamps for verbose_json.
type Granularity string

// Timestamp granularities; both may be asked for. They need VerboseJSON.
const (
	GranularityWord    Granularity = "word"
	GranularitySegment Granularity = "segment"
)

// DefaultModel is the model used when Request.Model is empty, for OpenAI
// (other providers have their own: see Provider).
const DefaultModel = "whisper-1"

// Request holds the parameters of one transcription or translation. The
// zero Request asks whisper-1 for JSON. Fields left at their zero value are
// not sent, so the server's defaults apply.
type Request struct {
	// Model defaults to the provider's default model (DefaultModel for
	// OpenAI; an Azure client without a deployment takes it from here).
	Model string
	// Language is the ISO-639-1 code of the audio's language, e.g. "en".
	// Not for Translate.
	Language string
	// Prompt guides style or continues a previous piece; models read only
	// its last 224 tokens.
	Prompt string
	// ResponseFormat defaults to JSON.
	ResponseFormat ResponseFormat
	// Temperature is between 0 and 1; 0 (the default) lets the server
	// raise it as needed.
	Temperature float64
	// TimestampGranularities asks for word and/or segment timestamps; it
	// requires VerboseJSON. Not for Translate.
	TimestampGranularities []Granularity
	// Include asks for extra output, e.g. "logprobs" (JSON, gpt-4o
	// models). Not for Translate.
	Include []string
	// ChunkingStrategy controls how the server cuts the audio (gpt-4o
	// models); required by gpt-4o-transcribe-diarize for audio over 30 s.
	// Not for Translate.
	ChunkingStrategy *ChunkingStrategy
	// Languages and Keywords guide gpt-transcribe. Not for Translate.
	Languages []string
	Keywords  []string
	// KnownSpeakerNames and KnownSpeakerReferences (data URLs of 2–10 s
	// clips), up to 4 each, label speakers for the diarize model. Not for
	// Translate.
	KnownSpeakerNames      []string
	KnownSpeakerReferences []string
	// Stream asks for server-sent events. Transcribe, TranscribeFile and
	// Translate refuse it (ErrStreamNotSupported): TranscribeStream and
	// TranscribeFileStream stream, yielding events as they arrive.
	Stream bool
	// FileName is the name the file is sent under. The server tells formats
	// apart by its extension, so the client makes sure it has one that
	// matches the content, appending one when needed. It defaults to the
	// file's own name, or "audio" for a reader.
	FileName string
	// Extra holds further text fields for other providers, sent as given
	// after the standard ones.
	Extra map[string]string
}

// ChunkingStrategy is the chunking_strategy field: "auto", or the server's
// voice activity detection with explicit settings.
type ChunkingStrategy struct {
	// Auto lets the server choose; the other fields are then ignored.
	Auto bool
	// PrefixPaddingMs, SilenceDurationMs and Threshold tune server_vad;
	// zero values are not sent.
	PrefixPaddingMs   int
	SilenceDurationMs int
	Threshold         float64
}

// ErrStreamNotSupported is returned by the calls that answer with one
// Transcription for a Request with Stream set: TranscribeStream and
// TranscribeFileStream are the streaming calls.
var ErrStreamNotSupported = errors.New("transcribe: Request.Stream: use TranscribeStream or TranscribeFileStream")

// field is one text field of the form, in order.
type field struct{ name, value string }

// fields validates r for the given task and returns the form's text
// fields, with defaults applied.
func (r Request) fields(translate bool) ([]field, error) {
	if r.Stream {
		return nil, ErrStreamNotSupported
	}
	format := r.format()
	switch format {
	case JSON, Text, SRT, VTT, VerboseJSON, DiarizedJSON:
	default:
		return nil, fmt.Errorf("transcribe: unknown response format %q", format)
	}
	if r.Temperature < 0 || r.Temperature > 1 || r.Temperature != r.Temperature {
		return nil, fmt.Errorf("transcribe: temperature %v is outside [0, 1]", r.Temperature)
	}
	for _, g := range r.TimestampGranularities {
		if g != GranularityWord && g != GranularitySegment {
			return nil, fmt.Errorf("transcribe: unknown timestamp granularity %q", g)
		}
	}
	if len(r.TimestampGranularities) > 0 && format != VerboseJSON {
		return nil, fmt.Errorf("transcribe: timestamp granularities need response format %s, not %s", VerboseJSON, format)
	}
	if translate {
		if r.Language != "" || len(r.TimestampGranularities) > 0 || len(r.Include) > 0 || r.ChunkingStrategy != nil ||
			len(r.Languages) > 0 || len(r.Keywords) > 0 || len(r.KnownSpeakerNames) > 0 || len(r.KnownSpeakerReferences) > 0 {
			return nil, errors.New("transcribe: translations accept only model, prompt, response format and temperature")
		}
		if format == DiarizedJSON {
			return nil, fmt.Errorf("transcribe: translations cannot be %s", format)
		}
	}

	f := []field{{"model", r.model()}}
	add := func(name, value string) {
		if value != "" {
			f = append(f, field{name, value})
		}
	}
	addAll := func(name string, values []string) {
		for _, v := range values {
			f = append(f, field{name + "[]", v})
		}
	}
	add("language", r.Language)
	add("prompt", r.Prompt)
	if r.ResponseFormat != "" {
		add("response_format", string(format))
	}
	if r.Temperature != 0 {
		add("temperature", strconv.FormatFloat(r.Temperature, 'f', -1, 64))
	}
	for _, g := range r.TimestampGranularities {
		add("timestamp_granularities[]", string(g))
	}
	addAll("include", r.Include)
	if c := r.ChunkingStrategy; c != nil {
		if c.Auto {
			add("chunking_strategy", "auto")
		} else {
			add("chunking_strategy[type]", "server_vad")
			if c.PrefixPaddingMs != 0 {
				add("chunking_strategy[prefix_padding_ms]", strconv.Itoa(c.PrefixPaddingMs))
			}
			if c.SilenceDurationMs != 0 {
				add("chunking_strategy[silence_duration_ms]", strconv.Itoa(c.SilenceDurationMs))
			}
			if c.Threshold != 0 {
				add("chunking_strategy[threshold]", strconv.FormatFloat(c.Threshold, 'f', -1, 64))
			}
		}
	}
	addAll("languages", r.Languages)
	addAll("keywords", r.Keywords)
	addAll("known_speaker_names", r.KnownSpeakerNames)
	addAll("known_speaker_references", r.KnownSpeakerReferences)
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		f = append(f, field{k, r.Extra[k]})
	}
	return f, nil
}

func (r Request) model() string {
	if r.Model == "" {
		return DefaultModel
	}
	return r.Model
}

func (r Request) format() ResponseFormat {
	if r.ResponseFormat == "" {
		return JSON
	}
	return r.ResponseFormat
}
