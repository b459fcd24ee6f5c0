package main

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// demoClipCount is how many clips -simulate makes when given no PATH.
const demoClipCount = 12

// demoClip is a generated clip: its file, and the ID it is transcribed
// under.
type demoClip struct {
	id, path string
	size     int64
}

// writeDemoClips writes demoClipCount short WAV files into dir: "words"
// (tone bursts of varying pitch) separated by silences, 2 to 7 seconds
// long. The same clips are made every time, so that a re-run finds them
// done.
func writeDemoClips(dir string) ([]demoClip, error) {
	const rate = 16000
	var clips []demoClip
	for i := range demoClipCount {
		name := fmt.Sprintf("clip%02d.wav", i+1)
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		seconds := 2 + i%6
		base := 180 + 20*float64(i)
		err = transcribetest.WriteWAV(f, rate, seconds*rate, func(n int) float64 {
			t := float64(n) / rate
			word := math.Floor(t / 0.8)
			if math.Mod(t, 0.8) > 0.55 { // a pause after each word
				return 0
			}
			return 0.3 * math.Sin(2*math.Pi*(base+35*math.Mod(word*7, 5))*t)
		})
		if err = errors.Join(err, f.Close()); err != nil {
			return nil, err
		}
		clips = append(clips, demoClip{id: "demo/" + name, path: path, size: 44 + 2*int64(seconds*rate)})
	}
	return clips, nil
}

// demoJobs makes jobs of the clips. They are named by their IDs alone (not
// their temporary paths), so that a re-run with new copies of the same
// clips finds them done.
func demoJobs(clips []demoClip) iter.Seq[transcribe.Job] {
	return func(yield func(transcribe.Job) bool) {
		for _, c := range clips {
			j := transcribe.Job{
				ID:   c.id,
				Name: filepath.Base(c.path),
				Size: c.size,
				Open: func() (io.ReadCloser, error) { return os.Open(c.path) },
			}
			if !yield(j) {
				return
			}
		}
	}
}
