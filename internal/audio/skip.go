package audio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Silence is left out of the pieces when PlanOptions.SkipPause is set:
// the whole file is decoded, its pauses found as Silences finds them
// (judged against the recording's floor), and the silence at the start and
// at the end, and the middle of every pause of at least SkipPause, are
// left out, SkipKeep of silence kept at each side so that no word is
// clipped and a pause still sounds like one. A piece is then the stretches
// of the original it holds, one after the other (Piece.Spans): for WAV, a
// header and several ranges of the original's samples; for MP3, several
// ranges of its frames, each that follows a gap starting with the frames
// a decoder needs (a pre-roll, in the silence); for re-encoded audio, the
// stretches encoded one after the other. Times in a piece map back to the
// original exactly, span by span. A piece that is silence alone is not
// sent at all; audio that is silence throughout is cut as if SkipPause
// were not set.

// DefaultSkipKeep is the default PlanOptions.SkipKeep: 250 ms of silence
// kept at each side of what is left out.
const DefaultSkipKeep = 250 * time.Millisecond

// Span is a stretch of the original that a piece holds (see
// PlanOptions.SkipPause): the piece's audio from At on is the original's
// from Start to End. Times are as a decoder of the piece and one of the
// original (reading its tags: see Piece.Offset) play them.
type Span struct {
	At, Start, End time.Duration
}

// gap is a stretch of silence to leave out, in the original.
type gap struct{ start, end time.Duration }

// findGaps reads d to its end, closes it, and returns what to leave out
// of the audio: the silence at its start and end beyond o.SkipKeep, and
// each pause of at least o.SkipPause less o.SkipKeep at each side. A block
// is silent as Silences judges it, but against the floor and speech level
// of the whole recording (a recording that starts with a minute of silence
// has no speech to judge its first minute by until later): the levels of
// its blocks are kept, half a decibel in a byte, 50 bytes a second (180
// KB an hour), and judged at the end. Times are samples read from d, at
// its rate.
func findGaps(d Decoder, o PlanOptions) ([]gap, error) {
	defer d.Close()
	rate := d.SampleRate()
	if rate <= 0 {
		return nil, nil
	}
	m := newMeter(rate)
	var h histogram
	var levels []uint8
	var n int64
	buf := make([]float32, 8192)
	for {
		k, err := d.Read(buf)
		n += int64(k)
		m.add(buf[:k], func(l float32) {
			h.add(l)
			levels = append(levels, uint8(2*(l-minLevel)))
		})
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audio: finding silence: %w", err)
		}
	}
	thr := h.threshold()
	end := samplesDuration(n, rate)
	// Silence at either end is trimmed from 2 SkipKeep on.
	minRun := m.blocks(min(o.SkipPause, 2*o.SkipKeep+levelHop))
	var gaps []gap
	run := -1
	for i := 0; i <= len(levels); i++ {
		if i < len(levels) && float32(levels[i])/2+minLevel < thr {
			if run < 0 {
				run = i
			}
			continue
		}
		if run < 0 {
			continue
		}
		s := Silence{m.time(int64(run)), min(m.time(int64(i)), end)}
		if i == len(levels) {
			s.End = end // the samples after the last whole block
		}
		short := int64(i-run) < minRun
		run = -1
		g := gap{s.Start + o.SkipKeep, s.End - o.SkipKeep}
		switch {
		case short:
			continue
		case s.Start <= 0 && s.End >= end:
			g = gap{0, end}
		case s.Start <= 0:
			g.start = 0
		case s.End >= end:
			g.end = end
		case s.End-s.Start < o.SkipPause:
			continue
		}
		if g.end-g.start >= levelHop {
			gaps = append(gaps, g)
		}
	}
	return gaps, nil
}

// keptRanges returns [from, to) less the gaps (sorted, in the same
// units), as ranges.
func keptRanges(from, to int64, gaps [][2]int64) [][2]int64 {
	var out [][2]int64
	at := from
	for _, g := range gaps {
		if g[1] <= at || g[0] >= to {
			continue
		}
		if g[0] > at {
			out = append(out, [2]int64{at, g[0]})
		}
		at = max(at, g[1])
	}
	if at < to {
		out = append(out, [2]int64{at, to})
	}
	return out
}

// sections returns an Open function for head followed by the byte ranges
// [off, end) of r.
func sections(r io.ReaderAt, head []byte, ranges [][2]int64) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		readers := make([]io.Reader, 0, len(ranges)+1)
		readers = append(readers, bytes.NewReader(head))
		for _, b := range ranges {
			readers = append(readers, io.NewSectionReader(r, b[0], b[1]-b[0]))
		}
		return io.NopCloser(io.MultiReader(readers...)), nil
	}
}

