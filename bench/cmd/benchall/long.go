package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/steno-go/steno/bench/internal/longaudio"
	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// The approaches of the long-audio scenario's end-to-end runs.
const (
	lSteno = "steno"
	lNaive = "naive"
)

// longApproaches are the approaches, in the order they run in a round,
// with what each is.
var longApproaches = []struct{ name, about string }{
	{lSteno, "steno's transcribe.Client, default options: TranscribeFile(ctx, path, Request{}) plans the cuts at pauses, streams each piece from its byte range of the file, sends the pieces in parallel and stitches their transcripts"},
	{lNaive, "what a user writes without a library for it: decode the whole file into memory (its samples, as []int16), cut it every 10 minutes, and for each piece in turn encode a WAV file and a multipart body in memory, POST it with net/http (an exact Content-Length) and read its text; the texts joined with spaces"},
}

// longSettings are the long-audio scenario's knobs.
type longSettings struct {
	minutes  float64       // the file's length
	seed     uint64        // its script
	rounds   int           // of the plans and of the end-to-end runs
	small    int64         // the second MaxBytes planned with
	naiveCut time.Duration // the naive approach's fixed pieces
	// stenoMaxBytes, if not 0, is steno's SplitOptions.MaxBytes (for a
	// -quick run, whose file is too small to be cut otherwise).
	stenoMaxBytes int64
	base          time.Duration // the fake's latency: base + perMinute × minutes of audio in the request
	perMin        time.Duration
}

// latency is the fake's time to answer a request for the given seconds of
// audio.
func (ls longSettings) latency(seconds float64) time.Duration {
	return ls.base + time.Duration(seconds/60*float64(ls.perMin))
}

// longAudio is the scenario's audio and what it says.
type longAudio struct {
	wav, mp3   string
	mp3Err     error  // why there is no MP3 file
	lame       string // lame's version line
	seconds    float64
	whole      []string // the words of the whole file, as the fake hears them (Normalise)
	naiveTexts []string // the text of each of the naive approach's pieces, as the fake hears it
	pauses     [][2]time.Duration
}

// longRun is one end-to-end run of an approach.
type longRun struct {
	err        error
	wall, cpu  time.Duration
	rssKB      int64
	allocBytes uint64
	requests   int // the server received
	peakFlight int
	pieces     int
	hard       int // cuts made where no pause was found (steno)
	inPause    int // cuts that fell in a pause of the script
	distance   int // words to change to make the transcript the whole's
	// The fake's latency for the run's pieces (by its model): their sum,
	// which requests sent one after another wait for, and the longest,
	// which requests sent all at once wait for.
	latencySum, latencyMax time.Duration
}

// longResults are everything the long-audio scenario measured.
type longResults struct {
	settings longSettings
	audio    *longAudio
	plans    []longaudio.PlanResult
	planErr  error
	wrong    []string // plans whose cuts were wrong: claimed in a pause where the script has none
	ffmpeg   string   // its version line, or why it is missing
	runs     map[string][]longRun
}

// failed counts the failed runs.
func (r *longResults) failed() int {
	n := 0
	if r.planErr != nil {
		n++
	}
	n += len(r.wrong)
	for _, runs := range r.runs {
		for _, f := range runs {
			if f.err != nil {
				n++
			}
		}
	}
	return n
}

