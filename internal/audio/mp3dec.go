package audio

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hajimehoshi/go-mp3"
)

// mp3File locates the audio frames of an MP3 file.
type mp3File struct {
	r     io.ReaderAt
	size  int64
	audio int64     // the first audio frame (after ID3v2 tags and a Xing/Info/VBRI frame)
	end   int64     // end of the frames (before an ID3v1 tag)
	first mp3Header // the first frame's header: sample rate, samples per frame
	delay int64     // samples a decoder yields before the audio starts, when the tag says (see mp3Scan.tag)
}

// scanMP3 finds the first audio frame of the MP3 file r.
func scanMP3(r io.ReaderAt, size int64) (*mp3File, error) {
	m := &mp3File{r: r, size: size, end: size}
	w := &window{r: r, size: size, buf: make([]byte, SniffLen)}
	start := skipID3(w)
	if t := w.peek(size-128, 3); size-128 >= start && len(t) >= 3 && string(t[:3]) == "TAG" {
		m.end -= 128
	}
	if mp3FreeFormat(w.peek(start, 4)) {
		return nil, fmt.Errorf("%w: free-format bitstream", ErrBadMP3)
	}
	s := mp3Scan{w: w, end: m.end}
	pos, ok := s.resync(start)
	if w.err != nil {
		return nil, fmt.Errorf("audio: %w", w.err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: no MPEG audio frame", ErrNotAudio)
	}
	m.first, _ = s.header(pos)
	if _, delay, tagged := s.tag(pos, m.first); tagged {
		m.delay = delay
		pos += int64(m.first.length)
	}
	m.audio = pos
	return m, nil
}

// scan returns a frame walker over m with a buffer of n bytes of its own.
func (m *mp3File) scan(n int) *mp3Scan {
	return &mp3Scan{w: &window{r: m.r, size: m.size, buf: make([]byte, n)}, end: m.end, first: m.first}
}

// goDecodes reports whether go-mp3 is to decode the stream: it does MPEG-1
// and MPEG-2, not MPEG-2.5 (sample rates under 16 kHz). At 22.05 kHz it
// takes some padded frames for a byte shorter than they are (v0.3.4: a
// lame 32 kbps file decodes to noise), so ffmpeg decodes those where it
// is on PATH.
func (m *mp3File) goDecodes() bool {
	if m.first.rate == 22050 {
		_, err := lookFFmpeg()
		return err != nil
	}
	return m.first.rate >= 16000
}

// spf returns the number of samples per frame.
func (m *mp3File) spf() int64 { return m.first.samples() }

// frameTime returns when frame i starts.
func (m *mp3File) frameTime(i int64) time.Duration { return samplesDuration(i*m.spf(), m.first.rate) }

// next returns the first frame at or after pos, resyncing past garbage of
// any length.
func (s *mp3Scan) next(pos int64) (int64, mp3Header, bool) {
	if h, ok := s.header(pos); ok {
		return pos, h, true
	}
	for from := pos + 1; from < s.end && s.w.err == nil; from += resyncWindow {
		if off, ok := s.resync(from); ok {
			h, _ := s.header(off)
			return off, h, true
		}
	}
	return 0, mp3Header{}, false
}

// mp3Feeder is an io.Reader of whole MPEG audio frames, found by walking a
// file from an offset: what lies between frames is left out, so that the
// decoder's output counts frames exactly.
type mp3Feeder struct {
	s       *mp3Scan
	pos     int64 // where to look for the next frame
	left    int64 // frames still to start; negative: no limit
	off, n  int64 // the rest of the current frame
	started int64 // frames begun
	flags   int64 // where the current frame's last header byte is
}

func (f *mp3Feeder) Read(p []byte) (int, error) {
	if f.n == 0 {
		if f.left == 0 {
			return 0, io.EOF
		}
		off, h, ok := f.s.next(f.pos)
		if !ok {
			return 0, f.err()
		}
		f.off, f.n, f.pos, f.flags = off, int64(h.length), off+int64(h.length), off+3
		f.started++
		f.left--
	}
	b := f.s.w.peek(f.off, int(min(f.n, int64(len(f.s.w.buf)))))
	k := copy(p, b[:min(int64(len(b)), f.n)])
	if k == 0 {
		return 0, f.err()
	}
	// go-mp3 takes a header with the reserved emphasis 2 for no header
	// and skips the frame, which would shift what follows by a frame:
	// make it "none", which decodes the same.
	if i := f.flags - f.off; i >= 0 && i < int64(k) && p[i]&3 == 2 {
		p[i] &^= 3
	}
	f.off += int64(k)
	f.n -= int64(k)
	return k, nil
}

func (f *mp3Feeder) err() error {
	if f.s.w.err != nil {
		return f.s.w.err
	}
	return io.EOF
}

// readOnly hides all methods but Read: go-mp3 walks a whole seekable
// source before decoding it.
type readOnly struct{ io.Reader }

// mp3Decoder decodes MPEG-1 and 2 layer III with go-mp3, frame by frame. A
// frame go-mp3 fails on comes out as a frame of gap samples, and decoding
// goes on from the next frame.
type mp3Decoder struct {
	feed  mp3Feeder
	spf   int64
	rate  int
	dec   *mp3.Decoder
	out   int64   // samples go-mp3 has produced since dec began
	base  int64   // frames fed before dec began
	skip  int64   // samples still to discard (pre-roll)
	gaps  int64   // gap samples still to emit
	gap   float32 // their value
	buf   []byte
	fatal error
}

// newMP3Decoder decodes frames walking from offset pos: frames of them
// (all, if negative), of which the first skip are decoded only to fill
// the bit reservoir and the synthesis filters, not returned. Undecodable
// frames yield samples of value gap.
func newMP3Decoder(m *mp3File, pos, frames, skip int64, gap float32) *mp3Decoder {
	return &mp3Decoder{
		feed: mp3Feeder{s: m.scan(32 << 10), pos: pos, left: frames},
		spf:  m.spf(), rate: m.first.rate, skip: skip * m.spf(), gap: gap,
		buf: make([]byte, 16<<10),
	}
}

func (d *mp3Decoder) SampleRate() int { return d.rate }
func (d *mp3Decoder) Close() error    { return nil }

func (d *mp3Decoder) Read(p []float32) (int, error) {
	if len(p) == 0 {
		return 0, nil // decode(0) yields nothing: the loop below would never end
	}
	for {
		if d.gaps > 0 {
			n := int(min(d.gaps, int64(len(p))))
			for i := range n {
				p[i] = d.gap
			}
			d.gaps -= int64(n)
			return n, nil
		}
		if d.fatal != nil {
			return 0, d.fatal
		}
		n, err := d.decode(len(p))
		if n > d.skip {
			k := mixDown(p, d.buf[d.skip*4:n*4], 2, 16, false)
			d.skip = 0
			return k, nil
		}
		d.skip -= n
		if err != nil {
			d.fail(err)
		}
	}
}

// decode reads up to n stereo samples from go-mp3 into d.buf, starting a
// decoder at the next frame if there is none.
func (d *mp3Decoder) decode(n int) (got int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			got, err = 0, fmt.Errorf("go-mp3: %v", p)
		}
	}()
	if d.dec == nil {
		d.base, d.out = d.feed.started, 0
		if d.dec, err = mp3.NewDecoder(readOnly{&d.feed}); err != nil {
			d.dec = nil
			return 0, err
		}
	}
	m, err := d.dec.Read(d.buf[:min(n*4, len(d.buf))])
	d.out += int64(m / 4)
	return int64(m / 4), err
}

// fail handles an error of go-mp3's: at the end of the frames, the end of
// the stream; a read error, fatal; else the frames fed but not decoded
// become gaps and a new decoder starts at the next frame.
func (d *mp3Decoder) fail(err error) {
	d.dec = nil
	if d.feed.s.w.err != nil {
		d.fatal = fmt.Errorf("audio: %w", d.feed.s.w.err)
		return
	}
	if errors.Is(err, io.EOF) { // the feeder has ended
		d.fatal = io.EOF
	}
	d.feed.n = 0 // skip the rest of the frame go-mp3 failed on
	lost := max((d.feed.started-d.base)*d.spf-d.out, 0)
	skipped := min(lost, d.skip)
	d.skip -= skipped
	d.gaps += lost - skipped
}
