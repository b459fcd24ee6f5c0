package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadMP3 is returned (wrapped) for an MPEG audio stream that Probe cannot
// measure, such as a free-format one.
var ErrBadMP3 = errors.New("unsupported MP3 stream")

// resyncWindow bounds how far Probe searches for the next frame after a bad
// one (or for the first frame) before giving up.
const resyncWindow = 64 << 10

// mp3Header is a parsed MPEG audio layer III frame header.
type mp3Header struct {
	mpeg1  bool // MPEG-1; else MPEG-2 or 2.5, with half the samples per frame
	mono   bool
	kbps   int
	rate   int // samples per second; tells MPEG-1, 2 and 2.5 apart too
	length int // bytes, header included
}

// samples returns the number of samples per channel a frame holds.
func (h mp3Header) samples() int64 {
	if h.mpeg1 {
		return 1152
	}
	return 576
}

// channels returns 1 for mono, else 2.
func (h mp3Header) channels() int {
	if h.mono {
		return 1
	}
	return 2
}

// sideInfo returns the size of the side information that follows the
// frame's 4-byte header (no CRC): where a Xing/Info tag starts, and what
// of the frame is not main data.
func (h mp3Header) sideInfo() int {
	switch {
	case h.mpeg1 && !h.mono:
		return 32
	case !h.mpeg1 && h.mono:
		return 9
	}
	return 17
}

// parseMP3Header parses the frame header that starts b. ok is false when b
// does not start a valid, fixed-size (not free-format) layer III one.
func parseMP3Header(b []byte) (h mp3Header, ok bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return h, false
	}
	version := (b[1] >> 3) & 3 // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
	layer := (b[1] >> 1) & 3   // 1: layer III
	bitrateIdx := b[2] >> 4
	rateIdx := (b[2] >> 2) & 3
	padding := int(b[2]>>1) & 1
	if version == 1 || layer != 1 || bitrateIdx == 0 || bitrateIdx == 15 || rateIdx == 3 {
		return h, false
	}
	h.mpeg1, h.mono = version == 3, b[3]>>6 == 3
	if h.mpeg1 {
		h.kbps = [...]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}[bitrateIdx]
		h.rate = [...]int{44100, 48000, 32000}[rateIdx]
		h.length = 144000*h.kbps/h.rate + padding
		return h, true
	}
	h.kbps = [...]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}[bitrateIdx]
	h.rate = [...]int{22050, 24000, 16000}[rateIdx]
	if version == 0 {
		h.rate /= 2
	}
	h.length = 72000*h.kbps/h.rate + padding
	return h, true
}

// mp3FreeFormat reports whether b starts a layer III frame header that would
// be valid but for its bitrate index 0 (free format).
func mp3FreeFormat(b []byte) bool {
	if len(b) < 4 || b[2]>>4 != 0 {
		return false
	}
	h := [4]byte(b[:4])
	h[2] |= 0x10
	_, ok := parseMP3Header(h[:])
	return ok
}

// mp3Scan finds MPEG audio frames in [0, end) of a window.
type mp3Scan struct {
	w     *window
	end   int64
	first mp3Header // once set, frames of another sample rate are rejected
}

// header returns the header of the frame at off, if one starts there, is of
// the stream's sample rate and ends by s.end.
func (s *mp3Scan) header(off int64) (mp3Header, bool) {
	if off+4 > s.end {
		return mp3Header{}, false
	}
	h, ok := parseMP3Header(s.w.peek(off, 4))
	ok = ok && (s.first.rate == 0 || h.rate == s.first.rate) && off+int64(h.length) <= s.end
	return h, ok
}

// synced reports whether a frame starts at off and is followed by another of
// the same sample rate or, if too close to s.end to tell, by the end.
func (s *mp3Scan) synced(off int64) bool {
	h, ok := s.header(off)
	if !ok {
		return false
	}
	next := off + int64(h.length)
	if next+4 > s.end {
		return true
	}
	b := s.w.peek(off, h.length+4) // both headers in the buffer at once
	if len(b) < h.length+4 {
		return false
	}
	n, ok := parseMP3Header(b[h.length:])
	return ok && n.rate == h.rate
}

// resync returns the first offset in [from, from+resyncWindow) at which a
// synced frame starts.
func (s *mp3Scan) resync(from int64) (int64, bool) {
	limit := min(s.end, from+resyncWindow)
	for off := from; off < limit; {
		b := s.w.peek(off, 4)
		if len(b) == 0 {
			break
		}
		b = b[:min(int64(len(b)), limit-off)]
		i := bytes.IndexByte(b, 0xFF)
		if i < 0 {
			off += int64(len(b))
			continue
		}
		off += int64(i)
		if s.synced(off) {
			return off, true
		}
		off++
	}
	return 0, false
}

