package audio

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var talkMinutes = flag.Float64("talk-minutes", 1, "length of the speech in TestPlanTalkLosesNoWord (the issue's figure is 60)")

// Levels of talk, in dBFS (RMS).
const (
	talkFloor   = -58 // the noise floor: white noise, in pauses and under all else
	talkClosure = -32 // quiet speech between words: consonant closures, weak syllables
	talkSpeech  = -9  // words, about (RMS of a word at full loudness)
)

// talk is speech-like audio as a recording of someone talking has it, with
// known words, closures and pauses: words (tone bursts with two harmonics,
// about talkSpeech) joined by consonant closures (a murmur at
// talkClosure, 40 to 150 ms, one in seven 300 to 450 ms), sentences of 3
// to 12 words apart by pauses at the noise floor (talkFloor) of 0.4 to
// 1.5 s, all over the noise. Judged by its own levels, a stretch of it
// without a pause has a floor of -32 dBFS, and its long closures pass for
// pauses.
type talk struct {
	rate             int
	n                int
	words, closures  [][2]int // [start, end) samples
	pauses           [][2]int
	amp, freq        []float64 // of each word
	closureAmp, nAmp float64
}

// talkWriter appends to a talk.
type talkWriter struct {
	t   *talk
	rng *rand.Rand
	pos int
}

func newTalkWriter(rate int, seed uint64) *talkWriter {
	t := &talk{rate: rate, closureAmp: math.Pow(10, talkClosure/20.0) * math.Sqrt2, nAmp: math.Pow(10, talkFloor/20.0) * math.Sqrt(3)}
	return &talkWriter{t: t, rng: rand.New(rand.NewPCG(seed, 3))}
}

func (w *talkWriter) at(sec float64) int { return int(sec * float64(w.t.rate)) }

// span appends a stretch of lo to hi seconds to *to.
func (w *talkWriter) span(to *[][2]int, lo, hi float64) {
	n := w.at(lo + (hi-lo)*w.rng.Float64())
	*to = append(*to, [2]int{w.pos, w.pos + n})
	w.pos += n
}

// sentence says 3 to 12 words joined by closures.
func (w *talkWriter) sentence() {
	for i := range 3 + w.rng.IntN(10) {
		if i > 0 {
			w.closure()
		}
		w.span(&w.t.words, 0.15, 0.5)
		w.t.amp = append(w.t.amp, 0.7+0.2*w.rng.Float64())
		w.t.freq = append(w.t.freq, 110+150*w.rng.Float64())
	}
}

// closure is the quiet speech between two words.
func (w *talkWriter) closure() {
	if w.rng.IntN(7) == 0 {
		w.span(&w.t.closures, 0.3, 0.45)
		return
	}
	w.span(&w.t.closures, 0.04, 0.15)
}

// pause is a real one, at the floor, of lo to hi seconds.
func (w *talkWriter) pause(lo, hi float64) { w.span(&w.t.pauses, lo, hi) }

// talkUntil says sentences until end seconds: apart by pauses, or if
// continuous, run on with a closure between them.
func (w *talkWriter) talkUntil(end float64, continuous bool) {
	for w.pos < w.at(end) {
		w.sentence()
		if continuous {
			w.closure()
		} else {
			w.pause(0.4, 1.5)
		}
	}
}

func (w *talkWriter) done() *talk {
	w.t.n = w.pos
	return w.t
}

// newTalk says paragraphs of 10 to 40 s for length, one in three
// continuous (no pause in it), apart by pauses.
func newTalk(rate int, length time.Duration, seed uint64) *talk {
	w := newTalkWriter(rate, seed)
	w.pause(0.5, 1)
	for end := length.Seconds(); float64(w.pos) < float64(w.at(end)); {
		until := min(float64(w.pos)/float64(rate)+10+30*w.rng.Float64(), end)
		w.talkUntil(until, w.rng.IntN(3) == 0)
		w.pause(0.6, 1.5)
	}
	return w.done()
}

// find returns the index of the span of ss holding sample i, or -1.
func find(ss [][2]int, i int) int {
	lo, hi := 0, len(ss)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case ss[m][1] <= i:
			lo = m + 1
		case ss[m][0] > i:
			hi = m
		default:
			return m
		}
	}
	return -1
}

