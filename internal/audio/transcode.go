package audio

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
)

// Formats that Go does not cut (FLAC, Ogg, MP4/M4A, WebM), and WAV or MP3
// when PlanOptions.Shrink is set, are re-encoded by ffmpeg to 16 kHz mono
// 16-bit FLAC, in a temporary file: what Whisper hears (it resamples every
// input to 16 kHz mono), at a fraction of the size (a 44.1 kHz stereo WAV
// of speech shrinks about eightfold: 8.3x measured on bench/split's
// speech-like audio). If that fits the limits it is the one piece;
// otherwise each cut is found in the re-encoded audio as for WAV (ffmpeg
// decodes only the search window before each limit) and each piece is
// encoded to a FLAC file of its own, sample-exact. A piece's length is
// chosen from the file's average bytes per second with a margin; a piece
// that still comes out too large (FLAC's rate follows the content) is
// encoded again, shorter.

// flacMargin is the fraction of MaxBytes a FLAC piece aims at.
const flacMargin = 0.9

// planFFmpeg re-encodes the file r (of format f) and cuts the result.
func planFFmpeg(ctx context.Context, r io.ReaderAt, size int64, f Format, o PlanOptions) ([]Piece, error) {
	input, stdin, cleanup, err := ffmpegInput(f, r, size, o.TempDir)
	if err != nil {
		return nil, err
	}
	whole, err := encodeFLAC(ctx, f, input, stdin, o.TempDir)
	cleanup()
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w (%w)", err, ErrCannotSplit)
	}
	if err != nil {
		return nil, err
	}
	wf, err := os.Open(whole)
	if err != nil {
		os.Remove(whole)
		return nil, fmt.Errorf("audio: %w", err)
	}
	st, err := wf.Stat()
	var info Info
	if err == nil {
		info, err = Probe(wf, st.Size())
	}
	wf.Close()
	var gaps [][2]int64 // in samples, with SkipPause
	if err == nil && o.SkipPause > 0 && info.Exact && info.Duration > 0 {
		gaps, err = flacGaps(ctx, whole, info, o)
	}
	switch {
	case err == nil && (!info.Exact || info.Duration == 0): // no sample count: ffmpeg skipped all it read as garbage
		err = fmt.Errorf("audio: %w: ffmpeg found no audio in the %s file", ErrCannotSplit, strings.ToUpper(string(f)))
	case err == nil && gaps == nil && st.Size() <= o.MaxBytes && (o.MaxDuration == 0 || info.Duration <= o.MaxDuration):
		p := Piece{End: info.Duration, Size: st.Size(), Format: FLAC, Open: openFile(whole), temp: whole}
		if o.SkipPause > 0 {
			p.Sent = p.End
		}
		return []Piece{p}, nil
	}
	if err != nil {
		os.Remove(whole)
		return nil, err
	}
	defer os.Remove(whole)
	pieces, err := cutFLAC(ctx, whole, st.Size(), info, o, gaps)
	if err != nil {
		Release(pieces)
		return nil, err
	}
	return pieces, nil
}

// needFFmpeg returns the error for a file of format f that must be
// re-encoded to be cut, when ffmpeg is not on PATH; else nil.
func needFFmpeg(f Format) error {
	if _, err := lookFFmpeg(); err != nil {
		return fmt.Errorf("audio: %w: %s: %w", ErrCannotSplit, strings.ToUpper(string(f)), ErrNeedsFFmpeg)
	}
	return nil
}

// flacGaps finds the silence to leave out of the 16 kHz mono FLAC file
// path (see findGaps), in samples; nil when there is none, or nothing but
// silence.
func flacGaps(ctx context.Context, path string, info Info, o PlanOptions) ([][2]int64, error) {
	d, err := startFFmpeg(ctx, FLAC, path, nil, "", FFmpegRate)
	if err != nil {
		return nil, err
	}
	found, err := findGaps(d, o)
	if err != nil {
		return nil, err
	}
	var gaps [][2]int64
	for _, g := range found {
		gaps = append(gaps, [2]int64{durSamples(g.start, FFmpegRate), durSamples(g.end, FFmpegRate)})
	}
	if len(keptRanges(0, durSamples(info.Duration, FFmpegRate), gaps)) == 0 {
		return nil, nil // silence throughout: cut as it is
	}
	return gaps, nil
}

