package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// DefaultMaxPieceBytes is the default size limit of a piece: 24 MiB, under
// the API's 25 MB with room for the multipart framing around it.
const DefaultMaxPieceBytes = 24 << 20

// PlanOptions sets how a file is cut. Zero values take the defaults.
type PlanOptions struct {
	MaxBytes     int64         // largest piece in bytes, header included; default DefaultMaxPieceBytes (24 MiB)
	MaxDuration  time.Duration // longest piece; 0 = no limit
	SearchWindow time.Duration // how far before a limit to look for silence; default 60 s
	MinSilence   time.Duration // shortest pause to cut in; default 300 ms
	Overlap      time.Duration // overlap of hard cuts (no silence found); default 2 s
	// Shrink re-encodes a WAV or MP3 file that is over the limits to
	// 16 kHz mono FLAC with ffmpeg, when it is on PATH, before cutting it
	// (other formats always are): fewer pieces or none, at the cost of
	// running ffmpeg over the whole file and of disk space for the result.
	Shrink bool
	// TempDir is where re-encoded audio is written; "" for os.TempDir.
	TempDir string
}

// ErrCannotSplit is returned (wrapped) by Plan for a file that exceeds the
// limits but cannot be cut: an unsupported encoding, or limits too small.
var ErrCannotSplit = errors.New("cannot split audio")

// MinPieceBytes is the smallest PlanOptions.MaxBytes that Plan accepts, so
// that the number of pieces stays proportionate.
const MinPieceBytes = 64 << 10

// minPieceBytes and minPieceDuration bound the limits Plan accepts. Tests
// lower the first.
var minPieceBytes int64 = MinPieceBytes

const minPieceDuration = time.Second

// withDefaults fills in o's zero fields and checks it.
func (o PlanOptions) withDefaults() (PlanOptions, error) {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxPieceBytes
	}
	if o.SearchWindow == 0 {
		o.SearchWindow = 60 * time.Second
	}
	if o.MinSilence == 0 {
		o.MinSilence = 300 * time.Millisecond
	}
	if o.Overlap == 0 {
		o.Overlap = 2 * time.Second
	}
	switch {
	case o.MaxBytes < minPieceBytes:
		return o, fmt.Errorf("audio: %w: MaxBytes %d is under %d", ErrCannotSplit, o.MaxBytes, minPieceBytes)
	case o.MaxDuration != 0 && o.MaxDuration < minPieceDuration:
		return o, fmt.Errorf("audio: %w: MaxDuration %v is under %v", ErrCannotSplit, o.MaxDuration, minPieceDuration)
	case o.SearchWindow < 0 || o.MinSilence < 0 || o.Overlap < 0:
		return o, fmt.Errorf("audio: negative PlanOptions duration")
	}
	return o, nil
}

// Plan cuts the audio file r (of size bytes) into pieces within the limits
// of opts, in order; each piece a standalone file whose bytes are read
// from r when it is opened, so the pieces stay valid while r is.
//
// A file within both limits comes back as one Piece covering it all, Open
// reading the original. Otherwise each cut goes in the best pause (see
// Silences) in the SearchWindow before the limit; only that window is
// decoded, so the time taken depends on the number of cuts, not on the
// file's length, and memory on the window. The window is at most the later
// half of a piece. Where it has no pause of MinSilence, the cut is a hard
// one at the limit, and the next piece repeats the Overlap before it.
//
// WAV (integer PCM or float, WAVE_FORMAT_EXTENSIBLE included) is cut at
// sample frames: each piece is a new header (the original's fmt chunk,
// verbatim) and a range of the original's samples. MP3 is cut between
// frames, without ID3 tags or a Xing/Info frame, each piece after the
// first starting a few frames early (PreRoll) so that it decodes from its
// cut on; go-mp3 decodes the windows (ffmpeg for MPEG-2.5, without which
// all its cuts are hard ones). Other formats (and WAV or MP3 with Shrink)
// are re-encoded by ffmpeg to 16 kHz mono FLAC and cut in that (see
// transcode.go): their pieces are temporary files, which Release removes.
//
// Errors wrap ErrNotAudio, ErrBadWAV, ErrBadMP3, ErrBadFLAC (Probe's, for a
// file within the limits), ErrCannotSplit (with
// ErrUnsupportedWAV for a WAV of another codec, ErrNeedsFFmpeg for another
// format without ffmpeg), an ffmpeg failure, or a read error of r's.
// An empty data chunk or a file of no frames comes back as one piece. A
// file shorter than MinSilence cannot be cut in a pause, but only a file
// over the limits is cut at all.
func Plan(ctx context.Context, r io.ReaderAt, size int64, opts PlanOptions) ([]Piece, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	size = max(size, 0)
	if size <= opts.MaxBytes {
		info, err := Probe(r, size)
		if err != nil {
			return nil, err
		}
		if opts.MaxDuration == 0 || info.Duration <= opts.MaxDuration {
			return []Piece{{End: info.Duration, Size: size, Format: info.Format, Open: section(r, nil, 0, size)}}, nil
		}
	}
	cut, err := prepare(r, size, opts)
	if err != nil {
		return nil, err
	}
	return cut(ctx)
}

