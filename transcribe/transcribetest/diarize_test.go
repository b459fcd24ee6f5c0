package transcribetest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/steno-go/steno/internal/audio"
	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

// turn is a stretch of a conversation: speaker (a voice, see tt.Voice)
// says a word from start to end, in seconds.
type turn struct {
	speaker    int
	start, end float64
}

// conversation returns a 16 kHz WAV of seconds of audio in which each
// turn is a 500 Hz "word" carrying its speaker's voice, over quiet noise.
func conversation(seconds float64, turns []turn) []byte {
	const rate = 16000
	var b bytes.Buffer
	_ = audio.SynthWAV(&b, rate, int(seconds*rate), func(i int) float64 {
		t := float64(i) / rate
		v := 0.005 * math.Sin(float64(i)*1.7+math.Sin(float64(i)*0.31)*40)
		for _, tu := range turns {
			if t >= tu.start && t < tu.end {
				v += 0.4*math.Sin(2*math.Pi*500*t) + 0.15*math.Sin(2*math.Pi*tt.Voice(tu.speaker)*t)
			}
		}
		return v
	})
	return b.Bytes()
}

// clip returns seconds [from, to) of a 16 kHz 16-bit mono WAV as a WAV
// data URL.
func clip(wav []byte, from, to float64) string {
	const rate = 16000
	data := wav[44+2*int(from*rate) : 44+2*int(to*rate)]
	var b bytes.Buffer
	_ = audio.WriteWAVHeader(&b, rate, 1, 16, int64(len(data)))
	b.Write(data)
	return "data:audio/wav;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// The diarizer names speakers by their voices: "A", "B", … in the order
// heard, each the same wherever it speaks; a speaker whose voice is in a
// known_speaker_references clip gets its known_speaker_names name, and
// the letters skip the names given. Audio without voices keeps the
// default turns.
func TestDiarizerKnowsVoices(t *testing.T) {
	turns := []turn{{2, 1, 4}, {5, 5, 8}, {2, 9, 12}, {0, 13, 16}, {5, 17, 19}}
	wav := conversation(20, turns)
	h := tt.NewHandler(tt.Config{Transcriber: func(ctx context.Context, a *tt.Audio) (*tt.Transcript, error) {
		tr := &tt.Transcript{Duration: 20}
		for _, tu := range turns {
			tr.Segments = append(tr.Segments, tt.Segment{Start: tu.start, End: tu.end, Text: "word."})
		}
		return tr, nil
	}})
	c := memClient(h)
	speakers := func(fields ...string) string {
		t.Helper()
		fields = append([]string{"model", "gpt-4o-transcribe-diarize", "response_format", "diarized_json"}, fields...)
		resp, b := do(t, c, upload{key: key, filename: "talk.wav", file: wav, fields: fields}.request(t))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		var v struct{ Segments []struct{ Speaker string } }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, seg := range v.Segments {
			s = append(s, seg.Speaker)
		}
		return strings.Join(s, " ")
	}
	if got := speakers(); got != "A B A C B" {
		t.Errorf("no references: %s", got)
	}
	// A clip of the second speaker (the voice at 5–8 s), and one of the
	// fourth (whose voice this audio never carries).
	other := conversation(4, []turn{{7, 0.5, 3.5}})
	if got := speakers("known_speaker_names[]", "bob", "known_speaker_names[]", "eve",
		"known_speaker_references[]", clip(wav, 5, 8), "known_speaker_references[]", clip(other, 0, 4)); got != "A bob A B bob" {
		t.Errorf("with references: %s", got)
	}
	if got := speakers("known_speaker_names[]", "A", "known_speaker_references[]", clip(wav, 13, 16)); got != "B C B A C" {
		t.Errorf("a reference named A: %s", got)
	}

	// The rules: up to 4, data URLs of 2 to 10 s of audio, the diarize
	// model only, chunking_strategy over 30 s.
	refuse := func(what string, file []byte, wantParam string, fields ...string) {
		t.Helper()
		resp, b := do(t, c, upload{key: key, filename: "talk.wav", file: file, fields: fields}.request(t))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", what, resp.StatusCode, b)
		}
		if _, _, param, _ := apiError(t, b); param != wantParam {
			t.Errorf("%s: param %s: %s", what, param, b)
		}
	}
	dia := []string{"model", "gpt-4o-transcribe-diarize", "response_format", "diarized_json"}
	five := append([]string(nil), dia...)
	for range 5 {
		five = append(five, "known_speaker_names[]", "x")
	}
	refuse("five names", wav, "known_speaker_names", five...)
	refuse("a 1 s reference", wav, "known_speaker_references", append(dia, "known_speaker_names[]", "x", "known_speaker_references[]", clip(wav, 1, 2))...)
	refuse("an 11 s reference", wav, "known_speaker_references", append(dia, "known_speaker_references[]", clip(wav, 0, 11))...)
	refuse("not a data URL", wav, "known_speaker_references", append(dia, "known_speaker_references[]", "https://example.com/a.wav")...)
	refuse("whisper-1", wav, "known_speaker_names", "model", "whisper-1", "known_speaker_names[]", "x")
	long := conversation(31, nil)
	refuse("31 s without chunking", long, "chunking_strategy", dia...)
	if resp, b := do(t, c, upload{key: key, filename: "talk.wav", file: long, fields: append(dia, "chunking_strategy", "auto")}.request(t)); resp.StatusCode != 200 {
		t.Errorf("31 s with chunking: %d %s", resp.StatusCode, b)
	}
}
