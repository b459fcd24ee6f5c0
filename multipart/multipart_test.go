package multipart

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	stdmultipart "mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type part struct {
	field, filename, ctype, data string
	file                         bool
}

// build adds parts to a new form with boundary, files as ReaderAts.
func build(t testing.TB, boundary string, parts []part) (*Form, error) {
	t.Helper()
	f := NewForm()
	if boundary != "" {
		if err := f.SetBoundary(boundary); err != nil {
			return nil, err
		}
	}
	for _, p := range parts {
		var err error
		if p.file {
			err = f.AddFile(p.field, p.filename, p.ctype, FileFromReaderAt(strings.NewReader(p.data), int64(len(p.data))))
		} else {
			err = f.WriteField(p.field, p.data)
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

// stdlib writes the same parts with mime/multipart.Writer.
func stdlib(t testing.TB, boundary string, parts []part) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := stdmultipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if p.file {
			ctype := p.ctype
			if ctype == "" {
				ctype = "application/octet-stream"
			}
			h := map[string][]string{
				"Content-Disposition": {stdmultipart.FileContentDisposition(p.field, p.filename)},
				"Content-Type":        {ctype},
			}
			pw, err := w.CreatePart(h)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(pw, p.data)
		} else if err := w.WriteField(p.field, p.data); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return buf.Bytes()
}

var sample = []part{
	{field: "model", data: "whisper-1"},
	{field: "timestamp_granularities[]", data: "word"},
	{field: "prompt", data: "quotes \" and \\ backslashes, ünïcode, and\r\nnewlines"},
	{field: "file", filename: `my "talk" \ 1.wav`, ctype: "audio/wav", data: strings.Repeat("RIFF....WAVE", 5000), file: true},
	{field: "empty", filename: "empty.mp3", data: "", file: true},
	{field: "language", data: "en"},
}

func TestBodyMatchesStdlibAndParses(t *testing.T) {
	const boundary = "steno-test-boundary-0123456789"
	f, err := build(t, boundary, sample)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.Len()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := f.NewBody()
	got, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := stdlib(t, boundary, sample); !bytes.Equal(got, want) {
		t.Fatalf("body differs from mime/multipart.Writer's:\n got %q\nwant %q", got[:200], want[:200])
	}
	if int64(len(got)) != n {
		t.Fatalf("Len = %d, body has %d bytes", n, len(got))
	}

	_, params, err := mime.ParseMediaType(f.ContentType())
	if err != nil || params["boundary"] != boundary {
		t.Fatalf("ContentType %q: %v", f.ContentType(), err)
	}
	r := stdmultipart.NewReader(bytes.NewReader(got), boundary)
	for i, want := range sample {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		data, _ := io.ReadAll(p)
		if p.FormName() != want.field || string(data) != want.data || (want.file && p.FileName() != want.filename) {
			t.Errorf("part %d = %q %q (%d bytes), want %q %q (%d bytes)", i, p.FormName(), p.FileName(), len(data), want.field, want.filename, len(want.data))
		}
	}
	if _, err := r.NextPart(); err != io.EOF {
		t.Fatalf("after last part: %v, want EOF", err)
	}
}

func TestEveryBodyIsTheSame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.wav")
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fh.Seek(7, io.SeekStart) // a ReadSeeker's current offset is where its content starts
	seeker, err := FileFromReadSeeker(fh, int64(len(data)-7))
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	reopen := File{Size: int64(len(data)), Open: func() (io.ReadCloser, error) { opens++; return os.Open(path) }}

	f := NewForm()
	f.WriteField("model", "whisper-1")
	f.AddFile("a", "a.wav", "", seeker)
	f.AddFile("b", "b.wav", "", reopen)
	first, _ := f.NewBody()
	second, _ := f.NewBody()
	// Interleave the reads of two bodies sharing one ReadSeeker.
	var b1, b2 bytes.Buffer
	buf := make([]byte, 1000)
	for done1, done2 := false, false; !done1 || !done2; {
		if !done1 {
			n, err := first.Read(buf)
			b1.Write(buf[:n])
			done1 = err == io.EOF
		}
		if !done2 {
			n, err := second.Read(buf)
			b2.Write(buf[:n])
			done2 = err == io.EOF
		}
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("two bodies of one form differ")
	}
	if !bytes.Contains(b1.Bytes(), append([]byte("\r\n\r\n"), data[7:]...)) {
		t.Fatal("the ReadSeeker's part does not start at its offset")
	}
	if opens != 2 {
		t.Fatalf("reopen called %d times for 2 bodies", opens)
	}
	if n, _ := f.Len(); n != int64(b1.Len()) {
		t.Fatalf("Len %d != %d bytes read", n, b1.Len())
	}
}

func TestShortSourceIsAnError(t *testing.T) {
	f := NewForm()
	f.AddFile("file", "a.wav", "", FileFromReaderAt(strings.NewReader("abc"), 10))
	body, _ := f.NewBody()
	_, err := io.ReadAll(body)
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("err = %v, want ErrSizeMismatch", err)
	}
}

