package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// mp3Spec describes a synthetic layer III stream.
type mp3Spec struct {
	version byte // 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5
	bitrate byte // bitrate index
	rate    byte // sample rate index
	mono    bool
}

var (
	mpeg1 = mp3Spec{version: 3, bitrate: 9, rate: 0}    // 128 kbit/s, 44.1 kHz, stereo
	mpeg2 = mp3Spec{version: 2, bitrate: 8, rate: 0}    // 64 kbit/s, 22.05 kHz, stereo
	mpg25 = mp3Spec{version: 0, bitrate: 4, rate: 2}    // 32 kbit/s, 8 kHz
	mono1 = mp3Spec{version: 3, bitrate: 5, mono: true} // 64 kbit/s, 44.1 kHz, mono
)

// header returns the 4-byte header of a frame of s.
func (s mp3Spec) header(pad bool) []byte {
	h := []byte{0xFF, 0xE0 | s.version<<3 | 1<<1 | 1, s.bitrate<<4 | s.rate<<2, 0}
	if pad {
		h[2] |= 2
	}
	if s.mono {
		h[3] = 3 << 6
	}
	return h
}

// mp3Frames returns n frames of s, with the padding bits an encoder sets to
// keep the average bitrate exact and bodies of random bytes.
func mp3Frames(s mp3Spec, n int) []byte {
	h, ok := parseMP3Header(s.header(false))
	if !ok {
		panic("bad spec")
	}
	per := h.samples() * int64(h.kbps) * 1000 / 8 // bytes per frame × rate
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	var out []byte
	var rest int64
	for range n {
		rest += per % int64(h.rate)
		pad := rest >= int64(h.rate)
		if pad {
			rest -= int64(h.rate)
		}
		f := s.header(pad)
		for len(f) < mp3FrameLen(f) {
			f = append(f, byte(rng.Uint32()))
		}
		out = append(out, f...)
	}
	return out
}

// tagFrame returns a frame of s that holds a Xing/Info (or, if tag is
// "VBRI", a VBRI) header, declaring frames when hasFrames.
func tagFrame(s mp3Spec, tag string, frames uint32, hasFrames bool) []byte {
	f := s.header(false)
	f = append(f, make([]byte, mp3FrameLen(f)-4)...)
	h, _ := parseMP3Header(f)
	if tag == "VBRI" {
		copy(f[36:], "VBRI")
		binary.BigEndian.PutUint32(f[36+14:], frames)
		return f
	}
	x := 4 + 17
	if h.mpeg1 && !h.mono {
		x = 4 + 32
	} else if !h.mpeg1 && h.mono {
		x = 4 + 9
	}
	copy(f[x:], tag)
	if hasFrames {
		f[x+7] = 1
		binary.BigEndian.PutUint32(f[x+8:], frames)
	}
	return f
}

// id3v2 returns an ID3v2.4 tag with a body of n bytes (MP3 frames, to catch
// a tag that is scanned instead of skipped), with a footer if asked.
func id3v2(n int, footer bool) []byte {
	t := []byte{'I', 'D', '3', 4, 0, 0, byte(n >> 21 & 0x7F), byte(n >> 14 & 0x7F), byte(n >> 7 & 0x7F), byte(n & 0x7F)}
	body := mp3Frames(mpeg1, n/417+1)[:n]
	t = append(t, body...)
	if footer {
		t[5] = 0x10
		t = append(t, '3', 'D', 'I', 4, 0, 0x10, t[6], t[7], t[8], t[9])
	}
	return t
}

