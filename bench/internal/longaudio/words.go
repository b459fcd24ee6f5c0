package longaudio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// What Hear takes for a word.
const (
	// loudLevel is the level above which a sample is loud: 0.05 of full
	// scale (-26 dBFS), above the noise's peaks (-35 dBFS) and below the
	// body of every word (0.15 to 0.35).
	loudLevel = 1638
	// wordGap ends a word: 30 ms without a loud sample. Within a word the
	// quiet stretches around the waveform's zero crossings last a few
	// milliseconds; between words there are at least 40.
	wordGap = Rate * 30 / 1000
	// sentenceGap ends a sentence: words 400 ms or more apart (words of a
	// sentence are at most 150 ms apart, sentences 600 ms or more).
	sentenceGap = Rate * 400 / 1000
)

// Word is a word Hear heard: the loud samples [Start, End) of the audio it
// heard (from its first loud sample to its last), and its token.
type Word struct {
	Start, End int
	Token      string
}

// Heard is what Hear heard in some audio.
type Heard struct {
	Words   []Word
	Samples int // the audio's length
}

// Hear hears the words of a 16 kHz mono 16-bit PCM WAV file.
func Hear(r io.ReaderAt, size int64) (Heard, error) {
	info, err := audio.ReadWAVInfo(r, size)
	if err != nil {
		return Heard{}, err
	}
	if info.FormatTag != 1 || info.Channels != 1 || info.BitsPerSample != 16 || info.SampleRate != Rate {
		return Heard{}, fmt.Errorf("longaudio: want 16 kHz mono 16-bit PCM, got format %d, %d channels, %d bits, %d Hz",
			info.FormatTag, info.Channels, info.BitsPerSample, info.SampleRate)
	}
	return HearPCM(io.NewSectionReader(r, info.DataOffset, info.DataSize))
}

// HearPCM hears the words of 16 kHz mono 16-bit little-endian samples.
//
// A word is a stretch of audio from a loud sample (above 0.05 of full
// scale, which the background noise never reaches) to the last loud sample
// before 30 ms without one; its token is drawn from a fixed vocabulary by
// the FNV-1a hash of its samples, first loud to last loud. Both depend on
// the word's own samples alone, and the same samples wherever they lie: a
// piece of a file cut between words (at any point where no word is
// sounding) is heard as exactly the words of the whole that lie in it. A
// word cut through is heard as one or two other words.
func HearPCM(r io.Reader) (Heard, error) {
	var (
		h       Heard
		inWord  bool
		start   int
		sum     = fnv.New64a()
		pending []byte // the quiet samples since the word's last loud one
		buf     = make([]byte, 64<<10)
		have    int // bytes in buf
	)
	end := func() {
		h.Words = append(h.Words, Word{Start: start, End: h.Samples - len(pending)/2, Token: vocabulary[sum.Sum64()%uint64(len(vocabulary))]})
		inWord, pending = false, pending[:0]
	}
	for {
		n, err := r.Read(buf[have:])
		have += n
		even := have &^ 1
		for k := 0; k < even; k += 2 {
			b := buf[k : k+2]
			v := int16(binary.LittleEndian.Uint16(b))
			loud := v > loudLevel || v < -loudLevel
			switch {
			case loud && !inWord:
				inWord, start = true, h.Samples
				sum.Reset()
				sum.Write(b)
			case loud:
				sum.Write(pending)
				sum.Write(b)
				pending = pending[:0]
			case inWord:
				pending = append(pending, b...)
			}
			h.Samples++
			if inWord && len(pending) >= 2*wordGap {
				end()
			}
		}
		have = copy(buf, buf[even:have])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Heard{}, err
		}
	}
	if inWord {
		end()
	}
	return h, nil
}

