package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"testing"
	"time"
)

// The fuzzers plan and decode arbitrary bytes, seeded with small WAV and
// MP3 files of every kind the package reads, and their truncations and
// corruptions. ffmpeg is hidden from them (MPEG-2.5 gets hard cuts, other
// formats ErrNeedsFFmpeg), so that each input takes milliseconds. Inputs
// they failed on are kept under testdata/fuzz/FuzzX and run as seeds by
// go test.
//
// testdata/tone.mp3 is 2.5 s of a 440 Hz tone with two 0.5 s silences, at
// 0.6 s and 1.7 s, made with
//
//	lame -m m -b 32 --resample 32 --tt "fuzz seed" --add-id3v2 in.wav tone.mp3
//
// (MPEG-1, 32 kHz mono, an ID3v2 tag and an Info frame).

// fuzzTimeout bounds a Plan, or a decoding to the end, of one input.
const fuzzTimeout = 5 * time.Second

// hideFFmpeg makes ffmpeg look absent until f ends.
func hideFFmpeg(f *testing.F) {
	look := lookFFmpeg
	lookFFmpeg = func() (string, error) { return "", errors.New("ffmpeg hidden from the fuzzers") }
	f.Cleanup(func() { lookFFmpeg = look })
}

// fuzzOptions returns the limits the fuzzers plan a file of size bytes
// with: the smallest MaxBytes TestMain allows, and a MaxDuration of 1 s
// (which cuts files too small for MaxBytes), with short windows.
func fuzzOptions(size int) []PlanOptions {
	return []PlanOptions{
		{MaxBytes: 16 << 10, SearchWindow: time.Second, MinSilence: 100 * time.Millisecond, Overlap: 300 * time.Millisecond},
		{MaxBytes: max(16<<10, int64(size)/2), MaxDuration: time.Second, SearchWindow: 400 * time.Millisecond, MinSilence: 150 * time.Millisecond, Overlap: 200 * time.Millisecond},
	}
}

var errFuzzRead = errors.New("fuzz: read error")

// failingAt reads b, failing every read that reaches offset at or beyond.
type failingAt struct {
	b  []byte
	at int64
}

func (r failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off+int64(len(p)) <= r.at {
		return copy(p, r.b[off:]), nil
	}
	n := 0
	if off < r.at {
		n = copy(p, r.b[off:r.at])
	}
	return n, errFuzzRead
}

// planWithin runs Plan, failing t if it takes longer than fuzzTimeout.
func planWithin(t *testing.T, r io.ReaderAt, size int64, o PlanOptions) ([]Piece, error) {
	t.Helper()
	var pieces []Piece
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		pieces, err = Plan(context.Background(), r, size, o)
	}()
	select {
	case <-done:
	case <-time.After(fuzzTimeout):
		t.Fatalf("%+v: Plan still running after %v", o, fuzzTimeout)
	}
	return pieces, err
}

// isAny reports whether err wraps one of targets.
func isAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// planErrors are the errors Plan documents (reading a bytes.Reader does
// not fail), and ErrBadFLAC, which Probe returns for a FLAC file within
// the limits.
var planErrors = []error{ErrNotAudio, ErrBadWAV, ErrBadMP3, ErrBadFLAC, ErrCannotSplit, ErrNeedsFFmpeg}

// fuzzPlan plans b with each of fuzzOptions and checks the pieces; then
// plans it through a reader that fails half way, for the errors.
func fuzzPlan(t *testing.T, b []byte) {
	size := int64(len(b))
	for _, o := range fuzzOptions(len(b)) {
		pieces, err := planWithin(t, bytes.NewReader(b), size, o)
		if err != nil {
			if pieces != nil || !isAny(err, planErrors...) {
				t.Fatalf("%+v: %d pieces, error %v: not a documented error", o, len(pieces), err)
			}
			continue
		}
		checkPlan(t, b, pieces, o)
	}
	o := fuzzOptions(len(b))[0]
	if _, err := planWithin(t, failingAt{b, size / 2}, size, o); err != nil && !isAny(err, append(planErrors, errFuzzRead)...) {
		t.Fatalf("%+v, reads failing at %d: %v: not a documented error", o, size/2, err)
	}
}

