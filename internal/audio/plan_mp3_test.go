package audio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hajimehoshi/go-mp3"
)

// onset returns when the first 20 ms block of x from sample from on is
// louder than -20 dBFS (a burst; the noise is at -40), in samples.
func onset(x []float32, from, rate int) int {
	n := rate / 50
	for i := from; i+n <= len(x); i += n {
		var sum float64
		for _, v := range x[i : i+n] {
			sum += float64(v) * float64(v)
		}
		if sum/float64(n) > 0.01 {
			return i
		}
	}
	return -1
}

func TestPlanMP3(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate int
		args []string
	}{
		{"cbr 128k", 44100, []string{"-b", "128"}},
		{"vbr, id3, xing", 44100, []string{"-V", "4", "--tt", "talk", "--add-id3v2", "--pad-id3v2-size", "3000"}},
		{"mpeg-2 16 kHz 32k", 16000, []string{"-b", "32"}},
		{"mpeg-2.5 8 kHz 16k", 8000, []string{"-b", "16"}},
		// go-mp3 misreads padded frames at 22.05 kHz: ffmpeg decodes.
		{"mpeg-2 22.05 kHz 32k", 22050, []string{"-b", "32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpeech(tc.rate, 4*time.Minute, -40, 11)
			path := speechMP3(t, s, t.TempDir(), tc.args...)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			info, err := probe(b)
			if err != nil {
				t.Fatal(err)
			}
			o := PlanOptions{MaxBytes: int64(len(b)) / 4}
			pieces := plan(t, b, o)
			checkTiling(t, pieces, o, pieces[len(pieces)-1].End)
			if d := pieces[len(pieces)-1].End - info.Duration; d.Abs() > 30*time.Millisecond {
				t.Errorf("pieces end at %v, Probe says %v", pieces[len(pieces)-1].End, info.Duration)
			}
			var full []float32
			if tc.rate >= 16000 && tc.rate != 22050 {
				d, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b)))
				if err != nil {
					t.Fatal(err)
				}
				full = readAll(t, d)
			} else {
				needTool(t, "ffmpeg")
			}
			for _, p := range pieces {
				pb := readPiece(t, p)
				if _, ok := parseMP3Header(pb); !ok || p.Format != MP3 {
					t.Fatalf("piece %d does not start with a frame header", p.Index)
				}
				cut := p.Start + p.PreRoll
				if p.Index > 0 && (!p.Silence || !s.inPause(cut, 100*time.Millisecond)) {
					t.Errorf("piece %d: cut at %v (silence %v) is not in a pause", p.Index, cut, p.Silence)
				}
				t.Logf("piece %d: %v–%v, pre-roll %v, overlap %v, %d bytes", p.Index, p.Start, p.End, p.PreRoll, p.Overlap, p.Size)
				if full == nil {
					continue
				}
				// go-mp3 decodes the piece as a file, frame for frame,
				// and after the pre-roll exactly as the original.
				d, err := mp3.NewDecoder(bytes.NewReader(pb))
				if err != nil {
					t.Fatalf("piece %d: %v", p.Index, err)
				}
				pcm, err := io.ReadAll(d)
				if err != nil {
					t.Fatalf("piece %d: %v", p.Index, err)
				}
				got := make([]float32, len(pcm)/4)
				mixDown(got, pcm, 2, 16, false)
				at := func(d time.Duration) int { return int(math.Round(d.Seconds() * float64(tc.rate))) }
				if len(got) != at(p.End-p.Start) {
					t.Fatalf("piece %d: %d samples, want %d", p.Index, len(got), at(p.End-p.Start))
				}
				pre := at(p.PreRoll)
				var diff float64
				for i, v := range got[pre:] {
					diff = max(diff, math.Abs(float64(v-full[at(cut)+i])))
				}
				if diff > 1e-3 {
					t.Errorf("piece %d: differs from the original by up to %v after its pre-roll", p.Index, diff)
				}
				// Offset maps the piece's times to the original's: its
				// first burst starts where the original's does, give or
				// take the codec's delay.
				if p.Index > 0 {
					on := samplesDuration(int64(onset(got, pre, tc.rate)), tc.rate) + p.Offset
					// Where the LAME tag says what the codec delay is,
					// Offset takes it out; else it remains (69 ms at
					// 16 kHz).
					tol := 100 * time.Millisecond
					if m, _ := scanMP3(bytes.NewReader(b), int64(len(b))); m.delay > 0 {
						tol = 20 * time.Millisecond
					}
					want := s.firstBurstAfter(cut)
					t.Logf("piece %d: first burst %v off", p.Index, on-want)
					if (on - want).Abs() > tol {
						t.Errorf("piece %d: first burst at %v in the original, want %v", p.Index, on, want)
					}
				}
			}
		})
	}
}

