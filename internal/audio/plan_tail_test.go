package audio

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// checkTail checks that the audio the last piece adds after the one
// before it (its new audio: the overlap of a hard cut is the previous
// piece's) is at least min long, less slack.
func checkTail(t *testing.T, pieces []Piece, minTail, slack time.Duration) {
	t.Helper()
	if len(pieces) < 2 {
		t.Fatalf("%d pieces", len(pieces))
	}
	last, prev := pieces[len(pieces)-1], pieces[len(pieces)-2]
	if tail := last.End - prev.End; tail < minTail-slack {
		t.Errorf("last piece adds %v after the cut at %v (piece %v–%v), under %v", tail, prev.End, last.Start, last.End, minTail)
	}
}

// A file a little longer than the limit does not end in a sliver: the
// last cut moves earlier so that the tail is at least MinTail, whether the
// cut is a hard one (a tone: no pause) or in a pause (speech), and
// whatever is left past the limit (50 ms to just under MinTail).
func TestPlanWAVMinTail(t *testing.T) {
	const rate = 8000
	for _, over := range []time.Duration{50 * time.Millisecond, time.Second, 4900 * time.Millisecond} {
		total := time.Minute + over
		n := int(total.Seconds() * rate)
		tone := synth(rate, n, func(i int) float64 { return 0.3 * math.Sin(2*math.Pi*440*float64(i)/rate) })
		o := PlanOptions{MaxDuration: time.Minute}
		pieces := plan(t, tone, o)
		checkTiling(t, pieces, o, total)
		checkWAVPieces(t, tone, pieces)
		checkTail(t, pieces, DefaultMinTail, 0)
		if last := pieces[len(pieces)-1]; len(pieces) != 2 || last.Silence || last.Overlap != 2*time.Second || pieces[0].End != total-DefaultMinTail {
			t.Errorf("tone, %v over: %d pieces, cut at %v, last %+v", over, len(pieces), pieces[0].End, last)
		}

		s := newSpeech(rate, total, -45, 5)
		wav := synth(s.rate, s.n, s.sample)
		pieces = plan(t, wav, o)
		checkTiling(t, pieces, o, total)
		checkTail(t, pieces, DefaultMinTail, 0)
		for _, p := range pieces[1:] {
			if !p.Silence || !s.inPause(p.Start, 0) {
				t.Errorf("speech, %v over: piece %d at %v: silence %v", over, p.Index, p.Start, p.Silence)
			}
		}
	}

	// MinTail is at most half the limit; a set one is honoured.
	total := 3*time.Second + 100*time.Millisecond
	tone := synth(rate, int(total.Seconds()*rate), func(i int) float64 { return 0.3 * math.Sin(float64(i)) })
	o := PlanOptions{MaxDuration: time.Second, Overlap: 100 * time.Millisecond}
	pieces := plan(t, tone, o)
	checkTiling(t, pieces, o, total)
	checkTail(t, pieces, 500*time.Millisecond, 0)
	o = PlanOptions{MaxDuration: time.Minute, MinTail: 20 * time.Second}
	pieces = plan(t, synth(rate, int(61*rate), func(i int) float64 { return 0.3 * math.Sin(float64(i)) }), o)
	checkTail(t, pieces, 20*time.Second, 0)
	if _, err := (PlanOptions{MinTail: -1}).withDefaults(); err == nil {
		t.Error("a negative MinTail is accepted")
	}
}

