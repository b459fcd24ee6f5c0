package audio

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// padded is speech with long silences put in: before it, after it and in
// its middle, each of the given length (noise only, at the speech's
// floor).
type padded struct {
	s      *speech
	rate   int
	n      int
	breaks [][2]int // [start, end) samples of each silence put in, in the output
}

func newPadded(s *speech, lead, mid, trail time.Duration) *padded {
	at := func(d time.Duration) int { return int(d.Seconds() * float64(s.rate)) }
	p := &padded{s: s, rate: s.rate}
	// The middle silence goes into the speech's pause nearest its middle.
	half := s.pauses[len(s.pauses)/2]
	cut := (half[0] + half[1]) / 2
	p.breaks = [][2]int{{0, at(lead)}, {at(lead) + cut, at(lead) + cut + at(mid)}}
	p.n = at(lead) + s.n + at(mid) + at(trail)
	p.breaks = append(p.breaks, [2]int{p.n - at(trail), p.n})
	return p
}

// orig returns the speech sample index that output sample i plays, or -1
// in a silence put in.
func (p *padded) orig(i int) int {
	j := i
	for _, b := range p.breaks {
		switch {
		case i >= b[1]:
			j -= b[1] - b[0]
		case i >= b[0]:
			return -1
		}
	}
	return j
}

func (p *padded) sample(i int) float64 {
	if j := p.orig(i); j >= 0 {
		return p.s.sample(j)
	}
	return p.s.noise * (2*float64(splitmix(uint64(i)+1<<40)>>11)/(1<<53) - 1)
}

// bursts returns the output times of the speech's bursts.
func (p *padded) bursts() [][2]time.Duration {
	var out [][2]time.Duration
	shift := 0
	k := 0
	for _, b := range p.s.bursts {
		if b[1] <= b[0] { // past the speech's end
			continue
		}
		for k < len(p.breaks) && p.breaks[k][0] <= b[0]+shift {
			shift += p.breaks[k][1] - p.breaks[k][0]
			k++
		}
		out = append(out, [2]time.Duration{samplesDuration(int64(b[0]+shift), p.rate), samplesDuration(int64(b[1]+shift), p.rate)})
	}
	return out
}

// original maps a time in piece p's audio to the original's.
func original(p Piece, t time.Duration) time.Duration {
	if len(p.Spans) == 0 {
		return p.Offset + t
	}
	k := 0
	for k+1 < len(p.Spans) && p.Spans[k+1].At <= t {
		k++
	}
	return p.Spans[k].Start + t - p.Spans[k].At
}

// heardBursts decodes piece p and returns when its bursts (loud 10 ms
// blocks in a row) start, in the original's time.
func heardBursts(t *testing.T, p Piece) []time.Duration {
	t.Helper()
	b := readPiece(t, p)
	x, rate := decodeBytes(t, b)
	win := rate / 100
	var out []time.Duration
	loud := false
	for i := 0; i+win <= len(x); i += win {
		var sum float64
		for _, v := range x[i : i+win] {
			sum += float64(v) * float64(v)
		}
		now := math.Sqrt(sum/float64(win)) > 0.1
		if now && !loud {
			out = append(out, original(p, samplesDuration(int64(i), rate)))
		}
		loud = now
	}
	return out
}