// frameTime returns the exact duration of n frames of s.
func frameTime(s mp3Spec, n int64) time.Duration {
	h, _ := parseMP3Header(s.header(false))
	return time.Duration(n*h.samples()) * time.Second / time.Duration(h.rate)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func probe(b []byte) (Info, error) { return Probe(bytes.NewReader(b), int64(len(b))) }

func TestProbeMP3(t *testing.T) {
	frames := mp3Frames(mpeg1, 1000)
	garbage := make([]byte, 3000)
	for i := range garbage {
		garbage[i] = byte(i*7) | 0xE0 // many 0xFF and near-sync bytes
	}
	trailer := append([]byte("TAG"), bytes.Repeat([]byte{0xFF}, 125)...)
	vbr := cat(mp3Frames(mp3Spec{version: 3, bitrate: 9}, 300), mp3Frames(mp3Spec{version: 3, bitrate: 14}, 200))
	for name, tc := range map[string]struct {
		data     []byte
		spec     mp3Spec
		frames   int64
		channels int
		bitrate  int
	}{
		"cbr":               {frames, mpeg1, 1000, 2, 128000},
		"mono":              {mp3Frames(mono1, 700), mono1, 700, 1, 64000},
		"mpeg-2":            {mp3Frames(mpeg2, 500), mpeg2, 500, 2, 64000},
		"mpeg-2.5":          {mp3Frames(mpg25, 300), mpg25, 300, 2, 32000},
		"id3v2":             {cat(id3v2(10000, false), frames), mpeg1, 1000, 2, 128000},
		"id3v2 with footer": {cat(id3v2(300, true), frames), mpeg1, 1000, 2, 128000},
		"two id3v2 tags":    {cat(id3v2(20, false), id3v2(5000, false), frames), mpeg1, 1000, 2, 128000},
		"junk first":        {cat([]byte("not a frame, not a tag"), frames), mpeg1, 1000, 2, 128000},
		"garbage inside":    {cat(frames[:417*400], garbage, frames[417*400:]), mpeg1, 1000, 2, 128000},
		"id3v1 trailer":     {cat(frames, trailer), mpeg1, 1000, 2, 128000},
		"truncated":         {frames[:len(frames)-100], mpeg1, 999, 2, 128000},
		"vbr":               {vbr, mpeg1, 500, 2, 0},
		"xing":              {cat(tagFrame(mpeg1, "Xing", 1200, true), frames), mpeg1, 1200, 2, 0},
		"info, mpeg-2":      {cat(tagFrame(mpeg2, "Info", 600, true), mp3Frames(mpeg2, 500)), mpeg2, 600, 2, 0},
		"xing, mono":        {cat(tagFrame(mono1, "Xing", 800, true), mp3Frames(mono1, 700)), mono1, 800, 1, 0},
		"xing, mpeg-2 mono": {cat(tagFrame(mp3Spec{version: 2, bitrate: 8, mono: true}, "Xing", 600, true), mp3Frames(mpeg2, 500)), mpeg2, 600, 1, 0},
		"vbri":              {cat(id3v2(100, false), tagFrame(mpeg1, "VBRI", 1100, false), frames), mpeg1, 1100, 2, 0},
		"xing, no count":    {cat(tagFrame(mpeg1, "Info", 0, false), frames), mpeg1, 1000, 2, 128000},
		"xing, absurd":      {cat(tagFrame(mpeg1, "Xing", 1<<31, true), frames), mpeg1, 1000, 2, 128000},
	} {
		info, err := probe(tc.data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := Info{Format: MP3, Duration: frameTime(tc.spec, tc.frames), Exact: true, SampleRate: info.SampleRate, Channels: tc.channels, Bitrate: tc.bitrate}
		if tc.bitrate == 0 { // an average
			want.Bitrate = info.Bitrate
		}
		if info != want {
			t.Errorf("%s: Probe = %+v, want %+v", name, info, want)
		}
	}

	// Exactly 1000 frames × 1152 samples at 44.1 kHz.
	if info, _ := probe(frames); info.Duration != 1152000*time.Second/44100 || info.SampleRate != 44100 {
		t.Errorf("cbr: %+v", info)
	}
	if info, _ := probe(vbr); info.Bitrate < 128000 || info.Bitrate > 256000 {
		t.Errorf("vbr: average bitrate %d", info.Bitrate)
	}

	// A gap too wide to resync: the rest is counted at the average frame
	// size, as an estimate.
	gap := cat(frames[:417*500], make([]byte, 100<<10), frames[417*500:])
	if info, err := probe(gap); err != nil || info.Exact || info.Duration < frameTime(mpeg1, 1000) {
		t.Errorf("wide gap: %+v %v", info, err)
	}
}

func TestProbeWAV(t *testing.T) {
	for _, tc := range []struct{ rate, n int }{{8000, 8000 * 3}, {44100, 44100*2 + 7}, {16000, 0}} {
		var b bytes.Buffer
		SynthWAV(&b, tc.rate, tc.n, func(i int) float64 { return float64(i%100) / 100 })
		info, err := probe(b.Bytes())
		want := Info{Format: WAV, Duration: time.Duration(tc.n) * time.Second / time.Duration(tc.rate), Exact: true, SampleRate: tc.rate, Channels: 1, Bitrate: tc.rate * 16}
		if err != nil || info != want {
			t.Errorf("%d samples at %d Hz: %+v %v, want %+v", tc.n, tc.rate, info, err, want)
		}
	}

	// A compressed format (IMA ADPCM): blocks hold many samples, so the
	// duration comes from the declared byte rate, as an estimate.
	var b bytes.Buffer
	SynthWAV(&b, 8000, 8000, func(int) float64 { return 0 })
	adpcm := b.Bytes()
	binary.LittleEndian.PutUint16(adpcm[20:], 0x11)
	binary.LittleEndian.PutUint32(adpcm[28:], 4000)
	if info, err := probe(adpcm); err != nil || info.Exact || info.Duration != 4*time.Second {
		t.Errorf("adpcm: %+v %v", info, err)
	}

	if info, err := probe(adpcm[:40]); !errors.Is(err, ErrBadWAV) || info.Format != WAV {
		t.Errorf("no data chunk: %+v %v", info, err)
	}
}

func TestSamplesDuration(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		rate int
		want time.Duration
	}{
		{44100, 44100, time.Second},
		{1, 3, 333333333},
		{0, 8000, 0},
		{100, 0, 0},
		{-5, 8000, 0},
		{math.MaxInt64, 1, math.MaxInt64}, // saturates
		{math.MaxInt64, 4000, math.MaxInt64},
		{1<<40 + 1, 1 << 30, 1024 * time.Second},
	} {
		if got := samplesDuration(tc.n, tc.rate); got != tc.want {
			t.Errorf("samplesDuration(%d, %d) = %v, want %v", tc.n, tc.rate, got, tc.want)
		}
	}
}

// flac returns a FLAC header: "fLaC" and a STREAMINFO block (of blockType,
// normally 0) with the given fields, then body.
func flac(blockType byte, rate, channels, bits int, total int64, body []byte) []byte {
	b := []byte("fLaC")
	b = append(b, 0x80|blockType, 0, 0, 34)
	si := make([]byte, 34)
	binary.BigEndian.PutUint16(si[0:], 4096)
	binary.BigEndian.PutUint16(si[2:], 4096)
	x := uint64(rate)<<44 | uint64(channels-1)<<41 | uint64(bits-1)<<36 | uint64(total)
	binary.BigEndian.PutUint64(si[10:], x)
	return append(append(b, si...), body...)
}

func TestProbeFLAC(t *testing.T) {
	body := make([]byte, 8000)
	info, err := probe(flac(0, 44100, 2, 16, 44100*5+441, body))
	want := Info{Format: FLAC, Duration: 5010 * time.Millisecond, Exact: true, SampleRate: 44100, Channels: 2}
	if err != nil || info != want {
		t.Errorf("exact: %+v %v, want %+v", info, err, want)
	}
	// 36 bits of samples at the highest rate FLAC allows.
	info, err = probe(flac(0, 1<<20-1, 8, 32, 1<<36-1, nil))
	if err != nil || info.Duration != 1<<16*time.Second+(1<<16-1)*time.Second/(1<<20-1) || info.Channels != 8 {
		t.Errorf("largest: %+v %v", info, err)
	}
	// Some taggers put an ID3v2 tag before "fLaC".
	info, err = probe(append(id3v2(100, false), flac(0, 44100, 2, 16, 44100*5+441, body)...))
	if err != nil || info != want {
		t.Errorf("after an ID3 tag: %+v %v, want %+v", info, err, want)
	}
	info, err = probe(flac(0, 48000, 1, 24, 0, body))
	if err != nil || info.Exact || info.Duration != time.Duration(8+34+8000)*time.Second/4000 {
		t.Errorf("unknown length: %+v %v", info, err)
	}
	for name, bad := range map[string][]byte{
		"rate 0":         flac(0, 0, 2, 16, 1000, nil),
		"not streaminfo": flac(4, 44100, 2, 16, 1000, nil),
		"truncated":      flac(0, 44100, 2, 16, 1000, nil)[:30],
		"magic only":     []byte("fLaC"),
	} {
		if info, err := probe(bad); !errors.Is(err, ErrBadFLAC) || info.Format != FLAC {
			t.Errorf("%s: %+v %v, want ErrBadFLAC", name, info, err)
		}
	}
}

func TestProbeEstimate(t *testing.T) {
	for f, head := range map[Format]string{
		Ogg:  "OggS\x00\x02",
		MP4:  "\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
		WebM: "\x1A\x45\xDF\xA3\x9F\x42\x86",
	} {
		b := append([]byte(head), make([]byte, 40000-len(head))...)
		info, err := probe(b)
		if want := (Info{Format: f, Duration: 10 * time.Second}); err != nil || info != want {
			t.Errorf("%s: %+v %v, want %+v", f, info, err, want)
		}
	}
}

func TestProbeNotAudio(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":             nil,
		"text":              []byte("hello, this is not audio"),
		"png":               []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"),
		"lone sync word":    append([]byte("text text \xff\xfb\x90\x00"), bytes.Repeat([]byte("x"), 1000)...),
		"id3 and nothing":   id3v2(0, false)[:10],
		"id3 and text":      cat(id3v2(50, false), bytes.Repeat([]byte("text"), 1000)),
		"id3 past the end":  append([]byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"), mp3Frames(mpeg1, 10)...),
		"junk too long":     cat(id3v2(0, false)[:10], make([]byte, 70<<10), mp3Frames(mpeg1, 10)),
		"frames of 2 rates": cat(id3v2(0, false)[:10], mpeg1.header(false), make([]byte, 413), mpeg2.header(false), make([]byte, 300)),
	} {
		if info, err := probe(b); !errors.Is(err, ErrNotAudio) || info.Format != Unknown {
			t.Errorf("%s: %+v %v, want ErrNotAudio", name, info, err)
		}
	}
}

func TestProbeFreeFormat(t *testing.T) {
	free := cat([]byte{0xFF, 0xFB, 0x00, 0x00}, make([]byte, 1000))
	for name, b := range map[string][]byte{"bare": free, "after id3v2": cat(id3v2(100, false), free)} {
		if info, err := probe(b); !errors.Is(err, ErrBadMP3) || info.Format != MP3 {
			t.Errorf("%s: %+v %v, want ErrBadMP3", name, info, err)
		}
	}
}

type failingReader struct{ err error }

func (r failingReader) ReadAt([]byte, int64) (int, error) { return 0, r.err }

func TestProbeReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := Probe(failingReader{boom}, 1000); !errors.Is(err, boom) || errors.Is(err, ErrNotAudio) {
		t.Errorf("err = %v, want boom", err)
	}
	// A file shorter than its declared size is measured as it is.
	frames := mp3Frames(mpeg1, 100)
	info, err := Probe(bytes.NewReader(frames), 1<<40)
	if err != nil || info.Duration != frameTime(mpeg1, 100) {
		t.Errorf("short file: %+v %v", info, err)
	}
}

