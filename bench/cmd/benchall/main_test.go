package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain makes the test binary a contender when benchall starts it as
// one (runUpload runs os.Executable, which is the test binary here).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(mainCode(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs the uploads scenario in -quick mode, every contender once
// in its own process, and checks that every run succeeded (every answer
// verified, the pipe refused) and that the document has a row, with
// figures, for each.
func TestQuick(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var stdout, stderr bytes.Buffer
	if code := mainCode(t.Context(), []string{"-quick", "-scenario", "uploads", "-out", out, "-work", t.TempDir()}, &stdout, &stderr); code != 0 {
		t.Fatalf("benchall -quick exited %d; stderr:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{"| steno | ", "| go-openai | ", "| openai-go | ", "| stdlib-floor | ", "| stdlib-pipe (refused: 400) | ", "### 4 × 1 MiB", "### 16 × 64 KiB", "Go: go1."} {
		if !strings.Contains(doc, want) {
			t.Errorf("the document lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "Failed runs") || strings.Contains(doc, "| — |") {
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
