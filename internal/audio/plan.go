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
	// MinTail is the shortest last piece; default DefaultMinTail (5 s).
	// Where the audio left after a cut at the limit would be shorter, the
	// cut moves earlier, so that the tail's audio joins the piece after
	// it instead of going alone: OpenAI refuses audio under 0.1 s, and
	// Groq bills at least 10 s a request. It is at most half the limit.
	MinTail time.Duration
	// Shrink re-encodes a WAV or MP3 file that is over the limits to
	// 16 kHz mono FLAC with ffmpeg, when it is on PATH, before cutting it
	// (other formats always are): fewer pieces or none, at the cost of
	// running ffmpeg over the whole file and of disk space for the result.
	Shrink bool
	// TempDir is where re-encoded audio is written; "" for os.TempDir.
	TempDir string
	// SkipPause, when positive, leaves silence out of the pieces: the
	// silence at the start and the end of the audio, and every pause of
	// at least SkipPause, less SkipKeep at each side of it (see
	// skip.go). Pieces then hold Spans of the original. The whole file is
	// decoded to find them.
	SkipPause time.Duration
	// SkipKeep is the silence kept at each side of what SkipPause leaves
	// out; default DefaultSkipKeep.
	SkipKeep time.Duration
}

// DefaultMinTail is the default PlanOptions.MinTail: no piece at the end
// of a cut file is shorter than 5 s (OpenAI refuses audio under 0.1 s, and
// a piece that short is mostly the overlap of a hard cut anyway).
const DefaultMinTail = 5 * time.Second

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
	if o.MinTail == 0 {
		o.MinTail = DefaultMinTail
	}
	if o.SkipKeep == 0 {
		o.SkipKeep = DefaultSkipKeep
	}
	switch {
	case o.MaxBytes < minPieceBytes:
		return o, fmt.Errorf("audio: %w: MaxBytes %d is under %d", ErrCannotSplit, o.MaxBytes, minPieceBytes)
	case o.MaxDuration != 0 && o.MaxDuration < minPieceDuration:
		return o, fmt.Errorf("audio: %w: MaxDuration %v is under %v", ErrCannotSplit, o.MaxDuration, minPieceDuration)
	case o.SearchWindow < 0 || o.MinSilence < 0 || o.Overlap < 0 || o.MinTail < 0 || o.SkipPause < 0 || o.SkipKeep < 0:
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
// half of a piece. A pause is judged against the recording's noise floor
// and speech level (see Silences), learnt from all the planner has
// measured of the file: the windows, short excerpts spread over the file
// (see floorExcerpts), and, before a window, while little has been
// measured, the audio before it. Where the window has no pause of
// MinSilence near the floor, the cut is a hard one at the limit, and the
// next piece repeats the Overlap before it.
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
//
// With SkipPause, a file within the limits is one piece too, but is
// planned as any other (a WAV file's piece gets a header of its own, an
// MP3 file's loses its tags), and silence is left out of every piece (see
// skip.go): pieces then have Spans and Sent, and a piece that would be
// silence alone is not in the plan.
func Plan(ctx context.Context, r io.ReaderAt, size int64, opts PlanOptions) ([]Piece, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	size = max(size, 0)
	if size <= opts.MaxBytes && opts.SkipPause == 0 {
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

// The noise floor of a file being cut is learnt from the audio it
// measures (see histogram): excerpts of floorExcerpt, floorExcerpts of
// them spread evenly over a WAV file, or over an MP3 file's frames as they
// are walked, where Go decodes them; where ffmpeg decodes, whose every
// excerpt costs a process, floorFFmpegExcerpts over a re-encoded file and
// one at the start of an MP3 file (recordings often start and end in
// silence). And where less than floorLeadIn of audio has been measured by
// the end of a search window (a search window shorter than the default),
// the audio before the window, as far back as its piece's start, makes up
// the difference.
const (
	floorExcerpts       = 32
	floorFFmpegExcerpts = 4
	floorExcerpt        = 500 * time.Millisecond
	floorLeadIn         = 30 * time.Second
)

// leadIn returns how many samples at rate to measure before a search
// window of n samples, given what h holds: what falls short of
// floorLeadIn.
func leadIn(h *histogram, n, rate int64) int64 {
	return max(0, durSamples(max(0, floorLeadIn-time.Duration(h.n)*levelHop), rate)-n)
}

// sampleFloor measures k excerpts of floorExcerpt spread evenly over
// samples [0, total) at rate into h, the first at its start and the last
// at its end, or all of them if they are fewer; each through a decoder of
// decode's.
func sampleFloor(total, rate int64, k int64, h *histogram, decode func(from, to int64) (Decoder, error)) error {
	n := durSamples(floorExcerpt, rate)
	if total <= n*k {
		n, k = total, 1
	}
	for i := range k {
		from := i * (total - n) / max(k-1, 1)
		d, err := decode(from, from+n)
		if err != nil {
			return err
		}
		err = measure(d, h)
		d.Close()
		if err != nil {
			return fmt.Errorf("audio: plan: %w", err)
		}
	}
	return nil
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
	add := func(from, to int64, before pause) {
		h := wavHeader(f, (to-from)*block)
		p := Piece{
			Index: len(pieces), Start: samplesDuration(from, int(rate)), End: samplesDuration(to, int(rate)),
			Size: int64(len(h)) + (to-from)*block, Format: WAV,
			Open: section(r, h, f.DataOffset+from*block, (to-from)*block),
		}
		before.set(&p)
		p.Offset = p.Start
		p.from, p.to = from, to
		if n := len(pieces); n > 0 {
			p.Overlap = pieces[n-1].End - p.Start
		}
		pieces = append(pieces, p)
	}
	window := func(from, to int64) (Decoder, error) { return newWAVDecoder(r, f, from, to) }
	var gaps [][2]int64 // in samples, with SkipPause; not nil then
	if o.SkipPause > 0 {
		gaps = [][2]int64{}
		d, err := window(0, total)
		if err != nil {
			return nil, err
		}
		gs, err := findGaps(d, o)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			gaps = append(gaps, [2]int64{durSamples(g.start, rate), durSamples(g.end, rate)})
		}
	}
	var h histogram
	if maxN < total {
		if err := sampleFloor(total, rate, floorExcerpts, &h, window); err != nil {
			return nil, err
		}
	}
	var start int64
	var before pause
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		limit := start + maxN
		if limit >= total {
			add(start, total, before)
			return skipWAV(pieces, r, f, gaps), nil
		}
		if tail := min(durSamples(o.MinTail, rate), maxN/2); total-limit < tail {
			limit = total - tail // the tail joins this piece's successor
		}
		cut, next, pa, err := cutBefore(start, limit, rate, o, &h, window)
		if err != nil {
			return nil, err
		}
		add(start, cut, before)
		start, before = next, pa
	}
}

// set records in p how the cut before it was judged.
func (pa pause) set(p *Piece) {
	p.Silence, p.Floor, p.Speech = pa.found, pa.floor, pa.speech
	if pa.found {
		p.PauseLevel = pa.level
	}
}

// cutBefore finds where to end a piece of audio at rate that starts at
// sample start and may run to limit: in the best pause of the search
// window before limit (at most the later half of the piece), which window
// decodes (from further back, the lead-in measured into h only, where h
// holds less than floorLeadIn); else at limit, a hard cut, the next piece
// starting Overlap earlier (at most half the piece). It returns the cut,
// where the next piece starts, and how the cut was judged.
func cutBefore(start, limit, rate int64, o PlanOptions, h *histogram, window func(from, to int64) (Decoder, error)) (cut, next int64, pa pause, err error) {
	from := max(limit-durSamples(o.SearchWindow, rate), start+(limit-start)/2)
	lead := min(leadIn(h, limit-from, rate), from-start)
	d, err := window(from-lead, limit)
	if err != nil {
		return 0, 0, pause{}, err
	}
	pa, err = bestPause(d, o.MinSilence, lead, h)
	d.Close()
	if err != nil {
		return 0, 0, pause{}, fmt.Errorf("audio: plan: %w", err)
	}
	if cut = from - lead + pa.at; pa.found && cut > start {
		return cut, cut, pa, nil
	}
	pa.found = false
	return limit, limit - min(durSamples(o.Overlap, rate), (limit-start)/2), pa, nil
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
// holds the offsets of the frames of the last search window (and of the
// lead-in before it), and the levels of all it has measured.
type mp3Planner struct {
	ctx  context.Context
	m    *mp3File
	s    *mp3Scan
	o    PlanOptions
	ring frameRing
	h    histogram
}

// planMP3 cuts the MP3 file m between frames.
func planMP3(ctx context.Context, m *mp3File, o PlanOptions) ([]Piece, error) {
	p := &mp3Planner{ctx: ctx, m: m, s: m.scan(64 << 10), o: o}
	spf, rate := m.spf(), int64(m.first.rate)
	maxF := int64(math.MaxInt64)
	if o.MaxDuration > 0 {
		maxF = durSamples(o.MaxDuration, rate) / spf
	}
	frames := func(d time.Duration) int64 { return (durSamples(d, rate) + spf - 1) / spf }
	searchF, overlapF, leadF, tailF := frames(o.SearchWindow), frames(o.Overlap), frames(floorLeadIn), frames(o.MinTail)
	keep := searchF + overlapF + leadF + 2*maxPreRoll + 8
	// Excerpts for the floor, spread over the frames by their count as
	// the first frame's size makes it; where ffmpeg decodes, the first
	// alone.
	excerptF, every := frames(floorExcerpt), int64(math.MaxInt64)
	if m.goDecodes() && m.first.length > 0 {
		every = max((m.end-m.audio)/int64(m.first.length)/floorExcerpts, excerptF)
	}

	var pieces []Piece
	var start, startOff, pre int64 // the current piece's first frame, its offset, its pre-roll
	var before pause
	add := func(end int64) {
		st := m.frameTime(start)
		size := p.ring.end(end-1) - startOff
		pc := Piece{
			Index: len(pieces), Start: st, End: m.frameTime(end), PreRoll: m.frameTime(start+pre) - st,
			Offset: st - samplesDuration(m.delay, m.first.rate),
			Size:   size, Format: MP3, Open: section(m.r, nil, startOff, size),
			from: start, to: end, pre: pre,
		}
		before.set(&pc)
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
		if i+1 == excerptF || (i+1)%every == 0 {
			if err := p.measure(i+1-excerptF, i+1); err != nil {
				return nil, err
			}
		}
		for pos-startOff > o.MaxBytes || i+1-start > maxF {
			limit := i // the piece can hold [start, limit)
			if limit-start < 4 {
				return nil, fmt.Errorf("audio: %w: MaxBytes %d holds under 4 MP3 frames", ErrCannotSplit, o.MaxBytes)
			}
			limit = p.tailLimit(start, limit, startOff, off, tailF)
			from := max(limit-searchF, start+(limit-start)/2)
			cut, pa, err := p.cut(start, from, limit)
			if err != nil {
				return nil, err
			}
			next := cut
			if !pa.found {
				cut, next = limit, limit-min(overlapF, (limit-start)/4)
			}
			add(cut)
			pre = min(p.preRoll(next), (limit-start)/4)
			start, before = next-pre, pa
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
	if o.SkipPause > 0 {
		return skipMP3(ctx, m, pieces, o)
	}
	return pieces, nil
}

// tailLimit returns where a piece of frames [start, limit), the first at
// offset startOff, frame limit at offset off, may end so that what
// follows it is at least tailF frames (at most half the piece): limit, or
// earlier when the frames left in the file are fewer. The frames left are
// estimated from the bytes left at the piece's average frame size, as the
// walk has not reached them: exact for constant bitrate, near it for
// variable.
func (p *mp3Planner) tailLimit(start, limit, startOff, off, tailF int64) int64 {
	tailF = min(tailF, (limit-start)/2)
	if tailF <= 0 || off <= startOff {
		return limit
	}
	left := float64(p.m.end-off) / (float64(off-startOff) / float64(limit-start)) // frames from limit on
	if short := tailF - int64(math.Round(left)); short > 0 {
		return max(limit-short, start+(limit-start)/2)
	}
	return limit
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

// cut decodes frames [from, limit) of a piece that starts at frame start
// and returns the frame at which to cut, in their best pause, and how it
// judged it; pa.found is false if they have none or cannot be decoded
// (MPEG-2.5 without ffmpeg). Where less than floorLeadIn will have been
// measured, the frames before from (back to start) make up the
// difference, measured only.
func (p *mp3Planner) cut(start, from, limit int64) (cut int64, pa pause, err error) {
	spf := p.m.spf()
	lead := min((leadIn(&p.h, (limit-from)*spf, int64(p.m.first.rate))+spf-1)/spf, from-start, from-p.ring.lo)
	d, err := p.decode(from-lead, limit)
	if d == nil || err != nil {
		return 0, pause{}, err
	}
	defer d.Close()
	pa, err = bestPause(d, p.o.MinSilence, lead*spf, &p.h)
	if err != nil {
		return 0, pause{}, fmt.Errorf("audio: plan: %w", err)
	}
	return from - lead + (pa.at+spf/2)/spf, pa, nil
}

// measure adds the levels of frames [from, to) to the planner's.
func (p *mp3Planner) measure(from, to int64) error {
	d, err := p.decode(from, to)
	if d == nil || err != nil {
		return err
	}
	defer d.Close()
	if err := measure(d, &p.h); err != nil {
		return fmt.Errorf("audio: plan: %w", err)
	}
	return nil
}

// decode returns a decoder of frames [from, limit), which decodes the
// frames before from that it needs (see preRoll) without returning them;
// nil where they cannot be decoded (MPEG-2.5 without ffmpeg).
func (p *mp3Planner) decode(from, limit int64) (Decoder, error) {
	early := min(p.preRoll(from)+2, from-p.ring.lo)
	off, n, spf := p.ring.off(from-early), limit-from+early, p.m.spf()
	if p.m.goDecodes() {
		return newMP3Decoder(p.m, off, n, early, 1), nil
	}
	feed := &mp3Feeder{s: p.m.scan(32 << 10), pos: off, left: n}
	fd, err := startFFmpeg(p.ctx, MP3, "pipe:0", feed, "mp3", p.m.first.rate)
	if errors.Is(err, ErrNeedsFFmpeg) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := discard(fd, early*spf); err != nil {
		fd.Close()
		return nil, err
	}
	return fd, nil
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