// SkipPause leaves out the silence at both ends and the long pause in the
// middle, and nothing of the speech: every burst is in a span, heard at
// its time once mapped back; WAV spans are the original's samples exactly.
// Pieces that are silence alone are not sent (cut every 30 s, the 45 s
// silence in the middle holds one).
func TestPlanSkipSilence(t *testing.T) {
	s := newSpeech(16000, time.Minute, -45, 31)
	p := newPadded(s, 20*time.Second, 45*time.Second, 15*time.Second)
	wav := synth(p.rate, p.n, p.sample)
	total := samplesDuration(int64(p.n), p.rate)
	want := p.bursts()
	dir := t.TempDir()
	check := func(name string, pieces []Piece, tol time.Duration) {
		t.Helper()
		var sent time.Duration
		var heard []time.Duration
		for _, pc := range pieces {
			sent += pc.Sent
			heard = append(heard, heardBursts(t, pc)...)
		}
		if sent > time.Minute+4*time.Second || sent < 55*time.Second { // its own pauses of 2 s lose 1.5 s
			t.Errorf("%s: %v sent of %v (%v of speech)", name, sent, total, time.Minute)
		}
		if len(heard) != len(want) {
			t.Fatalf("%s: %d bursts heard, want %d", name, len(heard), len(want))
		}
		worst := time.Duration(0)
		for i, h := range heard {
			worst = max(worst, (h - want[i][0]).Abs())
		}
		if worst > tol {
			t.Errorf("%s: a burst is %v off", name, worst)
		}
		t.Logf("%s: %d pieces, %v sent of %v; worst burst %v off", name, len(pieces), sent, total, worst)
	}

	o := PlanOptions{SkipPause: 2 * time.Second}
	pieces := plan(t, wav, o)
	if len(pieces) != 1 || len(pieces[0].Spans) < 2 || pieces[0].Spans[0].Start < 19*time.Second {
		t.Fatalf("wav: %d pieces, spans %+v", len(pieces), pieces[0].Spans)
	}
	check("wav", pieces, 10*time.Millisecond)
	got, _ := decodeBytes(t, readPiece(t, pieces[0]))
	all, _ := decodeBytes(t, wav)
	var cat []float32
	for _, sp := range pieces[0].Spans {
		cat = append(cat, all[durSamples(sp.Start, 16000):durSamples(sp.End, 16000)]...)
	}
	if !equalSamples(got, cat) {
		t.Error("wav: the piece is not its spans of the original")
	}

	// Cut every 30 s: the middle silence makes a piece of its own, which
	// is not sent.
	o.MaxDuration = 30 * time.Second
	pieces = plan(t, wav, o)
	check("wav, cut", pieces, 10*time.Millisecond)
	all30 := plan(t, wav, PlanOptions{MaxDuration: 30 * time.Second})
	if len(pieces) >= len(all30) || pieces[0].Index != 0 || pieces[len(pieces)-1].Index != len(pieces)-1 {
		t.Errorf("wav, cut: %d pieces, %d without SkipPause", len(pieces), len(all30))
	}
	for i, pc := range pieces[1:] {
		if pc.Overlap < 0 || pc.Overlap > 3*time.Second {
			t.Errorf("wav, cut: piece %d overlaps %v", i+1, pc.Overlap)
		}
	}

	in := filepath.Join(dir, "p.wav")
	if err := os.WriteFile(in, wav, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/bin/lame"); err == nil || os.Getenv("CI") == "true" {
		out := filepath.Join(dir, "p.mp3")
		lame(t, in, out, "-b", "64")
		b, _ := os.ReadFile(out)
		check("mp3", plan(t, b, PlanOptions{SkipPause: 2 * time.Second}), 30*time.Millisecond)
		check("mp3, cut", plan(t, b, PlanOptions{SkipPause: 2 * time.Second, MaxDuration: 30 * time.Second}), 30*time.Millisecond)
	}
	needTool(t, "ffmpeg")
	out := filepath.Join(dir, "p.flac")
	ffmpeg(t, "-i", in, out)
	b, _ := os.ReadFile(out)
	o = PlanOptions{SkipPause: 2 * time.Second, TempDir: t.TempDir()}
	pieces, err := Plan(t.Context(), bytes.NewReader(b), int64(len(b)), o)
	if err != nil {
		t.Fatal(err)
	}
	check("flac", pieces, 10*time.Millisecond)
	Release(pieces)
	o.MaxDuration = 30 * time.Second
	pieces, err = Plan(t.Context(), bytes.NewReader(b), int64(len(b)), o)
	if err != nil {
		t.Fatal(err)
	}
	check("flac, cut", pieces, 10*time.Millisecond)
	Release(pieces)
}
