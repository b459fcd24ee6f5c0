package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// mp3Frame returns one MPEG-1 layer III frame of 128 kbps at 44.1 kHz
// (417 bytes) with an empty body.
func mp3Frame() []byte {
	f := make([]byte, 417)
	copy(f, []byte{0xFF, 0xFB, 0x90, 0x00})
	return f
}

func TestSniff(t *testing.T) {
	wav := new(bytes.Buffer)
	SynthWAV(wav, 8000, 10, func(int) float64 { return 0 })
	frames := bytes.Repeat(mp3Frame(), 3)
	for name, tc := range map[string]struct {
		head []byte
		want Format
	}{
		"wav":            {wav.Bytes(), WAV},
		"flac":           {[]byte("fLaC\x00\x00\x00\x22"), FLAC},
		"ogg":            {[]byte("OggS\x00\x02"), Ogg},
		"m4a":            {[]byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"), MP4},
		"webm":           {[]byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86}, WebM},
		"mp3 with id3":   {append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), frames...), MP3},
		"bare mp3":       {frames, MP3},
		"mp3 after junk": {append([]byte("garbage!"), frames...), MP3},
		"lone sync word": {append([]byte("text text \xff\xfb\x90\x00"), bytes.Repeat([]byte("x"), 1000)...), Unknown},
		"text":           {[]byte("hello, this is not audio"), Unknown},
		"png":            {[]byte("\x89PNG\r\n\x1a\n"), Unknown},
		"empty":          {nil, Unknown},
		"free format":    {[]byte{0xFF, 0xFB, 0x00, 0x00}, Unknown},
	} {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("%s: Sniff = %q, want %q", name, got, tc.want)
		}
	}
}

func TestFilename(t *testing.T) {
	for _, tc := range []struct {
		f          Format
		name, want string
	}{
		{WAV, "talk.wav", "talk.wav"},
		{WAV, "talk.WAV", "talk.WAV"},
		{WAV, "talk", "talk.wav"},
		{MP3, "talk.mpga", "talk.mpga"},
		{MP3, "talk.wav", "talk.wav.mp3"},
		{MP4, "talk.mp4", "talk.mp4"},
		{Ogg, "", "audio.ogg"},
		{Unknown, "x", "x"},
	} {
		if got := tc.f.Filename(tc.name); got != tc.want {
			t.Errorf("%s.Filename(%q) = %q, want %q", tc.f, tc.name, got, tc.want)
		}
	}
}

func TestReadWAVInfo(t *testing.T) {
	var plain bytes.Buffer
	SynthWAV(&plain, 16000, 16000*3, func(int) float64 { return 0 })
	info, err := ReadWAVInfo(bytes.NewReader(plain.Bytes()), int64(plain.Len()))
	if err != nil || info.DataOffset != 44 || info.Seconds() != 3 || info.BlockAlign != 2 || info.FormatTag != 1 {
		t.Fatalf("plain: %+v %v", info, err)
	}

	// A LIST chunk of odd size (padded) before data, as editors write.
	b := plain.Bytes()
	var odd bytes.Buffer
	odd.Write(b[:36])
	odd.WriteString("LIST")
	binary.Write(&odd, binary.LittleEndian, uint32(5))
	odd.WriteString("INFOx\x00") // 5 bytes + pad
	odd.Write(b[36:])
	info, err = ReadWAVInfo(bytes.NewReader(odd.Bytes()), int64(odd.Len()))
	if err != nil || info.DataOffset != 44+14 || info.Seconds() != 3 {
		t.Fatalf("with LIST: %+v %v", info, err)
	}

	// A data size past the end of the file (a writer that never finished)
	// is clipped to the file.
	cut := b[:44+16000]
	info, err = ReadWAVInfo(bytes.NewReader(cut), int64(len(cut)))
	if err != nil || info.DataSize != 16000 || info.Seconds() != 0.5 {
		t.Fatalf("truncated: %+v %v", info, err)
	}

	for name, bad := range map[string][]byte{
		"not riff":   []byte("RIFX\x00\x00\x00\x00WAVE"),
		"no data":    b[:36],
		"short":      []byte("RIFF"),
		"data first": append(append([]byte{}, b[:12]...), b[36:44]...),
	} {
		if _, err := ReadWAVInfo(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrBadWAV) {
			t.Errorf("%s: err = %v, want ErrBadWAV", name, err)
		}
	}
}