func TestLongSourceIsCut(t *testing.T) {
	f := NewForm()
	f.AddFile("file", "a.wav", "", FileFromReaderAt(strings.NewReader("abcdefgh"), 3))
	n, _ := f.Len()
	body, _ := f.NewBody()
	got, err := io.ReadAll(body)
	if err != nil || int64(len(got)) != n || !bytes.Contains(got, []byte("\r\n\r\nabc\r\n--")) {
		t.Fatalf("got %q, %v; Len %d", got, err, n)
	}
}

func TestRejectsWhatBreaksTheFraming(t *testing.T) {
	for _, name := range []string{"a\rb", "a\nb", "a\x00b"} {
		f := NewForm()
		if err := f.WriteField(name, "v"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("WriteField(%q): %v, want ErrInvalidName", name, err)
		}
		if err := f.AddFile("file", name, "", FileFromReaderAt(strings.NewReader(""), 0)); !errors.Is(err, ErrInvalidName) {
			t.Errorf("AddFile filename %q: %v, want ErrInvalidName", name, err)
		}
		if err := f.AddFile("file", "a.wav", name, FileFromReaderAt(strings.NewReader(""), 0)); !errors.Is(err, ErrInvalidName) {
			t.Errorf("AddFile content type %q: %v, want ErrInvalidName", name, err)
		}
	}
	f := NewForm()
	if err := f.WriteField("prompt", "x\r\n--"+f.Boundary()+"--"); err == nil {
		t.Error("a value holding the boundary was accepted")
	}
	if err := f.SetBoundary("bad boundary\n"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("SetBoundary: %v", err)
	}
	f.WriteField("model", "whisper-1")
	if err := f.SetBoundary("late"); err == nil {
		t.Error("SetBoundary after a part was accepted")
	}
	f.Len()
	if err := f.WriteField("late", "x"); err == nil {
		t.Error("a part added after Len was accepted")
	}
}

func TestNewRequest(t *testing.T) {
	f, _ := build(t, "", sample)
	req, err := f.NewRequest(context.Background(), http.MethodPost, "http://example.invalid/v1/audio/transcriptions")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := f.Len()
	if req.ContentLength != n || req.GetBody == nil || !strings.HasPrefix(req.Header.Get("Content-Type"), "multipart/form-data; boundary=") {
		t.Fatalf("request: ContentLength %d (want %d), GetBody %v, Content-Type %q", req.ContentLength, n, req.GetBody != nil, req.Header.Get("Content-Type"))
	}
	a, _ := io.ReadAll(req.Body)
	again, _ := req.GetBody()
	b, _ := io.ReadAll(again)
	if !bytes.Equal(a, b) || int64(len(a)) != n {
		t.Fatal("GetBody does not replay the same body")
	}
	req.Body.Close()
	if _, err := req.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// FuzzLen checks that the announced length always equals the bytes
// produced, and that mime/multipart reads back what was written.
func FuzzLen(f *testing.F) {
	f.Add("model", "whisper-1", "file", "a.wav", "audio/wav", []byte("RIFF"), uint8(3))
	f.Add("", "", "", "", "", []byte{}, uint8(0))
	f.Add("\x03", "v", "file", "", "", []byte("x"), uint8(1))
	f.Add("ü\"\\", "--x\r\n", "f\"", "\"q\\.mp3", "a/b; c=\"d\"", bytes.Repeat([]byte{0xff}, 5000), uint8(255))
	f.Fuzz(func(t *testing.T, field, value, fileField, filename, ctype string, data []byte, chunk uint8) {
		form := NewForm()
		if err := form.WriteField(field, value); err != nil {
			return
		}
		if err := form.AddFile(fileField, filename, ctype, FileFromReaderAt(bytes.NewReader(data), int64(len(data)))); err != nil {
			return
		}
		n, err := form.Len()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := form.NewBody()
		// Read in odd-sized pieces to exercise segment boundaries.
		buf := make([]byte, int(chunk)+1)
		var got bytes.Buffer
		for {
			k, err := body.Read(buf)
			got.Write(buf[:k])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if int64(got.Len()) != n {
			t.Fatalf("Len = %d, produced %d", n, got.Len())
		}
		r := stdmultipart.NewReader(&got, form.Boundary())
		p, err := r.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := io.ReadAll(p); string(v) != value {
			t.Fatalf("field value %q, want %q", v, value)
		}
		p, err = r.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := io.ReadAll(p); !bytes.Equal(v, data) {
			t.Fatalf("file content differs (%d vs %d bytes)", len(v), len(data))
		}
	})
}