// checkPlan checks what holds of any plan of b: pieces in order, within
// the limits, overlapping only as Piece says, each reading as Size bytes;
// a plan that cuts (anything but the whole file as one piece) makes
// pieces of the original's samples or frames, as planWAV and planMP3 say.
func checkPlan(t *testing.T, b []byte, pieces []Piece, o PlanOptions) {
	t.Helper()
	if len(pieces) == 0 {
		t.Fatalf("%+v: no pieces and no error", o)
	}
	o, _ = o.withDefaults()
	var prev Piece
	bad := func(p Piece, why string) {
		t.Helper()
		t.Fatalf("%+v: piece %d of %d: %s: %+v (previous %v–%v)", o, p.Index, len(pieces), why, p, prev.Start, prev.End)
	}
	data := make([][]byte, len(pieces))
	for i, p := range pieces {
		switch {
		case p.Index != i || p.Open == nil || p.Format != pieces[0].Format:
			bad(p, "index, Open or format")
		case p.Start < 0 || p.Offset != p.Start && (p.Format != MP3 || p.Offset > p.Start || p.Start-p.Offset >= 600*time.Millisecond):
			bad(p, "start or offset")
		case p.End < p.Start, p.End == p.Start && len(pieces) > 1: // only a lone piece may be empty
			bad(p, "end")
		case p.Size <= 0 || p.Size > o.MaxBytes:
			bad(p, "size")
		case o.MaxDuration > 0 && p.End-p.Start > o.MaxDuration:
			bad(p, "over MaxDuration")
		case p.PreRoll < 0 || p.Overlap < p.PreRoll || p.Format != MP3 && p.PreRoll != 0:
			bad(p, "pre-roll")
		case i == 0 && (p.Start != 0 || p.Overlap != 0 || p.Silence):
			bad(p, "first piece")
		case i > 0 && (p.Start <= prev.Start || p.End <= prev.End || p.Overlap != prev.End-p.Start):
			bad(p, "not after the previous piece")
		case i > 0 && p.Silence && p.Overlap != p.PreRoll:
			bad(p, "overlap of a cut in a pause")
		case i > 0 && p.Overlap > p.PreRoll+o.Overlap+80*time.Millisecond: // an MP3 frame or less
			bad(p, "overlap of a hard cut")
		}
		data[i] = readPieceOf(t, p)
		prev = p
	}
	if len(pieces) == 1 && bytes.Equal(data[0], b) {
		// The whole file, within the limits (or cut to itself).
		if info, err := Probe(bytes.NewReader(b), int64(len(b))); err != nil || info.Format != pieces[0].Format || info.Duration != pieces[0].End {
			t.Fatalf("%+v: one piece %+v; Probe says %+v, %v", o, pieces[0], info, err)
		}
		return
	}
	switch pieces[0].Format {
	case WAV:
		checkWAVPlan(t, b, pieces, data)
	case MP3:
		checkMP3Plan(t, b, pieces, data)
	default:
		t.Fatalf("%+v: %s cut into %d pieces", o, pieces[0].Format, len(pieces))
	}
}

// readPieceOf reads p twice, concurrently, and returns its bytes.
func readPieceOf(t *testing.T, p Piece) []byte {
	t.Helper()
	read := func() ([]byte, error) {
		rc, err := p.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		return b, err
	}
	other := make(chan []byte, 1)
	go func() {
		b, _ := read()
		other <- b
	}()
	b, err := read()
	if err != nil || int64(len(b)) != p.Size || !bytes.Equal(b, <-other) {
		t.Fatalf("piece %d: %d bytes read (Size %d), %v", p.Index, len(b), p.Size, err)
	}
	return b
}

// firstSample returns the first sample at rate whose time is at or after
// d: the inverse of samplesDuration for rates up to 1 GHz.
func firstSample(d time.Duration, rate int64) int64 {
	s, ns := int64(d/time.Second), int64(d%time.Second)
	return s*rate + (ns*rate+int64(time.Second)-1)/int64(time.Second)
}

