package audio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// decodedSamples decodes piece p and returns how many samples it holds.
func decodedSamples(t testing.TB, p Piece) int {
	t.Helper()
	b := readPiece(t, p)
	if Sniff(b) != p.Format {
		t.Fatalf("piece %d sniffs as %q, not %q", p.Index, Sniff(b), p.Format)
	}
	d, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return len(readAll(t, d))
}

// Formats Go does not cut are re-encoded to 16 kHz mono FLAC by ffmpeg and
// cut in pauses; each piece is a FLAC file of exactly its samples, and
// Release removes them.
func TestPlanFFmpeg(t *testing.T) {
	needTool(t, "ffmpeg")
	s := newSpeech(44100, 3*time.Minute, -40, 11)
	dir := t.TempDir()
	in := filepath.Join(dir, "s.wav")
	s.writeWAV(t, in)
	for _, ext := range []string{"flac", "ogg", "m4a"} {
		path := filepath.Join(dir, "s."+ext)
		ffmpeg(t, "-i", in, "-ac", "2", path)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		// As a file (by name, a section of it too), and piped (MP4
		// through a temporary copy).
		readers := []io.ReaderAt{f}
		if ext != "ogg" {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			readers = append(readers, io.NewSectionReader(f, 0, st.Size()), bytes.NewReader(b))
		}
		for _, r := range readers {
			o := PlanOptions{MaxBytes: 1 << 20, TempDir: t.TempDir()}
			pieces, err := Plan(context.Background(), r, st.Size(), o)
			if err != nil {
				t.Fatalf("%s: %v", ext, err)
			}
			last := pieces[len(pieces)-1]
			if (last.End - 3*time.Minute).Abs() > 50*time.Millisecond {
				t.Errorf("%s: ends at %v, want 3m0s", ext, last.End)
			}
			checkTiling(t, pieces, o, last.End)
			if len(pieces) < 3 {
				t.Errorf("%s: %d pieces", ext, len(pieces))
			}
			for _, p := range pieces {
				if p.Index > 0 && (!p.Silence || !s.inPause(p.Start, 30*time.Millisecond)) {
					t.Errorf("%s: piece %d starts at %v, not in a pause", ext, p.Index, p.Start)
				}
				want := int(durSamples(p.End-p.Start, FFmpegRate))
				if got := decodedSamples(t, p); got != want {
					t.Errorf("%s: piece %d holds %d samples, want %d", ext, p.Index, got, want)
				}
			}
			t.Logf("%s (%T): %d pieces", ext, r, len(pieces))
			Release(pieces)
			if left, _ := os.ReadDir(o.TempDir); len(left) != 0 {
				t.Errorf("%s: %d temporary files left", ext, len(left))
			}
			if _, err := pieces[0].Open(); err == nil {
				t.Errorf("%s: a released piece opens", ext)
			}
		}
	}
}

// Shrink re-encodes a large WAV: 44.1 kHz stereo becomes 16 kHz mono FLAC,
// small enough to need no cut at all.
func TestPlanShrink(t *testing.T) {
	needTool(t, "ffmpeg")
	s := newSpeech(44100, 20*time.Second, -40, 12)
	dir := t.TempDir()
	mono := filepath.Join(dir, "mono.wav")
	s.writeWAV(t, mono)
	stereo := filepath.Join(dir, "stereo.wav")
	ffmpeg(t, "-i", mono, "-ac", "2", stereo)
	b, err := os.ReadFile(stereo)
	if err != nil {
		t.Fatal(err)
	}
	o := PlanOptions{MaxBytes: 1 << 20, Shrink: true, TempDir: t.TempDir()}
	pieces := plan(t, b, o)
	if len(pieces) != 1 || pieces[0].Format != FLAC || pieces[0].Size*5 > int64(len(b)) || pieces[0].End != 20*time.Second {
		t.Fatalf("%d bytes of WAV shrink to %+v", len(b), pieces)
	}
	if got := decodedSamples(t, pieces[0]); got != 20*FFmpegRate {
		t.Errorf("%d samples, want %d", got, 20*FFmpegRate)
	}
	Release(pieces)

	// Without Shrink, the same file is cut as WAV.
	o.Shrink = false
	if pieces := plan(t, b, o); len(pieces) < 3 || pieces[0].Format != WAV {
		t.Errorf("without Shrink: %d pieces of %s", len(pieces), pieces[0].Format)
	}
}