// dropSilent finds the ranges each piece keeps (keep returns them, nil
// for none), drops the pieces that keep nothing, renumbers the others and
// mends the overlaps, calling build for each piece that leaves something
// out. Pieces that keep all they hold get Sent set. When every piece is
// silence, the pieces are returned as they were.
func dropSilent(pieces []Piece, keep func(p Piece) [][2]int64, build func(p *Piece, ranges [][2]int64) error) ([]Piece, error) {
	out := make([]Piece, 0, len(pieces))
	dropped := false
	for _, p := range pieces {
		ranges := keep(p)
		if len(ranges) == 0 {
			dropped = true
			continue
		}
		if dropped && len(out) > 0 {
			// The piece before was silence alone: the cut before
			// this one is in silence, and nothing is shared.
			p.Overlap, p.Silence = 0, true
		}
		dropped = false
		p.Index = len(out)
		if len(ranges) == 1 && ranges[0] == [2]int64{p.from, p.to} {
			p.Sent = p.End - p.Start
		} else if err := build(&p, ranges); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		for i := range pieces {
			pieces[i].Sent = pieces[i].End - pieces[i].Start
		}
		return pieces, nil
	}
	out[0].Overlap, out[0].Silence = 0, false // no cut before it
	return out, nil
}

// skipWAV leaves the gaps (in samples) out of the pieces of the WAV file
// r, of format f.
func skipWAV(pieces []Piece, r io.ReaderAt, f wavFormat, gaps [][2]int64) []Piece {
	if gaps == nil {
		return pieces
	}
	rate, block := f.SampleRate, int64(f.BlockAlign)
	out, _ := dropSilent(pieces, func(p Piece) [][2]int64 { return keptRanges(p.from, p.to, gaps) },
		func(p *Piece, ranges [][2]int64) error {
			var n int64
			byteRanges := make([][2]int64, len(ranges))
			p.Spans = make([]Span, len(ranges))
			for i, k := range ranges {
				p.Spans[i] = Span{At: samplesDuration(n, rate), Start: samplesDuration(k[0], rate), End: samplesDuration(k[1], rate)}
				byteRanges[i] = [2]int64{f.DataOffset + k[0]*block, f.DataOffset + k[1]*block}
				n += k[1] - k[0]
			}
			head := wavHeader(f, n*block)
			p.Size, p.Sent = int64(len(head))+n*block, samplesDuration(n, rate)
			p.Open = sections(r, head, byteRanges)
			p.Offset = p.Spans[0].Start
			return nil
		})
	return out
}

// skipMP3 leaves silence out of the pieces of the MP3 file m: the whole
// file is decoded to find it, and the frames wholly inside a gap are left
// out, each range after a gap starting with its pre-roll.
func skipMP3(ctx context.Context, m *mp3File, pieces []Piece, o PlanOptions) ([]Piece, error) {
	// ffmpeg decodes a whole file several times faster than go-mp3 (60
	// minutes: 1.5 s, against 15 s), where it is on PATH.
	var d Decoder
	_, err := lookFFmpeg()
	byFFmpeg := err == nil || !m.goDecodes()
	if byFFmpeg {
		d, err = newFFmpegDecoder(ctx, MP3, m.r, m.size)
	} else {
		d, err = NewDecoder(ctx, m.r, m.size)
	}
	if errors.Is(err, ErrNeedsFFmpeg) { // MPEG-2.5: no silence can be looked for; cut all the same
		for i := range pieces {
			pieces[i].Sent = pieces[i].End - pieces[i].Start
		}
		return pieces, nil
	}
	if err != nil {
		return nil, err
	}
	found, err := findGaps(d, o)
	if err != nil {
		return nil, err
	}
	spf, rate := m.spf(), int64(m.first.rate)
	delay := samplesDuration(m.delay, m.first.rate)
	if byFFmpeg {
		// ffmpeg decodes as the tag says: its times are less the
		// codec delay than the frames'.
		for i := range found {
			found[i].start += delay
			found[i].end += delay
		}
	}
	var gaps [][2]int64 // frames wholly inside each gap
	for _, g := range found {
		a := (durSamples(g.start, rate) + spf - 1) / spf
		z := durSamples(g.end, rate) / spf
		if z > a {
			gaps = append(gaps, [2]int64{a, z})
		}
	}
	if len(gaps) == 0 {
		for i := range pieces {
			pieces[i].Sent = pieces[i].End - pieces[i].Start
		}
		return pieces, nil
	}
	keep := func(p Piece) [][2]int64 {
		// The pre-roll goes with the piece's first range, and is
		// not silence to leave out.
		ranges := keptRanges(p.from+p.pre, p.to, gaps)
		if len(ranges) > 0 && ranges[0][0] == p.from+p.pre {
			ranges[0][0] = p.from
		}
		return ranges
	}
	// First every range's frames, then one walk of the file for their
	// bytes and pre-rolls.
	var need mp3Needs
	need.init()
	for _, p := range pieces {
		for _, k := range keep(p) {
			if k[0] == p.from {
				need.first[k[0]] = -1
			} else {
				need.after[k[0]] = -1
			}
			need.last[k[1]-1] = -1
		}
	}
	if err := m.locate(ctx, &need); err != nil {
		return nil, err
	}
	return dropSilent(pieces, keep, func(p *Piece, ranges [][2]int64) error {
		var frames int64
		var byteRanges [][2]int64
		p.Spans = nil
		for i, k := range ranges {
			a, off := k[0], need.first[k[0]]
			if a != p.from {
				a, off = k[0]-need.pre[k[0]], need.after[k[0]]
				if i > 0 && a < ranges[i-1][1] { // the pre-roll reaches the range before: join them
					a, off = ranges[i-1][1], need.last[ranges[i-1][1]-1]
				}
			}
			end := need.last[k[1]-1]
			if n := len(byteRanges); n > 0 && byteRanges[n-1][1] == off {
				byteRanges[n-1][1] = end
			} else {
				byteRanges = append(byteRanges, [2]int64{off, end})
			}
			p.Spans = append(p.Spans, Span{At: m.frameTime(frames), Start: m.frameTime(a) - delay, End: m.frameTime(k[1]) - delay})
			frames += k[1] - a
		}
		p.Size, p.Sent = 0, m.frameTime(frames)
		for _, b := range byteRanges {
			p.Size += b[1] - b[0]
		}
		p.Open = sections(m.r, nil, byteRanges)
		p.Offset = p.Spans[0].Start
		if ranges[0][0] != p.from {
			p.PreRoll = 0 // the piece starts after silence left out
		}
		return nil
	})
}

