// Command split measures how fast steno plans the cuts of a long audio
// file (internal/audio.Plan), beside ffmpeg's silencedetect filter on the
// same file and beside reading the file whole, and writes the long,
// speech-like WAV file that bench/split/run.sh also sends through the CLI
// to measure its peak memory.
//
//	split -gen -wav FILE [-minutes 60] [-seed 1]
//	split -wav FILE [-mp3 FILE] [-runs 5] [-small 8388608] [-seed 1] [-ffmpeg ffmpeg] [-cpuprofile FILE]
//	split -transcript FILE
//
// The first form writes a WAV file (16 kHz mono 16-bit PCM) of the given
// length, streaming, with memory independent of its length: "sentences" of
// 3 to 12 "words" (tone bursts of 0.2 to 0.5 s with two harmonics and a
// pitch that varies from word to word and glides within one, 40 to 150 ms
// apart) separated by pauses of 0.6 to 1.8 s, over white noise at
// -40 dBFS (RMS; uniform, so that its peaks stay under the -30 dB of
// ffmpeg's silencedetect below, which compares samples). The seed chooses
// the script; the same seed gives the same file.
//
// The second form times, in one process, -runs rounds of (each round in
// this order, so that they share the machine's state alike; see
// longaudio.MeasurePlans):
//
//   - audio.Plan of the MP3 file with the default options (pieces of at
//     most 24 MiB) and with MaxBytes -small, for more cuts;
//   - ffmpeg -hide_banner -nostats -i MP3 -af silencedetect=noise=-30dB:d=0.3
//     -f null -, which decodes the whole file to find its pauses (skipped
//     if -ffmpeg is empty or not found);
//   - the same three of the WAV file;
//   - reading the WAV file whole in reads of 1 MiB, the speed of the disk
//     (of the page cache: both files are read once before any timing).
//
// It prints the median time of each, and the file's size over it as a
// throughput (for a plan an effective one: Plan reads only the frame
// headers of an MP3 file and the windows it searches for pauses, as the
// "bytes read" column shows); the pieces, and how many cuts fell in a
// pause of the script (for files written by -gen with the same -seed; 0
// skips the check); the ratio of ffmpeg's time to each MP3 plan's, and of
// the whole read's time to each WAV plan's. It exits 1 if a steno plan
// took longer than ffmpeg's silencedetect on the same file.
//
// bench/cmd/benchall runs the same measurement (its scenario 3) and
// renders it in docs/BENCHMARKS.md.
//
// The third form reads the transcript the CLI wrote in verbose_json and
// prints the length of its text, its segments and its duration; it exits 1
// if the text is empty.
//
// Run the whole benchmark with bash bench/split/run.sh; alone, from bench/
// (the benchmarks' own module):
//
//	go run ./split -gen -wav /tmp/speech.wav -minutes 60
//	lame --silent -b 64 /tmp/speech.wav /tmp/speech.mp3
//	go run ./split -wav /tmp/speech.wav -mp3 /tmp/speech.mp3
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/steno-go/steno/bench/internal/longaudio"
)

func main() {
	gen := flag.Bool("gen", false, "write the WAV file -wav instead of measuring")
	minutes := flag.Float64("minutes", 60, "with -gen: the length of the WAV file")
	seed := flag.Uint64("seed", 1, "the script of the audio (0: do not check cuts against it)")
	wav := flag.String("wav", "", "the WAV file (16 kHz mono 16-bit, as -gen writes it)")
	mp3 := flag.String("mp3", "", "the same audio as MP3 (optional)")
	runs := flag.Int("runs", 5, "rounds of timings; medians are reported")
	small := flag.Int64("small", 8<<20, "the second, smaller MaxBytes to plan with")
	ffmpeg := flag.String("ffmpeg", "ffmpeg", "the ffmpeg to compare with (empty: none)")
	transcript := flag.String("transcript", "", "check a verbose_json transcript instead of measuring")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timings to this file")
	flag.Parse()

	var err error
	switch {
	case *transcript != "":
		err = checkTranscript(os.Stdout, *transcript)
	case *wav == "" || *runs < 1 || *minutes <= 0 || *small < 64<<10:
		flag.Usage()
		os.Exit(2)
	case *gen:
		err = longaudio.WriteSpeech(*wav, *seed, int(*minutes*60*longaudio.Rate))
	default:
		stop, perr := startProfile(*cpuprofile)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "split:", perr)
			os.Exit(1)
		}
		var res []longaudio.PlanResult
		res, err = longaudio.MeasurePlans(context.Background(), longaudio.PlanConfig{WAV: *wav, MP3: *mp3, Runs: *runs, Small: *small, Seed: *seed, FFmpeg: *ffmpeg})
		err = errors.Join(err, stop())
		if res != nil {
			err = errors.Join(err, report(os.Stdout, res, *runs))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "split:", err)
		os.Exit(1)
	}
}

