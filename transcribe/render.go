package transcribe

import (
	"errors"
	"fmt"
	"strings"
)

// Formats rendered locally. A server that lacks text, srt or vtt (Groq,
// vLLM, LocalAI; see provider.go) is asked for json or verbose_json
// instead, and the transcript is rendered here in the format asked for,
// in the layout OpenAI returns it:
//
//   - text: the transcript's text, trimmed, and a newline;
//   - srt: cues numbered from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", the
//     segment's text trimmed, a blank line after each cue;
//   - vtt: "WEBVTT", a blank line, then the cues without numbers and with
//     "HH:MM:SS.mmm" times.
//
// The cues are those of reassemble.go (renderSRT, renderVTT), so that a
// transcript cut into pieces and one sent whole look alike. The result is
// the Transcription that decoding the rendered document gives (Raw the
// document, srt and vtt cues as Segments), with the Usage and Duration of
// the answer it came from, which say what was paid for.

// errNoSegments is why a transcript with text but neither segments nor a
// duration cannot be rendered as cues.
var errNoSegments = errors.New("no segment timestamps to make cues from")

// renderLocal renders t, decoded from a JSON answer to a request for
// t.Format (text, srt or vtt), in that format. invalid wraps what makes
// the answer unusable into an *InvalidResponseError.
func renderLocal(t *Transcription, invalid func(error) error) (*Transcription, error) {
	var out *Transcription
	switch t.Format {
	case SRT, VTT:
		segs := t.Segments
		if len(segs) == 0 && strings.TrimSpace(t.Text) != "" {
			// A json answer has no segments: one cue of the whole audio,
			// as OpenAI makes of a transcript with a single segment.
			if !(t.Duration > 0) {
				return nil, invalid(fmt.Errorf("%s asked for: %w", t.Format, errNoSegments))
			}
			segs = []Segment{{Start: 0, End: t.Duration, Text: t.Text}}
		}
		raw := renderSRT(segs)
		if t.Format == VTT {
			raw = renderVTT(segs)
		}
		var err error
		if out, err = decodeCues(raw, t.Format); err != nil {
			return nil, invalid(fmt.Errorf("rendering %s: %w", t.Format, err))
		}
	case Text:
		text := strings.TrimSpace(t.Text)
		out = &Transcription{Format: Text, Raw: []byte(text + "\n"), Text: text}
	default:
		return t, nil
	}
	out.Usage, out.Duration = t.Usage, t.Duration
	return out, nil
}
