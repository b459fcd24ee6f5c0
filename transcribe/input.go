package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/multipart"
)

// ErrNilReader is the cause of the InputError for a nil reader.
var ErrNilReader = errors.New("nil reader")

// errNotRegular is the cause of the InputError for a path that is a
// directory, a FIFO, a socket or a device.
var errNotRegular = errors.New("not a regular file")

// AudioExtensions returns the file extensions, without the dot and in
// lower case, of the audio formats the API accepts (flac, m4a, mp3, mp4,
// mpeg, mpga, oga, ogg, wav, webm): for finding the audio in a directory.
// A file's content, not its name, decides how it is sent.
func AudioExtensions() []string { return audio.Extensions() }

// MaxSpoolBytes is the most a reader of unknown length (a pipe such as
// piped standard input, a network stream) is spooled to a temporary file
// before it is sent: 4 GiB, the largest WAV file (whose sizes are 32-bit),
// over six hours of 44.1 kHz 16-bit stereo and days of compressed audio,
// cut into pieces like any file. A longer stream is refused with an
// *InputError wrapping ErrFileTooLarge, and its temporary file removed;
// give such audio as a file (TranscribeFile), which is streamed in place.
const MaxSpoolBytes = 4 << 30

// source is an input ready to upload: a file part of known size that every
// attempt rereads, the name to send it under, and what to release after.
type source struct {
	name     string // for errors: the path, or the file name
	filename string // sent to the server, with an extension matching format
	format   audio.Format
	file     multipart.File
	at       io.ReaderAt // the file's bytes for probing; nil: reread through file.Open
	close    func() error

	probed   bool // probe has run (or a piece was made with what it knows)
	probe    audio.Info
	probeErr error

	stat fs.FileInfo // of the file opened by openPath; nil for other sources
}

// info returns what audio.Probe learns of the source, probing it once.
func (s *source) info() (audio.Info, error) {
	if !s.probed {
		s.probe, s.probeErr = audio.Probe(s.readerAt(), s.file.Size)
		s.probed = true
	}
	return s.probe, s.probeErr
}

// seconds returns the source's duration in seconds, 0 when unknown.
func (s *source) seconds() float64 {
	info, err := s.info()
	if err != nil {
		return 0
	}
	return info.Duration.Seconds()
}

// readerAt returns the source's bytes as an io.ReaderAt. Without one of
// its own, reads go through file.Open, reopening only to go backwards; the
// reader is released by close.
func (s *source) readerAt() io.ReaderAt {
	if s.at == nil {
		r := &reopenReaderAt{open: s.file.Open}
		s.at = r
		closeSrc := s.close
		s.close = func() error { return errors.Join(r.Close(), closeSrc()) }
	}
	return s.at
}

// reopenReaderAt reads a stream at offsets, for parsers that mostly read
// forward.
type reopenReaderAt struct {
	open func() (io.ReadCloser, error)
	r    io.ReadCloser
	pos  int64
}

func (s *reopenReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if s.r == nil || off < s.pos {
		s.Close()
		r, err := s.open()
		if err != nil {
			return 0, err
		}
		s.r, s.pos = r, 0
	}
	if off > s.pos {
		n, err := io.CopyN(io.Discard, s.r, off-s.pos)
		s.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (s *reopenReaderAt) Close() error {
	if s.r == nil {
		return nil
	}
	err := s.r.Close()
	s.r = nil
	return err
}

// openPath opens the file at path as a source. The caller closes it.
//
// Only a regular file is opened: a FIFO named like audio would block
// open(2) until a writer came, and a device could be endless, so path is
// checked with stat before it is opened, and opened with O_NONBLOCK, so
// that one swapped for a FIFO in between is refused without waiting too.
func (c *Client) openPath(path string, req Request) (*source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &InputError{Name: path, Err: unwrapPath(err)}
	}
	if !st.Mode().IsRegular() {
		return nil, &InputError{Name: path, Err: fmt.Errorf("%w (%s)", errNotRegular, fileKind(st.Mode()))}
	}
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &InputError{Name: path, Err: unwrapPath(err)}
	}
	src, err := c.fromFile(fh, path, req)
	if err != nil {
		fh.Close()
		return nil, err
	}
	src.close = fh.Close
	return src, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a plain file"
}

// unwrapPath drops the *fs.PathError around err: InputError names the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fromFile makes a source of the regular file fh, from its current offset.
func (c *Client) fromFile(fh *os.File, name string, req Request) (*source, error) {
	st, err := fh.Stat()
	if err != nil {
		return nil, &InputError{Name: name, Err: unwrapPath(err)}
	}
	if !st.Mode().IsRegular() {
		return nil, &InputError{Name: name, Err: fmt.Errorf("%w (%s)", errNotRegular, fileKind(st.Mode()))}
	}
	start, err := fh.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, &InputError{Name: name, Err: unwrapPath(err)}
	}
	size := st.Size() - start
	section := io.NewSectionReader(fh, start, size)
	src, err := c.newSource(name, filepath.Base(name), req, multipart.FileFromReaderAt(section, size))
	if err != nil {
		return nil, err
	}
	src.at = section
	src.stat = st
	return src, nil
}

// sizedReaderAt is an io.ReaderAt that knows its size, as *bytes.Reader,
// *strings.Reader and *io.SectionReader do.
type sizedReaderAt interface {
	io.ReaderAt
	Size() int64
}