// prepareLong writes the scenario's audio into dir, encodes it to MP3 (with
// lame, if there), and computes what the fake hears in it.
func prepareLong(ctx context.Context, dir string, ls longSettings) (*longAudio, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := int(ls.minutes * 60 * longaudio.Rate)
	la := &longAudio{wav: filepath.Join(dir, "speech.wav"), seconds: float64(n) / longaudio.Rate}
	if err := longaudio.WriteSpeech(la.wav, ls.seed, n); err != nil {
		return nil, err
	}
	la.pauses = longaudio.Pauses(ls.seed, time.Duration(la.seconds*float64(time.Second)))
	if lame, err := exec.LookPath("lame"); err != nil {
		la.mp3Err = errors.New("no lame on PATH: the MP3 rows are missing (apt-get install lame)")
	} else {
		if out, err := exec.CommandContext(ctx, lame, "--version").Output(); err == nil {
			la.lame, _, _ = strings.Cut(string(out), "\n")
			la.lame = strings.TrimSpace(la.lame)
		}
		mp3 := filepath.Join(dir, "speech.mp3")
		if out, err := exec.CommandContext(ctx, lame, "--silent", "-b", "64", la.wav, mp3).CombinedOutput(); err != nil {
			la.mp3Err = fmt.Errorf("lame: %w: %s", err, bytes.TrimSpace(out))
		} else {
			la.mp3 = mp3
		}
	}

	f, err := os.Open(la.wav)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	whole, err := longaudio.Hear(f, st.Size())
	if err != nil {
		return nil, err
	}
	la.whole = longaudio.Normalise(whole.Text())
	info, err := audio.ReadWAVInfo(f, st.Size())
	if err != nil {
		return nil, err
	}
	per := int64(ls.naiveCut.Seconds()) * longaudio.Rate * 2
	for off := int64(0); off < info.DataSize; off += per {
		h, err := longaudio.HearPCM(io.NewSectionReader(f, info.DataOffset+off, min(per, info.DataSize-off)))
		if err != nil {
			return nil, err
		}
		la.naiveTexts = append(la.naiveTexts, h.Text())
	}
	return la, nil
}

// runLong runs the long-audio scenario: the plans, then the end-to-end
// runs, interleaved.
func runLong(ctx context.Context, self, dir string, s settings, progress io.Writer) (*longResults, error) {
	ls := s.long
	fmt.Fprintf(progress, "benchall: long: writing %g minutes of speech-like audio (WAV, and MP3 with lame) and hearing it\n", ls.minutes)
	la, err := prepareLong(ctx, dir, ls)
	if err != nil {
		return nil, err
	}
	res := &longResults{settings: ls, audio: la, runs: map[string][]longRun{}}
	res.ffmpeg = ffmpegVersion(ctx)

	fmt.Fprintf(progress, "benchall: long: timing cut plans against ffmpeg silencedetect, %d rounds\n", ls.rounds)
	res.plans, res.planErr = longaudio.MeasurePlans(ctx, longaudio.PlanConfig{
		WAV: la.wav, MP3: la.mp3, Runs: ls.rounds, Small: ls.small, Seed: ls.seed, FFmpeg: "ffmpeg",
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, p := range res.plans {
		if p.Kind == longaudio.PlanKind && p.Cuts.Off > 0 {
			res.wrong = append(res.wrong, fmt.Sprintf("%s, %s: %d of its cuts were made as in a pause where the script has none", p.Name, p.Format, p.Cuts.Off))
		}
	}

	for round := range ls.rounds {
		for _, a := range longApproaches {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r := runLongOnce(ctx, self, a.name, la, ls, s.timeout)
			res.runs[a.name] = append(res.runs[a.name], r)
			status := "ok"
			if r.err != nil {
				status = "FAILED: " + r.err.Error()
			}
			fmt.Fprintf(progress, "benchall: long round %d/%d, %-6s %6.2fs wall, %6.2fs CPU, %5d MiB peak RSS, %d requests: %s\n",
				round+1, ls.rounds, a.name, r.wall.Seconds(), r.cpu.Seconds(), r.rssKB/1024, r.requests, status)
		}
	}
	return res, nil
}

// ffmpegVersion returns ffmpeg's first line of -version, or why not.
func ffmpegVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-version").Output()
	if err != nil {
		return "no ffmpeg: " + err.Error()
	}
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " Copyright")
	return strings.TrimSpace(line)
}

// longReport is what a long-audio child prints on stdout, as JSON.
type longReport struct {
	WallNs     int64       `json:"wall_ns"` // from the call to the text
	VmHWMkB    int64       `json:"vmhwm_kb"`
	AllocBytes uint64      `json:"alloc_bytes"`
	Text       string      `json:"text"`
	Err        string      `json:"err,omitempty"`
	Pieces     []longPiece `json:"pieces"`
}

