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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Input identifies what a transcript was made from, so that a re-run can
// tell whether it is still current.
type Input struct {
	// ID names the input and places its output: "calls/a.wav" is written
	// to DIR/calls/a.<ext>. Absolute IDs lose their leading separator;
	// ".." elements are refused. Bytes that are not UTF-8 are written as
	// %XX ("caf\xe9.wav" gives "caf%E9.txt").
	ID string
	// Path is the input file's path, when it is one; Size and ModTime are
	// its size and modification time, compared on resume.
	Path    string
	Size    int64
	ModTime time.Time
}

// ErrOutput is the cause of every failure to write to an output
// directory: a full disk (errors.Is(err, syscall.ENOSPC) works too), a
// directory made read-only, an I/O error. Such an error stops a batch
// (see Fatal) before another request is paid for: every later transcript
// would be lost the same way.
var ErrOutput = errors.New("cannot write output")

// ErrOutputLocked is the cause of NewOutputWriter's error when another
// OutputWriter, in this process or another, has the directory: two batches
// writing into one directory would both pay for every file.
var ErrOutputLocked = errors.New("output directory in use")

// OutputWriter writes transcripts under a directory, each the moment it
// arrives, so that a crash loses nothing already paid for, and remembers
// what it wrote so that a re-run can skip it.
//
// Each transcript goes to a path derived from its Input's ID with the
// extension of its format: .txt for json and text (the text alone), .srt,
// .vtt, and .json for verbose_json and diarized_json (the body as
// received). Under DIR/.steno/, a record beside it names the input (path or
// ID, size, modification time), a fingerprint of the request, and holds a
// copy of the transcript: the record is written first, in one atomic step
// (a temporary file under DIR/.steno/.steno/tmp, fsync, rename, fsync of the
// directory), so from that moment the transcript is safe; the transcript
// file follows the same way. A crash between the two loses nothing: the
// next run writes the transcript from its record, without a request. Two
// inputs whose IDs map to the same path (a.wav and a.mp3; or two jobs with
// one ID) never overwrite each other: the second gets a name with a hash
// of its identity.
//
// The pieces of a cut file are kept the same way as they arrive (under
// DIR/.steno/.steno/pieces/), so that a file one of whose pieces failed
// costs only that piece on a re-run; they are removed once the whole
// transcript is written.
//
// An OutputWriter holds a lock on its directory (DIR/.steno/.steno/lock, with
// flock(2) where the system has it) from NewOutputWriter to Close: a
// second writer on the same directory, in any process, fails at once with
// ErrOutputLocked. Temporary files left by a run that was killed are
// removed when the next one starts.
//
// A transcript that is on disk is never sent again, even if it was edited
// since; to have a file transcribed again, delete its transcript and its
// record (DIR/.steno/<path>.json).
//
// An OutputWriter is safe for concurrent use. Memory does not grow with
// the number of transcripts: nothing is kept per input.
type OutputWriter struct {
	dir string
	tmp string // DIR/.steno/.steno/tmp: every temporary file, so that a killed run's are found

	// writeData writes data to a temporary file; tests make it fail.
	writeData func(f *os.File, data []byte) error

	mu       sync.Mutex
	lock     *os.File          // the locked DIR/.steno/.steno/lock; nil once closed
	reserved map[string]string // output path → identity key, for writes in progress
}

// recordDir holds the records of what was written, under the output
// directory.
const recordDir = ".steno"

// The writer's own state is under recordDir/stateDir, a path no record
// can take (outputName refuses a component named recordDir): temporary
// files, kept pieces, the lock.
const (
	stateDir  = recordDir
	tmpDir    = "tmp"
	piecesDir = "pieces"
	lockName  = "lock"
)

// NewOutputWriter returns a writer into dir, which is created if missing
// and must be writable. It locks dir until Close (see OutputWriter): if
// another writer has it, the error wraps ErrOutputLocked. It removes the
// temporary files a killed run left.
func NewOutputWriter(dir string) (*OutputWriter, error) {
	state := filepath.Join(dir, recordDir, stateDir)
	tmp := filepath.Join(state, tmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("transcribe: output directory: %w: %w", ErrOutput, err)
	}
	lock, err := os.OpenFile(filepath.Join(state, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("transcribe: output directory %s is not writable: %w: %w", dir, ErrOutput, err)
	}
	if err := lockFile(lock); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(lock.Name()); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (process %d)", pid)
			}
		}
		lock.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("transcribe: %w: %s is being written by another batch%s; wait for it to end, or write elsewhere",
				ErrOutputLocked, dir, holder)
		}
		return nil, fmt.Errorf("transcribe: locking output directory %s: %w", dir, err)
	}
	// The holder's process id, for the message of a second run.
	if err := errors.Join(lock.Truncate(0), writeAt(lock, strconv.Itoa(os.Getpid())+"\n")); err != nil {
		lock.Close()
		return nil, fmt.Errorf("transcribe: output directory %s is not writable: %w: %w", dir, ErrOutput, err)
	}
	w := &OutputWriter{dir: dir, tmp: tmp, lock: lock, reserved: make(map[string]string)}
	if err := w.clean(); err != nil {
		lock.Close()
		return nil, err
	}
	probe, err := os.CreateTemp(tmp, "probe-*")
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("transcribe: output directory %s is not writable: %w: %w", dir, ErrOutput, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return w, nil
}