// tag reads the Xing/Info or VBRI header that an encoder may put in the
// first frame, h at off, instead of audio. It reports whether there is one,
// the number of audio frames it declares (0 when it does not say, or says
// more than the file could hold), and the codec delay, in samples, that a
// LAME-style extension of a Xing/Info tag declares (LAME, or ffmpeg's
// Lavf/Lavc): the encoder's delay plus the decoder's own 529 samples. A
// decoder that reads the tag (ffmpeg) skips them; one given a piece of the
// file, without the tag, does not.
func (s *mp3Scan) tag(off int64, h mp3Header) (frames, delay int64, ok bool) {
	b := s.w.peek(off, h.length)
	b = b[:min(len(b), h.length)]
	x := 4 + h.sideInfo() // Xing/Info follows the side information
	const v = 4 + 32      // VBRI is always here
	switch {
	case len(b) >= x+8 && (string(b[x:x+4]) == "Xing" || string(b[x:x+4]) == "Info"):
		flags, l := b[x+7], x+8
		if flags&1 != 0 && len(b) >= x+12 {
			frames = int64(binary.BigEndian.Uint32(b[x+8:]))
		}
		for i, size := range [4]int{4, 4, 100, 4} { // frames, bytes, TOC, quality
			if flags>>i&1 != 0 {
				l += size
			}
		}
		if len(b) >= l+24 {
			switch string(b[l : l+4]) {
			case "LAME", "Lavf", "Lavc":
				delay = int64(b[l+21])<<4 | int64(b[l+22]>>4) + 529
			}
		}
	case len(b) >= v+18 && string(b[v:v+4]) == "VBRI":
		frames = int64(binary.BigEndian.Uint32(b[v+14:]))
	default:
		return 0, 0, false
	}
	// Even frames of the lowest bitrate would not fit: a broken tag.
	low := [4]byte(b[:4])
	low[2] = low[2]&0x0D | 0x10 // bitrate index 1, no padding
	if m, _ := parseMP3Header(low[:]); frames*int64(m.length) > s.end-off {
		frames = 0
	}
	return frames, delay, true
}

// probeMP3 measures the MPEG audio stream in w: from its Xing/Info or VBRI
// tag, else by walking its frame headers.
func probeMP3(w *window) (Info, error) {
	start := skipID3(w)
	end := w.size
	if t := w.peek(end-128, 3); end-128 >= start && len(t) >= 3 && string(t[:3]) == "TAG" {
		end -= 128 // ID3v1
	}
	if mp3FreeFormat(w.peek(start, 4)) {
		return Info{Format: MP3}, fmt.Errorf("%w: free-format bitstream", ErrBadMP3)
	}
	s := mp3Scan{w: w, end: end}
	pos, ok := s.resync(start)
	if !ok {
		return Info{}, fmt.Errorf("%w: no MPEG audio frame", ErrNotAudio)
	}
	s.first, _ = s.header(pos)
	info := Info{Format: MP3, Exact: true, SampleRate: s.first.rate, Channels: s.first.channels()}
	frames, _, tagged := s.tag(pos, s.first)
	if tagged {
		pos += int64(s.first.length) // the tag's frame holds no audio
	}
	nbytes := end - pos
	if frames == 0 {
		frames, nbytes, info.Bitrate, info.Exact = s.count(pos)
	}
	samples := frames * s.first.samples()
	info.Duration = samplesDuration(samples, s.first.rate)
	if info.Bitrate == 0 && samples > 0 {
		info.Bitrate = int(float64(nbytes) * 8 * float64(s.first.rate) / float64(samples))
	}
	return info, nil
}

// count walks the frames from pos to s.end, skipping garbage between them.
// It returns their number and bytes, their bitrate in bits per second if
// they all have the same (else 0), and whether it got to the end: when a gap
// is too wide to resync, the rest is counted as frames of the average size.
func (s *mp3Scan) count(pos int64) (frames, nbytes int64, bitrate int, exact bool) {
	kbps := 0
	for pos < s.end {
		h, ok := s.header(pos)
		if !ok {
			next, found := s.resync(pos + 1)
			if !found {
				if end := min(s.end, s.w.size); pos+1+resyncWindow < end && frames > 0 {
					frames += (end - pos) / (nbytes / frames)
					nbytes += end - pos
					return frames, nbytes, 0, false
				}
				break
			}
			pos = next
			continue
		}
		switch {
		case frames == 0:
			kbps = h.kbps
		case h.kbps != kbps:
			kbps = 0
		}
		frames++
		nbytes += int64(h.length)
		pos += int64(h.length)
	}
	return frames, nbytes, kbps * 1000, true
}
