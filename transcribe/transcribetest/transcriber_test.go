package transcribetest_test

import (
	"bytes"
	"context"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/internal/audio"
	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

func transcribe(t *testing.T, name string, data []byte) *tt.Transcript {
	t.Helper()
	tr, err := tt.DefaultTranscriber(t.Context(), &tt.Audio{Filename: name, File: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestDefaultTranscriber(t *testing.T) {
	wav := tt.WAV(30 * time.Second)
	a := transcribe(t, "a.wav", wav)
	if b := transcribe(t, "a.wav", bytes.Clone(wav)); !reflect.DeepEqual(a, b) {
		t.Errorf("same audio, different transcripts:\n%+v\n%+v", a, b)
	}
	other := bytes.Clone(wav)
	other[len(other)-1] ^= 1 // one sample differs
	if b := transcribe(t, "a.wav", other); a.Segments[0].Text == b.Segments[0].Text {
		t.Errorf("different audio, same text %q", a.Segments[0].Text)
	}

	if a.Duration != 30 || a.Language != "" {
		t.Errorf("duration %v, language %q", a.Duration, a.Language)
	}
	words, prevEnd := 0, 0.0
	for i, s := range a.Segments {
		n := len(strings.Fields(s.Text))
		words += n
		if s.Start != prevEnd || s.End <= s.Start || s.End-s.Start > 10 || n < 1 || n > 20 || !strings.HasSuffix(s.Text, ".") ||
			s.Text[:1] != strings.ToUpper(s.Text[:1]) {
			t.Errorf("segment %d after %v: %+v", i, prevEnd, s)
		}
		prevEnd = s.End
	}
	if words != 75 || prevEnd != 30 {
		t.Errorf("%d words ending at %v, want 75 at 30", words, prevEnd)
	}

	// Other formats: 128 kbps.
	mp3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), make([]byte, 80000-10)...)
	if m := transcribe(t, "a.mp3", mp3); m.Duration != 5 || len(strings.Fields(m.Segments[0].Text)) == 0 {
		t.Errorf("mp3: %+v", m)
	}
	// A WAV whose header is broken.
	_, err := tt.DefaultTranscriber(context.Background(), &tt.Audio{File: bytes.NewReader([]byte("RIFF\x00\x00\x00\x00WAVEjunk")), Size: 16})
	if e, ok := err.(*tt.Error); !ok || e.Status != 400 {
		t.Errorf("broken WAV: %v", err)
	}
}

// TestLargeUploadMemory posts a 20 MB WAV through the real server and checks
// that the heap never holds it.
func TestLargeUploadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("20 MB upload")
	}
	dir := t.TempDir()
	body, err := os.Create(filepath.Join(dir, "body"))
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	mw := multipart.NewWriter(body)
	mw.WriteField("model", "whisper-1")
	mw.WriteField("response_format", "verbose_json")
	fw, _ := mw.CreateFormFile("file", "long.wav")
	const samples = 10_000_000 // 625 s at 16 kHz, 20 MB
	if err := audio.SynthWAV(fw, 16000, samples, func(i int) float64 { return 0.2 * math.Sin(float64(i)/7) }); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	size, _ := body.Seek(0, 1)
	if _, err := body.Seek(0, 0); err != nil {
		t.Fatal(err)
	}

	spool := t.TempDir() // where the fake puts the file part
	t.Setenv("TMPDIR", spool)
	srv := tt.NewServer(tt.Config{})
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.BaseURL()+"/audio/transcriptions", body)
	req.ContentLength = size
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer k")

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	resp, b := do(t, srv.Client(), req)
	close(stop)
	wg.Wait()

	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"duration":625,`)) {
		t.Fatalf("%d %.300s", resp.StatusCode, b)
	}
	if got := srv.Stats().BytesReceived; got != size {
		t.Errorf("BytesReceived %d, sent %d", got, size)
	}
	growth := int64(peak) - int64(baseline)
	t.Logf("uploaded %d bytes; heap in use grew by at most %.1f MB", size, float64(growth)/1e6)
	if growth > 8<<20 {
		t.Errorf("heap grew by %d bytes during a %d-byte upload", growth, size)
	}
	if entries, _ := os.ReadDir(spool); len(entries) > 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