func writeAt(f *os.File, s string) error {
	_, err := f.WriteAt([]byte(s), 0)
	return err
}

// clean removes what killed runs left in the temporary directory. The lock
// is held: no other run has files there.
func (w *OutputWriter) clean() error {
	entries, err := os.ReadDir(w.tmp)
	if err != nil {
		return fmt.Errorf("transcribe: output directory: %w: %w", ErrOutput, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(w.tmp, e.Name())); err != nil {
			return fmt.Errorf("transcribe: removing a temporary file of an earlier run: %w: %w", ErrOutput, err)
		}
	}
	return nil
}

// Close releases the directory's lock. Writes after Close fail with
// ErrOutput. Close is safe to call more than once.
func (w *OutputWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lock == nil {
		return nil
	}
	err := w.lock.Close() // closing the descriptor releases the flock
	w.lock = nil
	return err
}

// errClosed is why a closed writer writes nothing.
var errClosed = errors.New("the OutputWriter is closed")

// record is what is kept of each transcript written: where it went, what
// it was made of, and the transcript itself, so that a crash before the
// transcript file was in place loses nothing.
type record struct {
	Input     string    `json:"input"`         // the identity (absolute path, or ID), made UTF-8 for people to read
	Key       string    `json:"key,omitempty"` // SHA-256 of the identity's exact bytes: what is compared
	Size      int64     `json:"size"`
	ModTime   time.Time `json:"mtime"`
	Request   string    `json:"request"` // fingerprint of the request's fields
	Output    string    `json:"output"`  // path relative to the output directory
	RequestID string    `json:"request_id,omitempty"`
	Written   time.Time `json:"written"`
	SHA256    string    `json:"sha256,omitempty"` // of the transcript
	// Missing lists the stretches a partial transcript lacks (see
	// SplitOptions.AllowPartial): such a transcript is not done, and a
	// re-run sends the pieces that hold them.
	Missing []TimeRange `json:"missing,omitempty"`
	// The transcript, as text when it is UTF-8, else as bytes (base64).
	// Records of older versions have neither.
	Transcript      *string `json:"transcript,omitempty"`
	TranscriptBytes []byte  `json:"transcript_base64,omitempty"`
}

// owns reports whether the record is of the input whose identity is id.
func (r *record) owns(id string) bool {
	if r.Key != "" {
		return r.Key == identityKey(id)
	}
	return r.Input == id // a record of an older version
}

// setBody keeps the transcript in the record.
func (r *record) setBody(b []byte) {
	sum := sha256.Sum256(b)
	r.SHA256 = hex.EncodeToString(sum[:])
	if utf8.Valid(b) {
		s := string(b)
		r.Transcript = &s
	} else {
		r.TranscriptBytes = b
	}
}

// body returns the transcript kept in the record, if it has one intact.
func (r *record) body() ([]byte, bool) {
	var b []byte
	switch {
	case r.Transcript != nil:
		b = []byte(*r.Transcript)
	case r.TranscriptBytes != nil:
		b = r.TranscriptBytes
	default:
		return nil, false
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]) == r.SHA256
}

// Done reports whether a transcript of in for req was written by an
// earlier run and is still current (same input size and modification time,
// same request), and where it is. A transcript whose record was written
// but not the file itself (a crash in between) is written from the record
// first.
func (w *OutputWriter) Done(in Input, req Request) (path string, done bool) {
	path, done, _ = w.resume(in, req, true)
	return path, done
}

// resume is Done with its errors: in cannot be placed (a bad ID, every
// candidate name taken, a record that cannot be read), or the transcript
// cannot be written from its record (wrapping ErrOutput). Without
// restore, it writes nothing (a dry run): a transcript that would be
// written from its record is done.
func (w *OutputWriter) resume(in Input, req Request, restore bool) (path string, done bool, err error) {
	rel, rec, err := w.place(in, req)
	if err != nil || rec == nil {
		return "", false, err
	}
	want, err := w.newRecord(in, req)
	if err != nil {
		return "", false, err
	}
	if rec.Size != want.Size || !rec.ModTime.Equal(want.ModTime) || rec.Request != want.Request {
		return "", false, nil // a new version of the input, or another request: written again
	}
	if len(rec.Missing) > 0 {
		return "", false, nil // partial: its missing pieces are sent, its kept ones loaded
	}
	full := filepath.Join(w.dir, rel)
	if _, err := os.Stat(full); err != nil {
		body, ok := rec.body()
		switch {
		case !ok:
			return "", false, nil // an older record, without the transcript
		case !restore:
			return full, true, nil
		}
		if err := w.writeAtomic(full, body); err != nil {
			return "", false, fmt.Errorf("transcribe: %w: writing the transcript of %s from its record: %w", ErrOutput, in.ID, err)
		}
	}
	if restore {
		w.dropPieces(want.Key) // kept by a run killed after the record was written
	}
	return full, true, nil
}

