// Package multipart builds multipart/form-data request bodies that stream
// their files from disk and know their exact length before the first byte is
// sent.
//
// A Form is described once (text fields and file parts, each file given as a
// source of known size) and then produces as many bodies as needed: one per
// attempt of a request, each reading the files afresh from their source. A
// body never holds a file in memory: reading it reads the file, piece by
// piece, into the caller's buffer. Its length, Len, is computed from the
// framing and the declared file sizes, so an HTTP request built from it has
// an exact Content-Length and is never sent with chunked transfer encoding:
//
//	form := multipart.NewForm()
//	form.WriteField("model", "whisper-1")
//	form.AddFile("file", "talk.mp3", "audio/mpeg", multipart.FileFromReaderAt(f, size))
//	req, err := form.NewRequest(ctx, http.MethodPost, url)
//
// The framing is byte for byte what the standard library's mime/multipart
// Writer writes for the same parts, and can be read with mime/multipart's
// Reader.
package multipart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
)

// ErrInvalidName is returned (wrapped) when a field name, file name, content
// type or boundary would break the framing: it contains a control character
// (CR, LF, NUL, …; a tab is allowed), which a part header cannot carry.
var ErrInvalidName = errors.New("multipart: invalid name")

// ErrSizeMismatch is returned (wrapped) by a body whose file source ends
// before its declared size: the body would be shorter than its announced
// Content-Length.
var ErrSizeMismatch = errors.New("multipart: file shorter than its declared size")

// A File is the content of a file part: its size, known in advance, and a way
// to read it from the start, once per body.
type File struct {
	// Size is the number of bytes Open's reader yields.
	Size int64
	// Open returns a reader of the file's content from its first byte. It
	// is called once for each body produced, when that body first reaches
	// the file; the reader is closed when the body is closed or done.
	Open func() (io.ReadCloser, error)
}

// FileFromReaderAt returns a File reading size bytes of r from offset 0.
// Bodies read r with ReadAt and need no coordination, so an *os.File can
// serve several bodies at once.
func FileFromReaderAt(r io.ReaderAt, size int64) File {
	return File{Size: size, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(r, 0, size)), nil
	}}
}

// FileFromReadSeeker returns a File reading size bytes of rs, starting at
// the offset rs has when FileFromReadSeeker is called. Each body seeks rs
// back to that offset before every read it makes, under a lock, so that a
// body still being read by a finished attempt cannot disturb the next one.
func FileFromReadSeeker(rs io.ReadSeeker, size int64) (File, error) {
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return File{}, fmt.Errorf("multipart: %w", err)
	}
	return FileFromReaderAt(&seekingReaderAt{rs: rs, base: start}, size), nil
}

type seekingReaderAt struct {
	mu   sync.Mutex
	rs   io.ReadSeeker
	base int64
}

