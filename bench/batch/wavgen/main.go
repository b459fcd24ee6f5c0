// Command wavgen makes the audio files of the batch benchmark and checks
// the transcripts that came back.
//
//	wavgen -dir DIR [-n 50] [-bytes 10000000]
//	wavgen -verify -dir DIR -out TRANSCRIPTS
//
// The first form writes n WAV files (16 kHz mono 16-bit PCM) of the given
// size, clip01.wav, clip02.wav, …, each a tone with noise, different in every
// file. Every byte is written: the files are not sparse, so uploading them
// reads real data from disk.
//
// The second form checks that TRANSCRIPTS holds, for every clipNN.wav in
// DIR, a clipNN.txt whose text is the one the fake API's
// DefaultTranscriber makes of that audio, and prints how many were present
// and correct; it exits 1 if any was not.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func main() {
	dir := flag.String("dir", "", "directory of the audio files")
	n := flag.Int("n", 50, "number of files to write")
	size := flag.Int64("bytes", 10_000_000, "size of each file")
	verify := flag.Bool("verify", false, "check the transcripts in -out instead of writing files")
	out := flag.String("out", "", "with -verify: the directory of the transcripts")
	flag.Parse()
	var err error
	switch {
	case *dir == "" || (*verify && *out == ""):
		flag.Usage()
		os.Exit(2)
	case *verify:
		err = check(*dir, *out)
	default:
		err = generate(*dir, *n, *size)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wavgen:", err)
		os.Exit(1)
	}
}

// generate writes n files of size bytes into dir, a few at a time.
func generate(dir string, n int, size int64) error {
	if n < 1 || size < 44+2*1600 {
		return errors.New("want at least 1 file of at least 0.1 s")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, runtime.NumCPU())
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := writeClip(filepath.Join(dir, fmt.Sprintf("clip%02d.wav", i+1)), i, size); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeClip writes clip number i: a tone whose pitch depends on i, with
// seeded noise, so that every file (and so its transcript) differs.
func writeClip(path string, i int, size int64) error {
	const rate = 16000
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	freq := 200 + 7*float64(i)
	w := bufio.NewWriterSize(f, 1<<20)
	err = audio.SynthWAV(w, rate, int((size-44)/2), func(n int) float64 {
		return 0.25*math.Sin(2*math.Pi*freq*float64(n)/rate) + 0.05*(rng.Float64()-0.5)
	})
	return errors.Join(err, w.Flush(), f.Close())
}

// check compares each transcript with what the fake makes of its audio.
func check(dir, out string) error {
	clips, err := filepath.Glob(filepath.Join(dir, "clip*.wav"))
	if err != nil {
		return err
	}
	good := 0
	for _, clip := range clips {
		want, err := expected(clip)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(clip), ".wav") + ".txt"
		got, err := os.ReadFile(filepath.Join(out, name))
		switch {
		case err != nil:
			fmt.Printf("missing: %s (%v)\n", name, err)
		case strings.TrimSpace(string(got)) != want:
			fmt.Printf("wrong: %s: %.60q…, want %.60q…\n", name, got, want)
		default:
			good++
		}
	}
	fmt.Printf("%d/%d transcripts present and correct\n", good, len(clips))
	if good != len(clips) || len(clips) == 0 {
		return errors.New("transcripts missing or wrong")
	}
	return nil
}

// expected is the text the fake API answers for the audio at path.
func expected(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	t, err := transcribetest.DefaultTranscriber(context.Background(), &transcribetest.Audio{
		Task: "transcribe", Filename: filepath.Base(path), Model: "whisper-1", ResponseFormat: "json",
		Size: st.Size(), File: f,
	})
	if err != nil {
		return "", err
	}
	if t.Text != "" {
		return t.Text, nil
	}
	texts := make([]string, len(t.Segments))
	for i, s := range t.Segments {
		texts[i] = strings.TrimSpace(s.Text)
	}
	return strings.Join(texts, " "), nil
}
