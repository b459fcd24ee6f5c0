package transcribe

import (
	"context"
	"encoding/base64"
	"log/slog"
	"slices"
	"time"

	"github.com/steno-go/steno/internal/audio"
)

// A diarized transcript (DiarizedJSON) of a file that must be cut is made
// piece by piece, and the speakers are kept the same across the pieces:
// the diarize model labels speakers "A", "B", … anew in each request,
// unless the request names known speakers (known_speaker_names[]) and
// gives a clip of each one's voice (known_speaker_references[], data URLs
// of 2 to 10 seconds of audio, up to 4). So the pieces are sent in order,
// each with chunking_strategy (the model needs it over 30 s): after each
// piece, a clip of each speaker it heard that has none yet, taken from the
// original audio where the piece's own segments have that speaker alone
// for long enough (a byte range of a WAV or MP3 file; re-encoded to FLAC
// for other formats), is added to the known speakers of the pieces after
// it. Once 4 speakers are known, the remaining pieces go in parallel.
// Labels the server gives to speakers it was not told of are renamed to
// names not yet used in the file, so that two people never share a name;
// a fifth speaker, or one never heard alone for 2 s, may still be named
// differently in different pieces.

const (
	// maxKnownSpeakers is the most known speakers a request may name.
	maxKnownSpeakers = 4
	// minSpeakerClip and maxSpeakerClip bound a reference clip, inside
	// the API's 2 to 10 s: an MP3 clip starts a few frames early, and
	// its length is counted in frames.
	minSpeakerClip = 2200 * time.Millisecond
	maxSpeakerClip = 9 * time.Second
	// speakerClipBytes is the largest reference clip: 512 KiB, 16 s of
	// 16 kHz mono WAV, 3 s of 44.1 kHz stereo; a clip of audio denser
	// than that is re-encoded to FLAC. speakerClipMargin is the silence
	// kept between a clip and another speaker's segment.
	speakerClipBytes  = 512 << 10
	speakerClipMargin = 0.05 // seconds
)

// speakerClipLimit returns the largest reference clip for pieces of at
// most pieceBytes, and the room the references take in a request: their
// base64 and framing, at most an eighth of the piece.
func speakerClipLimit(pieceBytes int64) (clip, room int64) {
	clip = min(speakerClipBytes, pieceBytes*3/128)
	return clip, maxKnownSpeakers * int64(base64.StdEncoding.EncodedLen(int(clip))+512)
}

// diarizedPieceRequest returns r as the pieces of a diarized file are
// sent: diarized_json, with chunking_strategy "auto" unless r has one,
// where the model takes it.
func (c *Client) diarizedPieceRequest(r Request) Request {
	r.ResponseFormat = DiarizedJSON
	if m, ok := lookupModel(c.prov.modelName(r, false)); ok && m.chunking && r.ChunkingStrategy == nil {
		r.ChunkingStrategy = &ChunkingStrategy{Auto: true}
	}
	return r
}

// speakers are the speakers of a diarized file, as its pieces tell them.
type speakers struct {
	c   *Client
	src *source
	// names and refs are the known speakers sent with the pieces: the
	// request's own, then one for each speaker a clip was found for.
	names, refs []string
	used        map[string]bool // every name given in the file so far
	clipBytes   int64
	frozen      bool // the request's own lists do not pair up: none is added
}

// newSpeakers returns the speakers of src, sent with req, whose clips are
// at most clipBytes.
func (c *Client) newSpeakers(src *source, req Request, clipBytes int64) *speakers {
	s := &speakers{c: c, src: src, used: map[string]bool{}, clipBytes: clipBytes,
		names: slices.Clone(req.KnownSpeakerNames), refs: slices.Clone(req.KnownSpeakerReferences)}
	s.frozen = len(s.names) != len(s.refs)
	for _, n := range s.names {
		s.used[n] = true
	}
	return s
}

// full reports whether no more speakers can be made known: the pieces
// left may go in parallel.
func (s *speakers) full() bool {
	return s.frozen || len(s.refs) >= maxKnownSpeakers || len(s.names) >= maxKnownSpeakers
}

// request returns r naming the speakers known so far.
func (s *speakers) request(r Request) Request {
	r.KnownSpeakerNames, r.KnownSpeakerReferences = slices.Clone(s.names), slices.Clone(s.refs)
	return r
}

// speakerMap renames the speakers of one piece, sent with the known
// speakers sent, to the file's names.
type speakerMap struct {
	s    *speakers
	sent map[string]bool
	to   map[string]string
}

// mapper returns the renaming of a piece sent with r.
func (s *speakers) mapper(r Request) *speakerMap {
	m := &speakerMap{s: s, sent: map[string]bool{}, to: map[string]string{}}
	for _, n := range r.KnownSpeakerNames {
		m.sent[n] = true
	}
	return m
}

