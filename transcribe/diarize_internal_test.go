package transcribe

import (
	"fmt"
	"testing"
)

// A reference clip is a stretch of one speaker alone: the run of their
// segments with the most speech, 2.2 to 9 s long, padded into the silence
// about it when shorter, never within 50 ms of another speaker.
func TestCleanStretch(t *testing.T) {
	s := func(start, end float64, who string) Segment { return Segment{Start: start, End: end, Speaker: who} }
	segs := []Segment{
		s(0, 1, "A"), s(1.2, 2, "B"), // B: 0.8 s between A's, too little room
		s(2.1, 3, "A"),
		s(5, 6, "B"), s(6.5, 7.5, "B"), // B: 2.5 s of run, room from 3.05 to 9.95
		s(10, 30, "A"), // A: 20 s, the first 9 s taken
		s(31, 31.5, "C"),
	}
	for _, tc := range []struct {
		who  string
		want string
	}{
		{"A", "10.00–19.00"},
		{"B", "5.00–7.50"},
		{"C", "30.05–32.25"}, // 0.5 s, padded to 2.2 s up to the piece's end at 32.3
		{"D", "none"},
	} {
		from, to, ok := cleanStretch(segs, tc.who, 0, 32.3)
		got := "none"
		if ok {
			got = fmt.Sprintf("%.2f–%.2f", from, to)
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.who, got, tc.want)
		}
	}
	if _, _, ok := cleanStretch([]Segment{s(0, 1, "A"), s(1.1, 2, "B"), s(2.1, 3, "A")}, "B", 0, 3); ok {
		t.Error("a stretch of B found with under 2.2 s between A's")
	}
}

// Labels a piece's server gave speakers it was not told of are renamed,
// the same for the whole piece, to names no other speaker has.
func TestSpeakerMap(t *testing.T) {
	sp := &speakers{used: map[string]bool{}}
	first := sp.mapper(Request{})
	if a, b, a2 := first.name("A"), first.name("B"), first.name("A"); a != "A" || b != "B" || a2 != "A" {
		t.Fatalf("first piece: %s %s %s", a, b, a2)
	}
	sp.names = []string{"A"}
	next := sp.mapper(sp.request(Request{}))
	if a, b, c, b2 := next.name("A"), next.name("B"), next.name("C"), next.name("B"); a != "A" || b != "C" || c != "D" || b2 != "C" {
		t.Fatalf("second piece: %s %s %s %s", a, b, c, b2)
	}
}
