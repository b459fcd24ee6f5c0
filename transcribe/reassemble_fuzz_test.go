package transcribe

import (
	"fmt"
	"strings"
	"testing"
)

// fuzzParts builds 1 to 4 pieces from data: each with ordered,
// non-overlapping segments and their words, at increasing offsets, with
// overlaps of up to 2.55 s, as the cutter makes them.
func fuzzParts(data []byte) ([]part, ResponseFormat) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := int(data[0])
		data = data[1:]
		return b
	}
	formats := []ResponseFormat{JSON, Text, SRT, VTT, VerboseJSON}
	format := formats[next()%len(formats)]
	n := 1 + next()%4
	var parts []part
	offset := 0.0
	vocab := []string{"alpha", "beta", "gamma", "delta", "echo", "the", "a", "no", "No."}
	for i := range n {
		var segs []Segment
		at := float64(next()) / 100
		for range next() % 5 {
			var words []string
			for range 1 + next()%4 {
				words = append(words, vocab[next()%len(vocab)])
			}
			end := at + 0.1 + float64(next())/50
			segs = append(segs, seg(at, end, " "+strings.Join(words, " ")))
			at = end + float64(next()%50)/100
		}
		t := verbose(at+float64(next())/100, next()%2 == 0, segs...)
		if format == JSON || format == Text {
			if next()%2 == 0 {
				t = plain(t.Text)
			}
		}
		overlap := 0.0
		if i > 0 {
			overlap = float64(next()) / 100
			offset += max(overlap, float64(next())/10)
		}
		parts = append(parts, part{t: t, offset: offset, overlap: overlap})
		offset += at
	}
	return parts, format
}

// FuzzReassemble: stitching any pieces the cutter can make never panics,
// and what it returns is in order, within the audio, and its Raw decodes
// in the format asked for.
func FuzzReassemble(f *testing.F) {
	for _, s := range []string{"", "\x04\x03\x10\x02\x03\x01\x02\x05\x40\x20", "\x01\x02\x00\x03\x05\x05\x05\x05\x80\x90\xff\x10\x00\x01\x02\x03",
		"\x02\x01\x30\x04\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01", "\x03\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parts, format := fuzzParts(data)
		tr, err := reassemble(parts, format)
		if err != nil {
			if format == SRT || format == VTT {
				return // pieces without segments cannot make cues
			}
			t.Fatalf("%s: %v\n%s", format, err, describe(parts))
		}
		for i, s := range tr.Segments {
			if s.ID != i || s.Start > s.End || s.Start < 0 || i > 0 && s.Start < tr.Segments[i-1].Start {
				t.Fatalf("segment %d out of order: %+v\n%s", i, s, describe(parts))
			}
		}
		for i, w := range tr.Words {
			if w.Start < 0 || w.Start > w.End || i > 0 && w.Start < tr.Words[i-1].Start {
				t.Fatalf("word %d out of order: %+v\n%s", i, w, describe(parts))
			}
		}
		ct := "application/json"
		if format == SRT || format == VTT || format == Text {
			ct = "text/plain"
		}
		if _, err := decode(tr.Raw, ct, format); err != nil && tr.Text != "" {
			t.Fatalf("Raw does not decode as %s: %v\n%s", format, err, tr.Raw)
		}
	})
}

func describe(parts []part) string {
	var b strings.Builder
	for i, p := range parts {
		fmt.Fprintf(&b, "piece %d at %.2f overlap %.2f: %q\n", i, p.offset, p.overlap, p.t.Text)
		for _, s := range p.t.Segments {
			fmt.Fprintf(&b, "  %.2f–%.2f %q\n", s.Start, s.End, s.Text)
		}
	}
	return b.String()
}