// CanPlan reports, cheaply, whether Plan can cut the file r: it reads the
// headers, and looks for ffmpeg where Plan would need it, but decodes and
// re-encodes nothing. It returns nil, or the error Plan would return for
// the file's format or header; Plan may still fail on what it finds in
// the audio.
func CanPlan(r io.ReaderAt, size int64, opts PlanOptions) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	_, err = prepare(r, max(size, 0), opts)
	return err
}

// prepare reads the headers of the file r and returns the function that
// cuts it, or the error that stops Plan before any decoding.
func prepare(r io.ReaderAt, size int64, o PlanOptions) (func(context.Context) ([]Piece, error), error) {
	w := &window{r: r, size: size, buf: make([]byte, SniffLen)}
	f := Sniff(w.peek(0, SniffLen))
	if w.err != nil {
		return nil, fmt.Errorf("audio: plan: %w", w.err)
	}
	reencode := func(ctx context.Context) ([]Piece, error) { return planFFmpeg(ctx, r, size, f, o) }
	if _, err := lookFFmpeg(); o.Shrink && (f == WAV || f == MP3) && err == nil {
		return reencode, nil
	}
	switch f {
	case WAV:
		wf, err := readWAVFormat(r, size)
		if err == nil {
			err = wf.cuttable()
		}
		return func(ctx context.Context) ([]Piece, error) { return planWAV(ctx, r, wf, o) }, err
	case MP3:
		m, err := scanMP3(r, size)
		return func(ctx context.Context) ([]Piece, error) { return planMP3(ctx, m, o) }, err
	case Unknown:
		_, err := Probe(r, size)
		return nil, err
	}
	return reencode, needFFmpeg(f)
}

// cuttable returns why a WAV file of format f cannot be cut, or nil.
func (f wavFormat) cuttable() error {
	if f.decodable() {
		return nil
	}
	return fmt.Errorf("audio: %w: WAV of format tag %#x (codec %#x), %d bits: %w", ErrCannotSplit, f.FormatTag, f.codec, f.BitsPerSample, ErrUnsupportedWAV)
}

// durSamples returns the number of samples in d at rate, rounded down.
func durSamples(d time.Duration, rate int64) int64 {
	s := int64(d / time.Second)
	if s > math.MaxInt64/max(rate, 1)-1 {
		return math.MaxInt64 / 2
	}
	return s*rate + int64(d%time.Second)*rate/int64(time.Second)
}