func (t *talk) sample(i int) float64 {
	v := t.nAmp * (2*float64(splitmix(uint64(i)+77)>>11)/(1<<53) - 1)
	if k := find(t.words, i); k >= 0 {
		w := t.words[k]
		s := float64(i-w[0]) / float64(t.rate)
		env := min(1, s/0.01, float64(w[1]-i)/float64(t.rate)/0.01)
		ph := 2 * math.Pi * t.freq[k] * s
		return v + t.amp[k]*env*(math.Sin(ph)+0.5*math.Sin(2*ph)+0.25*math.Sin(3*ph))/1.75
	}
	if find(t.closures, i) >= 0 {
		return v + t.closureAmp*math.Sin(2*math.Pi*140*float64(i)/float64(t.rate))
	}
	return v
}

func (t *talk) wav() []byte { return synth(t.rate, t.n, t.sample) }

// mp3 encodes t with lame (skipping the test without it) at 32 kbit/s.
func (t *talk) mp3(tb testing.TB) []byte {
	dir := tb.TempDir()
	in, out := filepath.Join(dir, "talk.wav"), filepath.Join(dir, "talk.mp3")
	if err := os.WriteFile(in, t.wav(), 0o600); err != nil {
		tb.Fatal(err)
	}
	lame(tb, in, out, "-b", "32")
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (t *talk) samples(d time.Duration) int { return int(d.Seconds() * float64(t.rate)) }

// inPause reports whether time d lies in one of t's pauses, within slack.
func (t *talk) inPause(d, slack time.Duration) bool {
	for _, s := range []time.Duration{0, -slack, slack} {
		if find(t.pauses, t.samples(d+s)) >= 0 {
			return true
		}
	}
	return false
}

// level returns the level, in dBFS, of t's audio from a to b.
func (t *talk) level(a, b time.Duration) float64 {
	var sum float64
	i, j := max(0, t.samples(a)), min(t.n, t.samples(b))
	for k := i; k < j; k++ {
		v := t.sample(k)
		sum += v * v
	}
	return 10 * math.Log10(sum/float64(max(1, j-i)))
}

// longPauseIn reports whether a pause of t of at least d lies within
// [a, b).
func (t *talk) longPauseIn(a, b, d time.Duration) bool {
	for _, p := range t.pauses {
		if p[0] >= t.samples(a) && p[1] <= t.samples(b) && p[1]-p[0] >= t.samples(d) {
			return true
		}
	}
	return false
}

// kinds of file the talk tests plan.
var talkFormats = []string{"wav", "mp3", "flac"}

// planTalk plans t as a file of format with o: WAV; MP3 (lame); or FLAC,
// the WAV file re-encoded by ffmpeg (Shrink), whose windows ffmpeg
// decodes. It skips a format whose tool is missing.
func planTalk(tb testing.TB, t *talk, format string, o PlanOptions) []Piece {
	tb.Helper()
	var b []byte
	switch format {
	case "wav":
		b = t.wav()
	case "mp3":
		b = t.mp3(tb)
	case "flac":
		needTool(tb, "ffmpeg")
		b = t.wav()
		o.Shrink, o.TempDir = true, tb.TempDir()
	}
	pieces, err := Plan(context.Background(), bytes.NewReader(b), int64(len(b)), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Release(pieces) })
	return pieces
}

// orig returns where time d of piece p lies in the original audio (an MP3
// piece's times less the codec delay).
func orig(p Piece, d time.Duration) time.Duration { return d + p.Offset - p.Start }

