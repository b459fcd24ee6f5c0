package audio

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrClipTooLarge is returned (wrapped) by Clip when no clip of at least
// the shortest length asked for fits in the bytes allowed.
var ErrClipTooLarge = errors.New("clip too large")

// errReencode is why a clip is re-encoded: a format, or a WAV encoding,
// that is not cut as a byte range.
var errReencode = errors.New("re-encode")

// ClipOptions sets how Clip cuts.
type ClipOptions struct {
	// MaxBytes is the largest clip, header included; a stretch whose
	// bytes are more is shortened from its end, down to MinDuration.
	MaxBytes int64
	// MinDuration is the shortest clip worth having (0: any).
	MinDuration time.Duration
	// TempDir is where ffmpeg writes a re-encoded clip, removed before
	// Clip returns; "" for os.TempDir.
	TempDir string
}

// Clip returns the stretch [from, to) of the audio file r (of size bytes)
// as a standalone file in memory, its format and its length: for WAV, a
// header and the original's sample frames (a byte range, as Plan's
// pieces); for MP3, the original's frames, starting a few frames early so
// that a decoder has what it needs by from (see PreRoll); for other
// formats, or where the byte range would not fit in o.MaxBytes even at
// o.MinDuration (a WAV of a high rate), 16 kHz mono FLAC re-encoded by
// ffmpeg. The stretch is clipped to the audio. A clip that does not fit
// is shortened from its end; one that cannot be both MinDuration long and
// within MaxBytes is an error wrapping ErrClipTooLarge. Memory is the
// clip's bytes.
func Clip(ctx context.Context, r io.ReaderAt, size int64, from, to time.Duration, o ClipOptions) ([]byte, Format, time.Duration, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxPieceBytes
	}
	from = max(from, 0)
	if to <= from {
		return nil, "", 0, fmt.Errorf("audio: clip %v–%v is empty", from, to)
	}
	w := &window{r: r, size: size, buf: make([]byte, SniffLen)}
	f := Sniff(w.peek(0, SniffLen))
	if w.err != nil {
		return nil, "", 0, fmt.Errorf("audio: clip: %w", w.err)
	}
	var (
		b   []byte
		d   time.Duration
		err error
	)
	switch f {
	case WAV:
		b, d, err = clipWAV(r, size, from, to, o)
	case MP3:
		b, d, err = clipMP3(r, size, from, to, o)
	case Unknown:
		_, err = Probe(r, size)
		return nil, "", 0, err
	default:
		err = errReencode
	}
	if errors.Is(err, ErrClipTooLarge) || errors.Is(err, errReencode) {
		b, d, err = clipFFmpeg(ctx, r, size, f, from, to, o)
		f = FLAC
	}
	if err != nil {
		return nil, "", 0, err
	}
	return b, f, d, nil
}

// clipWAV cuts a clip of the WAV file r at sample frames.
func clipWAV(r io.ReaderAt, size int64, from, to time.Duration, o ClipOptions) ([]byte, time.Duration, error) {
	f, err := readWAVFormat(r, size)
	if err != nil {
		return nil, 0, err
	}
	if !f.decodable() {
		return nil, 0, errReencode
	}
	rate, block := int64(f.SampleRate), int64(f.BlockAlign)
	a, z := min(durSamples(from, rate), f.frames()), min(durSamples(to, rate), f.frames())
	head := int64(len(wavHeader(f, 0)))
	if n := (o.MaxBytes - head) / block; z-a > n {
		z = a + max(n, 0)
	}
	d := samplesDuration(z-a, int(rate))
	if z <= a || d < o.MinDuration {
		return nil, 0, fmt.Errorf("audio: %w: %v of %d-byte frames at %d Hz in %d bytes", ErrClipTooLarge, o.MinDuration, block, rate, o.MaxBytes)
	}
	b := make([]byte, head+(z-a)*block)
	copy(b, wavHeader(f, (z-a)*block))
	if n, err := r.ReadAt(b[head:], f.DataOffset+a*block); n < len(b)-int(head) {
		return nil, 0, fmt.Errorf("audio: clip: %w", cmp.Or(err, io.ErrUnexpectedEOF))
	}
	return b, d, nil
}

