package audio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// A Decoder streams audio as mono float32 samples, nominally in [-1, 1]:
// the channels of the file mixed down. It decodes as it is read, through
// buffers of a fixed size: memory does not depend on the file's length.
type Decoder interface {
	// SampleRate returns the number of samples per second Read yields.
	SampleRate() int
	// Read decodes up to len(p) samples into p. It returns io.EOF, with
	// n == 0, at the end of the audio.
	Read(p []float32) (n int, err error)
	// Close releases the decoder (for ffmpeg, ends the process).
	Close() error
}

// ErrUnsupportedWAV is returned (wrapped) for a WAV file whose samples are
// not integer PCM (8, 16, 24 or 32 bits) or IEEE float (32 or 64 bits),
// plain or WAVE_FORMAT_EXTENSIBLE, at up to maxWAVRate: such a file can be
// measured and sent whole, but not decoded or cut.
var ErrUnsupportedWAV = errors.New("unsupported WAV encoding")

// maxWAVRate is the highest sample rate decoded, 1 GHz: above it, times (in
// nanoseconds) no longer tell consecutive samples apart, and a cut file's
// pieces would start and end at the same times.
const maxWAVRate = int(time.Second)

// NewDecoder returns a Decoder for the audio file r of size bytes: WAV and
// MP3 (MPEG-1 and 2 layer III) are decoded in Go; other formats, MPEG-2.5
// MP3, and 22.05 kHz MP3 where ffmpeg is on PATH (see mp3File.goDecodes),
// by an ffmpeg process reading r (see ErrNeedsFFmpeg), yielding 16 kHz.
// ctx bounds the ffmpeg process; Go decoders ignore it. The Decoder reads r
// until it is closed.
func NewDecoder(ctx context.Context, r io.ReaderAt, size int64) (Decoder, error) {
	size = max(size, 0)
	w := &window{r: r, size: size, buf: make([]byte, SniffLen)}
	f := Sniff(w.peek(0, SniffLen))
	if w.err != nil {
		return nil, fmt.Errorf("audio: decode: %w", w.err)
	}
	switch f {
	case WAV:
		wf, err := readWAVFormat(r, size)
		if err != nil {
			return nil, err
		}
		return newWAVDecoder(r, wf, 0, wf.frames())
	case MP3:
		s, err := scanMP3(r, size)
		if err != nil {
			return nil, err
		}
		if s.goDecodes() {
			return newMP3Decoder(s, s.audio, -1, 0, 0), nil
		}
	case Unknown:
		return nil, fmt.Errorf("audio: decode: %w: format not recognised", ErrNotAudio)
	}
	return newFFmpegDecoder(ctx, f, r, size)
}

// wavFormat is a WAV file's header as decoding and cutting need it.
type wavFormat struct {
	WAVInfo
	fmtChunk []byte // the "fmt " chunk, header included, as the file has it
	codec    uint16 // 1 integer PCM, 3 IEEE float (from the subformat if extensible), else other
}

// frames returns the number of whole sample frames (blocks) in the data.
func (f wavFormat) frames() int64 { return f.DataSize / int64(f.BlockAlign) }

// decodable reports whether the samples are a kind decodeWAV converts.
func (f wavFormat) decodable() bool {
	b := f.BitsPerSample
	ok := (f.codec == 1 && (b == 8 || b == 16 || b == 24 || b == 32)) || (f.codec == 3 && (b == 32 || b == 64))
	return ok && f.BlockAlign == f.Channels*b/8 && f.SampleRate <= maxWAVRate
}

// readWAVFormat reads the header of the WAV file r: its data chunk (see
// ReadWAVInfo) and its fmt chunk, kept verbatim.
func readWAVFormat(r io.ReaderAt, size int64) (wavFormat, error) {
	info, chunk, err := readWAVInfo(r, size)
	if err != nil {
		return wavFormat{}, err
	}
	f := wavFormat{WAVInfo: info, codec: info.FormatTag}
	if chunk.Size() > 8+1<<10 {
		return f, fmt.Errorf("%w: fmt chunk of %d bytes", ErrBadWAV, chunk.Size()-8)
	}
	f.fmtChunk = make([]byte, chunk.Size())
	if _, err := chunk.ReadAt(f.fmtChunk, 0); err != nil {
		return f, fmt.Errorf("%w: %v", ErrBadWAV, err)
	}
	// WAVE_FORMAT_EXTENSIBLE: cbSize, valid bits, channel mask, then a
	// GUID whose first two bytes are the format tag.
	if f.FormatTag == 0xFFFE {
		f.codec = 0
		if b := f.fmtChunk[8:]; len(b) >= 40 {
			f.codec = binary.LittleEndian.Uint16(b[24:])
		}
	}
	return f, nil
}

// wavDecoder converts the PCM of a WAV file to mono float32.
type wavDecoder struct {
	f   wavFormat
	r   *io.SectionReader
	buf []byte
}

// newWAVDecoder returns a Decoder for sample frames [from, to) of f's data.
func newWAVDecoder(r io.ReaderAt, f wavFormat, from, to int64) (*wavDecoder, error) {
	if !f.decodable() {
		return nil, fmt.Errorf("audio: %w: format tag %#x (codec %#x), %d bits at %d Hz", ErrUnsupportedWAV, f.FormatTag, f.codec, f.BitsPerSample, f.SampleRate)
	}
	block := int64(f.BlockAlign)
	n := max(32<<10/f.BlockAlign, 1) * f.BlockAlign
	return &wavDecoder{f: f, r: io.NewSectionReader(r, f.DataOffset+from*block, (to-from)*block), buf: make([]byte, n)}, nil
}

func (d *wavDecoder) SampleRate() int { return d.f.SampleRate }
func (d *wavDecoder) Close() error    { return nil }

func (d *wavDecoder) Read(p []float32) (int, error) {
	block := d.f.BlockAlign
	n := min(len(p)*block, len(d.buf))
	if n == 0 {
		return 0, nil
	}
	m, err := io.ReadFull(d.r, d.buf[:n])
	m -= m % block
	if m == 0 {
		if err == nil || err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return 0, err
	}
	return mixDown(p, d.buf[:m], d.f.Channels, d.f.BitsPerSample, d.f.codec == 3), nil
}

// mixDown converts the interleaved little-endian samples in b (whole
// frames of ch channels) to mono in p, the mean of the channels, and
// returns the number of frames.
func mixDown(p []float32, b []byte, ch, bits int, float bool) int {
	size := bits / 8
	scale := 1 / float32(ch)
	n := len(b) / (ch * size)
	if ch == 1 && size == 2 && !float { // the common case, without the switch
		for i := range n {
			p[i] = float32(int16(binary.LittleEndian.Uint16(b[2*i:]))) / (1 << 15)
		}
		return n
	}
	for i := range n {
		var sum float32
		for c := range ch {
			s := b[(i*ch+c)*size:]
			switch {
			case float && size == 4:
				sum += math.Float32frombits(binary.LittleEndian.Uint32(s))
			case float:
				sum += float32(math.Float64frombits(binary.LittleEndian.Uint64(s)))
			case size == 1:
				sum += float32(int(s[0])-128) / 128
			case size == 2:
				sum += float32(int16(binary.LittleEndian.Uint16(s))) / (1 << 15)
			case size == 3:
				sum += float32(int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24)>>8) / (1 << 23)
			default:
				sum += float32(int32(binary.LittleEndian.Uint32(s))) / (1 << 31)
			}
		}
		p[i] = sum * scale
	}
	return n
}