// Text is the transcript of what was heard: the words in sentences (words
// under 400 ms apart), each capitalised and ended with a full stop.
func (h Heard) Text() string {
	var sb strings.Builder
	for i, w := range h.Words {
		tok := w.Token
		if i == 0 || w.Start-h.Words[i-1].End >= sentenceGap {
			tok = strings.ToUpper(tok[:1]) + tok[1:]
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(tok)
		if i == len(h.Words)-1 || h.Words[i+1].Start-w.End >= sentenceGap {
			sb.WriteByte('.')
		}
	}
	return sb.String()
}

// Segments are the sentences of what was heard, timed.
func (h Heard) Segments() []transcribetest.Segment {
	var segs []transcribetest.Segment
	var sb strings.Builder
	first := 0
	for i, w := range h.Words {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(w.Token)
		if i == len(h.Words)-1 || h.Words[i+1].Start-w.End >= sentenceGap {
			text := sb.String()
			segs = append(segs, transcribetest.Segment{
				Start: seconds(h.Words[first].Start), End: seconds(w.End),
				Text: strings.ToUpper(text[:1]) + text[1:] + ".",
			})
			sb.Reset()
			first = i + 1
		}
	}
	return segs
}

// seconds converts a sample index to seconds, to the hundredth.
func seconds(n int) float64 { return math.Round(float64(n)/Rate*100) / 100 }

// Latency is how long the fake takes to answer a request for some seconds
// of audio.
type Latency func(seconds float64) time.Duration

// Transcriber returns a transcribetest.TranscribeFunc that hears the words
// of each uploaded WAV file with Hear and answers after latency(its
// duration) (or as soon as the request is cancelled). Anything but 16 kHz
// mono 16-bit PCM WAV is refused with a 400.
func Transcriber(latency Latency) transcribetest.TranscribeFunc {
	return func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		h, err := Hear(a.File, a.Size)
		if err != nil {
			return nil, &transcribetest.Error{Status: http.StatusBadRequest, Param: "file", Message: "Invalid file format: " + err.Error()}
		}
		d := float64(h.Samples) / Rate
		if latency != nil {
			t := time.NewTimer(latency(d))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		return &transcribetest.Transcript{Text: h.Text(), Duration: d, Segments: h.Segments(), Language: "en"}, nil
	}
}

// Normalise returns the words of a transcript, lower-case, without
// punctuation: what is compared when a stitched transcript is checked
// against the whole's (a cut between two words of a sentence makes a full
// stop and a capital of what was one sentence).
func Normalise(text string) []string {
	f := strings.Fields(strings.ToLower(text))
	for i, w := range f {
		f[i] = strings.Trim(w, ".,;:!?")
	}
	return f
}

// EditDistance returns the number of words to insert, delete or replace to
// turn a into b, if it is at most limit; otherwise some number above limit.
// It costs O((len(a)+len(b)) × limit).
func EditDistance(a, b []string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	// Row i holds the distances of a[:i] to b[:j] for |i-j| <= limit,
	// at index j-i+limit; cells outside the band are over the limit.
	const far = math.MaxInt32
	w := 2*limit + 1
	prev, cur := make([]int, w), make([]int, w)
	for k := range prev {
		prev[k] = far
		if j := k - limit; j >= 0 && j <= len(b) {
			prev[k] = j
		}
	}
	for i := 1; i <= len(a); i++ {
		best := far
		for k := range cur {
			j := i + k - limit
			cur[k] = far
			if j < 0 || j > len(b) {
				continue
			}
			if j == 0 {
				cur[k] = i
			} else {
				sub := prev[k] // (i-1, j-1)
				if a[i-1] != b[j-1] {
					sub++
				}
				cur[k] = sub
				if k > 0 && cur[k-1]+1 < cur[k] { // (i, j-1)
					cur[k] = cur[k-1] + 1
				}
			}
			if k+1 < w && prev[k+1]+1 < cur[k] { // (i-1, j)
				cur[k] = prev[k+1] + 1
			}
			best = min(best, cur[k])
		}
		if best > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	if k := len(b) - len(a) + limit; k >= 0 && k < w && prev[k] <= limit {
		return prev[k]
	}
	return limit + 1
}

// vocabulary is the words Hear draws tokens from.
var vocabulary = strings.Fields(`
	the a an and but or so because when while after before then now today
	people time year way day man woman child world life hand part place case
	week company system program question work government number night point
	home water room mother area money story fact month lot right study book
	eye job word business issue side kind head house service friend father
	power hour game line end member law car city community name president
	team minute idea kid body information back parent face others level office
	door health person art war history party result change morning reason
	research girl guy moment air teacher force education be have do say get
	make go know take see come think look want give use find tell ask
	seem feel try leave call keep let begin help talk turn start show hear
	play run move like live believe hold bring happen write provide sit stand
	lose pay meet include continue set learn lead understand watch follow stop
	create speak read allow add spend grow open walk win offer remember love
	consider appear buy wait serve die send expect build stay fall cut reach
	good new first last long great little own other old big high
	different small large next early young important few public bad same able
	quietly really almost always never often together again still also very
	river mountain garden window kitchen letter music weather summer winter
	train station market bridge coffee paper signal record meeting plan
`)
