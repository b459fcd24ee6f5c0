package transcribe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Long audio is cut into pieces, each piece is transcribed on its own, and
// reassemble stitches the transcripts back into one, as if the whole file
// had been transcribed at once.
//
// Where a piece was cut at a silence, the transcripts are simply joined,
// their timestamps shifted by the piece's offset. Where the cut is hard
// (no silence found), the next piece starts a little before the cut, so
// that the audio of the overlap is transcribed twice, once at the end of
// each piece, and each word said in it must be kept once: neither dropped
// nor doubled. The middle of the overlap, c = offset + overlap/2, is the
// preferred boundary: words near the edge of a piece are the least
// reliable (a word may be cut in half there), and c is as far from both
// edges as can be.
//
//   - With word timestamps on both sides, each word of the overlap is
//     decided once, not by each piece's own timestamps (the two pieces
//     time the same word tens of milliseconds apart, and a rule applied to
//     each side alone can put it on the losing side of c in both, or on
//     the winning side in both). The words of the earlier piece that end
//     after the later one starts and those of the later piece that start
//     before the earlier one ends (both within maxWordShift) are aligned
//     (see alignWords): pairs of words spelled alike, in order, whose
//     midpoints lie at most maxWordShift apart, as many as can be, and
//     where pairs compete the closer timed (so "no. No" said twice is
//     matched word for word, not crosswise). The joined sequence (shared
//     words once, and between them what only one piece heard, or each
//     piece's version of it) is then cut at one point: before it the
//     earlier piece's words, after it the later piece's. Of the points,
//     the one that drops the fewest words only one piece heard, then the
//     one nearest c. The words dropped are then found in the pieces' text
//     (the trailing or leading words that spell them, compared without
//     case, punctuation or spaces) and dropped from it too. When no word
//     pair matches, a word belongs to the side of c its midpoint falls on
//     (unless one piece heard nothing in the overlap: then all is kept).
//   - With segment timestamps only, or when the words cannot be found in
//     the text, the same is done with the words of the segments' text,
//     each timed by an estimate (its segment's time shared among its words
//     by their length), matched at most maxSegmentWordShift apart.
//   - Otherwise (text only), the end of the earlier text and the
//     start of the later one are aligned word by word, as Hugging Face
//     transformers' chunked speech recognition does
//     (_find_longest_common_sequence): the later words are slid over the
//     earlier ones, each position scored by matches / shift plus a small
//     epsilon that prefers longer matches, and both sides are cut at the
//     middle of the best matching span, so the earlier piece's words are
//     kept for the first half of the overlap and the later piece's for the
//     second. Words are compared lower-cased and without punctuation; the
//     original spelling is kept. When nothing matches well enough (see
//     lcsCut) the texts are joined as they are: without times, a word said
//     twice about a cut, or a lone word shared between garbled ones, can
//     still be doubled or dropped.
//
// Segments are kept while any of their text is; a segment that lost words
// at its end (start) ends (starts) at the boundary (c, or the time of the
// cut between the words), and segments without text follow the midpoint
// rule like words do.

// part is one piece's transcript and where the piece sits in the original audio.
type part struct {
	t       *Transcription // the piece's transcript (Format verbose_json, json or text)
	offset  float64        // seconds to add to the piece's timestamps; down to -1 (an MP3's codec delay), times it makes negative are 0
	overlap float64        // seconds at the piece's start shared with the previous piece (hard cut); 0 after a silence cut
	// spans, when the piece left silence out (SplitOptions.SkipSilence),
	// map its times to the original's, stretch by stretch; offset is then
	// the first one's.
	spans []span
}

// span is a stretch of the original that a piece holds: from at on, the
// piece's audio is the original's from start.
type span struct{ at, start float64 }

const (
	// lcsMinWindow and lcsWordsPerSecond bound how many words at the end
	// of a piece, and at the start of the next, are aligned when there are
	// no segment times to tell which words fall in the overlap: generously
	// more than are ever said in it.
	lcsMinWindow      = 16
	lcsWordsPerSecond = 8
	// minTextOverlap is the shortest overlap, in seconds, whose text is
	// aligned: a shorter one (an MP3 decoder's pre-roll inside a pause)
	// cannot hold a word said twice, and aligning would only risk taking
	// a word really said twice ("no. No") for a repeat.
	minTextOverlap = 0.25
	// maxWordShift is how far apart, in seconds, two pieces may time the
	// same word (its midpoint) and still be taken to have heard one word;
	// it also widens the overlap when choosing the timed words to align.
	maxWordShift = 0.5
	// maxSegmentWordShift is maxWordShift for the times of words
	// estimated within their segments.
	maxSegmentWordShift = 1.5
	// minLoneWord is the fewest letters of a word that, alone, may match
	// a word of the other piece's text between two garbled words.
	minLoneWord = 4
)

