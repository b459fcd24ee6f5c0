package transcribe

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// parseCues reads the cues of an SRT or WebVTT document: blocks separated
// by blank lines, each a cue of an optional identifier line (SRT's
// number), a "start --> end" timing line (VTT settings may follow) and
// text lines. The WEBVTT header block and VTT's NOTE, STYLE and REGION
// blocks are skipped. Every other block must be a cue: a document with
// anything else in it (an error page, garbage, a body cut inside a timing
// line) is an error, never a transcript of fewer cues. A document with no
// blocks at all (a silent recording) has no cues and no error. Errors say
// where, never what the document holds.
func parseCues(doc string) ([]Segment, error) {
	doc = strings.TrimPrefix(doc, "\ufeff")
	var (
		segs  []Segment
		block []string // the lines of the block being read
		n     int      // blocks read
	)
	flush := func() error {
		if len(block) == 0 {
			return nil
		}
		n++
		defer func() { block = block[:0] }()
		if n == 1 && isWord(block[0], "WEBVTT") {
			// The header. Its lines never hold "-->": one that does is a
			// cue that a careless writer did not set off by a blank line.
			i := 1
			for i < len(block) && !strings.Contains(block[i], "-->") {
				i++
			}
			if i == len(block) {
				return nil
			}
			block = block[i:]
		}
		first := block[0]
		if isWord(first, "NOTE") || isWord(first, "STYLE") || isWord(first, "REGION") {
			return nil
		}
		at := 0
		if !strings.Contains(first, "-->") {
			at = 1 // an identifier first
		}
		if at >= len(block) || !strings.Contains(block[at], "-->") {
			return fmt.Errorf("block %d is not a cue: no timing line", n)
		}
		from, to, _ := strings.Cut(block[at], "-->")
		start, err1 := parseTimestamp(from)
		end, err2 := parseTimestamp(firstField(to))
		if err1 != nil || err2 != nil {
			return fmt.Errorf("block %d: bad cue timing: %w", n, errors.Join(err1, err2))
		}
		var text string
		switch lines := block[at+1:]; len(lines) {
		case 0:
		case 1:
			text = strings.TrimSpace(lines[0])
		default:
			text = strings.TrimSpace(strings.Join(lines, "\n"))
		}
		segs = append(segs, Segment{ID: len(segs), Start: start, End: end, Text: text})
		return nil
	}
	for rest := doc; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		block = append(block, line)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return segs, nil
}

// isWord reports whether line is word, or starts with word followed by
// white space.
func isWord(line, word string) bool {
	rest, ok := strings.CutPrefix(line, word)
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t')
}

// firstField returns the first field of s: the end time of a timing line,
// before any VTT cue settings.
func firstField(s string) string {
	s = strings.TrimLeft(s, " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i]
	}
	return s
}

// errTimestamp is the cause of every bad cue time.
var errTimestamp = errors.New("bad timestamp")

// parseTimestamp reads "HH:MM:SS,mmm" (SRT) or "[HH:]MM:SS.mmm" (VTT), with
// either separator before the fraction. Hours have any number of digits
// (up to nine); minutes and seconds have one or two and are below 60 after
// a larger unit; the fraction, when present, has one to nine digits.
func parseTimestamp(s string) (float64, error) {
	s = strings.TrimSpace(s)
	var parts [3]string
	n := 0
	for rest := s; ; n++ {
		if n == len(parts) {
			return 0, errTimestamp
		}
		var found bool
		parts[n], rest, found = strings.Cut(rest, ":")
		if !found {
			n++
			break
		}
	}
	if n < 2 {
		return 0, errTimestamp
	}
	last := parts[n-1]
	secs, frac, hasFrac := strings.Cut(last, ".")
	if !hasFrac {
		secs, frac, hasFrac = strings.Cut(last, ",")
	}
	if hasFrac && (len(frac) == 0 || len(frac) > 9) {
		return 0, errTimestamp
	}
	var whole int64
	for i := range n {
		p := parts[i]
		if i == n-1 {
			p = secs
		}
		v, ok := digits(p, 9)
		if !ok || i > 0 && (len(p) > 2 || v >= 60) {
			return 0, errTimestamp
		}
		whole = whole*60 + v
	}
	f, ok := digits(frac, 9)
	if hasFrac && !ok {
		return 0, errTimestamp
	}
	// Exact for every time with at most 15 significant digits: an integer
	// count of the fraction's units over a power of ten, rounded once.
	scale := math.Pow10(len(frac))
	if units := float64(whole)*scale + float64(f); units < 1<<53 {
		return units / scale, nil
	}
	return float64(whole) + float64(f)/scale, nil
}

// digits reads s, one to max ASCII digits, as a number.
func digits(s string, max int) (int64, bool) {
	if s == "" || len(s) > max {
		return 0, false
	}
	var v int64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
