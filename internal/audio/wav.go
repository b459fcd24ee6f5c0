package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAVInfo describes the PCM stream of a RIFF/WAVE file.
type WAVInfo struct {
	FormatTag     uint16 // 1 PCM, 3 IEEE float, 0xFFFE extensible
	Channels      int
	SampleRate    int
	ByteRate      int // average bytes per second, as the header declares
	BitsPerSample int
	BlockAlign    int   // bytes per sample frame, all channels
	DataOffset    int64 // where the samples start in the file
	DataSize      int64 // bytes of samples (clipped to the file's size)
}

// Seconds returns how long the samples play.
func (w WAVInfo) Seconds() float64 {
	if w.BlockAlign <= 0 || w.SampleRate <= 0 {
		return 0
	}
	return float64(w.DataSize/int64(w.BlockAlign)) / float64(w.SampleRate)
}

// ErrBadWAV is returned (wrapped) for a RIFF/WAVE file whose header cannot
// be used.
var ErrBadWAV = errors.New("malformed WAV header")

// ReadWAVInfo reads the chunk headers of the WAV file r (of size bytes) up to
// its data chunk. Chunks such as LIST, fact or JUNK before "data" are skipped,
// and so are fmt chunks after the first; a "data" chunk whose size runs past
// the end of the file (as streaming writers leave it) is clipped to the file.
func ReadWAVInfo(r io.ReaderAt, size int64) (WAVInfo, error) {
	info, _, err := readWAVInfo(r, size)
	return info, err
}

// readWAVInfo is ReadWAVInfo, also returning the bytes of the file that
// hold the fmt chunk it read, its header included.
func readWAVInfo(r io.ReaderAt, size int64) (info WAVInfo, fmtChunk *io.SectionReader, err error) {
	var hdr [12]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return info, nil, fmt.Errorf("%w: %v", ErrBadWAV, err)
	}
	if (string(hdr[0:4]) != "RIFF" && string(hdr[0:4]) != "RF64") || string(hdr[8:12]) != "WAVE" {
		return info, nil, fmt.Errorf("%w: no RIFF/WAVE signature", ErrBadWAV)
	}
	haveFmt := false
	for off := int64(12); off+8 <= size; {
		var ch [8]byte
		if _, err := r.ReadAt(ch[:], off); err != nil {
			return info, nil, fmt.Errorf("%w: %v", ErrBadWAV, err)
		}
		id, n := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:8]))
		body := off + 8
		switch id {
		case "fmt ":
			if haveFmt {
				break // only the first counts, as for ffmpeg and readWAVFormat
			}
			if n < 16 {
				return info, nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrBadWAV, n)
			}
			var f [16]byte
			if _, err := r.ReadAt(f[:], body); err != nil {
				return info, nil, fmt.Errorf("%w: %v", ErrBadWAV, err)
			}
			info.FormatTag = binary.LittleEndian.Uint16(f[0:2])
			info.Channels = int(binary.LittleEndian.Uint16(f[2:4]))
			info.SampleRate = int(binary.LittleEndian.Uint32(f[4:8]))
			info.ByteRate = int(binary.LittleEndian.Uint32(f[8:12]))
			info.BlockAlign = int(binary.LittleEndian.Uint16(f[12:14]))
			info.BitsPerSample = int(binary.LittleEndian.Uint16(f[14:16]))
			if info.Channels == 0 || info.SampleRate == 0 || info.BlockAlign == 0 {
				return info, nil, fmt.Errorf("%w: zero channels, rate or block size", ErrBadWAV)
			}
			haveFmt, fmtChunk = true, io.NewSectionReader(r, off, 8+n)
		case "data":
			if !haveFmt {
				return info, nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrBadWAV)
			}
			info.DataOffset = body
			info.DataSize = min(n, size-body)
			if n == 0xFFFFFFFF || n == 0 { // streamed or RF64: to the end
				info.DataSize = size - body
			}
			return info, fmtChunk, nil
		}
		off = body + n + n&1 // chunks are padded to even sizes
	}
	return info, nil, fmt.Errorf("%w: no data chunk", ErrBadWAV)
}

// WriteWAVHeader writes the 44-byte header of a PCM WAV file whose samples
// (dataSize bytes of little-endian integers) follow.
func WriteWAVHeader(w io.Writer, sampleRate, channels, bitsPerSample int, dataSize int64) error {
	if dataSize < 0 || dataSize > math.MaxUint32-36 {
		return fmt.Errorf("audio: WAV data size %d out of range", dataSize)
	}
	block := channels * bitsPerSample / 8
	var h [44]byte
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+dataSize))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(sampleRate))
	binary.LittleEndian.PutUint32(h[28:], uint32(sampleRate*block))
	binary.LittleEndian.PutUint16(h[32:], uint16(block))
	binary.LittleEndian.PutUint16(h[34:], uint16(bitsPerSample))
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(dataSize))
	_, err := w.Write(h[:])
	return err
}

// SynthWAV writes a 16-bit mono PCM WAV file of n samples at sampleRate,
// sample i being sample(i) (clipped to [-1, 1]). It streams: memory does not
// depend on n. Tests and demos use it to make audio with known content.
func SynthWAV(w io.Writer, sampleRate, n int, sample func(i int) float64) error {
	if err := WriteWAVHeader(w, sampleRate, 1, 16, int64(n)*2); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	var b [2]byte
	for i := range n {
		v := max(-1, min(1, sample(i)))
		binary.LittleEndian.PutUint16(b[:], uint16(int16(math.Round(v*32767))))
		if _, err := bw.Write(b[:]); err != nil {
			return err
		}
	}
	return bw.Flush()
}