// reassemble stitches parts (in order) into one Transcription in the requested format.
//
// Text is joined with single spaces between pieces; segments and words are
// shifted by each part's offset, segments renumbered from 0 and their seek
// moved along; the overlap of a hard cut appears once (see above). The
// duration is where the last piece's audio ends; the language and task are
// the first piece's; Usage, Attempts and the request ids are those of all
// the pieces together. Usage is set in every format, as it says what was
// paid for, not what was transcribed; the other fields only where the
// format carries them. Raw is the reassembled document in the requested
// format: srt and vtt are rendered from the segments, which the pieces must
// then have (verbose_json pieces); diarized_json from the pieces' diarized
// segments, renumbered "seg_001" on, their speakers as the parts name them
// (the caller makes the names agree across pieces: see diarize.go).
//
// Some things cannot be cut as finely as text: a segment whose text lost
// the words of an overlap keeps its tokens and decoding statistics; json
// logprobs are the pieces' one after the other, those of an overlap twice;
// usage of mixed types ("duration" and "tokens") is added up field by
// field under the first piece's type. RequestID is the pieces' request ids
// joined by commas.
func reassemble(parts []part, format ResponseFormat) (*Transcription, error) {
	return reassembleTo(parts, format, 0)
}

// reassembleTo is reassemble for a file whose audio lasts at least end
// seconds (0: as long as its last part says), when the parts of its end
// are missing.
func reassembleTo(parts []part, format ResponseFormat, end float64) (*Transcription, error) {
	switch format {
	case "":
		format = JSON
	case JSON, Text, SRT, VTT, VerboseJSON, DiarizedJSON:
	default:
		return nil, fmt.Errorf("transcribe: unknown response format %q", format)
	}
	if len(parts) == 0 {
		return nil, errors.New("transcribe: nothing to reassemble")
	}
	pieces := make([]*stitchPiece, len(parts))
	for i, p := range parts {
		switch {
		case p.t == nil:
			return nil, fmt.Errorf("transcribe: piece %d has no transcript", i)
		case !(p.offset >= -1) || math.IsInf(p.offset, 0) || !(p.overlap >= 0) || math.IsInf(p.overlap, 0):
			return nil, fmt.Errorf("transcribe: piece %d has offset %v and overlap %v", i, p.offset, p.overlap)
		case i > 0 && p.offset < parts[i-1].offset:
			return nil, fmt.Errorf("transcribe: piece %d starts at %vs, before the piece ahead of it (%vs)", i, p.offset, parts[i-1].offset)
		}
		pieces[i] = newStitchPiece(p)
		if (format == SRT || format == VTT) && len(p.t.Segments) == 0 && len(pieces[i].units) > 0 {
			return nil, fmt.Errorf("transcribe: %s needs segment timestamps, and piece %d has none (transcribe the pieces as %s)", format, i, VerboseJSON)
		}
	}
	for i := 1; i < len(pieces); i++ {
		a, b := pieces[i-1], pieces[i]
		a.cutEnd = b.offset + b.overlap/2
		b.cutStart = a.cutEnd
		if b.overlap > 0 {
			stitchOverlap(a, b)
		}
	}

	// The pieces' kept text, segments and words, in order.
	var (
		texts             []string
		segs              []Segment
		words             []Word
		logprobs          []Logprob
		anyWords, anySegs bool // any piece sent words, segments
		language, task    string
		requestIDs        []string
		attempts          int
		lastEnd           float64
	)
	for k, p := range pieces {
		if s := p.text(); s != "" {
			texts = append(texts, s)
		}
		kept := p.keptSegments()
		if k > 0 && len(kept) > 0 && len(segs) > 0 {
			// Segments do not overlap in time across a boundary.
			prev, next := &segs[len(segs)-1], &kept[0]
			if prev.End > next.Start {
				c := min(max(p.cutStart, prev.Start), next.End)
				prev.End = max(prev.Start, min(prev.End, c))
				next.Start = min(next.End, max(next.Start, c))
			}
		}
		for _, s := range kept {
			s.ID = len(segs)
			segs = append(segs, s)
			lastEnd = max(lastEnd, s.End)
		}
		for _, w := range p.words {
			words = append(words, w)
			lastEnd = max(lastEnd, w.End)
		}
		anyWords = anyWords || len(p.t.Words) > 0
		anySegs = anySegs || len(p.t.Segments) > 0
		logprobs = append(logprobs, p.t.Logprobs...)
		if language == "" {
			language = p.t.Language
		}
		if task == "" {
			task = p.t.Task
		}
		if p.t.RequestID != "" {
			requestIDs = append(requestIDs, p.t.RequestID)
		}
		attempts += p.t.Attempts
	}
	if task == "" {
		task = "transcribe"
	}
	last := pieces[len(pieces)-1]
	duration := max(lastEnd, last.offset)
	if last.t.Duration > 0 {
		duration = last.shiftEnd(last.t.Duration)
	}
	duration = max(duration, end)

	out := &Transcription{
		Format:    format,
		Usage:     sumUsage(parts),
		RequestID: strings.Join(requestIDs, ","),
		Attempts:  attempts,
	}
	text := strings.Join(texts, " ")
	var err error
	switch format {
	case VerboseJSON:
		out.Text, out.Language, out.Duration, out.Task, out.Segments = text, language, duration, task, segs
		if anyWords {
			out.Words = words
			if out.Words == nil {
				out.Words = []Word{}
			}
		}
		out.Raw, err = encodeVerbose(out, anySegs || !anyWords)
	case SRT, VTT:
		if format == SRT {
			out.Raw = renderSRT(segs)
		} else {
			out.Raw = renderVTT(segs)
		}
		if out.Segments, err = parseCues(string(out.Raw)); err != nil {
			return nil, fmt.Errorf("transcribe: rendering %s: %w", format, err)
		}
		cues := make([]string, len(out.Segments))
		for i, s := range out.Segments {
			cues[i] = s.Text
		}
		out.Text = strings.Join(cues, " ")
	case JSON:
		out.Text, out.Logprobs = text, logprobs
		out.Raw, err = encodeJSON(struct {
			Text     string    `json:"text"`
			Logprobs []Logprob `json:"logprobs,omitempty"`
			Usage    *Usage    `json:"usage,omitempty"`
		}{text, logprobs, out.Usage})
	case Text:
		out.Text, out.Raw = text, []byte(text+"\n")
	case DiarizedJSON:
		for i := range segs {
			segs[i].SegmentID = fmt.Sprintf("seg_%03d", i+1)
		}
		out.Text, out.Duration, out.Task, out.Segments = text, duration, task, segs
		out.Raw, err = encodeDiarized(out)
	}
	if err != nil {
		return nil, fmt.Errorf("transcribe: encoding %s: %w", format, err)
	}
	return out, nil
}