// mp3Needs are the frames whose places a walk is to find (-1 until it
// does): first, where the frames that start pieces start; after, where
// the frames that start a range after a gap start, less their pre-roll
// (see mp3Planner.preRoll), and pre, how many frames that is; last,
// where frames that end a range end. Memory is a few entries a range,
// whatever the file's length.
type mp3Needs struct {
	first, after, last, pre map[int64]int64
}

func (n *mp3Needs) init() {
	n.first, n.after, n.last, n.pre = map[int64]int64{}, map[int64]int64{}, map[int64]int64{}, map[int64]int64{}
}

// locate walks m's frames once and fills in need.
func (m *mp3File) locate(ctx context.Context, need *mp3Needs) error {
	s := m.scan(64 << 10)
	type frame struct {
		off int64
		h   mp3Header
	}
	var ring [maxPreRoll + 1]frame
	at := func(i int64) frame { return ring[i%int64(len(ring))] }
	n0, reach0 := int64(1), 511
	if !m.first.mpeg1 {
		n0, reach0 = 2, 255
	}
	pos := m.audio
	for i := int64(0); ; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		off, h, ok := s.next(pos)
		if !ok {
			break
		}
		ring[i%int64(len(ring))] = frame{off, h}
		pos = off + int64(h.length)
		if _, ok := need.first[i]; ok {
			need.first[i] = off
		}
		if _, ok := need.last[i]; ok {
			need.last[i] = pos
		}
		if _, ok := need.after[i]; ok {
			pre, reach := min(n0, i), reach0
			for j := i - pre - 1; j >= 0 && j > i-int64(len(ring)) && reach > 0 && pre < maxPreRoll; j-- {
				reach -= at(j).h.length - 4 - at(j).h.sideInfo()
				pre++
			}
			need.after[i], need.pre[i] = at(i-pre).off, pre
		}
	}
	if s.w.err != nil {
		return fmt.Errorf("audio: plan: %w", s.w.err)
	}
	for _, m := range []map[int64]int64{need.first, need.after, need.last} {
		for i, off := range m {
			if off < 0 {
				return fmt.Errorf("%w: frame %d not found on a second walk", ErrBadMP3, i)
			}
		}
	}
	return nil
}

// encodeRanges encodes the sample ranges of the 16 kHz mono FLAC file
// path, one after the other, to a new temporary FLAC file in dir, and
// returns its name. Each range is cut at its samples (atrim), so the
// stretches are exact.
func encodeRanges(ctx context.Context, path string, ranges [][2]int64, dir string) (string, error) {
	bin, err := lookFFmpeg()
	if err != nil {
		return "", fmt.Errorf("audio: encoding FLAC: %w", ErrNeedsFFmpeg)
	}
	out, err := os.CreateTemp(dir, "steno-*.flac")
	if err != nil {
		return "", fmt.Errorf("audio: %w", err)
	}
	out.Close()
	var g strings.Builder
	for i, k := range ranges {
		fmt.Fprintf(&g, "[0:a]atrim=start_sample=%d:end_sample=%d,asetpts=PTS-STARTPTS[a%d];", k[0], k[1], i)
	}
	for i := range ranges {
		fmt.Fprintf(&g, "[a%d]", i)
	}
	fmt.Fprintf(&g, "concat=n=%d:v=0:a=1[out]", len(ranges))
	script, err := os.CreateTemp(dir, "steno-*.filter")
	if err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("audio: %w", err)
	}
	defer os.Remove(script.Name())
	if _, err := script.WriteString(g.String()); err != nil || script.Close() != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("audio: writing an ffmpeg filter: %w", err)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-nostdin", "-i", path, "-filter_complex_script", script.Name(),
		"-map", "[out]", "-ac", "1", "-ar", fmt.Sprint(FFmpegRate), "-sample_fmt", "s16", "-c:a", "flac", "-f", "flac", out.Name()}
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &capped{max: 2 << 10}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out.Name())
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("audio: ffmpeg leaving silence out: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.Name(), nil
}