// planWAV cuts the WAV file r, of format f, at sample frames.
func planWAV(ctx context.Context, r io.ReaderAt, f wavFormat, o PlanOptions) ([]Piece, error) {
	rate, block, total := int64(f.SampleRate), int64(f.BlockAlign), f.frames()
	head := int64(len(wavHeader(f, 0)))
	maxN := (min(o.MaxBytes, math.MaxUint32) - head) / block
	if o.MaxDuration > 0 {
		maxN = min(maxN, durSamples(o.MaxDuration, rate))
	}
	if maxN < 1 {
		return nil, fmt.Errorf("audio: %w: MaxBytes %d holds no sample frame", ErrCannotSplit, o.MaxBytes)
	}
	var pieces []Piece
	add := func(from, to int64, silence bool) {
		h := wavHeader(f, (to-from)*block)
		p := Piece{
			Index: len(pieces), Start: samplesDuration(from, int(rate)), End: samplesDuration(to, int(rate)),
			Silence: silence, Size: int64(len(h)) + (to-from)*block, Format: WAV,
			Open: section(r, h, f.DataOffset+from*block, (to-from)*block),
		}
		p.Offset = p.Start
		if n := len(pieces); n > 0 {
			p.Overlap = pieces[n-1].End - p.Start
		}
		pieces = append(pieces, p)
	}
	var start int64
	silence := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		limit := start + maxN
		if limit >= total {
			add(start, total, silence)
			return pieces, nil
		}
		cut, next, found, err := cutBefore(start, limit, rate, o, func(from, to int64) (Decoder, error) {
			return newWAVDecoder(r, f, from, to)
		})
		if err != nil {
			return nil, err
		}
		add(start, cut, silence)
		start, silence = next, found
	}
}

// cutBefore finds where to end a piece of audio at rate that starts at
// sample start and may run to limit: in the best pause of the search
// window before limit (at most the later half of the piece), which window
// decodes; else at limit, a hard cut, the next piece starting Overlap
// earlier (at most half the piece). It returns the cut, where the next
// piece starts, and whether the cut fell in a pause.
func cutBefore(start, limit, rate int64, o PlanOptions, window func(from, to int64) (Decoder, error)) (cut, next int64, found bool, err error) {
	from := max(limit-durSamples(o.SearchWindow, rate), start+(limit-start)/2)
	d, err := window(from, limit)
	if err != nil {
		return 0, 0, false, err
	}
	at, ok, err := bestPause(d, o.MinSilence)
	d.Close()
	if err != nil {
		return 0, 0, false, fmt.Errorf("audio: plan: %w", err)
	}
	if cut = from + at; ok && cut > start {
		return cut, cut, true, nil
	}
	return limit, limit - min(durSamples(o.Overlap, rate), (limit-start)/2), false, nil
}

// maxPreRoll is the most frames an MP3 piece starts early.
const maxPreRoll = 16

// frameRing holds the offsets of the latest frames of a walk: where frame
// lo+i starts and ends.
type frameRing struct {
	lo     int64
	frames [][2]int64
}

func (g *frameRing) push(off, end int64) { g.frames = append(g.frames, [2]int64{off, end}) }
func (g *frameRing) off(i int64) int64   { return g.frames[i-g.lo][0] }
func (g *frameRing) end(i int64) int64   { return g.frames[i-g.lo][1] }

// trim forgets the frames before i, copying those after it down once half
// the ring is forgotten.
func (g *frameRing) trim(i int64) {
	if n := i - g.lo; n > 1024 && n > int64(len(g.frames))/2 {
		g.frames = append(g.frames[:0], g.frames[n:]...)
		g.lo = i
	}
}

// mp3Planner walks an MP3 file's frames once, cutting as it goes; it
// holds the offsets of the frames of the last search window.
type mp3Planner struct {
	ctx  context.Context
	m    *mp3File
	s    *mp3Scan
	o    PlanOptions
	ring frameRing
}