// Write writes t, the transcript of in for req, and its record, and
// returns the transcript's path. An error writing them wraps ErrOutput.
// A partial transcript (t.Missing set, see SplitOptions.AllowPartial) is
// written too, but is not done: Done reports false for it, and the
// pieces kept of in stay, so that a re-run sends only the missing ones
// and writes the whole transcript over it.
func (w *OutputWriter) Write(in Input, req Request, t *Transcription) (string, error) {
	rec, err := w.newRecord(in, req)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	if w.lock == nil {
		w.mu.Unlock()
		return "", fmt.Errorf("transcribe: %w: %w", ErrOutput, errClosed)
	}
	rel, _, err := w.place(in, req)
	if err == nil {
		if owner, busy := w.reserved[rel]; busy && owner != rec.Key {
			rel = w.hashed(rel, identity(in))
		}
		w.reserved[rel] = rec.Key
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

	body := content(t)
	rec.Output, rec.RequestID, rec.Written = rel, t.RequestID, time.Now().UTC()
	rec.Missing = t.Missing
	rec.setBody(body)
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if err := w.writeAtomic(w.recordPath(rel), append(b, '\n')); err != nil {
		return "", fmt.Errorf("transcribe: %w: writing the record of %s: %w", ErrOutput, in.ID, err)
	}
	full := filepath.Join(w.dir, rel)
	if err := w.writeAtomic(full, body); err != nil {
		return "", fmt.Errorf("transcribe: %w: writing the transcript of %s: %w", ErrOutput, in.ID, err)
	}
	if len(t.Missing) == 0 {
		w.dropPieces(rec.Key)
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
		case rec.owns(id):
			return cand, rec, nil
		}
	}
	return "", nil, fmt.Errorf("transcribe: output names for %s are taken", validName(in.ID))
}

// hashed returns rel with a short hash of the input's identity before its
// extension.
func (w *OutputWriter) hashed(rel, id string) string {
	sum := sha256.Sum256([]byte(id))
	ext := filepath.Ext(rel)
	return strings.TrimSuffix(rel, ext) + "-" + hex.EncodeToString(sum[:4]) + ext
}

func (w *OutputWriter) recordPath(rel string) string {
	return filepath.Join(w.dir, recordDir, rel+".json")
}

func (w *OutputWriter) readRecord(rel string) (*record, error) {
	b, err := os.ReadFile(w.recordPath(rel))
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
	fp, err := requestFingerprint(req)
	if err != nil {
		return nil, err
	}
	id := identity(in)
	return &record{Input: validName(id), Key: identityKey(id), Size: in.Size, ModTime: in.ModTime.UTC(), Request: fp}, nil
}

// requestFingerprint is a short hash of the fields req sends.
func requestFingerprint(req Request) (string, error) {
	fields, err := req.fields(false)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%q=%q\n", f.name, f.value)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
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

// identityKey is the SHA-256 of an identity's bytes, in hex: records
// compare it, since JSON cannot hold bytes that are not UTF-8.
func identityKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// outputName maps an ID to a relative output path with the format's
// extension.
func outputName(id string, format ResponseFormat) (string, error) {
	rel := filepath.Clean(filepath.FromSlash(validName(id)))
	rel = strings.TrimLeft(strings.TrimPrefix(rel, filepath.VolumeName(rel)), string(filepath.Separator))
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == ".." || part == "." || part == "" || part == recordDir {
			return "", fmt.Errorf("transcribe: cannot name an output after ID %q", id)
		}
	}
	return strings.TrimSuffix(rel, filepath.Ext(rel)) + formatExt(format), nil
}

