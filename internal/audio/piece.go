package audio

import (
	"bytes"
	"encoding/binary"
	"io"
	"time"
)

// Piece is one part of a cut file: a standalone file of the same format,
// or of FLAC where the file was re-encoded (see Plan).
type Piece struct {
	Index int
	// Start is where the piece's audio starts in the original, pre-roll
	// included; End is where it ends.
	Start, End time.Duration
	// Offset is to be added to times within the piece to get times in the
	// original: the time of its first sample (WAV) or first frame (MP3)
	// in the original, which is Start, less for MP3 the codec delay that
	// the file's LAME tag declares (encoder delay plus 529 samples, under
	// 0.6 s): a decoder that reads the tag skips it, and one decoding the
	// piece, which has no tag, does not. Offset may be negative for the
	// first piece; times it makes negative are 0.
	Offset time.Duration
	// Overlap is the audio shared with the previous piece: the previous
	// End minus Start. After a hard cut (no pause found), it is about
	// PlanOptions.Overlap plus PreRoll; after a cut in a pause, PreRoll
	// alone (0 for WAV), which lies in the pause.
	Overlap time.Duration
	// PreRoll is audio at the start of an MP3 piece, before the cut, that
	// is sent only so that the decoder's bit reservoir and filters are
	// filled when the audio after the cut comes: a few frames. Its first
	// frame may decode as noise. Part of Overlap.
	PreRoll time.Duration
	// Silence reports whether the cut before this piece (Index > 0) fell
	// in a pause.
	Silence bool
	// Floor and Speech are the recording's noise floor and speech level,
	// in dBFS (of 20 ms blocks), as the planner judged them at the cut
	// before this piece (Index > 0): from all it had measured of the file
	// by then. PauseLevel is the loudest block of the pause cut in, when
	// Silence: at most 12 dB above Floor and at least 20 dB below Speech
	// (or digital silence). All are 0 where nothing was measured (the
	// first piece; a cut in audio that could not be decoded).
	Floor, Speech, PauseLevel float32
	// Spans, when the piece leaves silence out (PlanOptions.SkipPause),
	// are the stretches of the original it holds, one after the other;
	// nil when it holds all of Start to End. Sent is how long the piece's
	// audio plays, where the plan looked for silence: End - Start, less
	// what it leaves out; 0 otherwise.
	Spans []Span
	Sent  time.Duration
	// Size is the piece's length in bytes, headers included.
	Size   int64
	Format Format
	// Open returns the piece's bytes from the start. It may be called
	// many times, concurrently; each reader must be closed.
	Open func() (io.ReadCloser, error)

	temp string // the temporary file Open reads, removed by Release
	// from and to delimit the piece in the original: sample frames (WAV,
	// re-encoded FLAC) or MP3 frames, pre the frames of its pre-roll.
	from, to, pre int64
}

// section returns an Open function for bytes [off, off+n) of r, after
// head.
func section(r io.ReaderAt, head []byte, off, n int64) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		sr := io.NewSectionReader(r, off, n)
		if len(head) == 0 {
			return io.NopCloser(sr), nil
		}
		return io.NopCloser(io.MultiReader(bytes.NewReader(head), sr)), nil
	}
}

// wavHeader returns the header of a WAV file with f's fmt chunk (copied
// verbatim, WAVE_FORMAT_EXTENSIBLE included) and dataSize bytes of
// samples: RIFF, fmt and data chunk headers, 44 bytes for a plain fmt
// chunk.
func wavHeader(f wavFormat, dataSize int64) []byte {
	fc := f.fmtChunk
	pad := len(fc) & 1
	h := make([]byte, 0, 12+len(fc)+pad+8)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(4+len(fc)+pad+8+int(dataSize)))
	h = append(h, "WAVE"...)
	h = append(h, fc...)
	h = append(h, make([]byte, pad)...)
	h = append(h, "data"...)
	return binary.LittleEndian.AppendUint32(h, uint32(dataSize))
}