// TestProbeEncoded measures MP3 files made by a real encoder, when one is
// installed.
func TestProbeEncoded(t *testing.T) {
	type encoder struct {
		name string
		args func(in, out string) []string
	}
	var encs []encoder
	if _, err := exec.LookPath("lame"); err == nil {
		encs = append(encs,
			encoder{"lame cbr", func(in, out string) []string { return []string{"lame", "--silent", "-b", "128", in, out} }},
			encoder{"lame cbr, no tag", func(in, out string) []string { return []string{"lame", "--silent", "-t", "-b", "128", in, out} }},
			encoder{"lame vbr", func(in, out string) []string {
				return []string{"lame", "--silent", "-V", "4", "--tt", "Tone", "--add-id3v2", "--pad-id3v2-size", "5000", in, out}
			}},
			encoder{"lame vbr, no tag", func(in, out string) []string { return []string{"lame", "--silent", "-t", "-V", "4", in, out} }},
			encoder{"lame mpeg-2", func(in, out string) []string {
				return []string{"lame", "--silent", "--resample", "22.05", "-b", "64", in, out}
			}},
		)
	}
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		encs = append(encs,
			encoder{"ffmpeg", func(in, out string) []string {
				return []string{"ffmpeg", "-loglevel", "error", "-i", in, "-c:a", "libmp3lame", "-b:a", "128k", out}
			}},
			encoder{"ffmpeg, no tag", func(in, out string) []string {
				return []string{"ffmpeg", "-loglevel", "error", "-i", in, "-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0", out}
			}},
		)
	}
	if len(encs) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI installs lame (.ci/run); neither lame nor ffmpeg is on PATH")
		}
		t.Skip("neither lame nor ffmpeg on PATH: no real MP3 to probe")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "tone.wav")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	const seconds = 3
	SynthWAV(f, 44100, 44100*seconds, func(i int) float64 { return 0.5 * float64(i%100-50) / 50 })
	f.Close()
	for i, e := range encs {
		out := filepath.Join(dir, string(rune('a'+i))+".mp3")
		args := e.args(in, out)
		if msg, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", e.name, err, msg)
			continue
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		info, err := Probe(f, st.Size())
		f.Close()
		// An encoder adds its delay and pads the last frame: a few
		// frames at most.
		if err != nil || !info.Exact || info.Duration < seconds*time.Second || info.Duration > seconds*time.Second+150*time.Millisecond {
			t.Errorf("%s: %+v %v, want about %ds", e.name, info, err, seconds)
		}
		t.Logf("%s: %d bytes, %+v", e.name, st.Size(), info)
	}
}