// TestPlanMPEG25WithoutFFmpeg: an MPEG-2.5 file go-mp3 cannot decode is
// cut without analysis, hard cuts with overlaps, when ffmpeg is absent.
func TestPlanMPEG25WithoutFFmpeg(t *testing.T) {
	s := newSpeech(8000, 2*time.Minute, -40, 3)
	path := speechMP3(t, s, t.TempDir(), "-b", "16")
	b, _ := os.ReadFile(path)
	defer func(f func() (string, error)) { lookFFmpeg = f }(lookFFmpeg)
	lookFFmpeg = func() (string, error) { return "", errors.New("no ffmpeg here") }
	o := PlanOptions{MaxBytes: int64(len(b)) / 3}
	pieces := plan(t, b, o)
	checkTiling(t, pieces, o, pieces[len(pieces)-1].End)
	for _, p := range pieces[1:] {
		if p.Silence || p.Overlap < 2*time.Second {
			t.Errorf("piece %d: silence %v, overlap %v", p.Index, p.Silence, p.Overlap)
		}
	}
	if _, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrNeedsFFmpeg) {
		t.Errorf("decoding MPEG-2.5 without ffmpeg: %v", err)
	}
}

// TestPlanMP3Corrupt: garbage inside the stream, frames with broken
// bodies and a gap wider than a resync window are walked past.
func TestPlanMP3Corrupt(t *testing.T) {
	s := newSpeech(44100, 3*time.Minute, -40, 5)
	path := speechMP3(t, s, t.TempDir(), "-b", "96")
	b, _ := os.ReadFile(path)
	third := len(b) / 3
	broken := cat(b[:third], []byte("garbage\xff\xfb\x90"), b[third:2*third], make([]byte, 100<<10), b[2*third:])
	for i := third / 2; i < third/2+5000; i += 7 { // scribble over frame bodies
		broken[i] ^= 0x5A
	}
	o := PlanOptions{MaxBytes: int64(len(b)) / 5}
	pieces := plan(t, broken, o)
	checkTiling(t, pieces, o, pieces[len(pieces)-1].End)
	// The frames whose headers were scribbled over are lost.
	if d := pieces[len(pieces)-1].End - 3*time.Minute; d.Abs() > 300*time.Millisecond {
		t.Errorf("pieces end at %v, want about 3m", pieces[len(pieces)-1].End)
	}
	d, err := NewDecoder(context.Background(), bytes.NewReader(broken), int64(len(broken)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readAll(t, d)); math.Abs(float64(got)/44100-180) > 0.3 {
		t.Errorf("decoded %d samples, want about 180 s", got)
	}
}

func TestNewDecoderFFmpeg(t *testing.T) {
	needTool(t, "ffmpeg")
	s := newSpeech(22050, 30*time.Second, -40, 9)
	dir := t.TempDir()
	in := filepath.Join(dir, "s.wav")
	s.writeWAV(t, in)
	for _, ext := range []string{"flac", "ogg", "m4a"} {
		out := filepath.Join(dir, "s."+ext)
		ffmpeg(t, "-i", in, out)
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		b, _ := os.ReadFile(out)
		// An *os.File goes to ffmpeg by name; other readers are piped.
		for _, r := range []io.ReaderAt{f, bytes.NewReader(b)} {
			d, err := NewDecoder(context.Background(), r, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for sil, err := range Silences(d, 300*time.Millisecond) {
				if err != nil {
					t.Fatalf("%s: %v", ext, err)
				}
				if !s.inPause(sil.Start, 50*time.Millisecond) || !s.inPause(sil.End, 50*time.Millisecond) {
					t.Errorf("%s: silence %v–%v is not a pause", ext, sil.Start, sil.End)
				}
				found++
			}
			if d.SampleRate() != FFmpegRate || found < len(s.pauses)/2 {
				t.Errorf("%s: %d silences of %d pauses at %d Hz", ext, found, len(s.pauses), d.SampleRate())
			}
			d.Close()
		}
		f.Close()
	}
	// Closing early ends the process; a broken file is an error.
	flac, _ := os.ReadFile(filepath.Join(dir, "s.flac"))
	d, err := NewDecoder(context.Background(), bytes.NewReader(flac), int64(len(flac)))
	if err != nil {
		t.Fatal(err)
	}
	d.Read(make([]float32, 100))
	d.Close()
	if _, err := d.Read(make([]float32, 100)); err == nil {
		t.Error("Read after Close succeeded")
	}
	// A FLAC file whose frames are garbage: an error, or no audio
	// (ffmpeg may skip what it cannot decode and exit 0), never a hang.
	bad := append(flac[:100:100], bytes.Repeat([]byte{0x55}, 10000)...)
	d, err = NewDecoder(context.Background(), bytes.NewReader(bad), int64(len(bad)))
	var pcm []byte
	if err == nil {
		pcm, err = io.ReadAll(readerOf{d})
		d.Close()
	}
	if err == nil && len(pcm) > 0 {
		t.Errorf("broken FLAC: %d bytes of samples and no error", len(pcm))
	}
	t.Logf("broken FLAC: %d bytes of samples, %v", len(pcm), err)

	defer func(f func() (string, error)) { lookFFmpeg = f }(lookFFmpeg)
	lookFFmpeg = func() (string, error) { return "", errors.New("no ffmpeg here") }
	if _, err := NewDecoder(context.Background(), bytes.NewReader(flac), int64(len(flac))); !errors.Is(err, ErrNeedsFFmpeg) || !bytes.Contains([]byte(err.Error()), []byte("FLAC")) {
		t.Errorf("without ffmpeg: %v", err)
	}
}

// readerOf reads a Decoder's samples as bytes, for io.ReadAll.
type readerOf struct{ d Decoder }

func (r readerOf) Read(p []byte) (int, error) {
	buf := make([]float32, len(p)/4+1)
	n, err := r.d.Read(buf)
	return min(n*4, len(p)), err
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	needTool(t, "ffmpeg")
	cmd := execCommand("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
}

// go-mp3 decodes some 22.05 kHz MP3s to noise; NewDecoder gives them to
// ffmpeg, which decodes them right.
func TestDecodeMP3At22kHz(t *testing.T) {
	needTool(t, "ffmpeg")
	dir := t.TempDir()
	in := filepath.Join(dir, "tone.wav")
	const rate = 22050
	if err := os.WriteFile(in, synth(rate, 5*rate, func(i int) float64 { return 0.5 * math.Sin(2*math.Pi*440*float64(i)/rate) }), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tone.mp3")
	lame(t, in, out, "-b", "32")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	x := readAll(t, d)
	var e float64
	mid := x[len(x)/4 : 3*len(x)/4]
	for _, v := range mid {
		e += float64(v) * float64(v)
	}
	if rms := math.Sqrt(e / float64(len(mid))); math.Abs(rms-0.5/math.Sqrt2) > 0.03 {
		t.Errorf("a sine of amplitude 0.5 decodes at RMS %.3f, want %.3f", rms, 0.5/math.Sqrt2)
	}
}