// The same for MP3, cut between frames: the frames left are estimated
// from the bytes left, exact at a constant bitrate. A tone has no pause,
// so the last cut is a hard one at the limit, moved earlier.
func TestPlanMP3MinTail(t *testing.T) {
	const rate = 16000
	for _, over := range []time.Duration{200 * time.Millisecond, 3 * time.Second} {
		total := time.Minute + over
		dir := t.TempDir()
		in, out := filepath.Join(dir, "tone.wav"), filepath.Join(dir, "tone.mp3")
		tone := synth(rate, int(total.Seconds()*rate), func(i int) float64 { return 0.3 * math.Sin(2*math.Pi*440*float64(i)/rate) })
		if err := os.WriteFile(in, tone, 0o600); err != nil {
			t.Fatal(err)
		}
		lame(t, in, out, "-b", "32")
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		o := PlanOptions{MaxDuration: time.Minute}
		pieces := plan(t, b, o)
		checkTiling(t, pieces, o, pieces[len(pieces)-1].End)
		checkTail(t, pieces, DefaultMinTail, 80*time.Millisecond) // a frame or two
		if last := pieces[len(pieces)-1]; len(pieces) != 2 || last.Silence {
			t.Errorf("%v over: %d pieces, last %+v", over, len(pieces), last)
		}
		t.Logf("%v over: %d pieces, cut at %v, last %v–%v", over, len(pieces), pieces[0].End, pieces[len(pieces)-1].Start, pieces[len(pieces)-1].End)
	}
}

// Re-encoded audio (FLAC, Ogg, M4A; WAV or MP3 with Shrink), cut in
// ffmpeg's 16 kHz FLAC, leaves no tail under MinTail either: by duration
// (a tone: the last cut is a hard one, moved earlier) and by size (speech:
// the cut moves into a pause before the limit), and each piece holds
// exactly its samples.
func TestPlanFLACMinTail(t *testing.T) {
	needTool(t, "ffmpeg")
	dir := t.TempDir()
	for _, over := range []time.Duration{100 * time.Millisecond, 3 * time.Second} {
		total := time.Minute + over
		in, out := filepath.Join(dir, "tone.wav"), filepath.Join(dir, "tone.flac")
		const rate = 16000
		tone := synth(rate, int(total.Seconds()*rate), func(i int) float64 { return 0.3 * math.Sin(2*math.Pi*440*float64(i)/rate) })
		if err := os.WriteFile(in, tone, 0o600); err != nil {
			t.Fatal(err)
		}
		ffmpeg(t, "-i", in, out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		o := PlanOptions{MaxDuration: time.Minute, TempDir: t.TempDir()}
		pieces := plan(t, b, o)
		checkTiling(t, pieces, o, total)
		checkTail(t, pieces, DefaultMinTail, 0)
		if last := pieces[len(pieces)-1]; len(pieces) != 2 || last.Silence || pieces[0].End != total-DefaultMinTail {
			t.Errorf("tone, %v over: %d pieces, cut at %v, last %+v", over, len(pieces), pieces[0].End, last)
		}
		for _, p := range pieces {
			if got, want := decodedSamples(t, p), int(durSamples(p.End-p.Start, FFmpegRate)); got != want {
				t.Errorf("tone, %v over: piece %d holds %d samples, want %d", over, p.Index, got, want)
			}
		}
		Release(pieces)
	}

	// By size: pieces of about 30 s of a 61 s tone, whose FLAC has a
	// steady rate; the last cut moves from 58 s to 56 s.
	const rate = 16000
	total := 61 * time.Second
	in, out := filepath.Join(dir, "long.wav"), filepath.Join(dir, "long.flac")
	tone := synth(rate, int(total.Seconds()*rate), func(i int) float64 { return 0.3 * math.Sin(2*math.Pi*440*float64(i)/rate) })
	if err := os.WriteFile(in, tone, 0o600); err != nil {
		t.Fatal(err)
	}
	ffmpeg(t, "-i", in, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	o := PlanOptions{MaxBytes: int64(float64(len(b)) * 30 / 61 / flacMargin), TempDir: t.TempDir()}
	pieces := plan(t, b, o)
	defer Release(pieces)
	checkTiling(t, pieces, o, total)
	checkTail(t, pieces, DefaultMinTail, 20*time.Millisecond)
	t.Logf("by size: %d pieces, last %v–%v", len(pieces), pieces[len(pieces)-1].Start, pieces[len(pieces)-1].End)
}
