// Package audio knows audio containers by their content: which format a file
// is, what it should be called so a server accepts it, and (for WAV) how long
// it plays. It reads headers, never whole files.
package audio

import (
	"bytes"
	"path/filepath"
	"strings"
)

// Format is an audio container format that the transcription API accepts.
type Format string

// The formats OpenAI's /v1/audio/transcriptions accepts, named by their
// canonical file extension. Unknown is the zero value: content not
// recognised as any of them.
const (
	Unknown Format = ""
	WAV     Format = "wav"
	MP3     Format = "mp3"
	FLAC    Format = "flac"
	Ogg     Format = "ogg"
	MP4     Format = "mp4" // MP4 and M4A: ISO base media with an ftyp box
	WebM    Format = "webm"
)

// SniffLen is how many leading bytes Sniff looks at. Fewer work for most
// formats; an MP3 with junk before its first frame needs them all.
const SniffLen = 4096

// extensions lists, per format, the file extensions the API accepts for it;
// the first is the one Filename appends.
var extensions = map[Format][]string{
	WAV:  {"wav"},
	MP3:  {"mp3", "mpeg", "mpga"},
	FLAC: {"flac"},
	Ogg:  {"ogg", "oga"},
	MP4:  {"m4a", "mp4"},
	WebM: {"webm"},
}

// Extensions returns every file extension the API accepts, without dots,
// sorted.
func Extensions() []string {
	return []string{"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
}

// ContentType returns the MIME type to send for f.
func (f Format) ContentType() string {
	switch f {
	case WAV:
		return "audio/wav"
	case MP3:
		return "audio/mpeg"
	case FLAC:
		return "audio/flac"
	case Ogg:
		return "audio/ogg"
	case MP4:
		return "audio/mp4"
	case WebM:
		return "audio/webm"
	}
	return "application/octet-stream"
}

// Filename returns name with an extension the API accepts for f: name itself
// when its extension already fits, else name with the format's extension
// appended. An empty name becomes "audio.<ext>". For Unknown it returns name
// unchanged.
func (f Format) Filename(name string) string {
	exts, ok := extensions[f]
	if !ok {
		return name
	}
	if name == "" {
		return "audio." + exts[0]
	}
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(name), "."))
	for _, e := range exts {
		if ext == e {
			return name
		}
	}
	return name + "." + exts[0]
}

// Sniff reports the format of the audio whose first bytes are head (up to
// SniffLen of them). It returns Unknown for anything else, including text,
// images and video containers it cannot tell from audio.
func Sniff(head []byte) Format {
	switch {
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return WAV
	case len(head) >= 12 && string(head[0:4]) == "RF64" && string(head[8:12]) == "WAVE":
		return WAV
	case bytes.HasPrefix(head, []byte("fLaC")):
		return FLAC
	case bytes.HasPrefix(head, []byte("OggS")):
		return Ogg
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		return MP4
	case bytes.HasPrefix(head, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return WebM
	case id3Len(head) > 0:
		// An ID3v2 tag, mostly before MP3 frames (often beyond head:
		// trust the tag), sometimes before FLAC.
		if n := id3Len(head); n+4 <= int64(len(head)) && string(head[n:n+4]) == "fLaC" {
			return FLAC
		}
		return MP3
	case hasMP3Frames(head):
		return MP3
	}
	return Unknown
}

// hasMP3Frames reports whether head holds an MPEG audio layer III frame
// header followed, where head is long enough to tell, by a second one exactly
// one frame later. Two headers in a row rule out random bytes that happen to
// look like a sync word.
func hasMP3Frames(head []byte) bool {
	for i := 0; i+4 <= len(head); i++ {
		if head[i] != 0xFF {
			continue
		}
		n := mp3FrameLen(head[i:])
		if n <= 0 {
			continue
		}
		if i+n+4 > len(head) {
			// The next header is out of sight: accept a frame found at
			// the very start, where a sync word is no coincidence.
			return i == 0
		}
		if mp3FrameLen(head[i+n:]) > 0 {
			return true
		}
	}
	return false
}

// mp3FrameLen returns the length in bytes of the MPEG layer III frame whose
// header starts b, or 0 when b does not start a valid, fixed-size one (free
// format is refused).
func mp3FrameLen(b []byte) int {
	h, _ := parseMP3Header(b)
	return h.length
}

// id3Len returns the length of the ID3v2 tag b starts with (header, body and
// footer), or 0 when b does not start with one. The body's size is four
// 7-bit bytes.
func id3Len(b []byte) int64 {
	if len(b) < 10 || string(b[:3]) != "ID3" {
		return 0
	}
	n := 10 + (int64(b[6]&0x7F)<<21 | int64(b[7]&0x7F)<<14 | int64(b[8]&0x7F)<<7 | int64(b[9]&0x7F))
	if b[5]&0x10 != 0 { // footer
		n += 10
	}
	return n
}

// skipID3 returns the offset after the ID3v2 tags (there may be several) at
// the start of w.
func skipID3(w *window) int64 {
	var start int64
	for {
		n := id3Len(w.peek(start, 10))
		if n == 0 {
			return start
		}
		start += n
	}
}
