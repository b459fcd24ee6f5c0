package audio

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// decodeBytes decodes a whole file in memory.
func decodeBytes(t testing.TB, b []byte) ([]float32, int) {
	t.Helper()
	d, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return readAll(t, d), d.SampleRate()
}

// A WAV clip is a header and the original's frames, exactly; one over
// MaxBytes is shortened from its end; one that cannot be MinDuration long
// in MaxBytes is re-encoded to 16 kHz FLAC (or, without ffmpeg, fails).
func TestClipWAV(t *testing.T) {
	s := newSpeech(16000, 20*time.Second, -45, 21)
	wav := synth(s.rate, s.n, s.sample)
	r := bytes.NewReader(wav)
	ctx := context.Background()
	b, f, d, err := Clip(ctx, r, int64(len(wav)), 3*time.Second, 6*time.Second, ClipOptions{})
	if err != nil || f != WAV || d != 3*time.Second || Sniff(b) != WAV {
		t.Fatalf("clip: %v, %s, %v", err, f, d)
	}
	got, _ := decodeBytes(t, b)
	all, _ := decodeBytes(t, wav)
	if len(got) != 3*16000 || !equalSamples(got, all[3*16000:6*16000]) {
		t.Fatalf("the clip's %d samples are not the original's", len(got))
	}

	// 1 s of 16-bit mono in 32,044 bytes; 2.5 s does not fit in 64 KiB.
	b, f, d, err = Clip(ctx, r, int64(len(wav)), time.Second, 4*time.Second, ClipOptions{MaxBytes: 44 + 32000*2, MinDuration: time.Second})
	if err != nil || f != WAV || d != 2*time.Second || len(b) != 44+64000 {
		t.Fatalf("shortened: %v, %s, %v, %d bytes", err, f, d, len(b))
	}
	if _, _, _, err := Clip(ctx, r, int64(len(wav)), 19*time.Second, 30*time.Second, ClipOptions{}); err != nil {
		t.Fatalf("a clip past the end is clipped: %v", err)
	}
	o := ClipOptions{MaxBytes: 60000, MinDuration: 1900 * time.Millisecond, TempDir: t.TempDir()} // 1.87 s of WAV
	b, f, d, err = Clip(ctx, r, int64(len(wav)), 2*time.Second, 4*time.Second, o)
	if _, lookErr := lookFFmpeg(); lookErr != nil {
		if !errors.Is(err, ErrNeedsFFmpeg) {
			t.Fatalf("re-encoding without ffmpeg: %v", err)
		}
		return
	}
	if err != nil || f != FLAC || Sniff(b) != FLAC || d != 2*time.Second || int64(len(b)) > o.MaxBytes {
		t.Fatalf("re-encoded: %v, %s, %v, %d bytes", err, f, d, len(b))
	}
	if left, _ := os.ReadDir(o.TempDir); len(left) != 0 {
		t.Fatalf("%d temporary files left", len(left))
	}
	if _, _, _, err = Clip(ctx, r, int64(len(wav)), 2*time.Second, 8*time.Second, ClipOptions{MaxBytes: 1000, MinDuration: 5 * time.Second}); !errors.Is(err, ErrClipTooLarge) {
		t.Fatalf("no room: %v", err)
	}
}

func equalSamples(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An MP3 clip is the original's frames, a few early: it decodes to the
// stretch asked for, give or take a frame; other formats are re-encoded.
func TestClipMP3AndOthers(t *testing.T) {
	s := newSpeech(16000, 30*time.Second, -45, 22)
	dir := t.TempDir()
	mp3 := speechMP3(t, s, dir, "-b", "64")
	b, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	clip, f, d, err := Clip(context.Background(), bytes.NewReader(b), int64(len(b)), 10*time.Second, 15*time.Second, ClipOptions{})
	if err != nil || f != MP3 || Sniff(clip) != MP3 || d < 5*time.Second || d > 5200*time.Millisecond || !bytes.Contains(b, clip) {
		t.Fatalf("mp3: %v, %s, %v", err, f, d)
	}
	got, rate := decodeBytes(t, clip)
	if dur := time.Duration(len(got)) * time.Second / time.Duration(rate); (dur - d).Abs() > 100*time.Millisecond {
		t.Fatalf("mp3: decodes to %v, says %v", dur, d)
	}

	needTool(t, "ffmpeg")
	flac := filepath.Join(dir, "s.flac")
	ffmpeg(t, "-i", filepath.Join(dir, "speech.wav"), flac)
	b, _ = os.ReadFile(flac)
	clip, f, d, err = Clip(context.Background(), bytes.NewReader(b), int64(len(b)), 10*time.Second, 13*time.Second, ClipOptions{TempDir: t.TempDir()})
	if err != nil || f != FLAC || Sniff(clip) != FLAC || d != 3*time.Second {
		t.Fatalf("flac: %v, %s, %v", err, f, d)
	}
}
