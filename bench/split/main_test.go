package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMeasure runs the benchmark on a minute of audio, with pieces small
// enough to cut it, and checks what it found; not how long it took.
func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	c := config{wav: filepath.Join(dir, "speech.wav"), runs: 1, small: 256 << 10, seed: 7, ffmpeg: "ffmpeg"}
	if err := writeSpeech(c.wav, c.seed, 60*rate); err != nil {
		t.Fatal(err)
	}
	if lame, err := exec.LookPath("lame"); err == nil {
		c.mp3 = filepath.Join(dir, "speech.mp3")
		if out, err := exec.Command(lame, "--silent", "-b", "64", c.wav, c.mp3).CombinedOutput(); err != nil {
			t.Fatalf("lame: %v: %s", err, out)
		}
	} else {
		t.Log("no lame: WAV only")
	}
	res, err := measure(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	plans := 0
	for _, r := range res {
		if len(r.times) != c.runs {
			t.Errorf("%s: %d timings, want %d", r.name, len(r.times), c.runs)
		}
		if r.kind == ffmpegKind && r.quiet == 0 {
			t.Errorf("%s: found no pause", r.name)
		}
		if r.kind != planKind {
			continue
		}
		plans++
		switch {
		case strings.HasSuffix(r.name, " 24 MiB"):
			if len(r.pieces) != 1 || r.read > r.size {
				t.Errorf("%s: %d pieces, %d bytes read; want 1 piece, the file not read", r.name, len(r.pieces), r.read)
			}
		default:
			cuts := r.cuts
			if len(r.pieces) < 2 || cuts.inPause == 0 || cuts.off != 0 || cuts.inPause+cuts.hard != len(r.pieces)-1 {
				t.Errorf("%s: %d pieces, cuts %+v; want cuts in the script's pauses", r.name, len(r.pieces), cuts)
			}
		}
	}
	want := 2
	if c.mp3 != "" {
		want = 4
	}
	if plans != want {
		t.Errorf("%d plans timed, want %d", plans, want)
	}
	var out bytes.Buffer
	report(&out, res, c.runs) // its error depends on the times
	for _, want := range []string{"steno Plan, WAV, pieces <= 0.25 MiB", "read whole WAV", "ratio throughput plan/read"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSpeech checks the audio's script: pauses of 0.6 to 1.8 s between
// sentences, words in between, and only noise under -35 dBFS in a pause.
func TestSpeech(t *testing.T) {
	const seed, n = 3, 30 * rate
	ps := pauses(seed, n*time.Second/rate)
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
	sample := speech(seed)
	var loud, quiet float64 // peaks in and out of pauses
	k := 0
	for i := range n {
		at := time.Duration(i) * time.Second / rate
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

func TestCheckTranscript(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.json")
	for body, ok := range map[string]bool{
		`{"text":"hello there","duration":3600,"segments":[{},{}]}`: true,
		`{"text":"","duration":3600}`:                               false,
		`not json`:                                                  false,
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := checkTranscript(&out, path); (err == nil) != ok {
			t.Errorf("%s: error %v", body, err)
		}
		if ok && out.String() != "11 characters of text, 2 segments, 3600.0 s\n" {
			t.Errorf("%s: printed %q", body, out.String())
		}
	}
}