// cutFLAC cuts the 16 kHz mono FLAC file path (size bytes) into pieces of
// their own files, in pauses where it has them, leaving the gaps (in
// samples) out of them.
func cutFLAC(ctx context.Context, path string, size int64, info Info, o PlanOptions, gaps [][2]int64) ([]Piece, error) {
	const rate = FFmpegRate
	total := durSamples(info.Duration, rate)
	perSample := float64(size) / float64(max(total, 1))
	maxN := int64(math.MaxInt64)
	if o.MaxDuration > 0 {
		maxN = durSamples(o.MaxDuration, rate)
	}
	margin := flacMargin
	var pieces []Piece
	var start int64
	var before pause
	var dropped bool // the last piece planned was silence alone
	var h histogram  // of all decoded
	decode := func(from, to int64) (Decoder, error) {
		return startFFmpeg(ctx, FLAC, path, nil, "", rate, "-ss", seconds(from, rate), "-t", seconds(to-from, rate))
	}
	if n := min(maxN, int64(float64(o.MaxBytes)*margin/perSample)); n < total {
		if err := sampleFloor(total, rate, floorFFmpegExcerpts, &h, decode); err != nil {
			return nil, err
		}
	}
	for start < total {
		if err := ctx.Err(); err != nil {
			return pieces, err
		}
		n := min(maxN, int64(float64(o.MaxBytes)*margin/perSample))
		if n < rate {
			return pieces, fmt.Errorf("audio: %w: MaxBytes %d holds under a second of 16 kHz FLAC", ErrCannotSplit, o.MaxBytes)
		}
		cut, next, pa := total, total, pause{}
		if limit := start + n; limit < total {
			if tail := min(durSamples(o.MinTail, rate), n/2); total-limit < tail {
				limit = total - tail // the tail joins this piece's successor, as in planWAV
			}
			var err error
			cut, next, pa, err = cutBefore(start, limit, rate, o, &h, decode)
			if err != nil {
				return pieces, err
			}
		}
		ranges := [][2]int64{{start, cut}}
		if gaps != nil {
			ranges = keptRanges(start, cut, gaps)
		}
		if len(ranges) == 0 { // silence alone: not sent
			start, before, dropped = next, pa, true
			continue
		}
		whole := len(ranges) == 1 && ranges[0] == [2]int64{start, cut}
		var piece string
		var err error
		if whole {
			piece, err = encodeFLAC(ctx, FLAC, path, nil, o.TempDir, "-ss", seconds(start, rate), "-t", seconds(cut-start, rate))
		} else {
			piece, err = encodeRanges(ctx, path, ranges, o.TempDir)
		}
		if err != nil {
			return pieces, err
		}
		st, err := os.Stat(piece)
		if err != nil {
			os.Remove(piece)
			return pieces, fmt.Errorf("audio: %w", err)
		}
		if st.Size() > o.MaxBytes {
			// Denser than the average: aim lower and encode again.
			os.Remove(piece)
			margin *= float64(o.MaxBytes) / float64(st.Size()) * 0.95
			continue
		}
		p := Piece{
			Index: len(pieces), Start: samplesDuration(start, rate), End: samplesDuration(cut, rate),
			Size: st.Size(), Format: FLAC, Open: openFile(piece), temp: piece, from: start, to: cut,
		}
		before.set(&p)
		p.Offset = p.Start
		if k := len(pieces); k > 0 {
			p.Overlap = pieces[k-1].End - p.Start
		}
		if gaps != nil {
			p.Sent = p.End - p.Start
			if !whole {
				var n int64
				for _, k := range ranges {
					p.Spans = append(p.Spans, Span{At: samplesDuration(n, rate), Start: samplesDuration(k[0], rate), End: samplesDuration(k[1], rate)})
					n += k[1] - k[0]
				}
				p.Sent, p.Offset = samplesDuration(n, rate), p.Spans[0].Start
			}
			if dropped { // the piece before was silence alone
				p.Overlap, p.Silence = 0, len(pieces) > 0
			}
		}
		pieces = append(pieces, p)
		start, before, dropped = next, pa, false
	}
	return pieces, nil
}

// encodeFLAC runs ffmpeg to re-encode input (a file name, or "pipe:0" for
// stdin) of format f to 16 kHz mono 16-bit FLAC in a new temporary file in
// dir, and returns its name. Options in pre go before the input's.
func encodeFLAC(ctx context.Context, f Format, input string, stdin io.Reader, dir string, pre ...string) (string, error) {
	path, err := lookFFmpeg()
	if err != nil {
		return "", fmt.Errorf("audio: encoding %s: %w", strings.ToUpper(string(f)), ErrNeedsFFmpeg)
	}
	out, err := os.CreateTemp(dir, "steno-*.flac")
	if err != nil {
		return "", fmt.Errorf("audio: %w", err)
	}
	out.Close()
	args := append(ffmpegArgs(input, stdin != nil, FFmpegRate, pre), "-sample_fmt", "s16", "-c:a", "flac", "-f", "flac", out.Name())
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = stdin
	stderr := &capped{max: 2 << 10}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out.Name())
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("audio: ffmpeg re-encoding %s: %w: %s", strings.ToUpper(string(f)), err, strings.TrimSpace(stderr.String()))
	}
	return out.Name(), nil
}

// seconds formats n samples at rate as seconds for ffmpeg, to the
// microsecond.
func seconds(n int64, rate int) string {
	r := int64(rate)
	return fmt.Sprintf("%d.%06d", n/r, (n%r*1e6+r/2)/r)
}

// openFile returns an Open function for the file at path.
func openFile(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

// Release removes the temporary files that pieces of a re-encoded file
// (see PlanOptions.Shrink) are read from; their Open fails afterwards.
// Pieces that are ranges of the original have none. Call it once the
// pieces have been sent.
func Release(pieces []Piece) {
	for _, p := range pieces {
		if p.temp != "" {
			os.Remove(p.temp)
		}
	}
}
