package longaudio

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// speechWAV returns n samples of the audio of seed as a WAV file.
func speechWAV(t *testing.T, seed uint64, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := audio.SynthWAV(&b, Rate, n, Speech(seed)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSpeech checks the audio's script: pauses of 0.6 to 1.8 s between
// sentences, words in between, and only noise under -35 dBFS in a pause.
func TestSpeech(t *testing.T) {
	const seed, n = 3, 30 * Rate
	ps := Pauses(seed, n*time.Second/Rate)
	if len(ps) < 5 {
		t.Fatalf("%d pauses in 30 s", len(ps))
	}
	for i, p := range ps {
		if d := p[1] - p[0]; d < 600*time.Millisecond || d > 1800*time.Millisecond {
			t.Errorf("pause %d lasts %v", i, d)
		}
		if i > 0 && p[0]-ps[i-1][1] < 3*200*time.Millisecond {
			t.Errorf("pause %d comes %v after the one before: no sentence between", i, p[0]-ps[i-1][1])
		}
	}
	sample := Speech(seed)
	var loud, quiet float64 // peaks in and out of pauses
	k := 0
	for i := range n {
		at := time.Duration(i) * time.Second / Rate
		for k < len(ps) && at >= ps[k][1] {
			k++
		}
		v := math.Abs(sample(i))
		if k < len(ps) && at >= ps[k][0] {
			quiet = max(quiet, v)
		} else {
			loud = max(loud, v)
		}
	}
	if quiet > math.Pow(10, -35.0/20) || loud < 0.1 {
		t.Errorf("peak %.4f in pauses, %.4f elsewhere", quiet, loud)
	}
}

// Hear hears every word of the script, one for one, and a piece cut in a
// pause as exactly the words of the whole that lie in it; a piece cut
// through a word differs there.
func TestHear(t *testing.T) {
	const seed, n = 5, 40 * Rate
	wav := speechWAV(t, seed, n)
	whole, err := Hear(bytes.NewReader(wav), int64(len(wav)))
	if err != nil {
		t.Fatal(err)
	}
	var script []segment
	for s := newScript(seed); s.seg.start < n; s.next() {
		if s.seg.word && s.seg.end <= n {
			script = append(script, s.seg)
		}
	}
	if len(whole.Words) != len(script) || whole.Samples != n {
		t.Fatalf("heard %d words in %d samples; the script has %d in %d", len(whole.Words), whole.Samples, len(script), n)
	}
	for i, w := range whole.Words {
		if s := script[i]; w.Start < s.start || w.End > s.end {
			t.Errorf("word %d heard at samples %d–%d, outside the script's %d–%d", i, w.Start, w.End, s.start, s.end)
		}
	}
	if tokens := len(slices.Compact(slices.Sorted(slices.Values(tokensOf(whole))))); tokens < len(whole.Words)/2 {
		t.Errorf("only %d different tokens in %d words", tokens, len(whole.Words))
	}

	pcm := wav[44:]
	hear := func(from, to int) Heard {
		h, err := HearPCM(bytes.NewReader(pcm[2*from : 2*to]))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ps := Pauses(seed, 40*time.Second)
	mid := int((ps[len(ps)/2][0] + ps[len(ps)/2][1]) / 2 * Rate / time.Second)
	a, b := hear(0, mid), hear(mid, n)
	stitched := Normalise(a.Text() + " " + b.Text())
	if !slices.Equal(stitched, Normalise(whole.Text())) {
		t.Errorf("cut in a pause at sample %d: the pieces' words differ from the whole's:\n%v\n%v", mid, stitched, Normalise(whole.Text()))
	}
	if d := EditDistance(stitched, Normalise(whole.Text()), 5); d != 0 {
		t.Errorf("edit distance %d between equal texts", d)
	}

	w := whole.Words[len(whole.Words)/2]
	through := (w.Start + w.End) / 2
	a, b = hear(0, through), hear(through, n)
	stitched = Normalise(a.Text() + " " + b.Text())
	if d := EditDistance(stitched, Normalise(whole.Text()), 5); d < 1 || d > 2 {
		t.Errorf("cut through a word: %d words differ, want 1 or 2", d)
	}
}

func tokensOf(h Heard) []string {
	var s []string
	for _, w := range h.Words {
		s = append(s, w.Token)
	}
	return s
}

// Text and Segments: sentences where the words are 400 ms or more apart.
func TestText(t *testing.T) {
	ms := func(v int) int { return v * Rate / 1000 }
	h := Heard{Samples: ms(3000), Words: []Word{
		{ms(100), ms(400), "river"}, {ms(500), ms(800), "bridge"}, {ms(1500), ms(1800), "the"}, {ms(1900), ms(2200), "end"},
	}}
	if got, want := h.Text(), "River bridge. The end."; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	segs := h.Segments()
	if len(segs) != 2 || segs[0].Text != "River bridge." || segs[1].Start != 1.5 || segs[1].End != 2.2 {
		t.Errorf("Segments() = %+v", segs)
	}
	if got := Normalise(" River bridge.  The end. "); !slices.Equal(got, []string{"river", "bridge", "the", "end"}) {
		t.Errorf("Normalise = %q", got)
	}
}

// EditDistance agrees with the textbook algorithm within its limit.
func TestEditDistance(t *testing.T) {
	full := func(a, b []string) int {
		d := make([][]int, len(a)+1)
		for i := range d {
			d[i] = make([]int, len(b)+1)
			d[i][0] = i
		}
		for j := range d[0] {
			d[0][j] = j
		}
		for i := 1; i <= len(a); i++ {
			for j := 1; j <= len(b); j++ {
				sub := d[i-1][j-1]
				if a[i-1] != b[j-1] {
					sub++
				}
				d[i][j] = min(sub, d[i-1][j]+1, d[i][j-1]+1)
			}
		}
		return d[len(a)][len(b)]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = string(rune('a' + rng.IntN(3)))
		}
		return s
	}
	for range 2000 {
		a, b := words(rng.IntN(9)), words(rng.IntN(9))
		limit := rng.IntN(6)
		want, got := full(a, b), EditDistance(a, b, limit)
		if (want <= limit && got != want) || (want > limit && got <= limit) {
			t.Fatalf("EditDistance(%q, %q, %d) = %d, want %d", a, b, limit, got, want)
		}
	}
}

// The transcriber answers what Hear hears, after its latency, and refuses
// what is not 16 kHz mono PCM WAV with a 400.
func TestTranscriber(t *testing.T) {
	wav := speechWAV(t, 9, 8*Rate)
	h, err := Hear(bytes.NewReader(wav), int64(len(wav)))
	if err != nil {
		t.Fatal(err)
	}
	var asked float64
	tr := Transcriber(func(s float64) time.Duration { asked = s; return time.Millisecond })
	got, err := tr(context.Background(), &transcribetest.Audio{File: bytes.NewReader(wav), Size: int64(len(wav))})
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != h.Text() || got.Text == "" || asked != 8 || got.Duration != 8 || len(got.Segments) == 0 {
		t.Errorf("transcript %q (%v s, %d segments; latency asked for %v s), want %q", got.Text, got.Duration, len(got.Segments), asked, h.Text())
	}
	notWAV := []byte(strings.Repeat("ID3 not a wav file ", 100))
	_, err = tr(context.Background(), &transcribetest.Audio{File: bytes.NewReader(notWAV), Size: int64(len(notWAV))})
	var te *transcribetest.Error
	if !errors.As(err, &te) || te.Status != http.StatusBadRequest {
		t.Errorf("not a WAV file: %v, want a 400", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Transcriber(func(float64) time.Duration { return time.Hour })(ctx, &transcribetest.Audio{File: bytes.NewReader(wav), Size: int64(len(wav))}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during its latency: %v", err)
	}
}

// TestMeasurePlans measures a minute of audio, with pieces small enough to
// cut it, and checks what it found; not how long it took.
func TestMeasurePlans(t *testing.T) {
	dir := t.TempDir()
	c := PlanConfig{WAV: filepath.Join(dir, "speech.wav"), Runs: 1, Small: 256 << 10, Seed: 7, FFmpeg: "ffmpeg"}
	if err := WriteSpeech(c.WAV, c.Seed, 60*Rate); err != nil {
		t.Fatal(err)
	}
	if lame, err := exec.LookPath("lame"); err == nil {
		c.MP3 = filepath.Join(dir, "speech.mp3")
		if out, err := exec.Command(lame, "--silent", "-b", "64", c.WAV, c.MP3).CombinedOutput(); err != nil {
			t.Fatalf("lame: %v: %s", err, out)
		}
	} else {
		t.Log("no lame: WAV only")
	}
	_, ffmpegErr := exec.LookPath("ffmpeg")
	res, err := MeasurePlans(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	plans, ffmpegs := 0, 0
	for _, r := range res {
		if len(r.Times) != c.Runs || len(r.CPU) != c.Runs {
			t.Errorf("%s, %s: %d timings and %d CPU times, want %d", r.Name, r.Format, len(r.Times), len(r.CPU), c.Runs)
		}
		switch r.Kind {
		case FFmpegKind:
			ffmpegs++
			if r.Quiet == 0 {
				t.Errorf("%s, %s: found no pause", r.Name, r.Format)
			}
		case PlanKind:
			plans++
			if strings.HasSuffix(r.Name, " 24 MiB") {
				if len(r.Pieces) != 1 || r.Read > r.Size {
					t.Errorf("%s, %s: %d pieces, %d bytes read; want 1 piece, the file not read", r.Name, r.Format, len(r.Pieces), r.Read)
				}
				continue
			}
			cuts := r.Cuts
			if len(r.Pieces) < 2 || cuts.InPause == 0 || cuts.Off != 0 || cuts.InPause+cuts.Hard != len(r.Pieces)-1 {
				t.Errorf("%s, %s: %d pieces, cuts %+v; want cuts in the script's pauses", r.Name, r.Format, len(r.Pieces), cuts)
			}
		}
	}
	formats := 1
	if c.MP3 != "" {
		formats = 2
	}
	if plans != 2*formats {
		t.Errorf("%d plans timed, want %d", plans, 2*formats)
	}
	if ffmpegErr == nil && ffmpegs != formats {
		t.Errorf("ffmpeg timed on %d files, want %d", ffmpegs, formats)
	}
}