func (s *seekingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.rs.Seek(s.base+off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(s.rs, p)
}

// A Form describes a multipart/form-data body: its boundary, its text fields
// and its file parts, in the order they were added. Build it with NewForm,
// WriteField and AddFile; then NewBody, or NewRequest, produce bodies. A Form
// must not be changed while bodies are produced from it.
type Form struct {
	boundary string
	segs     []segment // framing and field values as literal bytes, files as sources
	tail     bytes.Buffer
	mw       *multipart.Writer
	closed   bool // the closing delimiter is written: no more parts
	err      error
}

// segment is one stretch of a body: literal bytes, or a file.
type segment struct {
	lit  []byte
	file *File
}

// NewForm returns an empty Form with a random boundary.
func NewForm() *Form {
	f := &Form{}
	f.mw = multipart.NewWriter(&f.tail)
	f.boundary = f.mw.Boundary()
	return f
}

// SetBoundary replaces the random boundary. It must be called before any
// part is added; the rules are those of mime/multipart.Writer.SetBoundary.
func (f *Form) SetBoundary(boundary string) error {
	if len(f.segs) > 0 || f.tail.Len() > 0 {
		return errors.New("multipart: SetBoundary called after a part was added")
	}
	if err := f.mw.SetBoundary(boundary); err != nil {
		return fmt.Errorf("%w: boundary %q: %v", ErrInvalidName, boundary, err)
	}
	f.boundary = boundary
	return nil
}

// Boundary returns the form's boundary.
func (f *Form) Boundary() string { return f.boundary }

// ContentType returns the value for the Content-Type header of the form's
// bodies: "multipart/form-data; boundary=…".
func (f *Form) ContentType() string { return f.mw.FormDataContentType() }

// WriteField adds a text field. Its value is kept in memory and may hold any
// bytes except the form's boundary delimiter, which would end the part early.
func (f *Form) WriteField(name, value string) error {
	if err := f.check(name); err != nil {
		return err
	}
	if strings.Contains(value, "--"+f.boundary) {
		return fmt.Errorf("multipart: value of field %q contains the boundary", name)
	}
	w, err := f.mw.CreateFormField(name)
	if err == nil {
		_, err = io.WriteString(w, value)
	}
	return f.fail(err)
}

// AddFile adds a file part named field, with the given file name and
// content type (application/octet-stream when empty), whose bytes come from
// file when a body is read.
func (f *Form) AddFile(field, filename, contentType string, file File) error {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	for _, s := range []string{field, filename, contentType} {
		if err := f.check(s); err != nil {
			return err
		}
	}
	if file.Size < 0 || file.Open == nil {
		return fmt.Errorf("multipart: file %q: negative size or nil Open", filename)
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", multipart.FileContentDisposition(field, filename))
	h.Set("Content-Type", contentType)
	if _, err := f.mw.CreatePart(h); err != nil {
		return f.fail(err)
	}
	f.flush()
	f.segs = append(f.segs, segment{file: &file})
	return nil
}

// check rejects names that would break the framing, and forms already
// broken by an earlier error.
func (f *Form) check(s string) error {
	if f.err != nil {
		return f.err
	}
	if f.closed {
		return errors.New("multipart: part added to a finished form")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("%w: %q contains a control character", ErrInvalidName, s)
	}
	return nil
}

func (f *Form) fail(err error) error {
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("multipart: %w", err)
	}
	return f.err
}

// flush moves the framing written so far into a literal segment.
func (f *Form) flush() {
	if f.tail.Len() > 0 {
		f.segs = append(f.segs, segment{lit: bytes.Clone(f.tail.Bytes())})
		f.tail.Reset()
	}
}

// close writes the closing delimiter, once.
func (f *Form) close() error {
	if f.err != nil || f.closed {
		return f.err
	}
	if err := f.mw.Close(); err != nil {
		return f.fail(err)
	}
	f.closed = true
	f.flush()
	return nil
}

// Len returns the exact length in bytes of every body of the form: framing,
// field values and declared file sizes. It finishes the form: no part can be
// added after Len, NewBody or NewRequest.
func (f *Form) Len() (int64, error) {
	if err := f.close(); err != nil {
		return 0, err
	}
	var n int64
	for _, s := range f.segs {
		if s.file != nil {
			n += s.file.Size
		} else {
			n += int64(len(s.lit))
		}
	}
	return n, nil
}

// NewBody returns a new reader of the whole body, reading each file from
// its source as it goes. It finishes the form (see Len).
func (f *Form) NewBody() (*Body, error) {
	if err := f.close(); err != nil {
		return nil, err
	}
	return &Body{segs: f.segs}, nil
}

// NewRequest returns an HTTP request whose body is a new body of the form,
// with ContentLength set to Len, the Content-Type header set, and GetBody
// returning a fresh body so that net/http (or a retry loop) can resend it
// without buffering.
func (f *Form) NewRequest(ctx context.Context, method, url string) (*http.Request, error) {
	n, err := f.Len()
	if err != nil {
		return nil, err
	}
	body, _ := f.NewBody()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = n
	req.GetBody = func() (io.ReadCloser, error) { return f.NewBody() }
	req.Header.Set("Content-Type", f.ContentType())
	return req, nil
}

// Body is one reading of a Form, an io.ReadCloser. Several Bodies of one Form may be read at once when
// their file sources allow it (FileFromReaderAt with an *os.File does).
type Body struct {
	mu     sync.Mutex // net/http may Close a body while another goroutine reads it
	segs   []segment
	off    int           // offset in the current literal segment
	cur    io.ReadCloser // open reader of the current file segment
	left   int64         // bytes of the current file still to read
	closed bool
}

// Read reads the next bytes of the body. A file source that ends early is
// reported as ErrSizeMismatch; one longer than declared is cut at its size.
func (b *Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("multipart: read from closed body")
	}
	for len(b.segs) > 0 {
		s := b.segs[0]
		if s.file == nil {
			n := copy(p, s.lit[b.off:])
			b.off += n
			if b.off == len(s.lit) {
				b.segs, b.off = b.segs[1:], 0
			}
			if n > 0 || len(p) == 0 {
				return n, nil
			}
			continue
		}
		if b.cur == nil {
			r, err := s.file.Open()
			if err != nil {
				return 0, fmt.Errorf("multipart: open file: %w", err)
			}
			b.cur, b.left = r, s.file.Size
		}
		if b.left == 0 {
			b.closeFile()
			b.segs = b.segs[1:]
			continue
		}
		n, err := b.cur.Read(p[:min(int64(len(p)), b.left)])
		b.left -= int64(n)
		if err == io.EOF && b.left > 0 {
			err = fmt.Errorf("%w (%d bytes missing)", ErrSizeMismatch, b.left)
		} else if err == io.EOF {
			err = nil
		}
		if err != nil {
			return n, err
		}
		if n > 0 || len(p) == 0 {
			return n, nil
		}
	}
	return 0, io.EOF
}

func (b *Body) closeFile() {
	if b.cur != nil {
		b.cur.Close()
		b.cur = nil
	}
}

// Close releases the file being read. Reading after Close is an error.
func (b *Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeFile()
	b.closed = true
	return nil
}
