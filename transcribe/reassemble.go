package transcribe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
// each piece. The middle of the overlap, c = offset + overlap/2, is then
// the boundary: what is said before c is taken from the earlier piece,
// what is said after it from the later one. Words near the edge of a piece
// are the least reliable (a word may be cut in half there), and c is as
// far from both edges as can be.
//
//   - With word timestamps on both sides, a word belongs to the side of c
//     its midpoint falls on: the earlier piece keeps its words whose
//     midpoint is before c, the later piece those whose midpoint is at or
//     after c. The words dropped are then found in the pieces' text (the
//     trailing or leading words that spell them, compared without case,
//     punctuation or spaces) and dropped from it too.
//   - Otherwise (segment timestamps only, or text only), or when the words
//     cannot be found in the text, the end of the earlier text and the
//     start of the later one are aligned word by word, as Hugging Face
//     transformers' chunked speech recognition does
//     (_find_longest_common_sequence): the later words are slid over the
//     earlier ones, each position scored by matches / shift plus a small
//     epsilon that prefers longer matches, and both sides are cut at the
//     middle of the best matching span, so the earlier piece's words are
//     kept for the first half of the overlap and the later piece's for the
//     second. Words are compared lower-cased and without punctuation; the
//     original spelling is kept. When nothing matches well enough the texts
//     are joined as they are.
//
// Segments are kept while any of their text is; a segment that lost words
// at its end (start) ends (starts) at c, and segments without text follow
// the midpoint rule like words do.

// part is one piece's transcript and where the piece sits in the original audio.
type part struct {
	t       *Transcription // the piece's transcript (Format verbose_json, json or text)
	offset  float64        // seconds to add to the piece's timestamps; down to -1 (an MP3's codec delay), times it makes negative are 0
	overlap float64        // seconds at the piece's start shared with the previous piece (hard cut); 0 after a silence cut
}

// errSplitDiarized is returned for diarized_json: the speaker labels of
// pieces transcribed apart do not name the same people.
var errSplitDiarized = errors.New("transcribe: diarized_json cannot be reassembled from pieces: speaker labels differ from piece to piece")

const (
	// lcsMinWindow and lcsWordsPerSecond bound how many words at the end
	// of a piece, and at the start of the next, are aligned when there are
	// no segment times to tell which words fall in the overlap: generously
	// more than are ever said in it.
	lcsMinWindow      = 16
	lcsWordsPerSecond = 8
	// segmentSlack widens the overlap, in seconds, when segment times
	// choose the words to align.
	segmentSlack = 1.0
	// minTextOverlap is the shortest overlap, in seconds, whose text is
	// aligned: a shorter one (an MP3 decoder's pre-roll inside a pause)
	// cannot hold a word said twice, and aligning would only risk taking
	// a word really said twice ("no. No") for a repeat.
	minTextOverlap = 0.25
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
// then have (verbose_json pieces).
//
// Some things cannot be cut as finely as text: a segment whose text lost
// the words of an overlap keeps its tokens and decoding statistics; json
// logprobs are the pieces' one after the other, those of an overlap twice;
// usage of mixed types ("duration" and "tokens") is added up field by
// field under the first piece's type. RequestID is the pieces' request ids
// joined by commas.
func reassemble(parts []part, format ResponseFormat) (*Transcription, error) {
	switch format {
	case "":
		format = JSON
	case JSON, Text, SRT, VTT, VerboseJSON:
	case DiarizedJSON:
		return nil, errSplitDiarized
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
		duration = last.shift(last.t.Duration)
	}

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
			s.Start, s.End = sp.shift(s.Start), sp.shift(s.End)
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
		w.Start, w.End = sp.shift(w.Start), sp.shift(w.End)
		sp.words[i] = w
	}
	sp.to = len(sp.units)
	return sp
}

// shift moves a time of the piece to the original audio's.
func (p *stitchPiece) shift(sec float64) float64 {
	if p.offset == 0 {
		return sec
	}
	return max(0, math.Round((sec+p.offset)*1e6)/1e6)
}

