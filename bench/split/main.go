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
// this order, so that they share the machine's state alike):
//
//   - audio.Plan of the MP3 file with the default options (pieces of at
//     most 24 MiB) and with MaxBytes -small, for more cuts;
//   - ffmpeg -hide_banner -nostats -i MP3 -af silencedetect=noise=-30dB:d=0.3
//     -f null -, which decodes the whole file to find its pauses (skipped
//     if -ffmpeg is empty or not found);
//   - audio.Plan of the WAV file, with the same two sizes;
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
// took longer than ffmpeg's silencedetect.
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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/steno-go/steno/internal/audio"
)

const rate = 16000

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
		err = writeSpeech(*wav, *seed, int(*minutes*60*rate))
	default:
		stop, perr := startProfile(*cpuprofile)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "split:", perr)
			os.Exit(1)
		}
		var res []result
		res, err = measure(context.Background(), config{wav: *wav, mp3: *mp3, runs: *runs, small: *small, seed: *seed, ffmpeg: *ffmpeg})
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
func (s *script) secs(lo, hi float64) int { return int((lo + (hi-lo)*s.rng.Float64()) * rate) }

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

// speech returns the sample function of the audio of the script of seed:
// call it with i = 0, 1, 2, … in turn.
func speech(seed uint64) func(i int) float64 {
	s := newScript(seed)
	noise := rand.New(rand.NewPCG(seed, 2))
	const ramp = rate / 50 // 20 ms fade in and out of a word
	var phase float64
	return func(i int) float64 {
		for i >= s.seg.end {
			s.next()
			phase = 0
		}
		v := noiseRMS * math.Sqrt(3) * (2*noise.Float64() - 1)
		if g := s.seg; g.word {
			k, n := i-g.start, g.end-g.start
			phase += 2 * math.Pi * (g.f0 + (g.f1-g.f0)*float64(k)/float64(n)) / rate
			env := 1.0
			if e := min(k, n-1-k); e < ramp {
				env = 0.5 - 0.5*math.Cos(math.Pi*float64(e)/ramp)
			}
			v += g.amp * env * (math.Sin(phase) + 0.5*math.Sin(2*phase) + 0.25*math.Sin(3*phase)) / 1.75
		}
		return v
	}
}

// pauses returns the pauses between sentences of the script of seed that
// start before the end.
func pauses(seed uint64, end time.Duration) [][2]time.Duration {
	var out [][2]time.Duration
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	for s := newScript(seed); at(s.seg.start) < end; s.next() {
		if s.seg.pause && s.seg.end > s.seg.start {
			out = append(out, [2]time.Duration{at(s.seg.start), at(s.seg.end)})
		}
	}
	return out
}

// writeSpeech writes n samples of the audio of seed to a WAV file.
func writeSpeech(path string, seed uint64, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = audio.SynthWAV(w, rate, n, speech(seed))
	return errors.Join(err, w.Flush(), f.Close())
}

// config is what measure measures.
type config struct {
	wav, mp3 string
	runs     int
	small    int64 // the second MaxBytes
	seed     uint64
	ffmpeg   string
}

// kind is what a result times.
type kind int

const (
	planKind   kind = iota // audio.Plan
	ffmpegKind             // ffmpeg's silencedetect
	readKind               // reading the file whole
)

// result is one thing timed, runs times.
type result struct {
	name   string
	path   string
	size   int64
	times  []time.Duration
	kind   kind
	pieces []audio.Piece // of the last run
	read   int64         // bytes Plan read, in the last run
	cuts   cuts          // of the last run
	quiet  int           // pauses ffmpeg found
}

func (r *result) median() time.Duration {
	t := slices.Clone(r.times)
	slices.Sort(t)
	if n := len(t); n%2 == 0 {
		return (t[n/2-1] + t[n/2]) / 2
	}
	return t[len(t)/2]
}

// measure runs the timings of c, interleaved.
func measure(ctx context.Context, c config) ([]result, error) {
	var res []*result
	var run []func(*result) error
	add := func(name, path string, k kind, f func(*result) error) error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		res = append(res, &result{name: name, path: path, size: st.Size(), kind: k})
		run = append(run, f)
		return nil
	}
	plan := func(opts audio.PlanOptions) func(*result) error {
		return func(r *result) error { return planFile(ctx, r, opts, c.seed) }
	}
	sizes := []struct {
		name string
		opts audio.PlanOptions
	}{
		{fmt.Sprintf("%d MiB", audio.DefaultMaxPieceBytes>>20), audio.PlanOptions{}},
		{fmt.Sprintf("%.3g MiB", float64(c.small)/(1<<20)), audio.PlanOptions{MaxBytes: c.small}},
	}
	var errs []error
	if c.mp3 != "" {
		for _, s := range sizes {
			errs = append(errs, add("steno Plan, MP3, pieces <= "+s.name, c.mp3, planKind, plan(s.opts)))
		}
		if c.ffmpeg != "" {
			if bin, err := exec.LookPath(c.ffmpeg); err == nil {
				errs = append(errs, add("ffmpeg silencedetect, MP3", c.mp3, ffmpegKind, func(r *result) error { return silenceDetect(ctx, r, bin) }))
			} else {
				fmt.Fprintln(os.Stderr, "split: no ffmpeg; not comparing with it:", err)
			}
		}
	}
	for _, s := range sizes {
		errs = append(errs, add("steno Plan, WAV, pieces <= "+s.name, c.wav, planKind, plan(s.opts)))
	}
	errs = append(errs, add("read whole WAV, 1 MiB reads", c.wav, readKind, readWhole))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range res { // into the page cache
		if err := readWhole(&result{path: r.path}); err != nil {
			return nil, err
		}
	}
	for range c.runs {
		for i, r := range res {
			start := time.Now()
			if err := run[i](r); err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
			r.times = append(r.times, time.Since(start))
		}
	}
	out := make([]result, len(res))
	for i, r := range res {
		out[i] = *r
	}
	return out, nil
}

