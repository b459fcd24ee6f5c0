package transcribe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// FailOutputWrites makes w's writes fail with err once ok of them have
// succeeded, as a disk that fills up would: for tests of the batch, in
// package transcribe_test.
func FailOutputWrites(w *OutputWriter, ok int, err error) {
	var n atomic.Int64
	w.writeData = func(f *os.File, data []byte) error {
		if n.Add(1) > int64(ok) {
			return err
		}
		_, werr := f.Write(data)
		return werr
	}
}

// newTestWriter returns a writer into a new directory, closed at the end
// of the test.
func newTestWriter(t *testing.T) (*OutputWriter, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := NewOutputWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, dir
}

func textTranscript(s string) *Transcription {
	return &Transcription{Format: JSON, Text: s, Raw: []byte(`{"text":"` + s + `"}`), RequestID: "req_1"}
}

// A second writer on a directory fails at once, naming the holder, until
// the first is closed.
func TestOutputWriterLocksItsDirectory(t *testing.T) {
	w, dir := newTestWriter(t)
	_, err := NewOutputWriter(dir)
	if !errors.Is(err, ErrOutputLocked) || !strings.Contains(err.Error(), "another batch") ||
		!strings.Contains(err.Error(), "process ") {
		t.Fatalf("second writer: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(Input{ID: "a.wav"}, Request{}, textTranscript("a")); !errors.Is(err, ErrOutput) {
		t.Fatalf("write after Close: %v", err)
	}
	w2, err := NewOutputWriter(dir)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	w2.Close()
}

// Temporary files of a killed run are removed by the next writer.
func TestOutputWriterRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, recordDir, stateDir, tmpDir)
	os.MkdirAll(filepath.Join(stale, "sub"), 0o755)
	for _, name := range []string{"write-123", "write-456", "sub/x"} {
		os.WriteFile(filepath.Join(stale, name), []byte("half a transcr"), 0o644)
	}
	w, err := NewOutputWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if left, _ := os.ReadDir(stale); len(left) != 0 {
		t.Fatalf("left in %s: %v", stale, left)
	}
	if _, err := w.Write(Input{ID: "a.wav"}, Request{}, textTranscript("a")); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(stale); len(left) != 0 {
		t.Fatalf("a write left %v", left)
	}
	// Records of inputs named like the writer's own state are not taken
	// for it: the next writer's cleaning keeps them.
	ins := []Input{{ID: "tmp/x.wav"}, {ID: "pieces/y.wav"}, {ID: "lock/z.wav"}, {ID: ".steno.wav"}}
	for _, in := range ins {
		if _, err := w.Write(in, Request{}, textTranscript(in.ID)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	w, err = NewOutputWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, in := range ins {
		if _, done := w.Done(in, Request{}); !done {
			t.Errorf("%s is not done after a new writer cleaned up", in.ID)
		}
	}
}

// The record, written first, holds the transcript: a crash before the
// transcript file was renamed into place costs no request, and Done
// writes the file from the record. A transcript edited since is kept.
func TestOutputRecordHoldsTheTranscript(t *testing.T) {
	w, dir := newTestWriter(t)
	in := Input{ID: "calls/a.wav", Path: "/data/calls/a.wav", Size: 100, ModTime: time.Unix(1e9, 0)}
	tr := &Transcription{Format: SRT, Raw: []byte("1\n00:00:00,000 --> 00:00:01,000\nHello\n\n"), RequestID: "req_1"}
	path, err := w.Write(in, Request{ResponseFormat: SRT}, tr)
	if err != nil || path != filepath.Join(dir, "calls", "a.srt") {
		t.Fatalf("Write: %s, %v", path, err)
	}
	os.Remove(path) // killed between the two renames
	got, done := w.Done(in, Request{ResponseFormat: SRT})
	if b, _ := os.ReadFile(path); !done || got != path || !bytes.Equal(b, tr.Raw) {
		t.Fatalf("Done after the transcript was lost: %s %v, %q", got, done, b)
	}
	os.WriteFile(path, []byte("edited by hand\n"), 0o644)
	if _, done := w.Done(in, Request{ResponseFormat: SRT}); !done {
		t.Fatal("an edited transcript is not done")
	}
	if b, _ := os.ReadFile(path); string(b) != "edited by hand\n" {
		t.Fatalf("the edit was overwritten: %q", b)
	}
	// Another version of the input, or another request, is not done.
	changed := in
	changed.Size++
	if _, done := w.Done(changed, Request{ResponseFormat: SRT}); done {
		t.Fatal("a changed input is done")
	}
	if _, done := w.Done(in, Request{ResponseFormat: SRT, Language: "en"}); done {
		t.Fatal("another request is done")
	}
	// A record of an older version, without the transcript, still counts
	// while its transcript is there.
	old := `{"input":"/data/b.wav","size":5,"mtime":"2001-09-09T01:46:40Z","request":"` + mustFingerprint(t, Request{}) + `","output":"b.txt"}`
	os.WriteFile(filepath.Join(dir, recordDir, "b.txt.json"), []byte(old+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("old\n"), 0o644)
	b := Input{ID: "b.wav", Path: "/data/b.wav", Size: 5, ModTime: time.Unix(1e9, 0)}
	if _, done := w.Done(b, Request{}); !done {
		t.Fatal("an old record is not done")
	}
	os.Remove(filepath.Join(dir, "b.txt"))
	if _, done := w.Done(b, Request{}); done {
		t.Fatal("an old record without its transcript is done")
	}
}

func mustFingerprint(t *testing.T, r Request) string {
	t.Helper()
	fp, err := requestFingerprint(r)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// Names that are not UTF-8 resume, under a stable name of their own, and
// do not take the name of a file whose name merely looks like theirs.
func TestOutputNamesNotUTF8(t *testing.T) {
	w, dir := newTestWriter(t)
	raw := Input{ID: "rec/caf\xe9 \xff.wav", Path: "/data/rec/caf\xe9 \xff.wav", Size: 10}
	lookalike := Input{ID: "rec/caf%E9 %FF.wav", Path: "/data/rec/caf%E9 %FF.wav", Size: 10}
	first := map[string]string{}
	for run := range 3 {
		for _, in := range []Input{raw, lookalike} {
			path, done := w.Done(in, Request{})
			if done != (run > 0) {
				t.Fatalf("run %d: %q done %v", run, in.ID, done)
			}
			if !done {
				var err error
				if path, err = w.Write(in, Request{}, textTranscript(in.ID)); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				first[in.ID] = path
			}
			if path != first[in.ID] {
				t.Fatalf("run %d: %q moved from %s to %s", run, in.ID, first[in.ID], path)
			}
		}
	}
	paths := []string{first[raw.ID], first[lookalike.ID]}
	if paths[0] == paths[1] || !utf8.ValidString(paths[0]) || !utf8.ValidString(paths[1]) {
		t.Fatalf("outputs %q", paths)
	}
	if paths[0] != filepath.Join(dir, "rec", "caf%E9 %FF.txt") {
		t.Fatalf("output of the raw name: %q", paths[0])
	}
	// The same again from a new writer: names are stable across runs.
	w.Close()
	w2, err := NewOutputWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	for i, in := range []Input{raw, lookalike} {
		if path, done := w2.Done(in, Request{}); !done || path != paths[i] {
			t.Fatalf("new writer: %q: %s %v, want %s", in.ID, path, done, paths[i])
		}
	}
}

// A write that fails (a full disk) is an error matching ErrOutput and the
// cause, and leaves neither a transcript nor a temporary file.
func TestOutputWriteErrors(t *testing.T) {
	w, dir := newTestWriter(t)
	FailOutputWrites(w, 0, syscall.ENOSPC)
	_, err := w.Write(Input{ID: "a.wav"}, Request{}, textTranscript("a"))
	if !errors.Is(err, ErrOutput) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "a.wav") {
		t.Fatalf("Write on a full disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); !os.IsNotExist(err) {
		t.Fatalf("a transcript was left: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, recordDir, stateDir, tmpDir)); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	p, err := w.pieces(Input{ID: "long.wav"}, Request{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.save("k", "long.part01.wav", textTranscript("x")); !errors.Is(err, ErrOutput) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("keeping a piece on a full disk: %v", err)
	}
}

// Pieces are kept per version of the file and per piece, and dropped once
// the whole transcript is written.
func TestOutputKeepsPieces(t *testing.T) {
	w, dir := newTestWriter(t)
	in := Input{ID: "long.wav", Path: "/data/long.wav", Size: 1000, ModTime: time.Unix(1e9, 0)}
	req := Request{ResponseFormat: VerboseJSON}
	p, _ := w.pieces(in, req, nil)
	piece := &Transcription{Format: VerboseJSON, Raw: []byte(`{"text":"one two","duration":1.5,"words":[{"word":"one","start":0,"end":0.5}]}`), RequestID: "req_9"}
	if err := p.save("piece 1", "long.part02.wav", piece); err != nil {
		t.Fatal(err)
	}
	got, ok := p.load("piece 1", VerboseJSON)
	if !ok || got.Text != "one two" || got.Duration != 1.5 || len(got.Words) != 1 || got.RequestID != "req_9" {
		t.Fatalf("loaded %+v, %v", got, ok)
	}
	if _, ok := p.load("piece 2", VerboseJSON); ok {
		t.Fatal("another piece loaded")
	}
	changed := in
	changed.ModTime = changed.ModTime.Add(time.Second)
	if p2, _ := w.pieces(changed, req, nil); p2 != nil {
		if _, ok := p2.load("piece 1", VerboseJSON); ok {
			t.Fatal("a piece of another version of the file loaded")
		}
	}
	if _, err := w.Write(in, req, &Transcription{Format: VerboseJSON, Raw: []byte(`{"text":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, recordDir, stateDir, piecesDir)); len(left) != 0 {
		t.Fatalf("pieces left after the whole transcript: %v", left)
	}
}