// stitchPiece is a part being stitched: its segments and words in the
// original audio's time, its text cut into words, and how much of it is
// kept.
type stitchPiece struct {
	part
	segs    []Segment    // shifted copies of the part's segments
	outside []bool       // per segment: beyond a boundary by the midpoint rule
	words   []Word       // shifted, then filtered by the midpoint rule
	units   []stitchWord // the words of the segments' texts (or of Text when there are none)
	// from and to delimit the units kept.
	from, to int
	// cutStart and cutEnd are the boundaries with the previous and the
	// next piece (the middle of the overlap, or the cut).
	cutStart, cutEnd float64
}

// stitchWord is one whitespace-separated word of a transcript, with any
// punctuation-only tokens that follow it ("well —") or, at the start,
// precede it.
type stitchWord struct {
	sep  string // the whitespace before it
	text string // as written
	key  string // lower-cased letters and digits, for comparing; "" for punctuation alone
	seg  int    // index of its segment, or -1
}

func newStitchPiece(p part) *stitchPiece {
	t := p.t
	sp := &stitchPiece{part: p, cutStart: math.Inf(-1), cutEnd: math.Inf(1)}
	if len(t.Segments) > 0 {
		sp.segs = make([]Segment, len(t.Segments))
		sp.outside = make([]bool, len(t.Segments))
		for i, s := range t.Segments {
			s.Start, s.End = sp.shift(s.Start), sp.shiftEnd(s.End)
			if p.offset != 0 {
				s.Seek = max(0, s.Seek+int(math.Round(p.offset*100))) // seek counts 10 ms frames
			}
			s.Tokens = append([]int(nil), s.Tokens...)
			sp.segs[i] = s
			sp.units = splitStitchWords(s.Text, i, sp.units)
		}
	} else {
		sp.units = splitStitchWords(t.Text, -1, nil)
	}
	sp.words = make([]Word, len(t.Words))
	for i, w := range t.Words {
		w.Start, w.End = sp.shift(w.Start), sp.shiftEnd(w.End)
		sp.words[i] = w
	}
	sp.to = len(sp.units)
	return sp
}

// shift moves a time of the piece to the original audio's: a start, which
// at the junction of two spans is the later one's.
func (p *stitchPiece) shift(sec float64) float64 { return p.part.original(sec, false) }

// shiftEnd moves an end to the original audio's: at the junction of two
// spans, the earlier one's.
func (p *stitchPiece) shiftEnd(sec float64) float64 { return p.part.original(sec, true) }

