package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steno-go/steno/bench/internal/longaudio"
	"github.com/steno-go/steno/internal/audio"
)

// report prints each result's median and the ratios, and fails when a plan
// was slower than ffmpeg on the same file.
func TestReport(t *testing.T) {
	plan := func(d time.Duration) longaudio.PlanResult {
		return longaudio.PlanResult{Name: "steno Plan, pieces ≤ 24 MiB", Path: "a.mp3", Format: "MP3", Size: 28e6, Kind: longaudio.PlanKind,
			Times: []time.Duration{d, 3 * d, 2 * d}, Pieces: make([]audio.Piece, 2), Read: 1e6,
			Cuts: longaudio.Cuts{Checked: true, InPause: 1}}
	}
	ffmpeg := longaudio.PlanResult{Name: "ffmpeg silencedetect", Path: "a.mp3", Format: "MP3", Size: 28e6, Kind: longaudio.FFmpegKind,
		Times: []time.Duration{4 * time.Second}, Quiet: 900}
	var out bytes.Buffer
	if err := report(&out, []longaudio.PlanResult{plan(100 * time.Millisecond), ffmpeg}, 3); err != nil {
		t.Errorf("a plan 20× faster than ffmpeg: %v", err)
	}
	for _, want := range []string{"200 ms", "(900 pauses)", "1/1", "ratio time ffmpeg/steno, steno Plan, pieces ≤ 24 MiB, MP3: 20.0x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err := report(&out, []longaudio.PlanResult{plan(3 * time.Second), ffmpeg}, 3); err == nil {
		t.Error("a plan slower than ffmpeg passed")
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