// clipMP3 cuts a clip of the MP3 file r between frames: those from the
// one holding from (less its pre-roll) to the one holding to.
func clipMP3(r io.ReaderAt, size int64, from, to time.Duration, o ClipOptions) ([]byte, time.Duration, error) {
	m, err := scanMP3(r, size)
	if err != nil {
		return nil, 0, err
	}
	spf, rate := m.spf(), int64(m.first.rate)
	first := durSamples(from, rate) / spf
	last := (durSamples(to, rate) + spf - 1) / spf // frames [first, last)
	// Walk to the first frame, remembering the frames a decoder needs
	// before it (see mp3Planner.preRoll).
	s := m.scan(64 << 10)
	var ring [maxPreRoll + 1]struct {
		off int64
		h   mp3Header
	}
	var i int64
	pos := m.audio
	for ; i < first; i++ {
		off, h, ok := s.next(pos)
		if !ok {
			break
		}
		ring[i%int64(len(ring))] = struct {
			off int64
			h   mp3Header
		}{off, h}
		pos = off + int64(h.length)
	}
	if s.w.err != nil {
		return nil, 0, fmt.Errorf("audio: clip: %w", s.w.err)
	}
	if i < first {
		return nil, 0, fmt.Errorf("audio: clip from %v: the MP3 file ends before it", from)
	}
	pre, reach := int64(1), 511
	if !m.first.mpeg1 {
		pre, reach = 2, 255
	}
	pre = min(pre, first)
	for j := first - pre - 1; j >= 0 && j >= first-maxPreRoll && reach > 0; j-- {
		reach -= ring[j%int64(len(ring))].h.length - 4 - ring[j%int64(len(ring))].h.sideInfo()
		pre++
	}
	start := pos
	if pre > 0 {
		start = ring[(first-pre)%int64(len(ring))].off
	}
	end, frames := pos, int64(0)
	for ; i < last; i++ {
		off, h, ok := s.next(pos)
		if !ok || off+int64(h.length)-start > o.MaxBytes {
			break
		}
		pos = off + int64(h.length)
		end = pos
		frames++
	}
	if s.w.err != nil {
		return nil, 0, fmt.Errorf("audio: clip: %w", s.w.err)
	}
	d := m.frameTime(frames + pre)
	if frames == 0 || m.frameTime(frames) < o.MinDuration {
		return nil, 0, fmt.Errorf("audio: %w: %v of MP3 in %d bytes", ErrClipTooLarge, o.MinDuration, o.MaxBytes)
	}
	b := make([]byte, end-start)
	if n, err := r.ReadAt(b, start); n < len(b) {
		return nil, 0, fmt.Errorf("audio: clip: %w", cmp.Or(err, io.ErrUnexpectedEOF))
	}
	return b, d, nil
}

// clipFFmpeg re-encodes [from, to) of the file r, of format f, to 16 kHz
// mono FLAC, shortened once more if it comes out too large.
func clipFFmpeg(ctx context.Context, r io.ReaderAt, size int64, f Format, from, to time.Duration, o ClipOptions) ([]byte, time.Duration, error) {
	input, stdin, cleanup, err := ffmpegInput(f, r, size, o.TempDir)
	if err != nil {
		return nil, 0, err
	}
	defer cleanup()
	for try := 0; ; try++ {
		if stdin != nil {
			stdin = io.NewSectionReader(r, 0, size) // each run reads it anew
		}
		path, err := encodeFLAC(ctx, f, input, stdin, o.TempDir, "-ss", seconds(durSamples(from, FFmpegRate), FFmpegRate),
			"-t", seconds(durSamples(to-from, FFmpegRate), FFmpegRate))
		if err != nil {
			return nil, 0, err
		}
		b, err := os.ReadFile(path)
		os.Remove(path)
		if err != nil {
			return nil, 0, fmt.Errorf("audio: clip: %w", err)
		}
		info, err := Probe(bytes.NewReader(b), int64(len(b)))
		switch {
		case err != nil:
			return nil, 0, fmt.Errorf("audio: clip: %w", err)
		case info.Duration == 0:
			return nil, 0, fmt.Errorf("audio: clip %v–%v: ffmpeg found no audio", from, to)
		case int64(len(b)) <= o.MaxBytes:
			if info.Duration < o.MinDuration {
				return nil, 0, fmt.Errorf("audio: clip %v–%v: only %v of audio", from, to, info.Duration)
			}
			return b, info.Duration, nil
		}
		short := time.Duration(float64(to-from) * float64(o.MaxBytes) / float64(len(b)) * 0.9)
		if try > 0 || short < o.MinDuration {
			return nil, 0, fmt.Errorf("audio: %w: %v of FLAC in %d bytes", ErrClipTooLarge, o.MinDuration, o.MaxBytes)
		}
		to = from + short
	}
}