// checkWAVPlan checks that the pieces of the WAV file b are WAV files
// of b's format (its fmt chunk, verbatim), holding the samples of b their
// times say, the last ending with b's samples.
func checkWAVPlan(t *testing.T, b []byte, pieces []Piece, data [][]byte) {
	t.Helper()
	of, err := readWAVFormat(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("cut into %d pieces, but: %v", len(pieces), err)
	}
	rate, block := int64(of.SampleRate), int64(of.BlockAlign)
	samples := b[of.DataOffset : of.DataOffset+of.frames()*block]
	if end := pieces[len(pieces)-1].End; end != samplesDuration(of.frames(), of.SampleRate) {
		t.Fatalf("last piece ends at %v, the samples at %v", end, samplesDuration(of.frames(), of.SampleRate))
	}
	for i, p := range pieces {
		pb := data[i]
		f, err := readWAVFormat(bytes.NewReader(pb), int64(len(pb)))
		if err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		pf, want := f.WAVInfo, of.WAVInfo
		pf.DataOffset, pf.DataSize, want.DataOffset, want.DataSize = 0, 0, 0, 0
		if pf != want || f.codec != of.codec || !bytes.Equal(f.fmtChunk, of.fmtChunk) {
			t.Fatalf("piece %d: format %+v (codec %#x), the original's %+v (codec %#x)", i, f.WAVInfo, f.codec, of.WAVInfo, of.codec)
		}
		n := int64(len(pb)) - f.DataOffset
		if f.DataSize != n || n%block != 0 || int64(binary.LittleEndian.Uint32(pb[4:])) != int64(len(pb))-8 {
			t.Fatalf("piece %d: %d bytes, data %d at %d, RIFF size %d", i, len(pb), f.DataSize, f.DataOffset, binary.LittleEndian.Uint32(pb[4:]))
		}
		if rate > int64(time.Second) {
			continue // samples shorter than a nanosecond: times do not tell them apart
		}
		from := firstSample(p.Start, rate)
		to := from + n/block
		if samplesDuration(from, of.SampleRate) != p.Start || samplesDuration(to, of.SampleRate) != p.End || to*block > int64(len(samples)) {
			t.Fatalf("piece %d: %v–%v, %d sample frames from %d of %d", i, p.Start, p.End, n/block, from, len(samples)/int(block))
		}
		if !bytes.Equal(pb[f.DataOffset:], samples[from*block:to*block]) {
			t.Fatalf("piece %d: samples differ from the original's %d–%d", i, from, to)
		}
	}
}

