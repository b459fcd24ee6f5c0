package transcribetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/steno-go/steno/internal/audio"
)

// Audio is one request as the fake received it, handed to a
// [TranscribeFunc].
type Audio struct {
	Task                   string // "transcribe" or "translate"
	Filename               string // as sent in the multipart file part
	Model                  string
	Language               string // ISO-639-1 as sent, or ""
	Prompt                 string
	ResponseFormat         string // "json" when not sent
	Temperature            float64
	TimestampGranularities []string
	Include                []string
	Fields                 map[string][]string // every text field received, by name as sent (e.g. "include[]")
	Size                   int64               // bytes of the file part
	File                   io.ReaderAt         // the file part's bytes, spooled on disk; valid only during the call
}

// Transcript is what a [TranscribeFunc] heard. The fake renders it in the
// requested response_format.
type Transcript struct {
	Text     string  // if empty, the Segments' texts joined by spaces
	Language string  // ISO-639-1, e.g. "en"; empty: the request's language, else "en"
	Duration float64 // seconds of audio
	Segments []Segment
}

// Segment is a span of a [Transcript]. Without segments, the fake makes one
// segment of the whole text.
type Segment struct {
	Start, End float64 // seconds
	Text       string
	Speaker    string // for diarized_json; empty: speakers "A" and "B" take turns
}

// TranscribeFunc turns a request's audio into a transcript. An error that is
// an [*Error] is sent as that error; any other error is a 500 server_error.
// The context is the request's.
type TranscribeFunc func(ctx context.Context, a *Audio) (*Transcript, error)

var _ TranscribeFunc = DefaultTranscriber

// DefaultTranscriber makes deterministic fake speech: the same audio always
// gives the same transcript, and different audio different text.
//
// The duration is read from a WAV file's header; any other format is taken
// to be 128 kbps (16000 bytes per second). Audio shorter than 0.1 s is
// refused as OpenAI does (400 audio_too_short). The text has about 2.5 words
// per second, drawn from a fixed English word list by a generator seeded with
// the SHA-256 of the file, in sentences of 4 to 20 words; each sentence is a
// segment, and the segments share the duration in proportion to their words.
func DefaultTranscriber(ctx context.Context, a *Audio) (*Transcript, error) {
	head := make([]byte, audio.SniffLen)
	n, _ := a.File.ReadAt(head, 0)
	seconds := float64(a.Size) / 16000
	if audio.Sniff(head[:n]) == audio.WAV {
		info, err := audio.ReadWAVInfo(a.File, a.Size)
		if err != nil {
			return nil, errFileFormat
		}
		seconds = info.Seconds()
	}
	if seconds < 0.1 {
		return nil, errTooShort
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(a.File, 0, a.Size)); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewChaCha8([32]byte(sum.Sum(nil))))

	total := max(1, int(math.Round(seconds*2.5)))
	t := &Transcript{Language: a.Language, Duration: seconds}
	var sb strings.Builder
	for done := 0; done < total; {
		n := min(total-done, 4+rng.IntN(17))
		sb.Reset()
		for i := range n {
			w := words[rng.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				sb.WriteByte(' ')
			}
			sb.WriteString(w)
		}
		sb.WriteByte('.')
		t.Segments = append(t.Segments, Segment{
			Start: round2(float64(done) / float64(total) * seconds),
			End:   round2(float64(done+n) / float64(total) * seconds),
			Text:  sb.String(),
		})
		done += n
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// round2 rounds to hundredths, as Whisper's timestamps are.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// WriteWAV writes a 16-bit mono PCM WAV file of n samples at sampleRate to
// w, sample i being sample(i) (clipped to [-1, 1]), streaming: for test and
// demo audio of known content (tone bursts for words, zeros for pauses).
func WriteWAV(w io.Writer, sampleRate, n int, sample func(i int) float64) error {
	return audio.SynthWAV(w, sampleRate, n, sample)
}

// WAV returns a 16 kHz mono 16-bit PCM WAV file of a 440 Hz tone lasting d,
// for tests that need audio the fake accepts. The same d gives the same
// bytes; it is built in memory, so keep d short (a minute is 1.9 MB).
func WAV(d time.Duration) []byte {
	const rate = 16000
	var b bytes.Buffer
	n := int(d.Seconds() * rate)
	b.Grow(44 + 2*n)
	_ = audio.SynthWAV(&b, rate, n, func(i int) float64 { return 0.3 * math.Sin(2*math.Pi*440*float64(i)/rate) })
	return b.Bytes()
}

// words is the vocabulary of DefaultTranscriber.
var words = strings.Fields(`
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