// longPiece is one piece of a long-audio child's run.
type longPiece struct {
	Start, End float64 // seconds of the whole
	Cut        string  // steno: how the cut before it was made
	Text       string  // naive: its transcript
}

// runLongOnce runs approach name once on the WAV file, in a process of its
// own, against a fresh fake whose answers take ls.latency, and verifies
// its transcript.
func runLongOnce(ctx context.Context, self, name string, la *longAudio, ls longSettings, timeout time.Duration) longRun {
	srv, err := startFake(transcribetest.Config{APIKey: apiKey, Transcriber: longaudio.Transcriber(ls.latency)})
	if err != nil {
		return longRun{err: err}
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-long", name, "-url", srv.url, "-file", la.wav, "-cut", ls.naiveCut.String(),
		"-max-bytes", fmt.Sprint(ls.stenoMaxBytes))
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &stdout, n: 16 << 20}
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	runErr := cmd.Run()
	st := srv.h.Stats()
	r := longRun{requests: st.Requests, peakFlight: st.MaxInFlight}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if runErr != nil {
		r.err = fmt.Errorf("the process: %w: %s", runErr, lastLine(stderr.String()))
		if ctx.Err() != nil {
			r.err = fmt.Errorf("did not finish within %v", timeout)
		}
		return r
	}
	var rep longReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		r.err = fmt.Errorf("its report: %w", err)
		return r
	}
	r.wall, r.rssKB, r.allocBytes = time.Duration(rep.WallNs), rep.VmHWMkB, rep.AllocBytes
	r.pieces = max(1, len(rep.Pieces))
	for _, p := range rep.Pieces {
		l := ls.latency(p.End - p.Start)
		r.latencySum += l
		r.latencyMax = max(r.latencyMax, l)
	}
	for i := 1; i < len(rep.Pieces); i++ {
		cut := time.Duration(rep.Pieces[i-1].End * float64(time.Second))
		if rep.Pieces[i].Cut == transcribe.CutHard.String() {
			r.hard++
		}
		if slices.ContainsFunc(la.pauses, func(p [2]time.Duration) bool { return p[0] <= cut && cut <= p[1] }) {
			r.inPause++
		}
	}
	r.err = verifyLong(name, la, rep, st)
	r.distance = longaudio.EditDistance(longaudio.Normalise(rep.Text), la.whole, 1000)
	return r
}

// verifyLong checks a run's transcript.
//
// steno's must be the whole file's, word for word, modulo the cuts: its
// words (lower-case, without punctuation: a cut between two words of a
// sentence ends one sentence and starts another) must be exactly those the
// fake hears in the whole file when every cut fell where no word was
// sounding, and may differ in at most 4 words for each hard cut (a word cut
// through is heard as two others, and the overlap of a hard cut may repeat
// or drop one on each side). The server must have answered nothing but
// 200s, one for each piece.
//
// The naive approach's pieces must each have come back with the transcript
// of its piece (the text the fake hears in those samples of the file), in
// order, and the server must have answered nothing but 200s; its words
// are not required to be the whole's, since its cuts fall wherever they
// fall (how many differ is reported).
func verifyLong(name string, la *longAudio, rep longReport, st transcribetest.Stats) error {
	if rep.Err != "" {
		return errors.New(rep.Err)
	}
	if len(st.ByStatus) != 1 || st.ByStatus[http.StatusOK] != st.Requests {
		return fmt.Errorf("the server answered %v; want only 200s", st.ByStatus)
	}
	switch name {
	case lSteno:
		if want := max(1, len(rep.Pieces)); st.Requests != want {
			return fmt.Errorf("%d requests for %d pieces", st.Requests, want)
		}
		hard := 0
		for _, p := range rep.Pieces {
			if p.Cut == transcribe.CutHard.String() {
				hard++
			}
		}
		got := longaudio.Normalise(rep.Text)
		if d := longaudio.EditDistance(got, la.whole, 4*hard); d > 4*hard {
			return fmt.Errorf("the stitched transcript (%d words) differs from the whole file's (%d words) in more than %d words (%d hard cuts)",
				len(got), len(la.whole), 4*hard, hard)
		}
	case lNaive:
		if len(rep.Pieces) != len(la.naiveTexts) || st.Requests != len(la.naiveTexts) {
			return fmt.Errorf("%d pieces returned and %d requests, want %d", len(rep.Pieces), st.Requests, len(la.naiveTexts))
		}
		for i, p := range rep.Pieces {
			if strings.TrimSpace(p.Text) != la.naiveTexts[i] {
				return fmt.Errorf("piece %d: transcript %.40q…, want %.40q…", i+1, p.Text, la.naiveTexts[i])
			}
		}
	}
	return nil
}

