package transcribe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Input identifies what a transcript was made from, so that a re-run can
// tell whether it is still current.
type Input struct {
	// ID names the input and places its output: "calls/a.wav" is written
	// to DIR/calls/a.<ext>. Absolute IDs lose their leading separator;
	// ".." elements are refused.
	ID string
	// Path is the input file's path, when it is one; Size and ModTime are
	// its size and modification time, compared on resume.
	Path    string
	Size    int64
	ModTime time.Time
}

// OutputWriter writes transcripts under a directory, each the moment it
// arrives, so that a crash loses nothing already paid for, and remembers
// what it wrote so that a re-run can skip it.
//
// Each transcript is written atomically (a temporary file in the same
// directory, fsync, rename) to a path derived from its Input's ID with the
// extension of its format: .txt for json and text (the text alone), .srt,
// .vtt, and .json for verbose_json and diarized_json (the body as
// received). Beside it, under DIR/.steno/, a small JSON record names the
// input (path or ID, size, modification time) and a fingerprint of the
// request; Done compares them on a re-run. Two inputs whose IDs map to the
// same path (a.wav and a.mp3; or two jobs with one ID) never overwrite each
// other: the second gets a name with a hash of its identity.
//
// An OutputWriter is safe for concurrent use. The record makes memory
// independent of the number of transcripts: nothing is kept per input.
type OutputWriter struct {
	dir string

	mu       sync.Mutex
	reserved map[string]string // output path → identity, for writes in progress
}

// NewOutputWriter returns a writer into dir, which is created if missing
// and must be writable.
func NewOutputWriter(dir string) (*OutputWriter, error) {
	if err := os.MkdirAll(filepath.Join(dir, recordDir), 0o755); err != nil {
		return nil, fmt.Errorf("transcribe: output directory: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".steno-probe-*")
	if err != nil {
		return nil, fmt.Errorf("transcribe: output directory is not writable: %w", err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &OutputWriter{dir: dir, reserved: make(map[string]string)}, nil
}

// recordDir holds the records of what was written, under the output
// directory.
const recordDir = ".steno"

// record is what is kept of each transcript written.
type record struct {
	Input     string    `json:"input"` // the identity: absolute path, or ID
	Size      int64     `json:"size"`
	ModTime   time.Time `json:"mtime"`
	Request   string    `json:"request"` // fingerprint of the request's fields
	Output    string    `json:"output"`  // path relative to the output directory
	RequestID string    `json:"request_id,omitempty"`
	Written   time.Time `json:"written"`
}

// Done reports whether a transcript of in for req was written by an
// earlier run and is still current (same input size and modification time,
// same request), and where it is.
func (w *OutputWriter) Done(in Input, req Request) (path string, done bool) {
	rel, rec, err := w.place(in, req)
	if err != nil || rec == nil {
		return "", false
	}
	want, err := w.newRecord(in, req)
	if err != nil || rec.Size != want.Size || !rec.ModTime.Equal(want.ModTime) || rec.Request != want.Request {
		return "", false
	}
	full := filepath.Join(w.dir, rel)
	if _, err := os.Stat(full); err != nil {
		return "", false
	}
	return full, true
}

// Write writes t, the transcript of in for req, and its record, and
// returns the transcript's path.
func (w *OutputWriter) Write(in Input, req Request, t *Transcription) (string, error) {
	rec, err := w.newRecord(in, req)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	rel, _, err := w.place(in, req)
	if err == nil {
		if owner, busy := w.reserved[rel]; busy && owner != rec.Input {
			rel = w.hashed(rel, rec.Input)
		}
		w.reserved[rel] = rec.Input
	}
	w.mu.Unlock()
	if err != nil {
		return "", err
	}
	defer func() {
		w.mu.Lock()
		delete(w.reserved, rel)
		w.mu.Unlock()
	}()

	full := filepath.Join(w.dir, rel)
	if err := writeAtomic(full, content(t)); err != nil {
		return "", fmt.Errorf("transcribe: writing transcript of %s: %w", in.ID, err)
	}
	rec.Output, rec.RequestID, rec.Written = rel, t.RequestID, time.Now().UTC()
	b, _ := json.Marshal(rec)
	if err := writeAtomic(filepath.Join(w.dir, recordDir, rel+".json"), append(b, '\n')); err != nil {
		return "", fmt.Errorf("transcribe: writing record of %s: %w", in.ID, err)
	}
	return full, nil
}

// place returns the output path (relative to the directory) for in and
// req, and the record found there, if it is in's: the first of the
// candidate paths that is free or already in's.
func (w *OutputWriter) place(in Input, req Request) (string, *record, error) {
	rel, err := outputName(in.ID, req.format())
	if err != nil {
		return "", nil, err
	}
	id := identity(in)
	for _, cand := range []string{rel, w.hashed(rel, id)} {
		rec, err := w.readRecord(cand)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return cand, nil, nil
		case err != nil:
			return "", nil, err
		case rec.Input == id:
			return cand, rec, nil
		}
	}
	return "", nil, fmt.Errorf("transcribe: output names for %s are taken", in.ID)
}

// hashed returns rel with a short hash of the input's identity before its
// extension.
func (w *OutputWriter) hashed(rel, id string) string {
	sum := sha256.Sum256([]byte(id))
	ext := filepath.Ext(rel)
	return strings.TrimSuffix(rel, ext) + "-" + hex.EncodeToString(sum[:4]) + ext
}

func (w *OutputWriter) readRecord(rel string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(w.dir, recordDir, rel+".json"))
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("transcribe: record %s: %w", rel, err)
	}
	return &rec, nil
}

func (w *OutputWriter) newRecord(in Input, req Request) (*record, error) {
	fields, err := req.fields(false)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%q=%q\n", f.name, f.value)
	}
	return &record{Input: identity(in), Size: in.Size, ModTime: in.ModTime.UTC(), Request: hex.EncodeToString(h.Sum(nil)[:8])}, nil
}

// identity is what makes two inputs the same: the absolute path of a file,
// else the ID.
func identity(in Input) string {
	if in.Path != "" {
		if abs, err := filepath.Abs(in.Path); err == nil {
			return abs
		}
		return in.Path
	}
	return in.ID
}

// outputName maps an ID to a relative output path with the format's
// extension.
func outputName(id string, format ResponseFormat) (string, error) {
	rel := filepath.Clean(filepath.FromSlash(id))
	rel = strings.TrimLeft(strings.TrimPrefix(rel, filepath.VolumeName(rel)), string(filepath.Separator))
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == ".." || part == "." || part == "" || part == recordDir {
			return "", fmt.Errorf("transcribe: cannot name an output after ID %q", id)
		}
	}
	return strings.TrimSuffix(rel, filepath.Ext(rel)) + formatExt(format), nil
}

func formatExt(f ResponseFormat) string {
	switch f {
	case SRT:
		return ".srt"
	case VTT:
		return ".vtt"
	case VerboseJSON, DiarizedJSON:
		return ".json"
	}
	return ".txt"
}

// content is what is written for t: the body as received, except for
// json, whose text alone is kept.
func content(t *Transcription) []byte {
	if t.Format == JSON || t.Format == "" {
		return []byte(t.Text + "\n")
	}
	return t.Raw
}

// writeAtomic writes data to path through a temporary file in the same
// directory, synced before it is renamed into place, then syncs the
// directory: after a crash, path holds all of data or is as it was.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