// A search window of continuous speech with one real pause is cut in that
// pause, though its closures are longer; one with none (only closures,
// -32 dBFS against a -58 dBFS floor) is cut hard, with an overlap. Judged
// by the window's own levels, both were cut in a 450 ms closure.
func TestPlanTalkWindow(t *testing.T) {
	// Sentences and pauses until 40 s, then continuous speech until 75
	// s (with, at 62 s, a pause of 400 ms or none), then sentences.
	mk := func(withPause bool) *talk {
		w := newTalkWriter(16000, 5)
		w.pause(1, 1)
		w.talkUntil(40, false)
		w.talkUntil(62, true)
		if withPause {
			w.pause(0.4, 0.4)
		}
		// Long closures on either side of where the cut would go.
		w.span(&w.t.words, 0.3, 0.3)
		w.t.amp, w.t.freq = append(w.t.amp, 0.8), append(w.t.freq, 200)
		w.span(&w.t.closures, 0.45, 0.45)
		w.talkUntil(75, true)
		w.talkUntil(80, false)
		return w.done()
	}
	o := PlanOptions{MaxDuration: 65 * time.Second, SearchWindow: 10 * time.Second}
	for _, format := range talkFormats {
		for _, withPause := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, pause %v", format, withPause), func(t *testing.T) {
				tk := mk(withPause)
				pieces := planTalk(t, tk, format, o)
				if len(pieces) != 2 {
					t.Fatalf("%d pieces", len(pieces))
				}
				p := pieces[1]
				cut := orig(p, p.Start+p.PreRoll)
				t.Logf("cut at %v, silence %v, overlap %v; floor %v, speech %v, pause %v dBFS", cut, p.Silence, p.Overlap, p.Floor, p.Speech, p.PauseLevel)
				// (An MP3 at 32 kbit/s keeps less of the noise.)
				if math.Abs(float64(p.Floor-talkFloor)) > 4 || math.Abs(float64(p.Speech-talkSpeech)) > 3 {
					t.Errorf("floor %v, speech %v dBFS; want %v, %v", p.Floor, p.Speech, talkFloor, talkSpeech)
				}
				slack := time.Duration(0)
				if format == "mp3" {
					slack = 80 * time.Millisecond // a frame, and the codec's delay
				}
				if withPause {
					if !p.Silence || !tk.inPause(cut, slack) || p.PauseLevel > p.Floor+nearFloor || p.PauseLevel > p.Speech-minDepth {
						t.Errorf("cut at %v, silence %v, pause at %v dBFS: want the pause at 62 s", cut, p.Silence, p.PauseLevel)
					}
					return
				}
				if p.Silence || (pieces[0].End-65*time.Second).Abs() > slack || (p.Overlap-p.PreRoll-2*time.Second).Abs() > slack {
					t.Errorf("cut at %v (piece 0 ends at %v), silence %v, overlap %v: want a hard cut at 65 s with 2 s of overlap",
						cut, pieces[0].End, p.Silence, p.Overlap)
				}
			})
		}
	}
}

// Talk cut every 30 s (or 3 minutes) loses no word: each word lies whole
// in a piece; every cut in a pause is in one of the talk's pauses, at
// least 20 dB below its speech; every hard cut is where the search window
// holds no pause. -talk-minutes sets the length (the figure: 60).
func TestPlanTalkLosesNoWord(t *testing.T) {
	length := time.Duration(*talkMinutes * float64(time.Minute))
	for _, every := range []time.Duration{30 * time.Second, 3 * time.Minute} {
		if every >= length {
			continue
		}
		for _, format := range talkFormats {
			t.Run(fmt.Sprintf("%s every %v", format, every), func(t *testing.T) {
				var cuts, pauses, lost int
				for seed := range uint64(max(1, int(8 / *talkMinutes))) {
					tk := newTalk(16000, length, seed)
					o := PlanOptions{MaxDuration: every}
					pieces := planTalk(t, tk, format, o)
					o, _ = o.withDefaults()
					slack := time.Duration(0)
					if format == "mp3" {
						slack = 80 * time.Millisecond
					}
					for _, w := range tk.words {
						ws, we := samplesDuration(int64(w[0]), tk.rate), samplesDuration(int64(w[1]), tk.rate)
						whole := false
						for _, p := range pieces {
							whole = whole || orig(p, p.Start+p.PreRoll)-slack <= ws && we <= orig(p, p.End)+slack
						}
						if !whole {
							lost++
							t.Errorf("seed %d: the word at %v–%v is in no piece whole", seed, ws, we)
						}
					}
					for _, p := range pieces[1:] {
						cuts++
						prev := pieces[p.Index-1]
						cut := orig(p, p.Start+p.PreRoll)
						if p.Silence {
							pauses++
							speech := float64(talkSpeech)
							if l := tk.level(cut-100*time.Millisecond, cut+100*time.Millisecond); !tk.inPause(cut, slack) || l > speech-minDepth {
								t.Errorf("seed %d: cut in a pause at %v (%.1f dBFS about it): not in a pause of the talk", seed, cut, l)
							}
							continue
						}
						// Hard: the window searched held no pause.
						end := orig(prev, prev.End)
						from := max(end-o.SearchWindow, orig(prev, prev.Start)+(prev.End-prev.Start)/2)
						if tk.longPauseIn(from+slack, end-slack, o.MinSilence+60*time.Millisecond+2*slack) {
							t.Errorf("seed %d: hard cut at %v, with a pause in %v–%v", seed, end, from, end)
						}
					}
				}
				t.Logf("%d cuts, %d in pauses, %d hard; %d words lost", cuts, pauses, cuts-pauses, lost)
			})
		}
	}
}