// longMain is a long-audio child: it transcribes -file the way -long
// says and prints a longReport.
func longMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchall -long", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("long", "", "the approach: steno or naive")
	url := fs.String("url", "", "the API's base URL, up to /v1")
	file := fs.String("file", "", "the WAV file to transcribe")
	cut := fs.Duration("cut", 10*time.Minute, "the naive approach's pieces")
	maxBytes := fs.Int64("max-bytes", 0, "steno's SplitOptions.MaxBytes (0: its default)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *url == "" || *file == "" || *cut <= 0 {
		return fmt.Errorf("%w: -url, -file and a positive -cut are needed", errUsage)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	var rep longReport
	var err error
	switch *name {
	case lSteno:
		err = stenoLong(ctx, *url, *file, *maxBytes, &rep)
	case lNaive:
		err = naiveLong(ctx, *url, *file, *cut, &rep)
	default:
		return fmt.Errorf("%w: no approach %q", errUsage, *name)
	}
	rep.WallNs = time.Since(start).Nanoseconds()
	runtime.ReadMemStats(&after)
	rep.AllocBytes = after.TotalAlloc - before.TotalAlloc
	if err != nil {
		rep.Err = err.Error()
	}
	if rep.VmHWMkB, err = vmHWM(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// stenoLong transcribes file with steno's defaults (and pieces of at most
// maxBytes, unless 0).
func stenoLong(ctx context.Context, url, file string, maxBytes int64, rep *longReport) error {
	opts := []transcribe.Option{transcribe.WithBaseURL(url), transcribe.WithAPIKey(apiKey)}
	if maxBytes > 0 {
		opts = append(opts, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: maxBytes}))
	}
	c, err := transcribe.NewClient(opts...)
	if err != nil {
		return err
	}
	t, err := c.TranscribeFile(ctx, file, transcribe.Request{})
	if err != nil {
		return err
	}
	rep.Text = t.Text
	for _, p := range t.Pieces {
		rep.Pieces = append(rep.Pieces, longPiece{Start: p.Start, End: p.End, Cut: p.Cut.String()})
	}
	return nil
}