// name returns the file's name of the speaker the piece labels label: a
// known speaker's name as it is; any other label the same for the whole
// piece, and, where another speaker of the file has it already, a name
// not yet used.
func (m *speakerMap) name(label string) string {
	if label == "" || m.sent[label] {
		return label
	}
	if n, ok := m.to[label]; ok {
		return n
	}
	n := label
	for i := 0; m.s.used[n]; i++ {
		n = speakerLetters(i)
	}
	m.to[label], m.s.used[n] = n, true
	return n
}

// speakerLetters returns the i-th speaker name: "A" to "Z", then "AA",
// "AB", ….
func speakerLetters(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return speakerLetters(i/26-1) + speakerLetters(i%26)
}

// learn renames the speakers of t, the transcript of piece p sent as m
// says, to the file's names; then, while fewer than 4 are known, finds a
// reference clip of each speaker it heard that has none. A speaker heard
// nowhere alone long enough, or whose clip cannot be cut, stays unknown
// for now: a later piece may give a clip.
func (s *speakers) learn(ctx context.Context, t *Transcription, m *speakerMap, p audio.Piece) {
	for i := range t.Segments {
		t.Segments[i].Speaker = m.name(t.Segments[i].Speaker)
	}
	span := (p.End - p.Start).Seconds()
	tried := map[string]bool{}
	for _, seg := range t.Segments {
		n := seg.Speaker
		if s.full() || ctx.Err() != nil {
			return
		}
		if n == "" || tried[n] || slices.Contains(s.names, n) {
			continue
		}
		tried[n] = true
		from, to, ok := cleanStretch(t.Segments, n, 0, span)
		if !ok {
			continue
		}
		// In the original; where silence was left out between from and
		// to, the clip takes some of it instead of what follows.
		clock := partOf(p, nil)
		at := func(sec float64) time.Duration {
			return time.Duration(clock.original(sec, false) * float64(time.Second))
		}
		data, f, d, err := audio.Clip(ctx, s.src.readerAt(), s.src.file.Size, at(from), at(from)+time.Duration((to-from)*float64(time.Second)),
			audio.ClipOptions{MaxBytes: s.clipBytes, MinDuration: minSpeakerClip - 50*time.Millisecond, TempDir: s.c.tempDir})
		if err != nil {
			s.c.log.LogAttrs(ctx, slog.LevelDebug, "transcribe: no reference clip", slog.String("file", s.src.name),
				slog.String("speaker", n), slog.Any("error", err))
			continue
		}
		s.c.log.LogAttrs(ctx, slog.LevelDebug, "transcribe: reference clip", slog.String("file", s.src.name),
			slog.String("speaker", n), slog.Duration("at", at(from)), slog.Duration("length", d))
		s.names = append(s.names, n)
		s.refs = append(s.refs, "data:"+f.ContentType()+";base64,"+base64.StdEncoding.EncodeToString(data))
	}
}

// cleanStretch finds, in segs (times within [lo, hi]), the best stretch
// of the speaker named n alone: of the runs of n's segments that no other
// speaker's interrupts, the one with the most speech (up to
// maxSpeakerClip), taken minSpeakerClip to maxSpeakerClip long, padded
// into the silence about it when shorter, never nearer another speaker's
// segment than speakerClipMargin.
func cleanStretch(segs []Segment, n string, lo, hi float64) (from, to float64, ok bool) {
	minLen, maxLen := minSpeakerClip.Seconds(), maxSpeakerClip.Seconds()
	best := 0.0
	othersEnd := lo // the latest end of another speaker's segment so far
	for i := 0; i < len(segs); {
		if segs[i].Speaker != n {
			othersEnd = max(othersEnd, segs[i].End)
			i++
			continue
		}
		j, start, end := i, segs[i].Start, segs[i].End
		for ; j < len(segs) && segs[j].Speaker == n; j++ {
			end = max(end, segs[j].End)
		}
		cleanLo, cleanHi := othersEnd+speakerClipMargin, hi
		if j < len(segs) {
			cleanHi = segs[j].Start
		}
		cleanHi -= speakerClipMargin
		if i == 0 && othersEnd == lo {
			cleanLo = lo
		}
		start, end = max(start, cleanLo), min(end, cleanHi)
		speech := end - start
		length := min(max(speech, minLen), maxLen, cleanHi-cleanLo)
		if speech > 0 && length >= minLen-1e-6 && min(speech, length) > best {
			from = min(max(start-(length-speech)/2, cleanLo), cleanHi-length)
			if speech >= length {
				from = start
			}
			best, to, ok = min(speech, length), from+length, true
		}
		i = j
	}
	return from, to, ok
}