// planMP3 cuts the MP3 file m between frames.
func planMP3(ctx context.Context, m *mp3File, o PlanOptions) ([]Piece, error) {
	p := &mp3Planner{ctx: ctx, m: m, s: m.scan(64 << 10), o: o}
	spf, rate := m.spf(), int64(m.first.rate)
	maxF := int64(math.MaxInt64)
	if o.MaxDuration > 0 {
		maxF = durSamples(o.MaxDuration, rate) / spf
	}
	searchF := (durSamples(o.SearchWindow, rate) + spf - 1) / spf
	overlapF := (durSamples(o.Overlap, rate) + spf - 1) / spf
	keep := searchF + overlapF + 2*maxPreRoll + 8

	var pieces []Piece
	var start, startOff, pre int64 // the current piece's first frame, its offset, its pre-roll
	silence := false
	add := func(end int64) {
		st := m.frameTime(start)
		size := p.ring.end(end-1) - startOff
		pc := Piece{
			Index: len(pieces), Start: st, End: m.frameTime(end), PreRoll: m.frameTime(start+pre) - st,
			Offset:  st - samplesDuration(m.delay, m.first.rate),
			Silence: silence, Size: size, Format: MP3, Open: section(m.r, nil, startOff, size),
		}
		if n := len(pieces); n > 0 {
			pc.Overlap = pieces[n-1].End - st
		}
		pieces = append(pieces, pc)
	}
	i := int64(0)
	for pos := m.audio; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		off, h, ok := p.s.next(pos)
		if !ok {
			break
		}
		pos = off + int64(h.length)
		p.ring.push(off, pos)
		if i == 0 {
			startOff = off
		}
		for pos-startOff > o.MaxBytes || i+1-start > maxF {
			limit := i // the piece can hold [start, limit)
			if limit-start < 4 {
				return nil, fmt.Errorf("audio: %w: MaxBytes %d holds under 4 MP3 frames", ErrCannotSplit, o.MaxBytes)
			}
			from := max(limit-searchF, start+(limit-start)/2)
			cut, found, err := p.cut(from, limit)
			if err != nil {
				return nil, err
			}
			next := cut
			if !found {
				cut, next = limit, limit-min(overlapF, (limit-start)/4)
			}
			add(cut)
			pre = min(p.preRoll(next), (limit-start)/4)
			start, silence = next-pre, found
			startOff = p.ring.off(start)
		}
		p.ring.trim(i + 1 - keep)
	}
	if p.s.w.err != nil {
		return nil, fmt.Errorf("audio: plan: %w", p.s.w.err)
	}
	if i == 0 {
		return nil, fmt.Errorf("%w: no audio frame after the tag", ErrBadMP3)
	}
	add(i)
	return pieces, nil
}

// preRoll returns how many frames before frame a a decoder needs to
// decode a in full: the frames holding the granule before a's first (its
// IMDCT overlaps a's and fills the synthesis filters), that is the frame
// before for MPEG-1 (two granules a frame), the two before for MPEG-2; and
// those before them into which their bit reservoir may reach (511 bytes
// of main data for MPEG-1, 255 for MPEG-2); as far back as the ring goes
// and at most maxPreRoll.
func (p *mp3Planner) preRoll(a int64) int64 {
	n, reach := int64(1), 511
	if !p.m.first.mpeg1 {
		n, reach = 2, 255
	}
	n = min(n, a-p.ring.lo)
	for j := a - n - 1; j >= p.ring.lo && reach > 0 && n < maxPreRoll; j-- {
		h, _ := p.s.header(p.ring.off(j))
		reach -= h.length - 4 - h.sideInfo()
		n++
	}
	return max(n, 0)
}

// cut decodes frames [from, limit) and returns the frame at which to cut,
// in their best pause; found is false if they have none or cannot be
// decoded (MPEG-2.5 without ffmpeg).
func (p *mp3Planner) cut(from, limit int64) (cut int64, found bool, err error) {
	early := min(p.preRoll(from)+2, from-p.ring.lo)
	off, n, spf := p.ring.off(from-early), limit-from+early, p.m.spf()
	var d Decoder
	if p.m.goDecodes() {
		d = newMP3Decoder(p.m, off, n, early, 1)
	} else {
		feed := &mp3Feeder{s: p.m.scan(32 << 10), pos: off, left: n}
		fd, err := startFFmpeg(p.ctx, MP3, "pipe:0", feed, "mp3", p.m.first.rate)
		if errors.Is(err, ErrNeedsFFmpeg) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		defer fd.Close()
		if err := discard(fd, early*spf); err != nil {
			return 0, false, err
		}
		d = fd
	}
	at, found, err := bestPause(d, p.o.MinSilence)
	if err != nil {
		return 0, false, fmt.Errorf("audio: plan: %w", err)
	}
	return from + (at+spf/2)/spf, found, nil
}

// discard reads and drops n samples from d.
func discard(d Decoder, n int64) error {
	buf := make([]float32, 4096)
	for n > 0 {
		k, err := d.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(k)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