// Without ffmpeg, a format Go cannot cut is an error naming both reasons;
// a WAV with Shrink is cut in Go.
func TestPlanFFmpegMissing(t *testing.T) {
	defer func(f func() (string, error)) { lookFFmpeg = f }(lookFFmpeg)
	lookFFmpeg = func() (string, error) { return "", errors.New("no ffmpeg here") }
	ogg := append([]byte("OggS\x00\x02"), make([]byte, 100<<10)...)
	_, err := Plan(context.Background(), bytes.NewReader(ogg), int64(len(ogg)), PlanOptions{MaxBytes: 64 << 10})
	if !errors.Is(err, ErrCannotSplit) || !errors.Is(err, ErrNeedsFFmpeg) {
		t.Errorf("ogg without ffmpeg: %v", err)
	}
	s := newSpeech(16000, 10*time.Second, -40, 13)
	wav := synth(s.rate, s.n, s.sample)
	o := PlanOptions{MaxBytes: 64 << 10, Shrink: true}
	pieces := plan(t, wav, o)
	checkWAVPieces(t, wav, pieces)
}

// A file ffmpeg cannot read is an error, and leaves no file behind.
func TestPlanFFmpegBroken(t *testing.T) {
	needTool(t, "ffmpeg")
	dir := t.TempDir()
	s := newSpeech(16000, 10*time.Second, -40, 14)
	in := filepath.Join(dir, "s.wav")
	s.writeWAV(t, in)
	ffmpeg(t, "-i", in, filepath.Join(dir, "s.flac"))
	flac, err := os.ReadFile(filepath.Join(dir, "s.flac"))
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"no STREAMINFO":  append([]byte("fLaC"), bytes.Repeat([]byte{0x55}, 200<<10)...),
		"garbage frames": append(flac[:100:100], bytes.Repeat([]byte{0x55}, 200<<10)...),
	} {
		tmp := t.TempDir()
		_, err := Plan(context.Background(), bytes.NewReader(bad), int64(len(bad)), PlanOptions{MaxBytes: 64 << 10, TempDir: tmp})
		if !errors.Is(err, ErrCannotSplit) {
			t.Errorf("%s: %v, want ErrCannotSplit", name, err)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("%s: %d temporary files left", name, len(left))
		}
		t.Logf("%s: %v", name, err)
	}
}

// CanPlan tells from headers what Plan would refuse.
func TestCanPlan(t *testing.T) {
	s := newSpeech(16000, 2*time.Second, -40, 15)
	wav := synth(s.rate, s.n, s.sample)
	adpcm := append([]byte{}, wav...)
	adpcm[20] = 2 // WAVE_FORMAT_ADPCM
	ogg := append([]byte("OggS\x00\x02"), make([]byte, 100<<10)...)
	check := func(name string, b []byte, o PlanOptions, want ...error) {
		t.Helper()
		err := CanPlan(bytes.NewReader(b), int64(len(b)), o)
		if len(want) == 0 && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, w := range want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want %v", name, err, w)
			}
		}
	}
	check("wav", wav, PlanOptions{})
	check("mp3", mp3Frames(mpeg1, 10), PlanOptions{})
	check("adpcm wav", adpcm, PlanOptions{}, ErrCannotSplit, ErrUnsupportedWAV)
	check("text", []byte("just words, no audio at all"), PlanOptions{}, ErrNotAudio)
	check("truncated wav", wav[:30], PlanOptions{}, ErrBadWAV)
	check("limit too small", wav, PlanOptions{MaxBytes: 100}, ErrCannotSplit)

	defer func(f func() (string, error)) { lookFFmpeg = f }(lookFFmpeg)
	lookFFmpeg = func() (string, error) { return "/usr/bin/ffmpeg", nil }
	check("ogg with ffmpeg", ogg, PlanOptions{})
	check("adpcm wav to shrink", adpcm, PlanOptions{Shrink: true})
	lookFFmpeg = func() (string, error) { return "", errors.New("no ffmpeg here") }
	check("ogg without ffmpeg", ogg, PlanOptions{}, ErrCannotSplit, ErrNeedsFFmpeg)
	check("adpcm wav to shrink without ffmpeg", adpcm, PlanOptions{Shrink: true}, ErrUnsupportedWAV)
}