// original returns the original audio's time of sec, a time in the
// part's audio; at a junction of spans the earlier one's when end.
func (p part) original(sec float64, end bool) float64 {
	offset := p.offset
	if len(p.spans) > 0 {
		k := 0
		for k+1 < len(p.spans) && (p.spans[k+1].at < sec || !end && p.spans[k+1].at == sec) {
			k++
		}
		offset = p.spans[k].start - p.spans[k].at
	}
	if offset == 0 {
		return sec
	}
	return max(0, math.Round((sec+offset)*1e6)/1e6)
}

// timed reports whether the piece's words have timestamps, or it has no
// words at all.
func (p *stitchPiece) timed() bool { return len(p.words) > 0 || p.from == p.to }

// stitchOverlap removes from a and b the words of the overlap at the start
// of b that both transcribe, and sets the boundary between them.
func stitchOverlap(a, b *stitchPiece) {
	c := b.cutStart
	lo, hi := b.offset, b.offset+b.overlap
	dropA, dropB, ok := 0, 0, false
	var na, nb int
	if a.timed() && b.timed() {
		na, nb, c = cutWords(a.words, b.words, lo, hi, c, maxWordShift)
		dropA, dropB, ok = spellOutCut(a, b, na, nb)
	} else {
		na, nb = midpointRule(a.words, b.words, c)
	}
	a.words = a.words[:len(a.words)-na]
	b.words = b.words[nb:]
	if len(a.words) > 0 {
		// The pieces may time the words about the cut a little
		// differently: keep the words in order.
		last := a.words[len(a.words)-1]
		for i := 0; i < len(b.words) && b.words[i].Start < last.Start; i++ {
			b.words[i].Start = last.Start
			b.words[i].End = max(b.words[i].End, last.Start)
		}
	}
	if !ok && b.overlap >= minTextOverlap {
		if aw, bw := a.unitTimes(), b.unitTimes(); aw != nil && bw != nil {
			// Segment times: each word's time estimated within its
			// segment.
			dropA, dropB, c = cutWords(aw, bw, lo, hi, b.cutStart, maxSegmentWordShift)
		} else {
			said := int(math.Ceil(b.overlap * lcsWordsPerSecond))
			dropA, dropB = alignByText(a, b, lcsMinWindow+said, said+2)
		}
	}
	a.to -= dropA
	b.from += dropB
	a.cutEnd, b.cutStart = c, c

	mid := func(start, end float64) float64 { return (start + end) / 2 }
	for i, s := range a.segs {
		a.outside[i] = a.outside[i] || mid(s.Start, s.End) >= c
	}
	for i, s := range b.segs {
		b.outside[i] = b.outside[i] || mid(s.Start, s.End) < c
	}
}

// unitTimes returns the kept words of p's text with the times at which
// they are estimated to be said: each segment's time shared among its
// words by their length. It returns nil when p's text has no segments.
func (p *stitchPiece) unitTimes() []Word {
	if len(p.segs) == 0 {
		if p.from == p.to {
			return []Word{}
		}
		return nil
	}
	weight := func(u stitchWord) float64 { return float64(len(u.key) + 2) }
	total := make([]float64, len(p.segs))
	for _, u := range p.units {
		total[u.seg] += weight(u)
	}
	ws := make([]Word, len(p.units))
	done := make([]float64, len(p.segs))
	for i, u := range p.units {
		s := p.segs[u.seg]
		per := (s.End - s.Start) / total[u.seg]
		ws[i] = Word{Word: u.text, Start: s.Start + done[u.seg]*per}
		done[u.seg] += weight(u)
		ws[i].End = s.Start + done[u.seg]*per
	}
	return ws[p.from:p.to]
}

