package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// ErrNotAudio is returned (wrapped) by Probe for content that is not audio
// in a format the API accepts.
var ErrNotAudio = errors.New("not audio")

// ErrBadFLAC is returned (wrapped) for a FLAC file without a usable
// STREAMINFO block.
var ErrBadFLAC = errors.New("malformed FLAC header")

// EstimateByteRate is the rate, in bytes per second (32 kbit/s), at which
// Probe estimates the duration of formats it cannot measure. It is low, so
// that estimates run long and budgets based on them err on the safe side.
const EstimateByteRate = 4000

// Info is what Probe learns of a file.
type Info struct {
	Format Format
	// Duration is how long the audio plays; 0 when unknown.
	Duration time.Duration
	// Exact is true when Duration was read from the container (a WAV or
	// FLAC header, an MP3 Xing/Info or VBRI tag, or a count of every MP3
	// frame), false when it is an estimate.
	Exact bool
	// SampleRate (samples per second) and Channels are 0 when unknown.
	SampleRate, Channels int
	// Bitrate is in bits per second: a WAV's data rate, or an MP3's (that
	// of its frames when Probe read them all and they share one, else
	// their average); 0 when unknown.
	Bitrate int
}

// Probe reads r (size bytes) and returns its format and duration. It reads
// headers and, for MP3 without a Xing/Info/VBRI tag, every frame header,
// moving from frame to frame through a small buffer: memory does not depend
// on size. Formats whose duration it cannot read (Ogg, MP4, WebM) get an
// estimate at EstimateByteRate, with Exact false. Content that is not audio
// gets Format Unknown and an error wrapping ErrNotAudio; a malformed file of
// a known format gets that Format and an error wrapping ErrBadWAV,
// ErrBadFLAC or ErrBadMP3.
func Probe(r io.ReaderAt, size int64) (Info, error) {
	size = max(size, 0)
	sr := io.NewSectionReader(r, 0, size)
	w := &window{r: sr, size: size, buf: make([]byte, SniffLen)}
	head := w.peek(0, SniffLen)
	f := Sniff(head)
	if f == Unknown && mp3FreeFormat(head) {
		f = MP3 // for its error
	}
	var info Info
	var err error
	switch f {
	case WAV:
		info, err = probeWAV(sr, size)
	case MP3:
		info, err = probeMP3(w)
	case FLAC:
		info, err = probeFLAC(w)
	case Ogg, MP4, WebM:
		info = Info{Format: f, Duration: samplesDuration(size, EstimateByteRate)}
	default:
		err = fmt.Errorf("%w: format not recognised", ErrNotAudio)
	}
	if w.err != nil {
		return Info{Format: f}, fmt.Errorf("audio: probe: %w", w.err)
	}
	return info, err
}

// probeWAV measures a WAV file from its header.
func probeWAV(r io.ReaderAt, size int64) (Info, error) {
	wi, err := ReadWAVInfo(r, size)
	if err != nil {
		return Info{Format: WAV}, err
	}
	info := Info{Format: WAV, SampleRate: wi.SampleRate, Channels: wi.Channels, Bitrate: wi.ByteRate * 8}
	switch wi.FormatTag {
	case 1, 3, 6, 7, 0xFFFE: // PCM, float, A-law, µ-law: a block is one sample per channel
		info.Exact = true
		info.Bitrate = wi.SampleRate * wi.BlockAlign * 8
		info.Duration = samplesDuration(wi.DataSize/int64(wi.BlockAlign), wi.SampleRate)
	default: // compressed (ADPCM, MPEG, …): trust the declared byte rate
		info.Duration = samplesDuration(wi.DataSize, wi.ByteRate)
		if wi.ByteRate <= 0 {
			info.Duration = samplesDuration(wi.DataSize, EstimateByteRate)
		}
	}
	return info, nil
}

// probeFLAC measures a FLAC stream from its STREAMINFO block.
func probeFLAC(w *window) (Info, error) {
	info := Info{Format: FLAC}
	// "fLaC", then a metadata block header (last-block flag and type 0,
	// 24-bit length) and the 34-byte STREAMINFO block.
	b := w.peek(skipID3(w), 4+4+34)
	if len(b) < 4+4+34 || b[4]&0x7F != 0 || int(b[5])<<16|int(b[6])<<8|int(b[7]) < 34 {
		return info, fmt.Errorf("%w: no STREAMINFO block", ErrBadFLAC)
	}
	x := binary.BigEndian.Uint64(b[8+10:])
	info.SampleRate = int(x >> 44)   // 20 bits
	info.Channels = int(x>>41&7) + 1 // 3 bits
	total := int64(x & (1<<36 - 1))  // 36 bits; 0: unknown
	if info.SampleRate == 0 {
		return info, fmt.Errorf("%w: sample rate 0", ErrBadFLAC)
	}
	if total == 0 {
		info.Duration = samplesDuration(w.size, EstimateByteRate)
		return info, nil
	}
	info.Duration, info.Exact = samplesDuration(total, info.SampleRate), true
	return info, nil
}

// samplesDuration returns how long n samples last at rate per second,
// rounded down to the nanosecond, without overflowing.
func samplesDuration(n int64, rate int) time.Duration {
	if n <= 0 || rate <= 0 {
		return 0
	}
	r := int64(rate)
	s := n / r
	if s >= math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s)*time.Second + time.Duration(n%r*int64(time.Second)/r)
}

// window reads a file through a buffer that moves to wherever it is asked to
// read, so walking a file costs no memory but the buffer's.
type window struct {
	r    io.ReaderAt
	size int64 // lowered if r ends before it
	buf  []byte
	off  int64 // file offset of buf[0]
	n    int   // valid bytes in buf
	err  error // first read error other than io.EOF; reads stop at it
}

// peek returns the buffered bytes from off on: at least n of them (n at most
// len(w.buf)) unless the file ends sooner. It refills the buffer from off
// only when it holds fewer. Out of range, or after a read error, it returns
// nil.
func (w *window) peek(off int64, n int) []byte {
	if off < 0 || off >= w.size || w.err != nil {
		return nil
	}
	end := w.off + int64(w.n)
	if off < w.off || off > end || (end-off < int64(n) && end < w.size) {
		m, err := w.r.ReadAt(w.buf, off)
		if err != nil && err != io.EOF {
			w.err = err
			return nil
		}
		if m < len(w.buf) {
			w.size = min(w.size, off+int64(m))
		}
		w.off, w.n = off, m
	}
	return w.buf[off-w.off : w.n]
}
