package transcribetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"math"
	"strings"

	"github.com/steno-go/steno/internal/audio"
)

// The fake's diarizer tells speakers apart by a tone each one's audio
// carries: speaker i's stretches of speech hold a sine at Voice(i) hertz,
// alone or under other sounds (test audio adds it to its "words"). For a
// diarized_json answer, each segment the [TranscribeFunc] left without a
// Speaker gets the speaker whose voice is loudest in the segment's audio,
// labelled "A", "B", … in the order they are first heard in the request
// (skipping the names the request gives); a speaker whose voice is that
// of one of the request's known_speaker_references is labelled with the
// matching known_speaker_names instead, as OpenAI's diarize model does.
// Audio in which no voice is heard (a plain tone, DefaultTranscriber's
// demo clips) keeps the default: speakers "A" and "B" take turns.

// Voices is the number of speakers the fake's diarizer tells apart.
const Voices = 8

// Voice returns the frequency, in hertz, of the tone by which the fake's
// diarizer knows speaker i, for i from 0 to Voices-1 (1,500 Hz to
// 3,250 Hz, 250 Hz apart: audio must be sampled at 8 kHz or more). Audio
// in which it makes up a few percent of the energy of a stretch is that
// speaker's.
func Voice(i int) float64 { return 1500 + 250*float64(i) }

// Limits on the speakers a diarized request may name, as the API's
// (up to 4 known speakers, references of 2 to 10 seconds).
const (
	maxKnownSpeakers = 4
	minReference     = 2.0  // seconds
	maxReference     = 10.0 // seconds
	// maxReferenceBytes is the longest reference field the fake reads:
	// 10 s of 48 kHz stereo 24-bit WAV, in base64, fits.
	maxReferenceBytes = 4 << 20
	// voiceBlock is the length, in seconds, of the blocks in which voices
	// are measured; voiceShare the share of a stretch's energy a voice
	// needs to be heard.
	voiceBlock = 0.05
	voiceShare = 0.02
)

// minChunked is the longest audio the diarize model takes without a
// chunking_strategy, in seconds.
const minChunked = 30

// speakerFields are the names of the known speaker fields.
const (
	namesField = "known_speaker_names[]"
	refsField  = "known_speaker_references[]"
)

// checkDiarize applies the diarize model's rules to a's fields, after its
// file: a chunking_strategy over 30 s of audio, at most 4 known speakers,
// references that are data URLs of 2 to 10 seconds of audio. It returns
// the names given to the voices the references carry.
func checkDiarize(ctx context.Context, a *Audio) (map[int]string, *Error) {
	names := append(a.Fields[namesField], a.Fields["known_speaker_names"]...)
	refs := append(a.Fields[refsField], a.Fields["known_speaker_references"]...)
	for _, f := range []struct {
		name string
		v    []string
	}{{"known_speaker_names", names}, {"known_speaker_references", refs}} {
		if len(f.v) > maxKnownSpeakers {
			return nil, badRequest(f.name, "array_above_max_length",
				"Invalid '%s': array too long. Expected an array with maximum length %d, but got an array with length %d instead.", f.name, maxKnownSpeakers, len(f.v))
		}
	}
	if a.Model != diarize {
		if len(names)+len(refs) > 0 {
			return nil, badRequest("known_speaker_names", "unsupported_parameter", "known_speaker_names and known_speaker_references are only supported with model '%s'.", diarize)
		}
		return nil, nil
	}
	if _, chunked := a.Fields["chunking_strategy"]; !chunked && len(a.Fields["chunking_strategy[type]"]) == 0 {
		if seconds, ok := fileSeconds(a); ok && seconds > minChunked {
			return nil, badRequest("chunking_strategy", "missing_required_parameter",
				"chunking_strategy is required for model '%s' when the audio is longer than %d seconds.", diarize, minChunked)
		}
	}
	known := map[int]string{}
	for i, ref := range refs {
		b, ok := dataURL(ref)
		if !ok {
			return nil, badRequest("known_speaker_references", "invalid_value", "known_speaker_references[%d] is not a base64 data URL of audio.", i)
		}
		info, err := audio.Probe(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, badRequest("known_speaker_references", "invalid_value", "known_speaker_references[%d] is not audio in a supported format.", i)
		}
		if d := info.Duration.Seconds(); d < minReference || d > maxReference {
			return nil, badRequest("known_speaker_references", "invalid_value",
				"known_speaker_references[%d] lasts %.2f seconds; references must be between %g and %g seconds.", i, d, minReference, maxReference)
		}
		blocks, _, err := voices(ctx, bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, badRequest("known_speaker_references", "invalid_value", "known_speaker_references[%d] could not be decoded.", i)
		}
		if v, ok := loudestVoice(blocks); ok && i < len(names) {
			if _, dup := known[v]; !dup {
				known[v] = names[i]
			}
		}
	}
	return known, nil
}