// cutWords decides the timed words a and b of two pieces (in the
// original's time) where they overlap, from lo to hi: it returns how many
// of a's last words and of b's first words to drop, and the time of the
// cut between them (see the top of this file). Two words may be matched
// when their midpoints are at most shift apart. When none are, the cut is
// at c by the midpoint rule, unless one piece heard nothing in the
// overlap (within maxWordShift of it): then nothing is dropped.
func cutWords(a, b []Word, lo, hi, c, shift float64) (na, nb int, cut float64) {
	base := len(a)
	for base > 0 && a[base-1].End > lo-shift {
		base--
	}
	aw := a[base:]
	m := 0
	for m < len(b) && b[m].Start < hi+shift {
		m++
	}
	bw := b[:m]
	pairs := alignWords(aw, bw, shift)
	if len(pairs) == 0 {
		heardA := slices.ContainsFunc(aw, func(w Word) bool { return w.End > lo-maxWordShift })
		heardB := slices.ContainsFunc(bw, func(w Word) bool { return w.Start < hi+maxWordShift })
		if !heardA || !heardB {
			return 0, 0, c // one piece heard nothing in the overlap: nothing to say twice
		}
		na, nb = midpointRule(a, b, c)
		return na, nb, c
	}
	// The joined sequence is gap 0, pair 1, gap 1, …, pair K, gap K; gap p
	// holds aw[i_p+1:i_{p+1}] and bw[j_p+1:j_{p+1}], each piece's version
	// of what lies between two shared words. A cut point lies after gap p
	// (before pair p+1), the gap taken from a, or before it (after pair
	// p), the gap taken from b.
	K := len(pairs)
	ia := func(p int) int { // i_p, with i_0 = -1 and i_{K+1} = len(aw)
		switch p {
		case 0:
			return -1
		case K + 1:
			return len(aw)
		}
		return pairs[p-1][0]
	}
	jb := func(p int) int {
		switch p {
		case 0:
			return -1
		case K + 1:
			return len(bw)
		}
		return pairs[p-1][1]
	}
	// lost[p][0] is what taking gap p from a loses of what only b heard;
	// lost[p][1], from b, of what only a heard.
	lost := make([][2]int, K+1)
	for p := range lost {
		la, lb := ia(p+1)-ia(p)-1, jb(p+1)-jb(p)-1
		lost[p] = [2]int{max(0, lb-la), max(0, la-lb)}
	}
	before := make([]int, K+2) // before[p]: lost by taking gaps 0..p-1 from a
	for p := range K + 1 {
		before[p+1] = before[p] + lost[p][0]
	}
	after := make([]int, K+2) // after[p]: lost by taking gaps p..K from b
	for p := K; p >= 0; p-- {
		after[p] = after[p+1] + lost[p][1]
	}
	bestLoss, bestDist := math.MaxInt, math.Inf(1)
	var x, y int
	for p := 0; p <= K; p++ {
		for _, fromA := range []bool{true, false} {
			loss, cx, cy := before[p]+after[p+1], ia(p)+1, jb(p)+1
			if fromA {
				loss += lost[p][0]
				cx, cy = ia(p+1), jb(p+1)
			} else {
				loss += lost[p][1]
			}
			t := cutTime(a[:base+cx], b[cy:], c)
			if d := math.Abs(t - c); loss < bestLoss || loss == bestLoss && d < bestDist {
				bestLoss, bestDist, x, y, cut = loss, d, cx, cy, t
			}
		}
	}
	return len(aw) - x, y, min(max(cut, lo), hi)
}

// midpointRule returns how many of the last words of a have their
// midpoint at or after c, and how many of the first words of b before it.
func midpointRule(a, b []Word, c float64) (na, nb int) {
	mid := func(w Word) float64 { return (w.Start + w.End) / 2 }
	for na < len(a) && mid(a[len(a)-1-na]) >= c {
		na++
	}
	for nb < len(b) && mid(b[nb]) < c {
		nb++
	}
	return na, nb
}

// cutTime returns the time of a cut between the last of the words kept
// before it and the first of those kept after it: c if it lies between
// the end of the one and the start of the other, else the nearer of those.
func cutTime(before, after []Word, c float64) float64 {
	lo, hi := math.Inf(-1), math.Inf(1)
	if len(before) > 0 {
		lo = before[len(before)-1].End
	}
	if len(after) > 0 {
		hi = after[0].Start
	}
	return min(max(c, min(lo, hi)), max(lo, hi))
}

// alignWords returns the pairs (i, j) of words a[i] and b[j], in order in
// both, that are the same word (by stitchKey) said at about the same time,
// their midpoints at most maxShift apart: of such sequences, the one that
// scores best, each pair scoring 1 less 0.9 × its shift / maxShift. Every
// pair adds to the score, so the sequence is as long as can be, but where
// two sequences compete (a word said twice in a row, "no. No", that each
// piece may pair with either) the pairs timed closer win.
func alignWords(a, b []Word, maxShift float64) [][2]int {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return nil
	}
	ka, kb := make([]string, n), make([]string, m)
	for i, w := range a {
		ka[i] = stitchKey(w.Word)
	}
	for j, w := range b {
		kb[j] = stitchKey(w.Word)
	}
	shift := func(i, j int) float64 { return math.Abs((a[i].Start + a[i].End - b[j].Start - b[j].End) / 2) }
	match := func(i, j int) bool { return ka[i] != "" && ka[i] == kb[j] && shift(i, j) <= maxShift }
	// cell (i, j) is the best alignment of a[:i] and b[:j]; move is how
	// it was reached: 0 from (i-1, j), 1 from (i, j-1), 2 by pairing
	// a[i-1] with b[j-1].
	type cell struct {
		score float64
		move  uint8
	}
	dp := make([]cell, (n+1)*(m+1))
	at := func(i, j int) *cell { return &dp[i*(m+1)+j] }
	better := func(x, y cell) bool { return x.score > y.score }
	for i := 1; i <= n; i++ {
		for j := 1; j <= m; j++ {
			best := *at(i-1, j)
			best.move = 0
			if l := *at(i, j-1); better(l, best) {
				best, best.move = l, 1
			}
			if match(i-1, j-1) {
				d := *at(i-1, j-1)
				d.score += 1 - 0.9*shift(i-1, j-1)/maxShift
				if better(d, best) {
					best, best.move = d, 2
				}
			}
			*at(i, j) = best
		}
	}
	var pairs [][2]int
	for i, j := n, m; i > 0 && j > 0; {
		switch at(i, j).move {
		case 0:
			i--
		case 1:
			j--
		default:
			i, j = i-1, j-1
			pairs = append(pairs, [2]int{i, j})
		}
	}
	slices.Reverse(pairs)
	return pairs
}

