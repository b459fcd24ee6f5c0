package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"
)

// readPiece returns the bytes of p, checking that they are p.Size long.
func readPiece(t testing.TB, p Piece) []byte {
	t.Helper()
	rc, err := p.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != p.Size {
		t.Fatalf("piece %d: %d bytes, Size %d", p.Index, len(b), p.Size)
	}
	return b
}

// checkTiling checks what holds of any plan: pieces in order, each within
// the limits, starting where the previous ended less its overlap, the last
// ending at total.
func checkTiling(t testing.TB, pieces []Piece, o PlanOptions, total time.Duration) {
	t.Helper()
	if len(pieces) == 0 {
		t.Fatal("no pieces")
	}
	o, _ = o.withDefaults()
	var prev Piece
	for i, p := range pieces {
		// Offset is Start, less an MP3's codec delay (see Piece).
		offsetOK := p.Offset == p.Start || p.Format == MP3 && p.Offset < p.Start && p.Start-p.Offset < 600*time.Millisecond
		if p.Index != i || p.End <= p.Start || p.Size > o.MaxBytes || p.Open == nil || !offsetOK {
			t.Fatalf("piece %d: %+v (MaxBytes %d)", i, p, o.MaxBytes)
		}
		if o.MaxDuration > 0 && p.End-p.Start > o.MaxDuration {
			t.Fatalf("piece %d: %v long, MaxDuration %v", i, p.End-p.Start, o.MaxDuration)
		}
		if i == 0 && (p.Start != 0 || p.Overlap != 0) || i > 0 && (p.Start != prev.End-p.Overlap || p.Start <= prev.Start || p.Overlap < p.PreRoll) {
			t.Fatalf("piece %d (%v–%v, overlap %v) after %v–%v", i, p.Start, p.End, p.Overlap, prev.Start, prev.End)
		}
		if p.Overlap > p.PreRoll+o.Overlap+80*time.Millisecond { // an MP3 frame or less
			t.Fatalf("piece %d: overlap %v, pre-roll %v", i, p.Overlap, p.PreRoll)
		}
		prev = p
	}
	if prev.End != total {
		t.Fatalf("last piece ends at %v, want %v", prev.End, total)
	}
}

