package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steno-go/steno/bench/internal/longaudio"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// TestMain makes the test binary a contender when benchall starts it as
// one (runUpload runs os.Executable, which is the test binary here).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(mainCode(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs the uploads, long-audio and overhead scenarios in -quick
// mode, every contender once in its own process, and checks that every run
// succeeded (every answer verified, the pipe refused, steno's stitched
// transcript the whole file's) and that the document has a row, with
// figures, for each.
func TestQuick(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var stdout, stderr bytes.Buffer
	if code := mainCode(t.Context(), []string{"-quick", "-scenario", "uploads,long,overhead", "-out", out, "-work", t.TempDir()}, &stdout, &stderr); code != 0 {
		t.Fatalf("benchall -quick exited %d; stderr:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{"| steno | ", "| go-openai | ", "| openai-go | ", "| stdlib-floor | ", "| stdlib-pipe (refused: 400) | ", "### 4 × 1 MiB", "### 16 × 64 KiB", "Go: go1.",
		"## 3. Long audio", "| WAV | steno Plan, pieces ≤ 24 MiB | ", "| WAV | read whole file, 1 MiB reads | ", "| naive | ",
		"## 4. Overhead", "### 40 × 64 KiB", "### Per request and per MiB, apart"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the document lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "Failed runs") || strings.Contains(doc, "| 0/1 |") || strings.Contains(doc, "Wrong plans") || strings.Contains(doc, "run failed") {
		t.Errorf("a run failed:\n%s", doc)
	}
	t.Logf("stderr:\n%s", stderr.String())
}

// TestVerify checks that a wrong transcript, a missing answer, an error
// status or a chunked request fails a run, and that the pipe's run
// succeeds only when every request was refused.
func TestVerify(t *testing.T) {
	c := &uploadCase{files: 2, expected: map[string]string{"a.wav": "Hello there.", "b.wav": "Good bye."}}
	good := []answer{{File: "a.wav", Status: 200, Text: "Hello there."}, {File: "b.wav", Status: 200, Text: "Good bye.\n"}}
	okServer := upFigures{statuses: map[int]int{200: 2}}
	if err := verify(cFloor, c, good, okServer); err != nil {
		t.Errorf("good answers: %v", err)
	}
	wrong := []answer{good[0], {File: "b.wav", Status: 200, Text: "Hello there."}}
	if err := verify(cSteno, c, wrong, okServer); err == nil {
		t.Error("a wrong transcript passed")
	}
	if err := verify(cSteno, c, good[:1], okServer); err == nil {
		t.Error("a missing answer passed")
	}
	failed := []answer{good[0], {File: "b.wav", Status: 500, Err: "HTTP 500"}}
	if err := verify(cSteno, c, failed, upFigures{statuses: map[int]int{200: 1, 500: 1}}); err == nil {
		t.Error("a 500 passed")
	}
	if err := verify(cSteno, c, good, upFigures{statuses: map[int]int{200: 2}, chunked: 1}); err == nil {
		t.Error("a chunked request passed")
	}
	if err := verify(cSteno, c, good, upFigures{statuses: map[int]int{200: 2, 429: 1}}); err == nil {
		t.Error("a server that answered a 429 besides passed")
	}
	refused := []answer{{File: "a.wav", Status: 400}, {File: "b.wav", Status: 400}}
	if err := verify(cPipe, c, refused, upFigures{statuses: map[int]int{400: 2}, chunked: 2}); err != nil {
		t.Errorf("the pipe refused: %v", err)
	}
	if err := verify(cPipe, c, good, okServer); err == nil {
		t.Error("a pipe whose uploads were accepted passed")
	}
}

// A stitched transcript passes only if it is the whole file's, word for
// word, modulo the cuts; the naive approach's only if every piece came
// back with its own transcript; either fails on a server that answered
// anything but 200s.
func TestVerifyLong(t *testing.T) {
	la := &longAudio{whole: longaudio.Normalise("River bridge. The end of the day."), naiveTexts: []string{"River bridge. The", "End of the day."}}
	ok := transcribetest.Stats{Requests: 2, ByStatus: map[int]int{200: 2}}
	pause := []longPiece{{Cut: "none"}, {Cut: "pause"}}
	hard := []longPiece{{Cut: "none"}, {Cut: "hard"}}
	for _, tc := range []struct {
		name, approach string
		rep            longReport
		st             transcribetest.Stats
		pass           bool
	}{
		{"stitched, a sentence cut in two", lSteno, longReport{Text: "River bridge. The end. Of the day.", Pieces: pause}, ok, true},
		{"a word wrong", lSteno, longReport{Text: "River bridge. The end of the night.", Pieces: pause}, ok, false},
		{"a word lost", lSteno, longReport{Text: "River bridge. The end of day.", Pieces: pause}, ok, false},
		{"a word lost at a hard cut", lSteno, longReport{Text: "River bridge. The end of day.", Pieces: hard}, ok, true},
		{"five words lost at a hard cut", lSteno, longReport{Text: "River bridge.", Pieces: hard}, ok, false},
		{"a piece's answer missing", lSteno, longReport{Text: "River bridge. The end of the day.", Pieces: pause}, transcribetest.Stats{Requests: 1, ByStatus: map[int]int{200: 1}}, false},
		{"a 500 besides", lSteno, longReport{Text: "River bridge. The end of the day.", Pieces: pause}, transcribetest.Stats{Requests: 3, ByStatus: map[int]int{200: 2, 500: 1}}, false},
		{"an error", lSteno, longReport{Err: "boom"}, ok, false},
		{"naive", lNaive, longReport{Pieces: []longPiece{{Text: "River bridge. The"}, {Text: "End of the day.\n"}}}, ok, true},
		{"naive, a piece wrong", lNaive, longReport{Pieces: []longPiece{{Text: "River bridge. The"}, {Text: "End of the night."}}}, ok, false},
		{"naive, a piece missing", lNaive, longReport{Pieces: []longPiece{{Text: "River bridge. The"}}}, ok, false},
	} {
		if err := verifyLong(tc.approach, la, tc.rep, tc.st); (err == nil) != tc.pass {
			t.Errorf("%s: verifyLong = %v, want pass %v", tc.name, err, tc.pass)
		}
	}
}

// The limits section reads the limiters' tables and names every contender
// that finished before steno's best row, with the price it paid.
func TestWriteAhead(t *testing.T) {
	output := `limiters: 3 rounds

== bucket: 300 requests; a bucket, 50 per 6s
   reference: xrate, median 30.32s; target for steno: ≤ 1.02 × xrate, ≤ 1 × 429
contender         time (s)      min–max  × xrate           429s  failed  wasted  most in a 6s  most in flight    target
steno-learned        30.57  30.51–30.59    1.008              0       0     0 %         97/50              20  PASS 3/3
steno-configured     30.55  30.50–30.57    1.008              0       0     0 %         98/50              20  PASS 3/3
xrate                30.32  30.32–30.32    1.000              1       0     0 %        100/50              20         —
forum                30.37  30.32–30.40    1.002  581 (581–582)       0    66 %        208/50              20         —
openai-go             5.10    5.00–5.20    0.168            600     150    67 %        300/50              20         —
all-at-once          30.75  30.34–30.75    1.014  440 (438–441)       0    59 %        192/50              20         —
   steno-learned: requests bucket 50 per 6s (learned); pauses after 429s: 0

== highlimit: 200 uploads
   reference: plain, median 0.45s; target for steno: ≤ 1.1 × plain
contender      time (s)    min–max  × plain  429s  failed  wasted  most in flight    target
steno-learned      0.50  0.44–0.60    1.111     0       0     0 %              64  MISS 1/3
plain              0.45  0.44–0.45    1.000     0       0     0 %              64         —

== hostile: a server
limit  2nd request waited (s)      min–max  MaxPause  caller with a 1s deadline got  after (ms)    target
1                       2.002  2.001–2.002        2s      ErrWouldExceedDeadline ×3         0.0  PASS 3/3
`
	tables := parseLimits(output)
	if len(tables) != 3 || len(tables[0].rows) != 6 || tables[0].rows[3][4] != "581 (581–582)" || len(tables[1].rows) != 2 {
		t.Fatalf("parsed %+v", tables)
	}
	var b bytes.Buffer
	writeAhead(&b, output)
	got := b.String()
	for _, want := range []string{
		"in bucket, against steno-configured's 30.55 s: xrate (30.32 s) 429s: 1 against 0",
		"most requests in one window: 100/50 against 98/50",
		"forum (30.37 s) 429s: 581 (581–582) against 0 (wasted: 66 % of its requests against 0 %)",
		"openai-go (5.10 s) failed: 150 uploads given up",
		"in highlimit, against steno-learned's 0.50 s: plain (0.45 s) with no more 429s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("writeAhead lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "all-at-once") || strings.Contains(got, "hostile") {
		t.Errorf("writeAhead names a contender slower than steno, or the hostile table:\n%s", got)
	}

	b.Reset()
	writeMisses(&b, output)
	if got := b.String(); !strings.Contains(got, "Where steno missed its target: steno-learned in highlimit.") ||
		!strings.Contains(got, "steno-learned's rounds took 0.44–0.60 s and plain's 0.44–0.45 s: the ranges overlap") || strings.Contains(got, "quantised") {
		t.Errorf("writeMisses:\n%s", got)
	}
}

func TestPerUnit(t *testing.T) {
	// 2000 requests of 125 MiB and 50 of 500 MiB, at 0.2 ms a request and
	// 0.5 ms a MiB.
	c1, c2 := 2000*0.2+125*0.5, 50*0.2+500*0.5
	r, m, ok := perUnit(2000, 125, c1, 50, 500, c2)
	if !ok || math.Abs(r-0.2) > 1e-9 || math.Abs(m-0.5) > 1e-9 {
		t.Errorf("perUnit = %v, %v, %v; want 0.2, 0.5", r, m, ok)
	}
	if _, _, ok := perUnit(10, 1, 1, 20, 2, 2); ok {
		t.Error("perUnit of two proportional cases succeeded")
	}
}