// spellOutCut finds the last na timed words of a and the first nb of b in
// their texts: it returns how many words to drop from the end of a's kept
// text and the start of b's, or false when the timed words do not spell
// the text.
func spellOutCut(a, b *stitchPiece, na, nb int) (dropA, dropB int, ok bool) {
	dropA, okA := spellOut(a.units[a.from:a.to], a.words[len(a.words)-na:], true)
	dropB, okB := spellOut(b.units[b.from:b.to], b.words[:nb], false)
	return dropA, dropB, okA && okB
}

// spellOut returns how many of the last (atEnd) or first words of us spell
// ws, compared by key with the spaces taken out, so that "well-known" is
// the words "well" and "known".
func spellOut(us []stitchWord, ws []Word, atEnd bool) (int, bool) {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(stitchKey(w.Word))
	}
	want, got := b.String(), 0
	for n := 0; ; n++ {
		if got == len(want) {
			return n, true
		}
		if n == len(us) {
			return 0, false
		}
		if atEnd {
			k := us[len(us)-1-n].key
			if !strings.HasSuffix(want[:len(want)-got], k) {
				return 0, false
			}
			got += len(k)
		} else {
			k := us[n].key
			if !strings.HasPrefix(want[got:], k) {
				return 0, false
			}
			got += len(k)
		}
	}
}

// alignByText aligns the end of a's kept text with the start of b's (see
// lcsCut) and returns how many words to drop from each: of the last and
// first limit words, at most maxDrop in all.
func alignByText(a, b *stitchPiece, limit, maxDrop int) (dropA, dropB int) {
	left, right := a.units[a.from:a.to], b.units[b.from:b.to]
	nl, nr := min(len(left), limit), min(len(right), limit)
	ids, punct := map[string]int{}, 0
	var alone []bool // by id: long enough to match on its own
	keys := func(us []stitchWord) []int {
		out := make([]int, len(us))
		for i, u := range us {
			if u.key == "" {
				punct--
				out[i] = punct // punctuation alone matches nothing
				continue
			}
			id, ok := ids[u.key]
			if !ok {
				id = len(ids)
				ids[u.key] = id
				alone = append(alone, utf8.RuneCountInString(u.key) >= minLoneWord)
			}
			out[i] = id
		}
		return out
	}
	kl, kr := keys(left[len(left)-nl:]), keys(right[:nr])
	l, r, ok := lcsCut(kl, kr, alone, maxDrop)
	if !ok {
		return 0, 0
	}
	return nl - l, r
}

// lcsCut finds where the end of left and the start of right say the same
// words, after Hugging Face transformers' _find_longest_common_sequence
// (pipelines/automatic_speech_recognition.py): right is slid over the end
// of left, each shift scored by matches / shift + shift / 10000 (the
// epsilon prefers longer perfect matches), and both are cut at the middle
// of the best aligned span: keep left[:l] and right[r:]. A shift counts
// when at least two words match and at least half of the span does; or
// when one word matches that is the last of left and the first of right,
// or, if alone[word] (a short word matches by chance too often), one of
// the last two of left and of the first two of right (a word cut in half
// at an edge, heard as another); and when it drops at most maxDrop words
// in all (more words than
// can be said in the overlap: those matched are not the overlap's). ok is
// false when no shift counts; then l = len(left) and r = 0. Negative
// words match nothing.
func lcsCut(left, right []int, alone []bool, maxDrop int) (l, r int, ok bool) {
	n, m := len(left), len(right)
	l, best := n, 0.0
	for i := 1; i < n+m; i++ {
		ls, le := max(0, n-i), min(n, n+m-i)
		rs, re := max(0, i-n), min(m, i)
		matches, lone := 0, false
		for k := range le - ls {
			if w := left[ls+k]; w == right[rs+k] {
				matches++
				lone = w >= 0 && w < len(alone) && alone[w] && ls+k >= n-2 && rs+k <= 1
			}
		}
		span := le - ls
		if !(matches >= 2 && 2*matches >= span || matches == 1 && (i == 1 || lone)) {
			continue
		}
		cl, cr := (ls+le)/2, (rs+re)/2
		if n-cl+cr > maxDrop {
			continue
		}
		if score := float64(matches)/float64(i) + float64(i)/10000; score > best {
			best, l, r, ok = score, cl, cr, true
		}
	}
	return l, r, ok
}