// mp3FrameOffsets returns where the frames of the MP3 file b start and
// end, as Plan and the decoder walk them.
func mp3FrameOffsets(b []byte) (*mp3File, [][2]int64, error) {
	m, err := scanMP3(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	s := m.scan(64 << 10)
	var frames [][2]int64
	for pos := m.audio; ; {
		off, h, ok := s.next(pos)
		if !ok {
			return m, frames, s.w.err
		}
		pos = off + int64(h.length)
		frames = append(frames, [2]int64{off, pos})
	}
}

// checkMP3Plan checks that the pieces of the MP3 file b are runs of its
// frames (and what lies between them), from the frame their Start says to
// the one before their End, the last ending with the last frame.
func checkMP3Plan(t *testing.T, b []byte, pieces []Piece, data [][]byte) {
	t.Helper()
	m, frames, err := mp3FrameOffsets(b)
	if err != nil {
		t.Fatalf("cut into %d pieces, but: %v", len(pieces), err)
	}
	index := make(map[time.Duration]int, len(frames)+1)
	for i := range len(frames) + 1 {
		index[m.frameTime(int64(i))] = i
	}
	if end := pieces[len(pieces)-1].End; end != m.frameTime(int64(len(frames))) {
		t.Fatalf("last piece ends at %v, the %d frames at %v", end, len(frames), m.frameTime(int64(len(frames))))
	}
	for i, p := range pieces {
		from, ok1 := index[p.Start]
		to, ok2 := index[p.End]
		pre, ok3 := index[p.Start+p.PreRoll]
		if !ok1 || !ok2 || !ok3 || to <= from || pre-from > maxPreRoll {
			t.Fatalf("piece %d: %v–%v, pre-roll %v: not frame times", i, p.Start, p.End, p.PreRoll)
		}
		if want := b[frames[from][0]:frames[to-1][1]]; !bytes.Equal(data[i], want) {
			t.Fatalf("piece %d: %d bytes, not frames %d–%d (bytes %d–%d)", i, len(data[i]), from, to, frames[from][0], frames[to-1][1])
		}
	}
}

// fuzzDecode decodes b to its end, in reads of assorted sizes, and checks
// the number of samples: a WAV file's sample frames, or the frames of an
// MP3 file times the samples per frame.
func fuzzDecode(t *testing.T, b []byte) {
	type result struct {
		n, rate int
		err     error
		loud    float32 // the largest magnitude
	}
	done := make(chan result, 1)
	go func() {
		d, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b)))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer d.Close()
		res := result{rate: d.SampleRate()}
		if n, err := d.Read(nil); n != 0 || err != nil && err != io.EOF {
			res.err = fmt.Errorf("decoder: Read(nil) = %d, %w", n, err)
			done <- res
			return
		}
		buf := make([]float32, 4096)
		for k := 0; ; k++ {
			p := buf[:[...]int{4096, 1, 1000, 7}[k%4]]
			n, err := d.Read(p)
			if n < 0 || n > len(p) || n == 0 && err == nil {
				res.err = fmt.Errorf("decoder: Read of %d = %d, %v", len(p), n, err)
				break
			}
			for _, v := range p[:n] {
				res.loud = max(res.loud, float32(math.Abs(float64(v))))
			}
			res.n += n
			if err != nil {
				if err != io.EOF {
					res.err = err
				}
				break
			}
		}
		done <- res
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(fuzzTimeout):
		t.Fatalf("decoding still running after %v", fuzzTimeout)
	}
	if res.err != nil {
		if !isAny(res.err, ErrNotAudio, ErrBadWAV, ErrBadMP3, ErrUnsupportedWAV, ErrNeedsFFmpeg) {
			t.Fatalf("%d samples, then %v: not a documented error", res.n, res.err)
		}
		return
	}
	want := -1
	switch Sniff(b[:min(len(b), SniffLen)]) {
	case WAV:
		f, err := readWAVFormat(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		want = int(f.frames())
		if f.codec == 3 {
			res.loud = 0 // float samples may be anything
		}
	case MP3:
		m, frames, err := mp3FrameOffsets(b)
		if err != nil {
			t.Fatal(err)
		}
		want = len(frames) * int(m.spf())
	}
	if res.n != want || res.rate <= 0 || res.loud > 1 {
		t.Fatalf("%d samples at %d Hz, up to %v; want %d", res.n, res.rate, res.loud, want)
	}
}

// pauses returns a tone at rate with quiet pauses from 0.35 to 0.75 s and
// from 1.1 to 1.4 s.
func pauses(rate int) func(int) float64 {
	return func(i int) float64 {
		t := float64(i) / float64(rate)
		if t >= 0.35 && t < 0.75 || t >= 1.1 && t < 1.4 {
			return 0.002 * math.Sin(float64(i))
		}
		return 0.5 * math.Sin(2*math.Pi*300*t)
	}
}

// encodeWAV returns a WAV file of n sample frames of sample, in each of
// channels (the right one inverted), with the chunks extra before the
// data (see wavFile).
func encodeWAV(tag, sub uint16, channels, rate, bits int, n int, sample func(int) float64, extra ...string) []byte {
	float := tag == 3 || tag == 0xFFFE && sub == 3
	var data []byte
	for i := range n {
		for c := range channels {
			v := sample(i)
			if c == 1 {
				v = -v
			}
			switch {
			case float && bits == 64:
				data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
			case float:
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(v)))
			case bits == 8:
				data = append(data, byte(int(math.Round(v*127))+128))
			case bits == 16:
				data = binary.LittleEndian.AppendUint16(data, uint16(int16(math.Round(v*32767))))
			case bits == 24:
				x := int32(math.Round(v * (1<<23 - 1)))
				data = append(data, byte(x), byte(x>>8), byte(x>>16))
			default:
				data = binary.LittleEndian.AppendUint32(data, uint32(int32(math.Round(v*(1<<31-1)))))
			}
		}
	}
	return wavFile(fmtBody(tag, channels, rate, bits, sub), data, extra...)
}

