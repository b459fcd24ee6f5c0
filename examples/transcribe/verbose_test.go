package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// -v prints each piece and how the cut before it was judged: in a pause,
// at what level against the floor and speech.
func TestVerboseCuts(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-simulate", "-cut", "2s", "-v"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	s := errOut.String()
	lines := regexp.MustCompile(`(?m)^  piece (\d+): [0-9.]+–[0-9.]+ s, \d+ bytes(.*)$`).FindAllStringSubmatch(s, -1)
	if !strings.Contains(s, "cut into 5 pieces:\n") || len(lines) != 5 {
		t.Fatalf("stderr:\n%s", s)
	}
	if lines[0][2] != "" {
		t.Errorf("the first piece has a cut: %q", lines[0][0])
	}
	pause := regexp.MustCompile(`^; cut before it in a pause: level -[0-9.]+ dBFS, floor -[0-9.]+ dBFS, speech -[0-9.]+ dBFS \([0-9.]+ dB under speech\)$`)
	hard := regexp.MustCompile(`^; hard cut before it, [0-9.]+ s overlap: no pause near the floor \(-[0-9.]+ dBFS; speech -[0-9.]+ dBFS\)$`)
	pauses := 0
	for _, l := range lines[1:] {
		switch {
		case pause.MatchString(l[2]):
			pauses++
		case !hard.MatchString(l[2]):
			t.Errorf("piece %s: %q", l[1], l[2])
		}
	}
	if pauses == 0 {
		t.Errorf("no cut in a pause:\n%s", s)
	}
}