// text is the piece's kept text: its Text when nothing was dropped, or
// else its kept words, spaced as written within a segment and by one space
// between segments.
func (p *stitchPiece) text() string {
	if p.from == 0 && p.to == len(p.units) {
		if s := strings.TrimSpace(p.t.Text); s != "" {
			return s
		}
	}
	var b strings.Builder
	for i := p.from; i < p.to; i++ {
		u := p.units[i]
		if i > p.from {
			if u.seg == p.units[i-1].seg {
				b.WriteString(u.sep)
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(u.text)
	}
	return b.String()
}

// keptSegments returns the segments that keep any text (or, without text,
// lie inside the piece's boundaries), their text cut to the words kept and
// their times to the boundary they were cut at.
func (p *stitchPiece) keptSegments() []Segment {
	if len(p.segs) == 0 {
		return nil
	}
	lo, hi := make([]int, len(p.segs)), make([]int, len(p.segs))
	for i := range lo {
		lo[i], hi[i] = -1, -1
	}
	for i, u := range p.units {
		if lo[u.seg] < 0 {
			lo[u.seg] = i
		}
		hi[u.seg] = i + 1
	}
	var out []Segment
	for i, s := range p.segs {
		if lo[i] < 0 { // no text
			if !p.outside[i] {
				out = append(out, s)
			}
			continue
		}
		from, to := max(lo[i], p.from), min(hi[i], p.to)
		if from >= to {
			continue
		}
		if from > lo[i] || to < hi[i] {
			var b strings.Builder
			b.WriteString(s.Text[:len(s.Text)-len(strings.TrimLeftFunc(s.Text, unicode.IsSpace))])
			b.WriteString(p.units[from].text)
			for _, u := range p.units[from+1 : to] {
				b.WriteString(u.sep + u.text)
			}
			s.Text = b.String()
		}
		if from > lo[i] {
			s.Start = max(s.Start, min(s.End, p.cutStart))
		}
		if to < hi[i] {
			s.End = min(s.End, max(s.Start, p.cutEnd))
		}
		out = append(out, s)
	}
	return out
}

// splitStitchWords appends the words of s to us.
func splitStitchWords(s string, seg int, us []stitchWord) []stitchWord {
	first := len(us)
	var pending, pendingSep string // punctuation before the first word
	for i := 0; i < len(s); {
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !unicode.IsSpace(r) {
				break
			}
			j += n
		}
		if j == len(s) {
			break
		}
		k := j
		for k < len(s) {
			r, n := utf8.DecodeRuneInString(s[k:])
			if unicode.IsSpace(r) {
				break
			}
			k += n
		}
		sep, tok := s[i:j], s[j:k]
		i = k
		key := stitchKey(tok)
		switch {
		case key == "" && len(us) > first:
			us[len(us)-1].text += sep + tok
		case key == "" && pending == "":
			pending, pendingSep = tok, sep
		case key == "":
			pending += sep + tok
		case pending != "":
			us = append(us, stitchWord{sep: pendingSep, text: pending + sep + tok, key: key, seg: seg})
			pending = ""
		default:
			us = append(us, stitchWord{sep: sep, text: tok, key: key, seg: seg})
		}
	}
	if pending != "" {
		us = append(us, stitchWord{sep: pendingSep, text: pending, seg: seg})
	}
	return us
}

// stitchKey is a word as compared: lower case, letters and digits only.
func stitchKey(word string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, word)
}

// sumUsage adds up the parts' usage; nil when none has any. The type is
// the first one's.
func sumUsage(parts []part) *Usage {
	var u *Usage
	for _, p := range parts {
		pu := p.t.Usage
		if pu == nil {
			continue
		}
		if u == nil {
			u = &Usage{Type: pu.Type}
		}
		u.Seconds += pu.Seconds
		u.InputTokens += pu.InputTokens
		u.OutputTokens += pu.OutputTokens
		u.TotalTokens += pu.TotalTokens
		if d := pu.InputTokenDetails; d != nil {
			if u.InputTokenDetails == nil {
				u.InputTokenDetails = &InputTokenDetails{}
			}
			u.InputTokenDetails.TextTokens += d.TextTokens
			u.InputTokenDetails.AudioTokens += d.AudioTokens
		}
	}
	if u != nil {
		u.Seconds = math.Round(u.Seconds*1e6) / 1e6
	}
	return u
}