// fileSeconds is the duration of a's audio: exact from its header where
// it has one, else as DefaultTranscriber measures it.
func fileSeconds(a *Audio) (float64, bool) {
	if info, err := audio.Probe(a.File, a.Size); err == nil && info.Exact && info.Duration > 0 {
		return info.Duration.Seconds(), true
	}
	return audioSeconds(a)
}

// dataURL returns the bytes of a base64 data URL
// ("data:audio/wav;base64,UklGR…").
func dataURL(s string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(s, "data:")
	if !ok {
		return nil, false
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok || !strings.HasSuffix(meta, ";base64") {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(data)
	return b, err == nil && len(b) > 0
}

// voiceLevels is the energy of one block of audio, in all and at each
// voice.
type voiceLevels struct {
	total float64
	voice [Voices]float64
}

// voices measures the audio r (size bytes) in blocks of voiceBlock, and
// returns them and the block length in seconds.
func voices(ctx context.Context, r io.ReaderAt, size int64) ([]voiceLevels, float64, error) {
	d, err := audio.NewDecoder(ctx, r, size)
	if err != nil {
		return nil, 0, err
	}
	defer d.Close()
	rate := d.SampleRate()
	n := max(1, int(voiceBlock*float64(rate)))
	var coef [Voices]float64
	for v := range coef {
		coef[v] = 2 * math.Cos(2*math.Pi*Voice(v)/float64(rate))
	}
	var (
		out    []voiceLevels
		cur    voiceLevels
		s1, s2 [Voices]float64
		k      int
	)
	buf := make([]float32, 8192)
	for {
		m, err := d.Read(buf)
		for _, x := range buf[:m] {
			f := float64(x)
			cur.total += f * f
			for v := range coef {
				s1[v], s2[v] = f+coef[v]*s1[v]-s2[v], s1[v]
			}
			if k++; k == n {
				for v := range coef {
					// |X|² · 2/N: the energy of a sine at the voice's
					// frequency in the block.
					cur.voice[v] = (s1[v]*s1[v] + s2[v]*s2[v] - coef[v]*s1[v]*s2[v]) * 2 / float64(n)
				}
				out = append(out, cur)
				cur, s1, s2, k = voiceLevels{}, [Voices]float64{}, [Voices]float64{}, 0
			}
		}
		if err == io.EOF {
			return out, float64(n) / float64(rate), nil
		}
		if err != nil {
			return nil, 0, err
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
	}
}

// loudestVoice returns the voice loudest in blocks, if one is heard.
func loudestVoice(blocks []voiceLevels) (int, bool) {
	var sum voiceLevels
	for _, b := range blocks {
		sum.total += b.total
		for v := range b.voice {
			sum.voice[v] += b.voice[v]
		}
	}
	best := 0
	for v := range sum.voice {
		if sum.voice[v] > sum.voice[best] {
			best = v
		}
	}
	return best, sum.total > 0 && sum.voice[best] >= voiceShare*sum.total
}

// nameSpeakers returns t with the speakers of its segments named from the
// voices of a's audio, known ones by the names the request gives them
// (see the comment at the top of this file); t itself when no voice is
// heard or the audio cannot be decoded.
func nameSpeakers(ctx context.Context, a *Audio, t *Transcript, known map[int]string) *Transcript {
	blocks, step, err := voices(ctx, a.File, a.Size)
	if err != nil || len(blocks) == 0 {
		return t
	}
	heard := make([]int, len(t.Segments)) // voice of each segment, -1 for none
	anyHeard := false
	for i, s := range t.Segments {
		heard[i] = -1
		if s.Speaker != "" {
			continue
		}
		lo := min(max(0, int(s.Start/step)), len(blocks)-1)
		hi := min(max(lo+1, int(math.Ceil(s.End/step))), len(blocks))
		if v, ok := loudestVoice(blocks[lo:hi]); ok {
			heard[i], anyHeard = v, true
		}
	}
	if !anyHeard {
		return t
	}
	taken := map[string]bool{}
	for _, n := range append(a.Fields[namesField], a.Fields["known_speaker_names"]...) {
		taken[n] = true
	}
	label := map[int]string{}
	next := 0
	name := func(v int) string {
		if n, ok := known[v]; ok {
			return n
		}
		if n, ok := label[v]; ok {
			return n
		}
		for ; ; next++ {
			if n := letters(next); !taken[n] {
				taken[n], label[v] = true, n
				return n
			}
		}
	}
	out := *t
	out.Segments = append([]Segment(nil), t.Segments...)
	first := ""
	for i := range out.Segments {
		if heard[i] >= 0 {
			out.Segments[i].Speaker = name(heard[i])
			if first == "" {
				first = out.Segments[i].Speaker
			}
		}
	}
	// A segment where no voice is heard is the speaker's before it, or,
	// at the start, the first one heard.
	prev := first
	for i, s := range out.Segments {
		if s.Speaker == "" {
			out.Segments[i].Speaker = prev
		}
		prev = out.Segments[i].Speaker
	}
	return &out
}

// letters returns the i-th speaker label: "A" to "Z", then "AA", "AB", ….
func letters(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return letters(i/26-1) + letters(i%26)
}