// checkWAVPieces checks that the pieces of the WAV file orig are WAV files
// of the same format, of their stated duration, whose samples are the
// original's: concatenated less their overlaps, the original's exactly.
func checkWAVPieces(t testing.TB, orig []byte, pieces []Piece) {
	t.Helper()
	of, err := readWAVFormat(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	var cat []byte
	for _, p := range pieces {
		b := readPiece(t, p)
		f, err := readWAVFormat(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("piece %d: %v", p.Index, err)
		}
		if !bytes.Equal(f.fmtChunk, of.fmtChunk) || f.DataSize%int64(f.BlockAlign) != 0 || f.DataOffset+f.DataSize != int64(len(b)) {
			t.Fatalf("piece %d: %+v", p.Index, f)
		}
		if d := samplesDuration(f.frames(), f.SampleRate); (d - (p.End - p.Start)).Abs() > 1 {
			t.Fatalf("piece %d: plays %v, want %v", p.Index, d, p.End-p.Start)
		}
		if riff := binary.LittleEndian.Uint32(b[4:]); int(riff) != len(b)-8 {
			t.Fatalf("piece %d: RIFF size %d for %d bytes", p.Index, riff, len(b))
		}
		skip := int64(math.Round(p.Overlap.Seconds()*float64(f.SampleRate))) * int64(f.BlockAlign)
		cat = append(cat, b[f.DataOffset+skip:]...)
	}
	if want := orig[of.DataOffset : of.DataOffset+of.frames()*int64(of.BlockAlign)]; !bytes.Equal(cat, want) {
		t.Fatalf("pieces less overlaps: %d bytes, differ from the original's %d", len(cat), len(want))
	}
}

func synth(rate, n int, sample func(int) float64) []byte {
	var b bytes.Buffer
	SynthWAV(&b, rate, n, sample)
	return b.Bytes()
}

func plan(t testing.TB, b []byte, o PlanOptions) []Piece {
	t.Helper()
	pieces, err := Plan(context.Background(), bytes.NewReader(b), int64(len(b)), o)
	if err != nil {
		t.Fatal(err)
	}
	return pieces
}

// Speech (words at -9 dBFS) over noise is cut in its pauses, at the
// noise floor, unless the noise is so loud that no pause lies 20 dB below
// the speech: then every cut is a hard one, with an overlap.
func TestPlanWAVSpeech(t *testing.T) {
	for _, noise := range []float64{-40, -25, -70} {
		s := newSpeech(16000, 4*time.Minute, noise, 7)
		wav := synth(s.rate, s.n, s.sample)
		o := PlanOptions{MaxBytes: 1 << 20}
		pieces := plan(t, wav, o)
		checkTiling(t, pieces, o, 4*time.Minute)
		checkWAVPieces(t, wav, pieces)
		for _, p := range pieces[1:] {
			switch {
			case noise > -29:
				if p.Silence || p.Overlap != 2*time.Second {
					t.Errorf("noise %v dB: piece %d: cut at %v, silence %v, overlap %v: not a hard cut", noise, p.Index, p.Start, p.Silence, p.Overlap)
				}
			case !p.Silence || p.Overlap != 0 || !s.inPause(p.Start, 0):
				t.Errorf("noise %v dB: piece %d: cut at %v, silence %v, overlap %v: not in a pause", noise, p.Index, p.Start, p.Silence, p.Overlap)
			case p.PauseLevel > p.Floor+nearFloor || p.PauseLevel > p.Speech-minDepth || math.Abs(float64(p.Floor)-noise) > 2 || math.Abs(float64(p.Speech)+9) > 2:
				t.Errorf("noise %v dB: piece %d: pause at %v dBFS, floor %v, speech %v", noise, p.Index, p.PauseLevel, p.Floor, p.Speech)
			}
		}
		if len(pieces) < 8 {
			t.Errorf("%d pieces of a 7.7 MB file", len(pieces))
		}
		t.Logf("noise %v dB: %d pieces, first cut at %v", noise, len(pieces), pieces[1].Start)
	}
}

func TestPlanWAVMaxDuration(t *testing.T) {
	s := newSpeech(8000, 3*time.Minute, -45, 3)
	wav := synth(s.rate, s.n, s.sample)
	o := PlanOptions{MaxDuration: 20 * time.Second, SearchWindow: 5 * time.Second}
	pieces := plan(t, wav, o)
	checkTiling(t, pieces, o, 3*time.Minute)
	checkWAVPieces(t, wav, pieces)
	for _, p := range pieces[1:] {
		if !p.Silence || !s.inPause(p.Start, 0) || p.Start < pieces[p.Index-1].Start+15*time.Second {
			t.Errorf("piece %d: cut at %v, silence %v", p.Index, p.Start, p.Silence)
		}
	}
}

func TestPlanWAVNoSilence(t *testing.T) {
	const rate, n = 16000, 16000 * 100
	for name, sample := range map[string]func(int) float64{
		"tone":  func(i int) float64 { return 0.3 * math.Sin(float64(i)*0.1) },
		"noise": func(i int) float64 { return 0.2 * (float64(splitmix(uint64(i))>>11)/(1<<53) - 0.5) },
		// Loud and soft passages, 0.25 s each: never soft for MinSilence.
		"music": func(i int) float64 { return (0.02 + 0.5*float64(i/4000%2)) * math.Sin(float64(i)*0.2) },
	} {
		wav := synth(rate, n, sample)
		o := PlanOptions{MaxBytes: 300 << 10, Overlap: 1500 * time.Millisecond}
		pieces := plan(t, wav, o)
		checkTiling(t, pieces, o, 100*time.Second)
		checkWAVPieces(t, wav, pieces)
		for _, p := range pieces[1:] {
			// Every piece is full but the last and, where the tail would
			// be under MinTail, the one before it.
			if p.Silence || p.Overlap != 1500*time.Millisecond || p.Index < len(pieces)-2 && p.Size != (300<<10)-(300<<10-44)%2 {
				t.Errorf("%s: piece %d: silence %v, overlap %v, %d bytes", name, p.Index, p.Silence, p.Overlap, p.Size)
			}
		}
		// MinTail is at most half a piece: 4.8 s of 9.6.
		checkTail(t, pieces, min(DefaultMinTail, (pieces[0].End-pieces[0].Start)/2), time.Millisecond)
	}
}

// TestPlanWAVAllSilence documents the plan for a file of digital silence:
// every window is one long pause, so each piece is cut 240 ms before its
// limit, as a cut in a pause.
func TestPlanWAVAllSilence(t *testing.T) {
	wav := synth(16000, 16000*100, func(int) float64 { return 0 })
	o := PlanOptions{MaxBytes: 320044}
	pieces := plan(t, wav, o)
	checkTiling(t, pieces, o, 100*time.Second)
	checkWAVPieces(t, wav, pieces)
	for _, p := range pieces[:len(pieces)-1] {
		// The piece before the last ends earlier where the tail would be
		// under MinTail.
		if p.End-p.Start != 10*time.Second-240*time.Millisecond && p.Index < len(pieces)-2 || !pieces[p.Index+1].Silence {
			t.Errorf("piece %d: %v–%v", p.Index, p.Start, p.End)
		}
	}
	checkTail(t, pieces, DefaultMinTail, 0)
}

func TestPlanWithinLimits(t *testing.T) {
	s := newSpeech(16000, 10*time.Second, -40, 1)
	wav := synth(s.rate, s.n, s.sample)
	mp3 := mp3Frames(mpeg1, 100)
	for name, b := range map[string][]byte{"wav": wav, "mp3": mp3, "ogg": append([]byte("OggS\x00\x02"), make([]byte, 1000)...), "tiny wav": wav[:44+3000]} {
		pieces := plan(t, b, PlanOptions{})
		if len(pieces) != 1 || !bytes.Equal(readPiece(t, pieces[0]), b) || pieces[0].End <= 0 || pieces[0].Format != Sniff(b) {
			t.Errorf("%s: %+v", name, pieces)
		}
	}
	// Within MaxBytes but over MaxDuration: cut.
	o := PlanOptions{MaxDuration: 4 * time.Second}
	checkTiling(t, plan(t, wav, o), o, 10*time.Second)
}

// wavFile assembles a WAV file: fmt chunk body fmtBody, the chunks extra
// (id and body, in turn) before the data chunk, then data.
func wavFile(fmtBody []byte, data []byte, extra ...string) []byte {
	var b bytes.Buffer
	chunk := func(id string, body []byte) {
		b.WriteString(id)
		binary.Write(&b, binary.LittleEndian, uint32(len(body)))
		b.Write(body)
		if len(body)%2 == 1 {
			b.WriteByte(0)
		}
	}
	b.WriteString("RIFF\x00\x00\x00\x00WAVE")
	chunk("fmt ", fmtBody)
	for i := 0; i+1 < len(extra); i += 2 {
		chunk(extra[i], []byte(extra[i+1]))
	}
	chunk("data", data)
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// fmtBody returns a fmt chunk body; extensible ones carry subformat tag.
func fmtBody(tag uint16, channels, rate, bits int, subformat uint16) []byte {
	block := channels * bits / 8
	b := binary.LittleEndian.AppendUint16(nil, tag)
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*block))
	b = binary.LittleEndian.AppendUint16(b, uint16(block))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	if tag == 0xFFFE {
		b = binary.LittleEndian.AppendUint16(b, 22)
		b = binary.LittleEndian.AppendUint16(b, uint16(bits))
		b = binary.LittleEndian.AppendUint32(b, 3) // front left, right
		b = binary.LittleEndian.AppendUint16(b, subformat)
		b = append(b, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71"...)
	}
	return b
}

func TestDecodeWAVFormats(t *testing.T) {
	// Frames of [left, right] in [-1, 1), exactly representable in each
	// format; mono files take the left channel.
	frames := [][2]float64{{0, 0}, {0.5, -0.5}, {-1, 0.25}, {0.75, 0.75}, {-0.125, 0}}
	enc := func(bits int, float bool, channels int) []byte {
		var b []byte
		for _, f := range frames {
			for c := range channels {
				v := f[c]
				switch {
				case float && bits == 64:
					b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
				case float:
					b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
				case bits == 8:
					b = append(b, byte(int(v*128)+128))
				case bits == 16:
					b = binary.LittleEndian.AppendUint16(b, uint16(int16(v*(1<<15))))
				case bits == 24:
					x := int32(v * (1 << 23))
					b = append(b, byte(x), byte(x>>8), byte(x>>16))
				default:
					b = binary.LittleEndian.AppendUint32(b, uint32(int32(v*(1<<31))))
				}
			}
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		tag, sub uint16
		bits, ch int
		float    bool
		extra    []string
	}{
		{"8-bit mono", 1, 0, 8, 1, false, nil},
		{"16-bit stereo", 1, 0, 16, 2, false, []string{"LIST", "INFOISFT\x03\x00\x00\x00Go\x00", "JUNK", "\x00\x00\x00"}},
		{"24-bit stereo, extensible", 0xFFFE, 1, 24, 2, false, []string{"JUNK", "1234", "LIST", "x"}},
		{"32-bit int mono", 1, 0, 32, 1, false, nil},
		{"32-bit float stereo", 3, 0, 32, 2, true, []string{"fact", "\x05\x00\x00\x00"}},
		{"64-bit float mono", 3, 0, 64, 1, true, nil},
		{"float, extensible", 0xFFFE, 3, 32, 2, true, nil},
	} {
		wav := wavFile(fmtBody(tc.tag, tc.ch, 44100, tc.bits, tc.sub), enc(tc.bits, tc.float, tc.ch), tc.extra...)
		d, err := NewDecoder(context.Background(), bytes.NewReader(wav), int64(len(wav)))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := readAll(t, d)
		if len(got) != len(frames) || d.SampleRate() != 44100 {
			t.Errorf("%s: %d samples at %d Hz", tc.name, len(got), d.SampleRate())
			continue
		}
		for i, f := range frames {
			want := f[0]
			if tc.ch == 2 {
				want = (f[0] + f[1]) / 2
			}
			if float64(got[i]) != want {
				t.Errorf("%s: sample %d = %v, want %v", tc.name, i, got[i], want)
			}
		}
		// Cut into pieces, it keeps its fmt chunk and its samples.
		long := wavFile(fmtBody(tc.tag, tc.ch, 8000, tc.bits, tc.sub), bytes.Repeat(enc(tc.bits, tc.float, tc.ch), 8000*10/len(frames)), tc.extra...)
		pieces := plan(t, long, PlanOptions{MaxDuration: 3 * time.Second, Overlap: 500 * time.Millisecond})
		checkTiling(t, pieces, PlanOptions{MaxDuration: 3 * time.Second, Overlap: 500 * time.Millisecond}, 10*time.Second)
		checkWAVPieces(t, long, pieces)
	}

	// ADPCM and A-law are probed, not decoded or cut.
	for _, tag := range []uint16{2, 6, 0x11} {
		wav := wavFile(fmtBody(tag, 1, 8000, 8, 0), make([]byte, 100<<10))
		_, err := NewDecoder(context.Background(), bytes.NewReader(wav), int64(len(wav)))
		if !errors.Is(err, ErrUnsupportedWAV) {
			t.Errorf("tag %#x: decode: %v", tag, err)
		}
		_, err = Plan(context.Background(), bytes.NewReader(wav), int64(len(wav)), PlanOptions{MaxBytes: 64 << 10})
		if !errors.Is(err, ErrUnsupportedWAV) || !errors.Is(err, ErrCannotSplit) {
			t.Errorf("tag %#x: plan: %v", tag, err)
		}
	}
}

func readAll(t testing.TB, d Decoder) []float32 {
	t.Helper()
	var out []float32
	buf := make([]float32, 1000)
	for {
		n, err := d.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Silences finds the pauses of speech (at -9 dBFS) over noise, and none
// when the noise is less than 20 dB under the speech.
func TestSilences(t *testing.T) {
	for _, noise := range []float64{-40, -20, -80} {
		s := newSpeech(16000, 3*time.Minute, noise, 5)
		wav := synth(s.rate, s.n, s.sample)
		d, err := NewDecoder(context.Background(), bytes.NewReader(wav), int64(len(wav)))
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for sil, err := range Silences(d, 300*time.Millisecond) {
			if err != nil {
				t.Fatal(err)
			}
			if !s.inPause(sil.Start, 20*time.Millisecond) || !s.inPause(sil.End, 20*time.Millisecond) {
				t.Errorf("noise %v dB: silence %v–%v is not a pause", noise, sil.Start, sil.End)
			}
			found++
		}
		long := 0
		for _, p := range s.pauses {
			if p[1]-p[0] >= s.rate*34/100 { // 300 ms and a block either side
				long++
			}
		}
		if noise > -29 {
			long = 0
		}
		if found < long || found > len(s.pauses) {
			t.Errorf("noise %v dB: %d silences, %d pauses (%d long)", noise, found, len(s.pauses), long)
		}
	}
}

func TestPlanBadInputs(t *testing.T) {
	s := newSpeech(16000, 10*time.Second, -40, 1)
	wav := synth(s.rate, s.n, s.sample)
	o := PlanOptions{MaxBytes: 64 << 10}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":             {nil, ErrNotAudio},
		"text":              {bytes.Repeat([]byte("not audio "), 10000), ErrNotAudio},
		"truncated header":  {wav[:30], ErrBadWAV},
		"no data chunk":     {wav[:40], ErrBadWAV},
		"free-format mp3":   {cat([]byte{0xFF, 0xFB, 0x00, 0x00}, make([]byte, 100<<10)), ErrBadMP3},
		"ogg":               {append([]byte("OggS\x00\x02"), make([]byte, 100<<10)...), ErrCannotSplit},
		"limit under 64KiB": {wav, ErrCannotSplit},
	} {
		o := o
		if name == "limit under 64KiB" {
			o.MaxBytes = 1000
		}
		pieces, err := Plan(context.Background(), bytes.NewReader(tc.b), int64(len(tc.b)), o)
		if !errors.Is(err, tc.want) || pieces != nil {
			t.Errorf("%s: %d pieces, %v, want %v", name, len(pieces), err, tc.want)
		}
	}

	// A data chunk longer than the file: cut as far as the file goes.
	long := append([]byte{}, wav...)
	binary.LittleEndian.PutUint32(long[40:], 1<<30)
	pieces := plan(t, long, o)
	checkTiling(t, pieces, o, 10*time.Second)
	checkWAVPieces(t, wav, pieces)

	// A file shorter than 0.1 s is one piece, or cut if over the limit.
	short := synth(16000, 1000, s.sample)
	if pieces := plan(t, short, o); len(pieces) != 1 || pieces[0].End != 62500*time.Microsecond {
		t.Errorf("short: %+v", pieces)
	}
	short = synth(192000, 19000, s.sample) // 99 ms, 38 kB
	pieces = plan(t, short, PlanOptions{MaxBytes: 24 << 10})
	checkTiling(t, pieces, PlanOptions{MaxBytes: 24 << 10}, samplesDuration(19000, 192000))
	checkWAVPieces(t, short, pieces)

	// A cancelled context stops planning.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Plan(ctx, bytes.NewReader(wav), int64(len(wav)), o); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestMain(m *testing.M) {
	minPieceBytes = 16 << 10 // small enough for the tests' small limits
	os.Exit(m.Run())
}

var execCommand = exec.Command