// validName returns s with every byte that is not part of UTF-8 written as
// %XX, so that every output name is UTF-8 (and a record can hold it) and
// the same name always gives the same output. A name that merely looks
// like the result ("a%FF") is told apart by its identity (see place).
func validName(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "%%%02X", s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
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

// writeAtomic writes data to path through a temporary file under the
// writer's temporary directory, synced before it is renamed into place,
// then syncs path's directory: after a crash, path holds all of data or is
// as it was, and a temporary file left behind is removed by the next
// NewOutputWriter.
func (w *OutputWriter) writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(w.tmp, "write-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	write := w.writeData
	if write == nil {
		write = func(f *os.File, data []byte) error { _, err := f.Write(data); return err }
	}
	if err := write(tmp, data); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		if !errors.Is(err, syscall.EXDEV) {
			return err
		}
		// path is on another file system than the output directory's
		// state (a mount inside it): write beside it instead.
		return writeBeside(path, data)
	}
	return syncDir(dir)
}

// writeBeside writes data to path through a temporary file in its own
// directory.
func writeBeside(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
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
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// The pieces of a cut file are kept under DIR/.steno/.steno/pieces/<identity>/,
// one file a piece, named by a hash of the file's version (size,
// modification time, request) and the piece (its place in the file, its
// size, the request it was sent with): a piece of another version of the
// file, or cut differently, is never taken for it.

// pieceRecord is a piece's transcript as kept.
type pieceRecord struct {
	Name        string    `json:"name"` // the file name it was sent under, e.g. "talk.part02.wav"
	Key         string    `json:"key"`
	Format      string    `json:"format"`
	ContentType string    `json:"content_type,omitempty"`
	RequestID   string    `json:"request_id,omitempty"`
	Written     time.Time `json:"written"`
	Body        *string   `json:"body,omitempty"` // the response body, when UTF-8
	BodyBytes   []byte    `json:"body_base64,omitempty"`
}

// outputPieces keeps the pieces of one input for one request.
type outputPieces struct {
	w       *OutputWriter
	dir     string // DIR/.steno/.steno/pieces/<identity>
	version string // the file's size, modification time and request
	onErr   func(error)
}

// pieces returns where the pieces of in for req are kept. onErr, if not
// nil, is called at once with an error keeping one (it wraps ErrOutput),
// before another request can leave.
func (w *OutputWriter) pieces(in Input, req Request, onErr func(error)) (*outputPieces, error) {
	rec, err := w.newRecord(in, req)
	if err != nil {
		return nil, err
	}
	return &outputPieces{
		w:       w,
		dir:     w.piecesPath(rec.Key),
		version: fmt.Sprintf("%d|%d|%s", rec.Size, rec.ModTime.UnixNano(), rec.Request),
		onErr:   onErr,
	}, nil
}

func (w *OutputWriter) piecesPath(key string) string {
	return filepath.Join(w.dir, recordDir, stateDir, piecesDir, key[:32])
}

// dropPieces removes the pieces kept for the input with identity key key,
// once its whole transcript is safe.
func (w *OutputWriter) dropPieces(key string) {
	_ = os.RemoveAll(w.piecesPath(key))
}

func (p *outputPieces) path(key string) string {
	sum := sha256.Sum256([]byte(p.version + "\n" + key))
	return filepath.Join(p.dir, hex.EncodeToString(sum[:16])+".json")
}

// load returns the transcript kept for the piece key, if there is one.
func (p *outputPieces) load(key string, format ResponseFormat) (*Transcription, bool) {
	b, err := os.ReadFile(p.path(key))
	if err != nil {
		return nil, false
	}
	var rec pieceRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Key != key || rec.Format != string(format) {
		return nil, false
	}
	body := rec.BodyBytes
	if rec.Body != nil {
		body = []byte(*rec.Body)
	}
	t, err := decode(body, rec.ContentType, format)
	if err != nil {
		return nil, false
	}
	t.RequestID = rec.RequestID
	return t, true
}

// save keeps t, the transcript of the piece key sent as name.
func (p *outputPieces) save(key, name string, t *Transcription) error {
	rec := pieceRecord{Name: validName(name), Key: key, Format: string(t.Format), ContentType: contentTypeOf(t.Format),
		RequestID: t.RequestID, Written: time.Now().UTC()}
	if utf8.Valid(t.Raw) {
		s := string(t.Raw)
		rec.Body = &s
	} else {
		rec.BodyBytes = t.Raw
	}
	b, err := json.Marshal(rec)
	if err == nil {
		p.w.mu.Lock()
		closed := p.w.lock == nil
		p.w.mu.Unlock()
		switch {
		case closed:
			err = errClosed
		default:
			err = p.w.writeAtomic(p.path(key), append(b, '\n'))
		}
	}
	if err != nil {
		err = fmt.Errorf("transcribe: %w: keeping %s: %w", ErrOutput, validName(name), err)
		if p.onErr != nil {
			p.onErr(err)
		}
	}
	return err
}

// contentTypeOf is the content type a server sends a body of format in.
func contentTypeOf(f ResponseFormat) string {
	switch f {
	case JSON, VerboseJSON, DiarizedJSON:
		return "application/json"
	}
	return "text/plain"
}