// set returns a copy of b with v written at off.
func set(b []byte, off int, v ...byte) []byte {
	b = bytes.Clone(b)
	copy(b[off:], v)
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// wavSeeds returns small WAV files of every kind Plan cuts or refuses,
// 1.6 s long, with pauses, and some of their corruptions.
func wavSeeds() [][]byte {
	const n = 1.6
	s16 := synth(8000, 8000*n, pauses(8000))
	u8 := encodeWAV(1, 0, 1, 8000, 8, 8000*n, pauses(8000))
	seeds := [][]byte{
		s16,
		u8,
		encodeWAV(0xFFFE, 1, 2, 2000, 24, 2000*n, pauses(2000), "LIST", "INFOISFT\x03\x00\x00\x00Go\x00", "JUNK", "\x00\x00\x00"),
		encodeWAV(1, 0, 1, 2000, 32, 2000*n, pauses(2000), "fact", "\x40\x0c\x00\x00", "LIST", "x"),
		encodeWAV(3, 0, 2, 2000, 32, 2000*n, pauses(2000)),
		encodeWAV(3, 0, 1, 2000, 64, 2000*n, pauses(2000)),
		encodeWAV(0xFFFE, 3, 1, 2000, 32, 2000*n, pauses(2000)),
		encodeWAV(1, 0, 3, 1000, 16, 1000*n, pauses(1000)),                        // three channels
		encodeWAV(1, 0, 1, 8000, 16, 100, pauses(8000)),                           // short
		encodeWAV(1, 0, 1, 8000, 8, 0, nil, "JUNK", string(make([]byte, 20<<10))), // no samples, over MaxBytes
		encodeWAV(0x11, 0, 1, 8000, 4, 0, nil, "data", string(make([]byte, 20<<10))),
		encodeWAV(1, 0, 1, 8000, 16, 8000*n, pauses(8000), "fmt ", string(fmtBody(1, 2, 4000, 8, 0))), // a second fmt chunk
		set(s16, 40, le32(1<<30)...),                                                                  // data longer than the file
		set(s16, 40, le32(0xFFFFFFFF)...),                                                             // streamed
		set(s16, 40, le32(0)...),                                                                      // streamed
		set(s16, 0, []byte("RF64\xff\xff\xff\xff")...),
		append(bytes.Clone(s16), "LIST\x04\x00\x00\x00INFO"...), // a chunk after the data
		append(bytes.Clone(u8), 0x80),                           // an odd byte after the samples
		set(u8[:44+2000], 24, le32(1)...),                       // 1 Hz: a sample a piece
		set(u8, 24, le32(0xFFFFFFFF)...),                        // 4 GHz
		set(s16, 32, 3),                                         // block size 3 for 16 bits
		set(s16, 34, 12),                                        // 12 bits
		set(s16, 16, le32(0xFFFF)...),                           // fmt chunk past the data
		// 4 GHz, and a block so large that a piece holds one: the
		// pieces' times were equal (now ErrUnsupportedWAV).
		set(wavFile(fmtBody(1, 8200, 8000, 8, 0), make([]byte, 8200*3)), 24, le32(4e9)...),
	}
	for _, s := range seeds[:len(seeds):len(seeds)] {
		seeds = append(seeds, s[:len(s)/2], s[:min(len(s), 44)], s[:len(s)-1])
	}
	return seeds
}

// mp3Seeds returns small MP3 streams, synthetic (frame headers and random
// bodies) and real (testdata/tone.mp3), and some of their corruptions.
func mp3Seeds(tb testing.TB) [][]byte {
	tone, err := os.ReadFile("testdata/tone.mp3")
	if err != nil {
		tb.Fatal(err)
	}
	f1 := mp3Frames(mpeg1, 50)
	scribbled := bytes.Clone(tone)
	for i := len(tone) / 3; i < len(tone)/2; i += 5 {
		scribbled[i] ^= 0x5A
	}
	seeds := [][]byte{
		tone,
		scribbled,
		withEmphasis2(tone, 5, 6, 30),
		cat(tone[:len(tone)/2], []byte("garbage\xff\xfb\x90"), tone[len(tone)/2:]),
		f1,
		mp3Frames(mpeg2, 70),
		mp3Frames(mono1, 50),
		mp3Frames(mpg25, 30),
		cat(id3v2(300, true), tagFrame(mpeg1, "Xing", 50, true), f1),
		cat(tagFrame(mono1, "VBRI", 50, false), mp3Frames(mono1, 50)),
		cat(tagFrame(mpeg2, "Info", 1<<30, true), mp3Frames(mpeg2, 70)),
		cat(f1[:417*20], []byte("garbage\xff\xfb"), f1[417*20:], []byte("TAG"), make([]byte, 125)),
		cat(f1[:417*20], make([]byte, 5000), f1[417*20:]),
		cat(mp3Frames(mpeg1, 20), mp3Frames(mpeg2, 20), mp3Frames(mpeg1, 20)),
		cat([]byte{0xFF, 0xFB, 0x00, 0x00}, make([]byte, 20<<10)),
	}
	for _, s := range seeds[:len(seeds):len(seeds)] {
		seeds = append(seeds, s[:len(s)/2], s[:min(len(s), 600)], s[:len(s)-1])
	}
	return seeds
}

// withEmphasis2 returns a copy of the MP3 file b whose frames (counted
// from its first audio frame) have the reserved emphasis 2 in their
// headers.
func withEmphasis2(b []byte, frames ...int) []byte {
	_, offs, err := mp3FrameOffsets(b)
	if err != nil {
		panic(err)
	}
	b = bytes.Clone(b)
	for _, i := range frames {
		b[offs[i][0]+3] = b[offs[i][0]+3]&^3 | 2
	}
	return b
}

// TestDecodeMP3Emphasis2: frames whose headers have the reserved
// emphasis 2 are decoded as if they had none, not skipped by go-mp3
// (which shifted the rest of the audio a frame early).
func TestDecodeMP3Emphasis2(t *testing.T) {
	tone, err := os.ReadFile("testdata/tone.mp3")
	if err != nil {
		t.Fatal(err)
	}
	decode := func(b []byte) []float32 {
		d, err := NewDecoder(context.Background(), bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		return readAll(t, d)
	}
	want, got := decode(tone), decode(withEmphasis2(tone, 5, 6, 30))
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("sample %d (frame %d) = %v, want %v", i, i/1152, got[i], want[i])
		}
	}
}

// otherSeeds are formats Plan does not cut.
func otherSeeds() [][]byte {
	return [][]byte{
		flac(0, 44100, 2, 16, 44100, make([]byte, 100)),
		flac(0, 0, 2, 16, 44100, make([]byte, 20<<10)),
		flac(4, 44100, 2, 16, 44100, nil),
		append([]byte("OggS\x00\x02"), make([]byte, 20<<10)...),
		nil,
		[]byte("RIFF"),
	}
}

func FuzzPlanWAV(f *testing.F) {
	hideFFmpeg(f)
	for _, s := range append(wavSeeds(), otherSeeds()...) {
		f.Add(s)
	}
	f.Fuzz(fuzzPlan)
}

func FuzzPlanMP3(f *testing.F) {
	hideFFmpeg(f)
	for _, s := range mp3Seeds(f) {
		f.Add(s)
	}
	f.Fuzz(fuzzPlan)
}

func FuzzDecode(f *testing.F) {
	hideFFmpeg(f)
	for _, s := range append(append(wavSeeds(), mp3Seeds(f)...), otherSeeds()...) {
		f.Add(s)
	}
	f.Fuzz(fuzzDecode)
}