// countingReader counts the calls to ReadAt and the bytes they return.
type countingReader struct {
	r            io.ReaderAt
	calls, bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.calls++
	c.bytes += int64(n)
	return n, err
}

func FuzzProbe(f *testing.F) {
	var wav bytes.Buffer
	SynthWAV(&wav, 8000, 100, func(int) float64 { return 0 })
	frames := mp3Frames(mpeg1, 4)
	for _, seed := range [][]byte{
		wav.Bytes(),
		flac(0, 44100, 2, 16, 44100, make([]byte, 10)),
		frames,
		mp3Frames(mpeg2, 4),
		mp3Frames(mpg25, 4),
		cat(id3v2(20, true), frames),
		cat(tagFrame(mpeg1, "Xing", 4, true), frames),
		cat(tagFrame(mono1, "VBRI", 4, false), mp3Frames(mono1, 4)),
		cat(frames[:600], []byte("garbage\xff\xfb"), frames[600:], []byte("TAG...")),
		[]byte("OggS\x00\x02"),
		{0xFF, 0xFB, 0x00, 0x00},
	} {
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
		f.Add(seed[:min(len(seed), 5)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int64{int64(len(b)), int64(len(b)) + 1000} {
			r := &countingReader{r: bytes.NewReader(b)}
			var info Info
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				info, err = Probe(r, size)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("size %d: Probe still running after 10s", size)
			}
			if info.Duration < 0 {
				t.Fatalf("size %d: negative duration %v", size, info.Duration)
			}
			if (info.Format == Unknown) != errors.Is(err, ErrNotAudio) {
				t.Fatalf("size %d: format %q with error %v", size, info.Format, err)
			}
			// Linear work: reads move forward through the file (WAV's
			// chunk walk reads 8 bytes at a time).
			if n := int64(len(b)); r.calls > n/8+16 || r.bytes > 4*n+64<<10 {
				t.Fatalf("size %d: %d reads of %d bytes for a %d-byte file", size, r.calls, r.bytes, n)
			}
		}
	})
}

// BenchmarkProbeMP3 walks the frame headers of a 10 MB constant-bitrate MP3
// without a Xing tag, in memory and in a file.
func BenchmarkProbeMP3(b *testing.B) {
	const n = 10 << 20 / 418
	data := mp3Frames(mpeg1, n)
	path := filepath.Join(b.TempDir(), "cbr.mp3")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, bc := range []struct {
		name string
		r    io.ReaderAt
	}{{"memory", bytes.NewReader(data)}, {"file", f}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if info, err := Probe(bc.r, int64(len(data))); err != nil || info.Duration != frameTime(mpeg1, n) {
					b.Fatal(info, err)
				}
			}
		})
	}
}