// naiveLong transcribes file the naive way: decode it whole into memory,
// cut it every cut, and send each piece in turn, encoded in memory.
func naiveLong(ctx context.Context, url, file string, cut time.Duration, rep *longReport) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	info, err := audio.ReadWAVInfo(f, st.Size())
	if err != nil {
		return err
	}
	if info.Channels != 1 || info.BitsPerSample != 16 {
		return errors.New("want mono 16-bit PCM")
	}
	// Decode the whole file.
	samples := make([]int16, info.DataSize/2)
	buf := make([]byte, 64<<10)
	r := io.NewSectionReader(f, info.DataOffset, info.DataSize)
	for i := 0; i < len(samples); {
		n, err := io.ReadFull(r, buf[:min(len(buf), 2*(len(samples)-i))])
		for k := 0; k+1 < n; k += 2 {
			samples[i] = int16(binary.LittleEndian.Uint16(buf[k:]))
			i++
		}
		if err != nil {
			return err
		}
	}
	per := int(cut.Seconds()) * info.SampleRate
	hc := &http.Client{}
	var texts []string
	for start := 0; start < len(samples); start += per {
		piece := samples[start:min(start+per, len(samples))]
		var wav bytes.Buffer
		if err := audio.WriteWAVHeader(&wav, info.SampleRate, 1, 16, int64(2*len(piece))); err != nil {
			return err
		}
		if err := binary.Write(&wav, binary.LittleEndian, piece); err != nil {
			return err
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		if err := mw.WriteField("model", "whisper-1"); err != nil {
			return err
		}
		fw, err := mw.CreateFormFile("file", fmt.Sprintf("piece%d.wav", start/per+1))
		if err != nil {
			return err
		}
		if _, err := fw.Write(wav.Bytes()); err != nil {
			return err
		}
		if err := mw.Close(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(url, "/")+"/audio/transcriptions", &body)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+apiKey)
		text, err := postText(hc, req)
		if err != nil {
			return fmt.Errorf("piece %d: %w", start/per+1, err)
		}
		texts = append(texts, text)
		rep.Pieces = append(rep.Pieces, longPiece{
			Start: float64(start) / float64(info.SampleRate), End: float64(start+len(piece)) / float64(info.SampleRate), Text: text,
		})
	}
	rep.Text = strings.Join(texts, " ")
	return nil
}

// postText sends req and returns the text of its JSON answer, reading at
// most 1 MiB of it.
func postText(hc *http.Client, req *http.Request) (string, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	var t struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Text == nil {
		return "", fmt.Errorf("a 200 that is not a transcript: %.200q", b)
	}
	return *t.Text, nil
}

// fmtDurs formats the median of ds, with its range: "11.6 ms [11.2–12.0]".
func fmtDurs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	lo, hi := slices.Min(ds), slices.Max(ds)
	med := longaudio.Median(ds)
	if med >= time.Second {
		return fmt.Sprintf("%.2f s [%.2f–%.2f]", med.Seconds(), lo.Seconds(), hi.Seconds())
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return fmt.Sprintf("%.1f ms [%.1f–%.1f]", ms(med), ms(lo), ms(hi))
}