// countingReaderAt counts the bytes read from it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// planFile plans r's file with opts, and checks the cuts in pauses
// against the script of seed (unless 0).
func planFile(ctx context.Context, r *result, opts audio.PlanOptions, seed uint64) error {
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := &countingReaderAt{r: f}
	pieces, err := audio.Plan(ctx, cr, r.size, opts)
	if err != nil {
		return err
	}
	r.pieces, r.read = pieces, cr.n.Load()
	if seed != 0 && len(pieces) > 0 {
		r.cuts = checkCuts(pieces, pauses(seed, pieces[len(pieces)-1].End))
	}
	return nil
}

// cuts counts the cuts of a plan by kind.
type cuts struct {
	checked bool
	inPause int // cut in a pause, which is one of the script's
	hard    int // no pause found: cut at the limit, with an overlap
	off     int // cut in a "pause" that is not one of the script's
}

// checkCuts sorts the cuts between pieces by whether they lie in one of
// the pauses ps. A cut is the previous piece's end, which for a cut in a
// pause is where the next piece's audio proper begins (after an MP3
// piece's pre-roll).
func checkCuts(pieces []audio.Piece, ps [][2]time.Duration) cuts {
	c := cuts{checked: true}
	for i := 1; i < len(pieces); i++ {
		cut := pieces[i-1].End
		switch {
		case !pieces[i].Silence:
			c.hard++
		case slices.ContainsFunc(ps, func(p [2]time.Duration) bool { return p[0] <= cut && cut <= p[1] }):
			c.inPause++
		default:
			c.off++
		}
	}
	return c
}

// silenceDetect runs ffmpeg's silencedetect filter over r's file.
func silenceDetect(ctx context.Context, r *result, bin string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-hide_banner", "-nostats", "-i", r.path,
		"-af", "silencedetect=noise=-30dB:d=0.3", "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	r.quiet = bytes.Count(stderr.Bytes(), []byte("silence_end:"))
	return nil
}

// readWhole reads r's file to its end in reads of 1 MiB.
func readWhole(r *result) error {
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// report prints the medians and ratios, and returns an error if a steno
// plan was slower than ffmpeg's silencedetect on the same file.
func report(w io.Writer, res []result, runs int) error {
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "timed (median of %d)\tfile\tmedian\tthroughput\tpieces\tcuts in pauses\tbytes read\t\n", runs)
	for _, r := range res {
		med := r.median()
		pieces, cuts, read := "", "", ""
		switch {
		case r.kind == planKind:
			pieces, read = fmt.Sprint(len(r.pieces)), mb(r.read)
			if c := r.cuts; c.checked {
				cuts = fmt.Sprintf("%d/%d", c.inPause, len(r.pieces)-1)
				if c.hard > 0 || c.off > 0 {
					cuts += fmt.Sprintf(" (%d hard, %d off)", c.hard, c.off)
				}
			}
		case r.kind == ffmpegKind:
			pieces, read = fmt.Sprintf("(%d pauses)", r.quiet), mb(r.size)
		case r.kind == readKind:
			read = mb(r.size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f MB/s\t%s\t%s\t%s\t\n", r.name, mb(r.size), fmtDur(med),
			float64(r.size)/1e6/med.Seconds(), pieces, cuts, read)
	}
	tw.Flush()

	var errs []error
	for _, base := range res {
		if base.kind == planKind {
			continue
		}
		for _, r := range res {
			if r.kind != planKind || r.path != base.path {
				continue
			}
			ratio := base.median().Seconds() / r.median().Seconds()
			if base.kind == ffmpegKind {
				fmt.Fprintf(w, "ratio time ffmpeg/steno, %s: %.1fx\n", r.name, ratio)
				if ratio < 1 {
					errs = append(errs, fmt.Errorf("%s: slower than ffmpeg silencedetect", r.name))
				}
			} else {
				fmt.Fprintf(w, "ratio throughput plan/read, %s: %.1fx\n", r.name, ratio)
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