// encodeVerbose renders t as verbose_json, with the API's field names.
func encodeVerbose(t *Transcription, withSegments bool) ([]byte, error) {
	type segment struct {
		ID               int     `json:"id"`
		Seek             int     `json:"seek"`
		Start            float64 `json:"start"`
		End              float64 `json:"end"`
		Text             string  `json:"text"`
		Tokens           []int   `json:"tokens"`
		Temperature      float64 `json:"temperature"`
		AvgLogprob       float64 `json:"avg_logprob"`
		CompressionRatio float64 `json:"compression_ratio"`
		NoSpeechProb     float64 `json:"no_speech_prob"`
	}
	v := struct {
		Task     string     `json:"task"`
		Language string     `json:"language"`
		Duration float64    `json:"duration"`
		Text     string     `json:"text"`
		Words    *[]Word    `json:"words,omitempty"`
		Segments *[]segment `json:"segments,omitempty"`
		Usage    *Usage     `json:"usage,omitempty"`
	}{Task: t.Task, Language: t.Language, Duration: t.Duration, Text: t.Text, Usage: t.Usage}
	if t.Words != nil {
		v.Words = &t.Words
	}
	if withSegments {
		segs := make([]segment, len(t.Segments))
		for i, s := range t.Segments {
			segs[i] = segment{s.ID, s.Seek, s.Start, s.End, s.Text, s.Tokens, s.Temperature, s.AvgLogprob, s.CompressionRatio, s.NoSpeechProb}
			if segs[i].Tokens == nil {
				segs[i].Tokens = []int{}
			}
		}
		v.Segments = &segs
	}
	return encodeJSON(v)
}

// encodeDiarized renders t as diarized_json, with the API's field names.
func encodeDiarized(t *Transcription) ([]byte, error) {
	type segment struct {
		Type    string  `json:"type"`
		ID      string  `json:"id"`
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Text    string  `json:"text"`
		Speaker string  `json:"speaker"`
	}
	segs := make([]segment, len(t.Segments))
	for i, s := range t.Segments {
		segs[i] = segment{"transcript.text.segment", s.SegmentID, s.Start, s.End, strings.TrimSpace(s.Text), s.Speaker}
	}
	return encodeJSON(struct {
		Task     string    `json:"task"`
		Duration float64   `json:"duration"`
		Text     string    `json:"text"`
		Segments []segment `json:"segments"`
		Usage    *Usage    `json:"usage,omitempty"`
	}{t.Task, t.Duration, t.Text, segs, t.Usage})
}

// encodeJSON marshals v without escaping <, > and &, as the API does, with
// a final newline.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// renderSRT renders segments as SubRip: cues numbered from 1, times
// HH:MM:SS,mmm, a blank line after each cue. Segments without text are
// left out; blank lines inside a cue's text are removed, as they would end
// it.
func renderSRT(segs []Segment) []byte { return renderCues(segs, false) }

// renderVTT renders segments as WebVTT: the WEBVTT header, then cues
// without numbers, times HH:MM:SS.mmm, a blank line after each.
func renderVTT(segs []Segment) []byte { return renderCues(segs, true) }

func renderCues(segs []Segment, vtt bool) []byte {
	var b bytes.Buffer
	sep := byte(',')
	if vtt {
		b.WriteString("WEBVTT\n\n")
		sep = '.'
	}
	n := 0
	for _, s := range segs {
		text := cueText(s.Text)
		if text == "" {
			continue
		}
		n++
		if !vtt {
			b.WriteString(strconv.Itoa(n))
			b.WriteByte('\n')
		}
		b.WriteString(cueTimestamp(s.Start, sep))
		b.WriteString(" --> ")
		b.WriteString(cueTimestamp(s.End, sep))
		b.WriteByte('\n')
		b.WriteString(text)
		b.WriteString("\n\n")
	}
	return b.Bytes()
}

// cueText is a segment's text as a cue's: trimmed, without blank lines or
// the "-->" that would read as a timing line.
func cueText(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "-->", "->")
	lines := strings.Split(strings.TrimSpace(s), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			kept = append(kept, strings.TrimRight(l, " \t\r"))
		}
	}
	return strings.Join(kept, "\n")
}

// cueTimestamp formats seconds as HH:MM:SS followed by sep and milliseconds.
func cueTimestamp(sec float64, sep byte) string {
	ms := int64(math.Round(max(0, sec) * 1000))
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}