// writeLong writes the long-audio scenario's section.
func (d *document) writeLong(w io.Writer) {
	r := d.long
	ls, la := r.settings, r.audio
	size := func(path string) string {
		st, err := os.Stat(path)
		if err != nil {
			return "?"
		}
		return fmt.Sprintf("%.1f MB", float64(st.Size())/1e6)
	}
	fmt.Fprintf(w, "## 3. Long audio: one %g-minute file\n\n", ls.minutes)
	fmt.Fprintf(w, "The audio is speech-like and made for the run (`bench/internal/longaudio`, seed %d): sentences of 3 to 12 \"words\" (tone bursts of 0.2–0.5 s, 40–150 ms apart) with pauses of 0.6–1.8 s between sentences (%d of them), over noise at −40 dBFS; ",
		ls.seed, len(la.pauses))
	fmt.Fprintf(w, "a 16 kHz mono 16-bit WAV file of %s", size(la.wav))
	if la.mp3 != "" {
		fmt.Fprintf(w, ", and the same encoded by `lame --silent -b 64` (%s) to an MP3 file of %s", la.lame, size(la.mp3))
	}
	fmt.Fprint(w, ".")
	if la.mp3Err != nil {
		fmt.Fprintf(w, " %v.", la.mp3Err)
	}
	fmt.Fprint(w, "\n\n")

	fmt.Fprint(w, "### Cut planning\n\n")
	fmt.Fprintf(w, "Finding where to cut, on each file, in %d interleaved rounds in benchall's own process (`longaudio.MeasurePlans`): ", ls.rounds)
	fmt.Fprintf(w, "steno's planner (`internal/audio.Plan`, what TranscribeFile runs) with its default pieces of at most %d MiB and with pieces of at most %.3g MiB (more cuts); ",
		audio.DefaultMaxPieceBytes>>20, float64(ls.small)/(1<<20))
	fmt.Fprintf(w, "`ffmpeg -hide_banner -nostats -i FILE %s` (%s), which decodes the whole file to find its pauses; ", strings.Join(longaudio.FFmpegArgs, " "), r.ffmpeg)
	fmt.Fprint(w, "and, for scale, reading the WAV file whole in reads of 1 MiB (both files are in the page cache: read once before any timing). ")
	fmt.Fprint(w, "*Wall*: median [min–max]. *CPU*: user + system time, median (ffmpeg's process; for the rest benchall's own, which does nothing else meanwhile). ")
	fmt.Fprint(w, "*Cuts in pauses*: the cuts that fell in one of the script's pauses between sentences, of all cuts (each verified against the script). *Read*: bytes the planner read from the file.\n\n")
	if r.planErr != nil {
		fmt.Fprintf(w, "**The planning run failed: %v.**\n\n", r.planErr)
	}
	fmt.Fprint(w, "| file | what | wall | CPU (s) | ffmpeg's time ÷ this | pieces | cuts in pauses | read |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	ffmpegTime := map[string]time.Duration{}
	for _, p := range r.plans {
		if p.Kind == longaudio.FFmpegKind {
			ffmpegTime[p.Format] = longaudio.Median(p.Times)
		}
	}
	var slower, notes []string
	for _, p := range r.plans {
		med := longaudio.Median(p.Times)
		vs, pieces, cuts, read := "—", "—", "—", fmt.Sprintf("%.1f MB", float64(p.Size)/1e6)
		if f, ok := ffmpegTime[p.Format]; ok && med > 0 {
			vs = fmt.Sprintf("%.1f", f.Seconds()/med.Seconds())
		}
		switch p.Kind {
		case longaudio.PlanKind:
			pieces, read = fmt.Sprint(len(p.Pieces)), fmt.Sprintf("%.1f MB", float64(p.Read)/1e6)
			cuts = fmt.Sprintf("%d/%d", p.Cuts.InPause, len(p.Pieces)-1)
			if p.Cuts.Hard > 0 || p.Cuts.Off > 0 {
				cuts += fmt.Sprintf(" (%d hard, %d off)", p.Cuts.Hard, p.Cuts.Off)
			}
			if f, ok := ffmpegTime[p.Format]; ok && med > f {
				slower = append(slower, fmt.Sprintf("%s on the %s file took %v against ffmpeg's %v", p.Name, p.Format, med.Round(time.Millisecond), f.Round(time.Millisecond)))
			}
		case longaudio.FFmpegKind:
			cuts = fmt.Sprintf("found %d pauses", p.Quiet)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.3f | %s | %s | %s | %s |\n", p.Format, p.Name, fmtDurs(p.Times), longaudio.Median(p.CPU).Seconds(), vs, pieces, cuts, read)
	}
	fmt.Fprintln(w)
	if len(r.wrong) > 0 {
		fmt.Fprint(w, "Wrong plans (failed runs):\n\n")
		for _, x := range r.wrong {
			fmt.Fprintf(w, "- %s\n", x)
		}
		fmt.Fprintln(w)
	}
	var read time.Duration
	for _, p := range r.plans {
		if p.Kind == longaudio.ReadKind {
			read = longaudio.Median(p.Times)
		}
	}
	for _, p := range r.plans {
		if p.Kind == longaudio.PlanKind && p.Format == "WAV" && read > 0 && longaudio.Median(p.Times) > read {
			notes = append(notes, fmt.Sprintf("%s on the WAV file took longer than reading the whole file (%v against %v), though it read %.1f MB of its %.1f MB: its CPU time (%v) is its wall time, spent on the audio it reads around each cut, where a whole read from the page cache is a copy",
				p.Name, longaudio.Median(p.Times).Round(100*time.Microsecond), read.Round(100*time.Microsecond), float64(p.Read)/1e6, float64(p.Size)/1e6, longaudio.Median(p.CPU).Round(100*time.Microsecond)))
		}
	}
	if len(slower) == 0 && len(ffmpegTime) > 0 {
		fmt.Fprint(w, "Every steno plan was faster than ffmpeg's silencedetect on the same file: steno decodes only the stretches where it looks for a pause (the *read* column), ffmpeg the whole file.")
	} else if len(slower) > 0 {
		fmt.Fprintf(w, "Where steno is not ahead: %s.", strings.Join(slower, "; "))
	}
	for _, n := range notes {
		fmt.Fprintf(w, " %s.", n)
	}
	fmt.Fprint(w, "\n\n")

	fmt.Fprint(w, "### End to end\n\n")
	fmt.Fprintf(w, "The WAV file transcribed whole, by each approach in a process of its own against a fresh fake API on a loopback port (`transcribetest`, with benchall's transcriber, below), in %d interleaved rounds. ", ls.rounds)
	fmt.Fprintf(w, "The fake answers each request after %v + %v per minute of audio in it (a 10-minute piece: %v): a model, not a measurement; OpenAI's own answers take longer, which lengthens both approaches' waits by the same factor per request. ",
		ls.base, ls.perMin, ls.latency(600).Round(10*time.Millisecond))
	fmt.Fprint(w, "Its transcriber (`longaudio.Transcriber`) hears the audio's words sample-exactly: a word is a stretch from a sample above 0.05 of full scale to the last one before 30 ms without one, named by the hash of its samples, so that a piece cut where no word sounds is heard as exactly the words of the whole that lie in it.\n\n")
	for _, a := range longApproaches {
		fmt.Fprintf(w, "- **%s**: %s\n", a.name, a.about)
	}
	fmt.Fprint(w, "\nVerified: steno's stitched transcript must be the whole file's, word for word (lower-case, without punctuation: a cut between two words of a sentence ends one sentence and starts another), as the fake hears the whole file in one piece; ")
	fmt.Fprint(w, "exactly, when every cut fell where no word sounded; with at most 4 words changed per hard cut (a cut where no pause was found: a word cut through is heard as two others, and the overlap may repeat or drop one on each side); and the server answered only 200s, one per piece. ")
	fmt.Fprint(w, "The naive approach must get back, in order, the transcript of each of its pieces (the text the fake hears in those samples); that its cuts fall through words is its design, so its words are compared with the whole's and reported, not required. ")
	fmt.Fprint(w, "*Wall*: from the call to the text, median [min–max]. *CPU*: the process's user + system time. *Peak RSS*: VmHWM. *Words ≠ whole*: words to insert, delete or replace to make the transcript the whole file's.\n\n")
	fmt.Fprint(w, "| approach | wall (s) | × steno | CPU (s) | peak RSS (MiB) | × steno | Go allocated (MiB) | requests | most in flight | cuts in pauses | words ≠ whole | runs ok |\n")
	fmt.Fprint(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	get := func(name string, f func(longRun) float64) (stat, bool) {
		var xs []float64
		for _, run := range r.runs[name] {
			if run.err == nil {
				xs = append(xs, f(run))
			}
		}
		if len(xs) == 0 {
			return stat{}, false
		}
		slices.Sort(xs)
		med := xs[len(xs)/2]
		if len(xs)%2 == 0 {
			med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
		}
		return stat{med, xs[0], xs[len(xs)-1]}, true
	}
	lwall := func(x longRun) float64 { return x.wall.Seconds() }
	lrss := func(x longRun) float64 { return float64(x.rssKB) / 1024 }
	sw, okW := get(lSteno, lwall)
	sr, okR := get(lSteno, lrss)
	var failures []string
	for _, a := range longApproaches {
		runs := r.runs[a.name]
		ok := 0
		for i, x := range runs {
			if x.err == nil {
				ok++
			} else {
				failures = append(failures, fmt.Sprintf("%s, round %d: %v", a.name, i+1, x.err))
			}
		}
		if ok == 0 {
			fmt.Fprintf(w, "| %s | — | — | — | — | — | — | — | — | — | — | 0/%d |\n", a.name, len(runs))
			continue
		}
		wall, _ := get(a.name, lwall)
		cpu, _ := get(a.name, func(x longRun) float64 { return x.cpu.Seconds() })
		rss, _ := get(a.name, lrss)
		alloc, _ := get(a.name, func(x longRun) float64 { return float64(x.allocBytes) / (1 << 20) })
		reqs, _ := get(a.name, func(x longRun) float64 { return float64(x.requests) })
		fl, _ := get(a.name, func(x longRun) float64 { return float64(x.peakFlight) })
		inPause, _ := get(a.name, func(x longRun) float64 { return float64(x.inPause) })
		pieces, _ := get(a.name, func(x longRun) float64 { return float64(x.pieces) })
		dist, _ := get(a.name, func(x longRun) float64 { return float64(x.distance) })
		fmt.Fprintf(w, "| %s | %.2f [%.2f–%.2f] | %s | %.2f | %.0f [%.0f–%.0f] | %s | %.0f | %.0f | %.0f | %.0f/%.0f | %.0f | %d/%d |\n",
			a.name, wall.med, wall.lo, wall.hi, ratio(wall.med, sw.med, okW), cpu.med, rss.med, rss.lo, rss.hi, ratio(rss.med, sr.med, okR),
			alloc.med, reqs.med, fl.med, inPause.med, pieces.med-1, dist.med, ok, len(runs))
	}
	fmt.Fprintln(w)
	if len(failures) > 0 {
		fmt.Fprint(w, "Failed runs (left out of the medians):\n\n")
		for _, f := range failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
		fmt.Fprintln(w)
	}
	nw, okNW := get(lNaive, lwall)
	nr, okNR := get(lNaive, lrss)
	if !okW || !okNW {
		fmt.Fprint(w, "No verdict: an approach has no successful run.\n\n")
		return
	}
	sumN, _ := get(lNaive, func(x longRun) float64 { return x.latencySum.Seconds() })
	maxS, _ := get(lSteno, func(x longRun) float64 { return x.latencyMax.Seconds() })
	sumS, _ := get(lSteno, func(x longRun) float64 { return x.latencySum.Seconds() })
	fmt.Fprintf(w, "Why the times differ, measured: the naive approach sends its pieces one after another, so it waits for the sum of the fake's answers, %.2f s of its %.2f s; steno sends its pieces at once and waits for the longest, %.2f s of its %.2f s (the sum of its pieces' answers is %.2f s). ",
		sumN.med, nw.med, maxS.med, sw.med, sumS.med)
	if okR && okNR {
		fmt.Fprintf(w, "Why the memory differs: the naive approach holds the whole file's samples (%.0f MiB) and, for each piece, its WAV file and its multipart body in memory (it allocated %.0f MiB of Go heap in all, where steno allocated %.0f MiB); steno streams each piece from its byte range of the file.",
			la.seconds*longaudio.Rate*2/(1<<20), mustMed(get(lNaive, func(x longRun) float64 { return float64(x.allocBytes) / (1 << 20) })),
			mustMed(get(lSteno, func(x longRun) float64 { return float64(x.allocBytes) / (1 << 20) })))
	}
	fmt.Fprint(w, "\n\n")
	var not []string
	if sw.med > nw.med {
		not = append(not, fmt.Sprintf("steno was slower than the naive approach (%.2f s against %.2f s)", sw.med, nw.med))
	}
	if okR && okNR && sr.med > nr.med {
		not = append(not, fmt.Sprintf("steno's peak RSS was above the naive approach's (%.0f MiB against %.0f MiB)", sr.med, nr.med))
	}
	if len(not) > 0 {
		fmt.Fprintf(w, "Where steno is not ahead: %s; the figures above say why.\n\n", strings.Join(not, "; "))
	} else {
		fmt.Fprint(w, "steno is ahead of the naive approach in wall time and peak RSS.\n\n")
	}
}

// mustMed returns a stat's median, or NaN without one.
func mustMed(s stat, ok bool) float64 {
	if !ok {
		return math.NaN()
	}
	return s.med
}
