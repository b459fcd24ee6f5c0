package transcribe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// newInputClient returns a client of an in-memory fake, spooling to a
// directory of its own, and the fake.
func newInputClient(t *testing.T, cfg transcribetest.Config) (*Client, *transcribetest.Handler, string) {
	t.Helper()
	h := transcribetest.NewHandler(cfg)
	tmp := t.TempDir()
	c, err := NewClient(WithBaseURL("http://fake.invalid/v1"), WithAPIKey("sk-input-test"),
		WithHTTPClient(&http.Client{Transport: h.Transport()}), WithTempDir(tmp))
	if err != nil {
		t.Fatal(err)
	}
	return c, h, tmp
}

// within fails the test if f has not returned after a long while: the
// guard of tests whose failure is a hang (not a measure of time).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still blocked after 20 s", what)
	}
}

// A FIFO or a device named like audio is refused at once, without open(2)
// waiting for a writer; the batch goes on with the other files.
func TestNonRegularFilesAreRefusedWithoutBlocking(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no FIFOs")
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "x.wav")
	if b, err := exec.Command("mkfifo", fifo).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, b)
	}
	dev := filepath.Join(dir, "zero.wav")
	if err := os.Symlink("/dev/zero", dev); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.wav")
	os.WriteFile(good, transcribetest.WAV(time.Second), 0o644)
	c, h, _ := newInputClient(t, transcribetest.Config{})

	for path, kind := range map[string]string{fifo: "a FIFO", dev: "a character device", dir: "a directory"} {
		within(t, path, func() {
			_, err := c.TranscribeFile(context.Background(), path, Request{})
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), kind) || ie.Name != path {
				t.Errorf("%s: %v, want an InputError: not a regular file (%s)", path, err, kind)
			}
		})
	}
	within(t, "a batch with a FIFO", func() {
		jobs := func(yield func(Job) bool) {
			_ = yield(Job{Path: fifo}) && yield(Job{Path: dev}) && yield(Job{Path: good})
		}
		seq, _ := c.BatchTranscribe(context.Background(), jobs, BatchOptions{})
		for r := range seq {
			if (r.Job.Path == good) != (r.Status == StatusDone) {
				t.Errorf("%s: %s %v", r.Job.Path, r.Status, r.Err)
			}
		}
	})
	if n := h.Stats().Requests; n != 1 {
		t.Fatalf("%d requests, want 1 (the good file)", n)
	}
}

// Piped standard input (an *os.File that cannot seek) is spooled, not
// refused with "illegal seek"; the spool is removed.
func TestPipeIsSpooled(t *testing.T) {
	c, h, tmp := newInputClient(t, transcribetest.Config{})
	clip := transcribetest.WAV(2 * time.Second)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.Write(clip)
		w.Close()
	}()
	tr, err := c.Transcribe(context.Background(), r, Request{FileName: "stdin.wav"})
	if err != nil {
		t.Fatalf("a pipe: %v", err)
	}
	want, err := c.Transcribe(context.Background(), strings.NewReader(string(clip)), Request{})
	if err != nil || tr.Text != want.Text || h.Stats().BytesReceived < 2*int64(len(clip)) {
		t.Fatalf("a pipe gave %q, the same bytes %q (%v)", tr.Text, want.Text, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// endless is a reader that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// A stream longer than the spool's bound is refused with ErrFileTooLarge
// and its spool removed; nothing is sent.
func TestSpoolIsBounded(t *testing.T) {
	c, h, tmp := newInputClient(t, transcribetest.Config{})
	const limit = 1 << 20
	head := transcribetest.WAV(time.Second)
	_, err := c.spool(context.Background(), io.MultiReader(strings.NewReader(string(head)), endless{}), "stream", "stream.wav", Request{}, limit)
	var ie *InputError
	if !errors.As(err, &ie) || !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), "1048576 bytes") {
		t.Fatalf("an endless stream: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
	// Up to the bound is fine.
	src, err := c.spool(context.Background(), strings.NewReader(string(head)), "stream", "stream.wav", Request{}, int64(len(head)))
	if err != nil {
		t.Fatalf("a stream of exactly the bound: %v", err)
	}
	src.close()
	if h.Stats().Requests != 0 || MaxSpoolBytes != 4<<30 {
		t.Fatal("sent something, or the documented bound changed")
	}
}

// Cancelling ctx stops spooling a pipe whose writer went quiet: the read
// that blocks is woken.
func TestSpoolingAPipeStopsOnCancel(t *testing.T) {
	c, _, tmp := newInputClient(t, transcribetest.Config{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	w.Write(transcribetest.WAV(time.Second)[:1000]) // then nothing
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	within(t, "spooling a quiet pipe", func() {
		if _, err := c.Transcribe(ctx, r, Request{}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: %v", err)
		}
	})
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// A file's name is sent in a multipart header: CR and LF in it would start
// header lines of the server's choosing, quotes and bytes that are not
// UTF-8 would garble it. It is sent under a safe name, its extension kept.
func TestNameSentIsSafe(t *testing.T) {
	var got []string
	var headers []textproto.MIMEHeader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mr, err := r.MultipartReader()
		if err != nil {
			t.Error(err)
			return
		}
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if p.FormName() == "file" {
				got = append(got, p.FileName())
				headers = append(headers, p.Header)
			}
			io.Copy(io.Discard, p)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"text":"ok"}`)
	}))
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.URL+"/v1"), WithAPIKey("sk-test"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wav := transcribetest.WAV(time.Second)
	for _, name := range []string{"a\r\nX-Evil: 1\r\n.wav", "q\"uo\\te.wav", "bad\xffname.wav", "bidi\u202egnp.wav", strings.Repeat("é", 120) + ".wav"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, wav, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := c.TranscribeFile(context.Background(), path, Request{}); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
	}
	for i, name := range got {
		if strings.ContainsAny(name, "\r\n\"\\\u202e") || !utf8.ValidString(name) || !strings.HasSuffix(name, ".wav") || len(name) > maxNameBytes {
			t.Errorf("sent as %q", name)
		}
		if len(headers[i]) != 2 { // Content-Disposition and Content-Type, nothing injected
			t.Errorf("part headers %v", headers[i])
		}
	}
	if len(got) != 5 || got[0] != "a__X-Evil: 1__.wav" {
		t.Fatalf("names sent: %q", got)
	}
}