// timed reports whether the piece's words have timestamps, or it has no
// words at all.
func (p *stitchPiece) timed() bool { return len(p.words) > 0 || p.from == p.to }

// stitchOverlap removes from a and b the words of the overlap at the start
// of b that both transcribe.
func stitchOverlap(a, b *stitchPiece) {
	c := b.cutStart
	dropA, dropB, ok := 0, 0, false
	if a.timed() && b.timed() {
		dropA, dropB, ok = alignByTime(a, b, c)
	}
	if !ok && b.overlap >= minTextOverlap {
		limit := lcsMinWindow + int(math.Ceil(b.overlap*lcsWordsPerSecond))
		dropA, dropB = alignByText(a, b, b.offset-segmentSlack, b.offset+b.overlap+segmentSlack, limit)
	}
	a.to -= dropA
	b.from += dropB

	mid := func(start, end float64) float64 { return (start + end) / 2 }
	a.words = deleteWords(a.words, func(w Word) bool { return mid(w.Start, w.End) >= c })
	b.words = deleteWords(b.words, func(w Word) bool { return mid(w.Start, w.End) < c })
	for i, s := range a.segs {
		a.outside[i] = a.outside[i] || mid(s.Start, s.End) >= c
	}
	for i, s := range b.segs {
		b.outside[i] = b.outside[i] || mid(s.Start, s.End) < c
	}
}

func deleteWords(ws []Word, drop func(Word) bool) []Word {
	out := ws[:0]
	for _, w := range ws {
		if !drop(w) {
			out = append(out, w)
		}
	}
	return out
}

// alignByTime drops the words of a whose midpoint is at or after c, and
// those of b whose midpoint is before it, and finds them in the text: it
// returns how many words to drop from the end of a's kept text and the
// start of b's, or false when the timed words do not spell the text.
func alignByTime(a, b *stitchPiece, c float64) (dropA, dropB int, ok bool) {
	na := 0
	for na < len(a.words) && (a.words[len(a.words)-1-na].Start+a.words[len(a.words)-1-na].End)/2 >= c {
		na++
	}
	nb := 0
	for nb < len(b.words) && (b.words[nb].Start+b.words[nb].End)/2 < c {
		nb++
	}
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
// lcsCut) and returns how many words to drop from each. The words compared
// are those of a's segments ending after the time after, and of b's
// segments starting before the time before; without segments, at most
// limit words on each side.
func alignByText(a, b *stitchPiece, after, before float64, limit int) (dropA, dropB int) {
	left, right := a.units[a.from:a.to], b.units[b.from:b.to]
	nl := 0
	for nl < len(left) {
		u := left[len(left)-1-nl]
		if u.seg >= 0 && a.segs[u.seg].End <= after || u.seg < 0 && nl >= limit {
			break
		}
		nl++
	}
	nr := 0
	for nr < len(right) {
		u := right[nr]
		if u.seg >= 0 && b.segs[u.seg].Start >= before || u.seg < 0 && nr >= limit {
			break
		}
		nr++
	}
	ids, punct := map[string]int{}, 0
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
			}
			out[i] = id
		}
		return out
	}
	l, r, ok := lcsCut(keys(left[len(left)-nl:]), keys(right[:nr]))
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
// when at least two words match and at least half of the span does, or
// when the last word of left is the first of right. ok is false when no
// shift counts; then l = len(left) and r = 0.
func lcsCut(left, right []int) (l, r int, ok bool) {
	n, m := len(left), len(right)
	l, best := n, 0.0
	for i := 1; i < n+m; i++ {
		ls, le := max(0, n-i), min(n, n+m-i)
		rs, re := max(0, i-n), min(m, i)
		matches := 0
		for k := range le - ls {
			if left[ls+k] == right[rs+k] {
				matches++
			}
		}
		span := le - ls
		if !(matches >= 2 && 2*matches >= span || matches == 1 && i == 1) {
			continue
		}
		if score := float64(matches)/float64(i) + float64(i)/10000; score > best {
			best, l, r, ok = score, (ls+le)/2, (rs+re)/2, true
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
