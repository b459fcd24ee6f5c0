package transcribe

import (
	"fmt"
	"strconv"
	"strings"
)

// parseCues reads the cues of an SRT or WebVTT document: blocks separated
// by blank lines, each with a "start --> end" line followed by text. Cue
// numbers, the WEBVTT header, NOTE and STYLE blocks are skipped.
func parseCues(doc string) ([]Segment, error) {
	doc = strings.ReplaceAll(strings.TrimPrefix(doc, "\ufeff"), "\r\n", "\n")
	var segs []Segment
	for block := range strings.SplitSeq(doc, "\n\n") {
		lines := strings.Split(strings.Trim(block, "\n"), "\n")
		if first := lines[0]; strings.HasPrefix(first, "NOTE") || strings.HasPrefix(first, "STYLE") || strings.HasPrefix(first, "REGION") {
			continue
		}
		for i, line := range lines {
			from, to, ok := strings.Cut(line, "-->")
			if !ok {
				continue
			}
			start, err1 := parseTimestamp(from)
			end, err2 := parseTimestamp(strings.Fields(to + " x")[0]) // VTT settings may follow
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad cue timing %q", line)
			}
			segs = append(segs, Segment{
				ID: len(segs), Start: start, End: end,
				Text: strings.TrimSpace(strings.Join(lines[i+1:], "\n")),
			})
			break
		}
	}
	return segs, nil
}

// parseTimestamp reads "HH:MM:SS,mmm" (SRT) or "[HH:]MM:SS.mmm" (VTT).
func parseTimestamp(s string) (float64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", ".")
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("bad timestamp %q", s)
	}
	var total float64
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("bad timestamp %q", s)
		}
		total = total*60 + v
	}
	return total, nil
}
