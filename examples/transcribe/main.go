// Command transcribe sends one audio file to an OpenAI-compatible
// speech-to-text server and prints the transcript.
//
//	transcribe [-model m] [-language l] [-prompt p] [-format f] [-temperature t]
//	           [-cut duration] [-shrink] [-chain] [-partial] [-skip-silence] [-stall d] [-first-byte d]
//	           [-stream] [-simulate] FILE
//
// It reads the environment as the official SDKs do, and says on its first
// line which provider it uses:
//
//	OPENAI_API_KEY, OPENAI_BASE_URL             OpenAI, or the server at the base URL
//	AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY Azure OpenAI; -model names the deployment
//	  (OPENAI_API_VERSION, default 2024-10-21)
//	GROQ_API_KEY                                Groq (when OPENAI_API_KEY is not set)
//
// OPENAI_BASE_URL comes first, then AZURE_OPENAI_ENDPOINT, OPENAI_API_KEY
// and GROQ_API_KEY. Without -model the provider's default model is used
// (whisper-1; Groq's whisper-large-v3-turbo). With -simulate it runs
// against steno's built-in simulated API instead (no key, no network), and
// with no FILE it transcribes a short demo clip it generates. Files over
// the API's size limit are cut at silences and stitched back; -cut cuts
// sooner, for speed; with -partial, a file some of whose pieces fail
// still prints the others' transcript, the missing stretches listed on
// stderr (without it, the command fails and says which they are); with
// -skip-silence, silence at the ends and pauses of 2 s or more are not
// sent (nor billed), the timestamps still the file's. An attempt whose
// upload or answer stalls (under
// 1 KiB/s for -stall, default 1m0s), or whose answer has not begun
// -first-byte (default 10m0s) after its upload, is cancelled and retried.
//
// With -stream the transcript is printed as the server makes it, word by
// word (gpt-4o-transcribe and its kin; whisper-1 does not stream, and its
// transcript is printed whole when it is done). A file that must be cut
// streams piece after piece, in order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("transcribe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var req transcribe.Request
	var format string
	fs.StringVar(&req.Model, "model", "", "model, or Azure's deployment (default: the provider's, whisper-1 for OpenAI)")
	fs.StringVar(&req.Language, "language", "", "ISO-639-1 language of the audio, e.g. en")
	fs.StringVar(&req.Prompt, "prompt", "", "text to guide the transcript's style")
	fs.StringVar(&format, "format", "json", "json | text | srt | vtt | verbose_json | diarized_json")
	fs.Float64Var(&req.Temperature, "temperature", 0, "sampling temperature, 0 to 1")
	simulate := fs.Bool("simulate", false, "use the built-in simulated API (no key needed)")
	verbose := fs.Bool("v", false, "verbose: print each cut of a file that is cut (where, in a pause or hard, the pause's level against the noise floor and speech)")
	stream := fs.Bool("stream", false, "print the transcript as it arrives (gpt-4o models; whisper-1 does not stream)")
	var split transcribe.SplitOptions
	fs.DurationVar(&split.MaxDuration, "cut", 0, "cut the audio into pieces of at most this long (e.g. 10m), sent in parallel; files over 25 MB are always cut")
	fs.BoolVar(&split.Shrink, "shrink", false, "re-encode WAV or MP3 that must be cut to 16 kHz mono FLAC first (needs ffmpeg)")
	fs.BoolVar(&split.ChainPrompts, "chain", false, "send pieces in order, each prompted with the end of the previous transcript")
	fs.BoolVar(&split.AllowPartial, "partial", false, "when some pieces of a cut file fail, print the transcript of the others and list the missing stretches on stderr")
	fs.BoolVar(&split.SkipSilence, "skip-silence", false, "leave silence out of what is sent (at the ends, and pauses of 2 s or more): not billed, timestamps unchanged; says on stderr how much")
	var timeouts transcribe.Timeouts
	fs.DurationVar(&timeouts.Stall, "stall", transcribe.DefaultStallTimeout, "retry an attempt whose upload or answer moves under 1 KiB/s for this long (0: never)")
	fs.DurationVar(&timeouts.FirstByte, "first-byte", transcribe.DefaultFirstByteTimeout, "retry an attempt whose answer has not begun this long after its upload (0: never; raise it for a slow self-hosted server)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: transcribe [flags] FILE\n\nenvironment: OPENAI_API_KEY, OPENAI_BASE_URL; AZURE_OPENAI_ENDPOINT,\nAZURE_OPENAI_API_KEY, OPENAI_API_VERSION (-model names the deployment); GROQ_API_KEY\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req.ResponseFormat = transcribe.ResponseFormat(format)
	for flag, d := range map[string]*time.Duration{"-stall": &timeouts.Stall, "-first-byte": &timeouts.FirstByte} {
		switch {
		case *d < 0:
			fmt.Fprintf(stderr, "transcribe: %s %v: want a duration, or 0 for no limit\n", flag, *d)
			return 2
		case *d == 0:
			*d = -1 // off, for transcribe.Timeouts
		}
	}
	path := fs.Arg(0)
	if fs.NArg() > 1 || (path == "" && !*simulate) {
		fs.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	opts := []transcribe.Option{transcribe.WithSplitting(split), transcribe.WithTimeouts(timeouts)}
	var note string // said after the provider
	if *simulate {
		cfg := transcribetest.Config{}
		if *stream {
			cfg.StreamDelay = 40 * time.Millisecond // words arrive as they would from the API
		}
		srv := transcribetest.NewServer(cfg)
		defer srv.Close()
		opts = append(opts, transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-simulated"))
		if path == "" {
			dir, err := os.MkdirTemp("", "steno-demo-")
			if err != nil {
				fmt.Fprintln(stderr, "transcribe:", err)
				return 1
			}
			defer os.RemoveAll(dir)
			if path, err = writeDemoClip(dir); err != nil {
				fmt.Fprintln(stderr, "transcribe:", err)
				return 1
			}
			note = fmt.Sprintf("simulated API at %s; transcribing a generated demo clip", srv.BaseURL())
		}
	}
	client, err := transcribe.NewClient(opts...)
	if err != nil {
		fmt.Fprintln(stderr, transcribe.PrintableLine(err.Error()))
		return 2
	}
	p := client.Provider()
	fmt.Fprintln(stderr, "transcribe: using", transcribe.PrintableLine(p.String()))
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	if req.Model == "" && p.DefaultModel == "" {
		fmt.Fprintf(stderr, "transcribe: %s needs -model DEPLOYMENT, the deployment to send to\n", p.Name)
		return 2
	}
	if *stream {
		return runStream(ctx, client, path, req, stdout, stderr, *verbose)
	}
	t, err := client.TranscribeFile(ctx, path, req)
	if err != nil {
		return failed(stderr, err)
	}
	printPieces(stderr, t, *verbose)
	printTranscript(stdout, t, req.ResponseFormat)
	return 0
}

// failed prints err, and returns the exit status for it.
func failed(stderr io.Writer, err error) int {
	if errors.Is(err, transcribe.ErrQuotaExceeded) {
		fmt.Fprintln(stderr, "transcribe: quota exhausted: the account has no credit left; check its plan and billing")
	} else {
		fmt.Fprintln(stderr, transcribe.PrintableLine(err.Error()))
	}
	return 1
}

// runStream prints the transcript of the file at path as it arrives: each
// delta the moment it comes (terminal-safe on a terminal, exact into a
// file or a pipe), then a newline. A server that does not stream sends no
// deltas: its transcript is printed whole, as without -stream.
func runStream(ctx context.Context, client *transcribe.Client, path string, req transcribe.Request, stdout, stderr io.Writer, verbose bool) int {
	onTerminal := isTerminal(stdout)
	printed := false
	var done *transcribe.Transcription
	for ev, err := range client.TranscribeFileStream(ctx, path, req) {
		if err != nil {
			if printed {
				io.WriteString(stdout, "\n") // end the partial line
			}
			return failed(stderr, err)
		}
		switch ev.Type {
		case transcribe.EventDelta:
			d := ev.Delta
			if onTerminal {
				d = transcribe.PrintableText(d)
			}
			io.WriteString(stdout, d)
			printed = printed || d != ""
		case transcribe.EventDone:
			done = ev.Transcription
		}
	}
	if done == nil { // the sequence ends with the transcript or an error
		fmt.Fprintln(stderr, "transcribe: the stream ended without a transcript")
		return 1
	}
	printPieces(stderr, done, verbose)
	if !printed {
		fmt.Fprintln(stderr, "(the server sent the transcript whole: it does not stream with this model)")
		printTranscript(stdout, done, req.ResponseFormat)
		return 0
	}
	io.WriteString(stdout, "\n")
	return 0
}

// printPieces tells, on stderr, where the file was cut, if it was; with
// verbose, each cut on a line of its own, with how the planner judged it.
func printPieces(stderr io.Writer, t *transcribe.Transcription, verbose bool) {
	defer printMissing(stderr, t)
	if t.SkippedSeconds > 0 {
		fmt.Fprintf(stderr, "silence skipped: %.1f s of %.1f s not sent\n", t.SkippedSeconds, t.Duration)
	}
	if len(t.Pieces) <= 1 {
		return
	}
	if verbose {
		fmt.Fprintf(stderr, "cut into %d pieces:\n", len(t.Pieces))
		for i, p := range t.Pieces {
			fmt.Fprintf(stderr, "  piece %d: %.2f–%.2f s, %d bytes", i+1, p.Start, p.End, p.Bytes)
			if p.Sent > 0 && p.Sent < p.End-p.Start-0.001 {
				fmt.Fprintf(stderr, ", %.2f s sent (silence left out)", p.Sent)
			}
			switch p.Cut {
			case transcribe.CutPause:
				fmt.Fprintf(stderr, "; cut before it in a pause: level %.1f dBFS, floor %.1f dBFS, speech %.1f dBFS (%.1f dB under speech)",
					p.PauseLevel, p.Floor, p.Speech, p.Speech-p.PauseLevel)
			case transcribe.CutHard:
				fmt.Fprintf(stderr, "; hard cut before it, %.1f s overlap: no pause near the floor", p.Overlap)
				if p.Floor != 0 || p.Speech != 0 {
					fmt.Fprintf(stderr, " (%.1f dBFS; speech %.1f dBFS)", p.Floor, p.Speech)
				}
			}
			fmt.Fprintln(stderr)
		}
		return
	}
	fmt.Fprintf(stderr, "cut into %d pieces:", len(t.Pieces))
	for _, p := range t.Pieces[1:] {
		how := "in a pause"
		if !p.Silence {
			how = fmt.Sprintf("hard, %.1f s overlap", p.Overlap)
		}
		fmt.Fprintf(stderr, " %.2f s (%s);", p.Start, how)
	}
	fmt.Fprintln(stderr)
}

// printMissing tells, on stderr, which stretches a partial transcript
// (-partial) lacks.
func printMissing(stderr io.Writer, t *transcribe.Transcription) {
	if len(t.Missing) == 0 {
		return
	}
	fmt.Fprint(stderr, "partial transcript: pieces failed; missing")
	for i, r := range t.Missing {
		if i > 0 {
			fmt.Fprint(stderr, ",")
		}
		fmt.Fprintf(stderr, " %.2f–%.2f s", r.Start, r.End)
	}
	fmt.Fprintln(stderr)
}

// printTranscript prints t, in format.
func printTranscript(stdout io.Writer, t *transcribe.Transcription, format transcribe.ResponseFormat) {
	// The transcript is what the server said: on a terminal, it is shown
	// with its control characters escaped (lines and tabs kept); into a
	// file or a pipe, it is written exactly.
	text, raw := t.Text+"\n", string(t.Raw)
	if isTerminal(stdout) {
		text, raw = transcribe.PrintableText(text), transcribe.PrintableText(raw)
	}
	switch format {
	case transcribe.JSON:
		io.WriteString(stdout, text)
	default:
		io.WriteString(stdout, raw)
	}
}

// isTerminal reports whether w is a terminal. Tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeDemoClip writes a 6-second 16 kHz WAV file of three "words" (tone
// bursts) separated by silence, and returns its path.
func writeDemoClip(dir string) (string, error) {
	path := filepath.Join(dir, "demo.wav")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	const rate = 16000
	err = transcribetest.WriteWAV(f, rate, 6*rate, func(i int) float64 {
		t := float64(i) / rate
		if math.Mod(t, 2) > 1.5 { // half a second of silence every two
			return 0
		}
		return 0.3 * math.Sin(2*math.Pi*(220+110*math.Floor(t/2))*t)
	})
	return path, errors.Join(err, f.Close())
}
