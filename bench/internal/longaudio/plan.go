package longaudio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/steno-go/steno/internal/audio"
)

// PlanConfig is what MeasurePlans measures.
type PlanConfig struct {
	WAV    string // a 16 kHz mono 16-bit WAV file (as WriteSpeech writes)
	MP3    string // the same audio as MP3; "": none
	Runs   int    // rounds
	Small  int64  // the second, smaller MaxBytes to plan with
	Seed   uint64 // the script of the audio, to check the cuts against; 0: no check
	FFmpeg string // the ffmpeg to compare with; "": none
}

// Kind is what a PlanResult times.
type Kind int

// The kinds of PlanResult.
const (
	PlanKind   Kind = iota // audio.Plan
	FFmpegKind             // ffmpeg's silencedetect
	ReadKind               // reading the file whole
)

// PlanResult is one thing MeasurePlans timed, in every round.
type PlanResult struct {
	Name   string
	Path   string
	Format string // "WAV" or "MP3"
	Size   int64
	Kind   Kind
	Times  []time.Duration // wall time of each round
	CPU    []time.Duration // user + system time of each round (ffmpeg's process, or this one's)
	Pieces []audio.Piece   // of the last round (PlanKind)
	Read   int64           // bytes Plan read, in the last round
	Cuts   Cuts            // of the last round (PlanKind)
	Quiet  int             // pauses ffmpeg found (FFmpegKind)
}

// Median returns the median of ds.
func Median(ds []time.Duration) time.Duration {
	t := slices.Clone(ds)
	slices.Sort(t)
	if n := len(t); n == 0 {
		return 0
	} else if n%2 == 0 {
		return (t[n/2-1] + t[n/2]) / 2
	}
	return t[len(t)/2]
}

// FFmpegArgs are the arguments of the ffmpeg run MeasurePlans compares
// with, after its input file.
var FFmpegArgs = []string{"-af", "silencedetect=noise=-30dB:d=0.3", "-f", "null", "-"}

// MeasurePlans times, in c.Runs interleaved rounds (each round in this
// order, so that they share the machine's state alike):
//
//   - audio.Plan of the MP3 file with the default options (pieces of at
//     most 24 MiB) and with MaxBytes c.Small, for more cuts;
//   - ffmpeg -hide_banner -nostats -i MP3 -af silencedetect=noise=-30dB:d=0.3
//     -f null -, which decodes the whole file to find its pauses (skipped
//     if c.FFmpeg is empty or not found);
//   - the same three of the WAV file;
//   - reading the WAV file whole in reads of 1 MiB, the speed of the disk
//     (of the page cache: both files are read once before any timing).
//
// For each plan it keeps the pieces of the last round, the bytes it read,
// and how its cuts lie against the script's pauses (with c.Seed); for
// ffmpeg, how many pauses it found.
func MeasurePlans(ctx context.Context, c PlanConfig) ([]PlanResult, error) {
	var res []*PlanResult
	var run []func(*PlanResult) error
	add := func(name, path, format string, k Kind, f func(*PlanResult) error) error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		res = append(res, &PlanResult{Name: name, Path: path, Format: format, Size: st.Size(), Kind: k})
		run = append(run, f)
		return nil
	}
	plan := func(opts audio.PlanOptions) func(*PlanResult) error {
		return func(r *PlanResult) error { return planFile(ctx, r, opts, c.Seed) }
	}
	sizes := []struct {
		name string
		opts audio.PlanOptions
	}{
		{fmt.Sprintf("%d MiB", audio.DefaultMaxPieceBytes>>20), audio.PlanOptions{}},
		{fmt.Sprintf("%.3g MiB", float64(c.Small)/(1<<20)), audio.PlanOptions{MaxBytes: c.Small}},
	}
	ffmpeg := ""
	if c.FFmpeg != "" {
		if bin, err := exec.LookPath(c.FFmpeg); err == nil {
			ffmpeg = bin
		}
	}
	var errs []error
	for _, f := range []struct{ format, path string }{{"MP3", c.MP3}, {"WAV", c.WAV}} {
		if f.path == "" {
			continue
		}
		for _, s := range sizes {
			errs = append(errs, add("steno Plan, pieces ≤ "+s.name, f.path, f.format, PlanKind, plan(s.opts)))
		}
		if ffmpeg != "" {
			errs = append(errs, add("ffmpeg silencedetect", f.path, f.format, FFmpegKind, func(r *PlanResult) error { return silenceDetect(ctx, r, ffmpeg) }))
		}
	}
	errs = append(errs, add("read whole file, 1 MiB reads", c.WAV, "WAV", ReadKind, func(r *PlanResult) error { return readWhole(r.Path) }))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range res { // into the page cache
		if err := readWhole(r.Path); err != nil {
			return nil, err
		}
	}
	for range c.Runs {
		for i, r := range res {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			cpu0 := selfCPU()
			start := time.Now()
			if err := run[i](r); err != nil {
				return nil, fmt.Errorf("%s, %s: %w", r.Name, r.Format, err)
			}
			r.Times = append(r.Times, time.Since(start))
			if r.Kind != FFmpegKind {
				r.CPU = append(r.CPU, selfCPU()-cpu0)
			}
		}
	}
	out := make([]PlanResult, len(res))
	for i, r := range res {
		out[i] = *r
	}
	return out, nil
}

// selfCPU returns this process's user + system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
func planFile(ctx context.Context, r *PlanResult, opts audio.PlanOptions, seed uint64) error {
	f, err := os.Open(r.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := &countingReaderAt{r: f}
	pieces, err := audio.Plan(ctx, cr, r.Size, opts)
	if err != nil {
		return err
	}
	r.Pieces, r.Read = pieces, cr.n.Load()
	if seed != 0 && len(pieces) > 0 {
		r.Cuts = CheckCuts(pieces, Pauses(seed, pieces[len(pieces)-1].End))
	}
	return nil
}

// Cuts counts the cuts of a plan by kind.
type Cuts struct {
	Checked bool
	InPause int // cut in a pause, which is one of the script's
	Hard    int // no pause found: cut at the limit, with an overlap
	Off     int // cut in a "pause" that is not one of the script's
}

// CheckCuts sorts the cuts between pieces by whether they lie in one of
// the pauses ps. A cut is the previous piece's end, which for a cut in a
// pause is where the next piece's audio proper begins (after an MP3
// piece's pre-roll).
func CheckCuts(pieces []audio.Piece, ps [][2]time.Duration) Cuts {
	c := Cuts{Checked: true}
	for i := 1; i < len(pieces); i++ {
		cut := pieces[i-1].End
		switch {
		case !pieces[i].Silence:
			c.Hard++
		case slices.ContainsFunc(ps, func(p [2]time.Duration) bool { return p[0] <= cut && cut <= p[1] }):
			c.InPause++
		default:
			c.Off++
		}
	}
	return c
}

// silenceDetect runs ffmpeg's silencedetect filter over r's file.
func silenceDetect(ctx context.Context, r *PlanResult, bin string) error {
	var stderr bytes.Buffer
	args := append([]string{"-hide_banner", "-nostats", "-i", r.Path}, FFmpegArgs...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	r.CPU = append(r.CPU, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	r.Quiet = bytes.Count(stderr.Bytes(), []byte("silence_end:"))
	return nil
}

// readWhole reads the file at path to its end in reads of 1 MiB.
func readWhole(path string) error {
	f, err := os.Open(path)
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