// startProfile starts a CPU profile into path, if not empty, and returns
// the function that stops it.
func startProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error { pprof.StopCPUProfile(); return f.Close() }, nil
}

// report prints the medians and ratios, and returns an error if a steno
// plan was slower than ffmpeg's silencedetect on the same file.
func report(w io.Writer, res []longaudio.PlanResult, runs int) error {
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "timed (median of %d)\tfile\tmedian\tthroughput\tpieces\tcuts in pauses\tbytes read\t\n", runs)
	for _, r := range res {
		med := longaudio.Median(r.Times)
		pieces, cuts, read := "", "", ""
		switch {
		case r.Kind == longaudio.PlanKind:
			pieces, read = fmt.Sprint(len(r.Pieces)), mb(r.Read)
			if c := r.Cuts; c.Checked {
				cuts = fmt.Sprintf("%d/%d", c.InPause, len(r.Pieces)-1)
				if c.Hard > 0 || c.Off > 0 {
					cuts += fmt.Sprintf(" (%d hard, %d off)", c.Hard, c.Off)
				}
			}
		case r.Kind == longaudio.FFmpegKind:
			pieces, read = fmt.Sprintf("(%d pauses)", r.Quiet), mb(r.Size)
		case r.Kind == longaudio.ReadKind:
			read = mb(r.Size)
		}
		fmt.Fprintf(tw, "%s, %s\t%s\t%s\t%.0f MB/s\t%s\t%s\t%s\t\n", r.Name, r.Format, mb(r.Size), fmtDur(med),
			float64(r.Size)/1e6/med.Seconds(), pieces, cuts, read)
	}
	tw.Flush()

	var errs []error
	for _, base := range res {
		if base.Kind == longaudio.PlanKind {
			continue
		}
		for _, r := range res {
			if r.Kind != longaudio.PlanKind || r.Path != base.Path {
				continue
			}
			ratio := longaudio.Median(base.Times).Seconds() / longaudio.Median(r.Times).Seconds()
			if base.Kind == longaudio.FFmpegKind {
				fmt.Fprintf(w, "ratio time ffmpeg/steno, %s, %s: %.1fx\n", r.Name, r.Format, ratio)
				if ratio < 1 {
					errs = append(errs, fmt.Errorf("%s, %s: slower than ffmpeg silencedetect", r.Name, r.Format))
				}
			} else {
				fmt.Fprintf(w, "ratio throughput plan/read, %s, %s: %.1fx\n", r.Name, r.Format, ratio)
			}
		}
	}
	return errors.Join(errs...)
}

// fmtDur prints d to three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3g s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3g ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3g µs", float64(d)/1e3)
}

// checkTranscript prints what the verbose_json transcript at path holds.
func checkTranscript(w io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var t struct {
		Text     string            `json:"text"`
		Duration float64           `json:"duration"`
		Segments []json.RawMessage `json:"segments"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(w, "%d characters of text, %d segments, %.1f s\n", len(t.Text), len(t.Segments), t.Duration)
	if t.Text == "" {
		return errors.New("the transcript has no text")
	}
	return nil
}