// openReader makes a source of r: streamed in place when its size can be
// known (a regular *os.File, an io.ReadSeeker, an io.ReaderAt with Size),
// else spooled to a temporary file that close removes. An *os.File that is
// not a regular file (a pipe: piped standard input; a terminal, a socket,
// a device) is spooled too, up to MaxSpoolBytes, since it cannot be
// reread or, often, seeked. The caller closes the source.
func (c *Client) openReader(ctx context.Context, r io.Reader, req Request) (*source, error) {
	name := req.FileName
	if r == nil {
		return nil, &InputError{Name: name, Err: ErrNilReader}
	}
	if fh, ok := r.(*os.File); ok {
		if name == "" {
			name = fh.Name()
		}
		st, err := fh.Stat()
		if err == nil && st.Mode().IsRegular() {
			return c.fromFile(fh, name, req)
		}
		display := name
		if display == "" {
			display = "reader"
		}
		return c.spool(ctx, fh, display, name, req, MaxSpoolBytes)
	}
	display := name
	if display == "" {
		display = "reader"
	}
	switch r := r.(type) {
	case io.ReadSeeker:
		start, err1 := r.Seek(0, io.SeekCurrent)
		end, err2 := r.Seek(0, io.SeekEnd)
		if err := errors.Join(err1, err2); err != nil {
			return nil, &InputError{Name: display, Err: err}
		}
		if _, err := r.Seek(start, io.SeekStart); err != nil {
			return nil, &InputError{Name: display, Err: err}
		}
		file, err := multipart.FileFromReadSeeker(r, end-start)
		if err != nil {
			return nil, &InputError{Name: display, Err: err}
		}
		return c.newSource(display, name, req, file)
	case sizedReaderAt:
		return c.newSource(display, name, req, multipart.FileFromReaderAt(r, r.Size()))
	}
	return c.spool(ctx, r, display, name, req, MaxSpoolBytes)
}

// spool copies r to a temporary file and makes a source of that, so a
// stream of unknown length is uploaded with an exact Content-Length and can
// be retried, without holding it in memory. It copies at most limit bytes:
// a longer stream is an *InputError wrapping ErrFileTooLarge. The
// temporary file is removed on every failure, and by the source's close.
// The copy stops when ctx is done, also inside a blocked read of a pipe
// (an *os.File that supports read deadlines).
func (c *Client) spool(ctx context.Context, r io.Reader, display, name string, req Request, limit int64) (*source, error) {
	tmp, err := os.CreateTemp(c.tempDir, "steno-upload-*")
	if err != nil {
		return nil, fmt.Errorf("transcribe: spooling %s: %w", display, err)
	}
	cleanup := func() error {
		return errors.Join(tmp.Close(), os.Remove(tmp.Name()))
	}
	if fh, ok := r.(*os.File); ok {
		// A read blocked on a pipe does not see ctx: a deadline of now
		// wakes it. Pipes made by os.Pipe support deadlines; a blocking
		// descriptor (a terminal on standard input) does not.
		stop := context.AfterFunc(ctx, func() { _ = fh.SetReadDeadline(time.Now()) })
		defer func() {
			if !stop() {
				_ = fh.SetReadDeadline(time.Time{})
			}
		}()
	}
	size, err := io.Copy(tmp, io.LimitReader(ctxReader{ctx, r}, limit+1))
	switch {
	case err != nil:
		cleanup()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, &InputError{Name: display, Err: err}
	case size > limit:
		cleanup()
		return nil, &InputError{Name: display, Err: fmt.Errorf(
			"%w: the stream is longer than the %d bytes (%.1f GiB) a reader is spooled to; give it as a file",
			ErrFileTooLarge, limit, float64(limit)/(1<<30))}
	}
	src, err := c.newSource(display, name, req, multipart.FileFromReaderAt(tmp, size))
	if err != nil {
		cleanup()
		return nil, err
	}
	src.close = cleanup
	return src, nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// newSource checks file's content and names it. name is sent to the server
// (its extension fixed to match the content); display names it in errors.
func (c *Client) newSource(display, name string, req Request, file multipart.File) (*source, error) {
	if req.FileName != "" {
		name = req.FileName
	}
	if name != "" {
		name = safeName(filepath.Base(name))
	}
	if file.Size == 0 {
		return nil, &InputError{Name: display, Err: ErrEmptyFile}
	}
	head := make([]byte, min(file.Size, audio.SniffLen))
	r, err := file.Open()
	if err == nil {
		_, err = io.ReadFull(r, head)
		r.Close()
	}
	if err != nil {
		return nil, &InputError{Name: display, Size: file.Size, Err: err}
	}
	format := audio.Sniff(head)
	if format == audio.Unknown {
		return nil, &InputError{Name: display, Size: file.Size, Err: fmt.Errorf("%w: content is not wav, mp3, flac, ogg, mp4/m4a or webm", ErrInvalidAudio)}
	}
	return &source{
		name:     display,
		filename: format.Filename(name),
		format:   format,
		file:     file,
		close:    func() error { return nil },
	}, nil
}

// maxNameBytes bounds the file name sent to the server.
const maxNameBytes = 200

// safeName returns name fit to be sent in a multipart header: every control
// character (CR and LF would start new header lines), bidirectional
// control, quote, backslash and byte that is not UTF-8 replaced by "_",
// and at most maxNameBytes long, its extension kept (the server tells the
// format by it). Only what is sent changes: errors and outputs keep the
// file's own name.
func safeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0x7F, 0x80 <= r && r < 0xA0,
			r == '"', r == '\\', r == '\u2028', r == '\u2029', unicode.Is(unicode.Bidi_Control, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > maxNameBytes {
		ext := filepath.Ext(s)
		if len(ext) > 16 {
			ext = ""
		}
		cut := maxNameBytes - len(ext)
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + ext
	}
	return s
}
