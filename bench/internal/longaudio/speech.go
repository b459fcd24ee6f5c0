// Package longaudio is what the benchmarks of long audio share: speech-like
// audio of any length, written with memory independent of its length
// (WriteSpeech), the script of its pauses (Pauses), a transcriber for the
// fake API that hears its words sample-exactly (Hear, Transcriber), so that
// the transcript of a piece is the transcript of the same stretch of the
// whole, and the measurement of cut planning beside ffmpeg's silencedetect
// (MeasurePlans).
package longaudio

import (
	"bufio"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/steno-go/steno/internal/audio"
)

// Rate is the sample rate of the audio: 16 kHz, mono, 16-bit.
const Rate = 16000

// segment is a word or a pause of the script: samples [start, end).
type segment struct {
	start, end int
	word       bool
	pause      bool // a pause between sentences (not the gap between words)
	f0, f1     float64
	amp        float64
}

// script makes the segments of the audio, one after the other.
type script struct {
	rng  *rand.Rand
	seg  segment
	left int     // words left in the sentence
	base float64 // the sentence's pitch
}

func newScript(seed uint64) *script {
	return &script{rng: rand.New(rand.NewPCG(seed, 1)), seg: segment{pause: true}}
}

// secs returns a duration of between lo and hi seconds, in samples.
func (s *script) secs(lo, hi float64) int { return int((lo + (hi-lo)*s.rng.Float64()) * Rate) }

// next moves to the segment after the current one: after a pause a word
// (a new sentence after a sentence's pause), after a word a short gap or,
// at the end of its sentence, a pause.
func (s *script) next() {
	prev := s.seg
	s.seg = segment{start: prev.end}
	switch {
	case !prev.word && prev.pause:
		s.left = 3 + s.rng.IntN(10)
		s.base = 110 + 130*s.rng.Float64()
		fallthrough
	case !prev.word:
		s.left--
		f0 := s.base * (0.8 + 0.45*s.rng.Float64())
		s.seg.word, s.seg.f0, s.seg.f1 = true, f0, f0*(0.9+0.2*s.rng.Float64())
		s.seg.amp = 0.15 + 0.2*s.rng.Float64()
		s.seg.end = s.seg.start + s.secs(0.2, 0.5)
	case s.left > 0:
		s.seg.end = s.seg.start + s.secs(0.04, 0.15)
	default:
		s.seg.pause = true
		s.seg.end = s.seg.start + s.secs(0.6, 1.8)
	}
}

// noiseRMS is the level of the background noise: -40 dBFS. Uniform noise
// of that level peaks at -35 dBFS.
const noiseRMS = 0.01

// Speech returns the sample function of the audio of the script of seed:
// call it with i = 0, 1, 2, … in turn. The audio is "sentences" of 3 to 12
// "words" (tone bursts of 0.2 to 0.5 s with two harmonics and a pitch that
// varies from word to word and glides within one, 40 to 150 ms apart)
// separated by pauses of 0.6 to 1.8 s, over white noise at -40 dBFS (RMS;
// uniform, so that its peaks stay under -30 dBFS). The same seed gives the
// same audio.
func Speech(seed uint64) func(i int) float64 {
	s := newScript(seed)
	noise := rand.New(rand.NewPCG(seed, 2))
	const ramp = Rate / 50 // 20 ms fade in and out of a word
	var phase float64
	return func(i int) float64 {
		for i >= s.seg.end {
			s.next()
			phase = 0
		}
		v := noiseRMS * math.Sqrt(3) * (2*noise.Float64() - 1)
		if g := s.seg; g.word {
			k, n := i-g.start, g.end-g.start
			phase += 2 * math.Pi * (g.f0 + (g.f1-g.f0)*float64(k)/float64(n)) / Rate
			env := 1.0
			if e := min(k, n-1-k); e < ramp {
				env = 0.5 - 0.5*math.Cos(math.Pi*float64(e)/ramp)
			}
			v += g.amp * env * (math.Sin(phase) + 0.5*math.Sin(2*phase) + 0.25*math.Sin(3*phase)) / 1.75
		}
		return v
	}
}

// Pauses returns the pauses between sentences of the script of seed that
// start before end.
func Pauses(seed uint64, end time.Duration) [][2]time.Duration {
	var out [][2]time.Duration
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / Rate }
	for s := newScript(seed); at(s.seg.start) < end; s.next() {
		if s.seg.pause && s.seg.end > s.seg.start {
			out = append(out, [2]time.Duration{at(s.seg.start), at(s.seg.end)})
		}
	}
	return out
}

// WriteSpeech writes n samples of the audio of seed to a WAV file at path,
// streaming: its memory does not depend on n.
func WriteSpeech(path string, seed uint64, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = audio.SynthWAV(w, Rate, n, Speech(seed))
	return errors.Join(err, w.Flush(), f.Close())
}
