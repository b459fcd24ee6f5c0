package transcribe_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

var splitMinutes = flag.Int("split-minutes", 4, "length of the generated recordings in the splitting tests (the issue's figure is 60)")

// recording is generated "speech" with known content: words (tone bursts,
// each word's pitch naming it) in sentences separated by pauses, over
// noise at -40 dBFS.
type recording struct {
	rate   int
	n      int
	words  []word
	pauses [][2]float64 // seconds: the gaps between sentences
	voiced bool         // each word carries its speaker's voice (see newConversation)
}

type word struct {
	start, end float64 // seconds
	label      int     // 0..19, from the pitch
	speaker    int     // whose voice it carries, when the recording is voiced
}

// newConversation is newRecording with speakers: each sentence is said
// by one of speakers people, chosen at random, and carries their voice
// (transcribetest.Voice), by which the fake's diarizer tells them apart.
func newConversation(rate int, length time.Duration, seed uint64, speakers int) *recording {
	r := newRecording(rate, length, seed)
	r.voiced = true
	rng := rand.New(rand.NewPCG(seed, 11))
	who, p := rng.IntN(speakers), 0
	for i := range r.words {
		for p < len(r.pauses) && r.pauses[p][1] <= r.words[i].start {
			who, p = rng.IntN(speakers), p+1 // a new sentence
		}
		r.words[i].speaker = who
	}
	return r
}

// pitch is the frequency that says label.
func pitch(label int) float64 { return 300 + 40*float64(label) }

func newRecording(rate int, length time.Duration, seed uint64) *recording {
	rng := rand.New(rand.NewPCG(seed, 7))
	r := &recording{rate: rate, n: int(length.Seconds() * float64(rate))}
	pos := 0.5
	for pos < length.Seconds()-3 {
		for w := range 2 + rng.IntN(6) {
			if w > 0 {
				pos += 0.08 + 0.1*rng.Float64()
			}
			d := 0.2 + 0.3*rng.Float64()
			r.words = append(r.words, word{start: pos, end: pos + d, label: rng.IntN(20)})
			pos += d
		}
		gap := 0.6 + 1.2*rng.Float64()
		r.pauses = append(r.pauses, [2]float64{pos, pos + gap})
		pos += gap
	}
	return r
}

func (r *recording) sample(i int) float64 {
	t := float64(i) / float64(r.rate)
	v := 0.01 * math.Sin(float64(i)*1.7+math.Sin(float64(i)*0.31)*40) // stand-in for noise, -40 dB
	// Binary search would be faster; words are few per second.
	k := int(t / (float64(r.n) / float64(r.rate)) * float64(len(r.words)))
	for k > 0 && k < len(r.words) && r.words[k].start > t {
		k--
	}
	for k < len(r.words) && r.words[k].end < t {
		k++
	}
	if k < len(r.words) && t >= r.words[k].start && t < r.words[k].end {
		w := r.words[k]
		env := min(1, (t-w.start)/0.01, (w.end-t)/0.01)
		v += 0.5 * env * math.Sin(2*math.Pi*pitch(w.label)*(t-w.start))
		if r.voiced {
			v += 0.15 * env * math.Sin(2*math.Pi*transcribetest.Voice(w.speaker)*(t-w.start))
		}
	}
	return v
}

func (r *recording) writeWAV(t testing.TB, dir string) string {
	path := filepath.Join(dir, "talk.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(audio.SynthWAV(f, r.rate, r.n, r.sample), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// inPause reports whether the time s falls in one of the pauses.
func (r *recording) inPause(s float64) bool {
	for _, p := range r.pauses {
		if s >= p[0] && s <= p[1] {
			return true
		}
	}
	return false
}

// hearWords is the fake's transcriber for recordings: it decodes the
// audio it receives and writes one segment per word it hears, named by
// its pitch ("w7."), at the time it hears it.
func hearWords(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
	d, err := audio.NewDecoder(ctx, a.File, a.Size)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	rate := d.SampleRate()
	win := rate / 100 // 10 ms
	buf := make([]float32, win)
	var tr transcribetest.Transcript
	var burst []float32 // the samples of the word being heard
	var start float64
	n := 0
	for readFull(d, buf) {
		var sum float64
		for _, v := range buf {
			sum += float64(v) * float64(v)
		}
		loud := math.Sqrt(sum/float64(win)) > 0.1
		t := float64(n) / float64(rate)
		switch {
		case loud:
			if burst == nil {
				start = t
			}
			burst = append(burst, buf...)
		case burst != nil:
			if t-start >= 0.05 {
				tr.Segments = append(tr.Segments, transcribetest.Segment{Start: start, End: t, Text: fmt.Sprintf("w%d.", label(burst, rate))})
			}
			burst = nil
		}
		n += win
	}
	tr.Duration = float64(n) / float64(rate)
	return &tr, nil
}

// label returns the word whose pitch is strongest in samples (Goertzel).
func label(samples []float32, rate int) int {
	best, bestPower := 0, -1.0
	for l := range 20 {
		w := 2 * math.Pi * pitch(l) / float64(rate)
		var s1, s2 float64
		for _, x := range samples {
			s1, s2 = float64(x)+2*math.Cos(w)*s1-s2, s1
		}
		if p := s1*s1 + s2*s2 - 2*math.Cos(w)*s1*s2; p > bestPower {
			best, bestPower = l, p
		}
	}
	return best
}

// readFull fills buf from d, reporting false at the end of the audio.
func readFull(d audio.Decoder, buf []float32) bool {
	for n := 0; n < len(buf); {
		k, err := d.Read(buf[n:])
		n += k
		if err != nil {
			return false
		}
	}
	return true
}

func TestSplitLongWAV(t *testing.T) {
	rec := newRecording(16000, time.Duration(*splitMinutes)*time.Minute, 1)
	path := rec.writeWAV(t, t.TempDir())
	split := transcribe.SplitOptions{MaxBytes: 1 << 20} // scaled down: pieces of ~33 s
	if *splitMinutes >= 30 {
		split = transcribe.SplitOptions{} // the API's own limit
	}
	c, srv := newClient(t, transcribetest.Config{Transcriber: hearWords}, transcribe.WithSplitting(split))
	tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{
		ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord, transcribe.GranularitySegment},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkWords(t, rec, tr, 0.05)
	if len(tr.Pieces) < 2 || srv.Stats().Requests != len(tr.Pieces) {
		t.Fatalf("%d pieces, %d requests", len(tr.Pieces), srv.Stats().Requests)
	}
	for i, p := range tr.Pieces {
		if i > 0 && (!p.Silence || !rec.inPause(p.Start)) {
			t.Errorf("piece %d starts at %.3f s, not in a pause (silence cut: %v)", i, p.Start, p.Silence)
		}
	}
	t.Logf("%d min of audio, %d words, %d pieces", *splitMinutes, len(rec.words), len(tr.Pieces))
}

// checkWords checks that tr has every word of rec exactly once, in order,
// each within tol seconds of when it was said.
func checkWords(t *testing.T, rec *recording, tr *transcribe.Transcription, tol float64) {
	t.Helper()
	var got []string
	for _, w := range tr.Words {
		got = append(got, strings.Trim(w.Word, " ."))
	}
	var want []string
	for _, w := range rec.words {
		want = append(want, fmt.Sprintf("w%d", w.label))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference at word %d (%.2f s): got %s, want %s", i, rec.words[i].start, got[i], want[i])
				break
			}
		}
		t.Fatalf("words differ: got %d, want %d\n got %.200s\nwant %.200s", len(got), len(want), strings.Join(got, " "), strings.Join(want, " "))
	}
	worst := 0.0
	for i, w := range tr.Words {
		worst = max(worst, math.Abs(w.Start-rec.words[i].start))
	}
	t.Logf("worst word start error: %.1f ms", worst*1000)
	if worst > tol {
		t.Fatalf("a word is %.0f ms off its time", worst*1000)
	}
	if len(strings.Fields(tr.Text)) != len(want) {
		t.Fatalf("text has %d words, want %d", len(strings.Fields(tr.Text)), len(want))
	}
}

func TestSplitLongMP3(t *testing.T) {
	if _, err := exec.LookPath("lame"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI installs lame")
		}
		t.Skip("lame is not installed")
	}
	rec := newRecording(16000, time.Duration(*splitMinutes)*time.Minute, 2)
	dir := t.TempDir()
	wav := rec.writeWAV(t, dir)
	mp3 := filepath.Join(dir, "talk.mp3")
	if out, err := exec.Command("lame", "--silent", "-b", "64", wav, mp3).CombinedOutput(); err != nil {
		t.Fatalf("lame: %v %s", err, out)
	}
	split := transcribe.SplitOptions{MaxBytes: 512 << 10} // scaled down: pieces of ~64 s
	if *splitMinutes >= 30 {
		split = transcribe.SplitOptions{}
	}
	c, _ := newClient(t, transcribetest.Config{Transcriber: hearWords}, transcribe.WithSplitting(split))
	tr, err := c.TranscribeFile(context.Background(), mp3, transcribe.Request{
		ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkWords(t, rec, tr, 0.03) // lame's Info tag gives the codec delay: see audio.Piece.Offset
	for i, p := range tr.Pieces {
		if i > 0 && !p.Silence {
			t.Errorf("piece %d: a hard cut", i)
		}
	}
	t.Logf("%d min of MP3, %d pieces", *splitMinutes, len(tr.Pieces))
}

// Chained prompts: each piece carries the end of the previous transcript,
// and pieces go one at a time. MaxDuration cuts a file that fits.
func TestSplitChainsPrompts(t *testing.T) {
	rec := newRecording(16000, 90*time.Second, 3)
	path := rec.writeWAV(t, t.TempDir())
	var mu sync.Mutex
	var prompts []string
	inFlight, most := 0, 0
	c, _ := newClient(t, transcribetest.Config{Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		mu.Lock()
		prompts = append(prompts, a.Prompt)
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		return hearWords(ctx, a)
	}}, transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 30 * time.Second, ChainPrompts: true}))
	tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{Prompt: "A talk.", ResponseFormat: transcribe.SRT})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Pieces) < 3 || most != 1 || len(prompts) != len(tr.Pieces) {
		t.Fatalf("%d pieces, %d prompts, %d at once", len(tr.Pieces), len(prompts), most)
	}
	if prompts[0] != "A talk." || !strings.HasPrefix(prompts[1], "w") || !strings.HasSuffix(prompts[1], ".") {
		t.Fatalf("prompts %q", prompts)
	}
	// The SRT is rendered from the stitched segments: numbered 1..n,
	// times increasing.
	if !strings.HasPrefix(string(tr.Raw), "1\n00:00:0") || len(tr.Segments) != len(rec.words) {
		t.Fatalf("srt: %d segments for %d words: %.100q", len(tr.Segments), len(rec.words), tr.Raw)
	}
	for i := 1; i < len(tr.Segments); i++ {
		if tr.Segments[i].Start < tr.Segments[i-1].End {
			t.Fatalf("cue %d starts before cue %d ends", i+1, i)
		}
	}
}

// A file with no pause at all is cut hard, with an overlap that the
// stitching removes: every word once.
func TestSplitWithoutPauses(t *testing.T) {
	rec := newRecording(16000, 3*time.Minute, 4)
	// Close every gap: words follow each other with 80 ms between them.
	pos := 0.5
	for i := range rec.words {
		d := rec.words[i].end - rec.words[i].start
		rec.words[i].start, rec.words[i].end = pos, pos+d
		pos += d + 0.08
	}
	rec.pauses = nil
	path := rec.writeWAV(t, t.TempDir())
	c, _ := newClient(t, transcribetest.Config{Transcriber: hearWords}, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 1 << 20}))
	tr, err := c.TranscribeFile(context.Background(), path, transcribe.Request{
		ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord},
	})
	if err != nil {
		t.Fatal(err)
	}
	hard := 0
	for _, p := range tr.Pieces[1:] {
		if !p.Silence && p.Overlap > 0 {
			hard++
		}
	}
	if hard == 0 {
		t.Fatalf("no hard cut: %+v", tr.Pieces)
	}
	checkWords(t, rec, tr, 0.05)
}

// needFFmpeg skips the test when ffmpeg is missing, except under CI=true,
// whose .ci/run installs it.
func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI installs ffmpeg")
		}
		t.Skip("ffmpeg is not installed")
	}
}

// ffmpegConvert converts the audio file in to out with ffmpeg args.
func ffmpegConvert(t *testing.T, in, out string, args ...string) {
	t.Helper()
	args = append(append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", in}, args...), out)
	if msg, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, msg)
	}
}

// An M4A file over the limit is re-encoded to FLAC by ffmpeg and cut in
// its pauses; the pieces go as .flac files.
func TestSplitM4A(t *testing.T) {
	needFFmpeg(t)
	rec := newRecording(16000, 3*time.Minute, 5)
	dir := t.TempDir()
	m4a := filepath.Join(dir, "talk.m4a")
	ffmpegConvert(t, rec.writeWAV(t, dir), m4a, "-ac", "2", "-ar", "44100", "-b:a", "192k")
	var mu sync.Mutex
	var names []string
	c, _ := newClient(t, transcribetest.Config{Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		mu.Lock()
		names = append(names, a.Filename)
		mu.Unlock()
		return hearWords(ctx, a)
	}}, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 1 << 20}), transcribe.WithTempDir(t.TempDir()))
	tr, err := c.TranscribeFile(context.Background(), m4a, transcribe.Request{
		ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkWords(t, rec, tr, 0.05)
	if len(tr.Pieces) < 3 || len(names) != len(tr.Pieces) {
		t.Fatalf("%d pieces, %d requests", len(tr.Pieces), len(names))
	}
	for i, p := range tr.Pieces {
		if i > 0 && (!p.Silence || !rec.inPause(p.Start)) {
			t.Errorf("piece %d starts at %.3f s, not in a pause", i, p.Start)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "talk.part") || !strings.HasSuffix(n, ".flac") {
			t.Errorf("a piece was sent as %q", n)
		}
	}
}

// Shrink: a WAV over the limit is re-encoded to 16 kHz mono FLAC, which
// fits in one request.
func TestSplitShrink(t *testing.T) {
	needFFmpeg(t)
	rec := newRecording(16000, 40*time.Second, 6)
	dir := t.TempDir()
	stereo := filepath.Join(dir, "stereo.wav")
	ffmpegConvert(t, rec.writeWAV(t, dir), stereo, "-ac", "2", "-ar", "44100")
	c, srv := newClient(t, transcribetest.Config{Transcriber: hearWords},
		transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 2 << 20, Shrink: true}))
	tr, err := c.TranscribeFile(context.Background(), stereo, transcribe.Request{
		ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkWords(t, rec, tr, 0.05)
	if st, _ := os.Stat(stereo); st.Size() < 6<<20 || len(tr.Pieces) != 1 || srv.Stats().Requests != 1 {
		t.Fatalf("%d pieces, %d requests", len(tr.Pieces), srv.Stats().Requests)
	}
}

// A batch cuts its long files like TranscribeFile does; each piece is a
// request that counts against MaxRequests, and the stitched transcript
// is what reaches the output.
func TestBatchSplitsLongFiles(t *testing.T) {
	dir := t.TempDir()
	rec := newRecording(16000, 90*time.Second, 8)
	long := rec.writeWAV(t, dir)
	short := writeWAV(t, dir, "short.wav", 2)
	c, srv := newClient(t, transcribetest.Config{Transcriber: hearWords}, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 1 << 20}))
	out, err := transcribe.NewOutputWriter(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	jobs := func(yield func(transcribe.Job) bool) {
		_ = yield(transcribe.Job{Path: long}) && yield(transcribe.Job{Path: short})
	}
	results, err := c.BatchTranscribe(context.Background(), jobs, transcribe.BatchOptions{
		Output: out, Request: transcribe.Request{ResponseFormat: transcribe.VerboseJSON},
	})
	if err != nil {
		t.Fatal(err)
	}
	for r := range results {
		if r.Status != transcribe.StatusDone {
			t.Fatalf("%s: %s %v", r.Job.Path, r.Status, r.Err)
		}
		if r.Job.Path != long {
			continue
		}
		if n := len(r.Transcription.Pieces); n < 3 || r.Attempts != n {
			t.Errorf("long file: %d pieces, %d attempts", n, r.Attempts)
		}
		b, err := os.ReadFile(r.OutputPath)
		if err != nil {
			t.Fatal(err)
		}
		var saved struct {
			Duration float64
			Segments []struct{ Text string }
		}
		if err := json.Unmarshal(b, &saved); err != nil || math.Abs(saved.Duration-90) > 0.05 || len(saved.Segments) != len(rec.words) {
			t.Errorf("long file's output (%v): %.300s", err, b)
		}
	}
	if n := srv.Stats().Requests; n < 4 {
		t.Errorf("%d requests", n)
	}

	// A request cap stops the pieces too.
	results, _ = c.BatchTranscribe(context.Background(), func(yield func(transcribe.Job) bool) { yield(transcribe.Job{Path: long}) },
		transcribe.BatchOptions{MaxRequests: 1})
	capped := 0
	for r := range results {
		if capped++; r.Err == nil || !errors.Is(r.Err, transcribe.ErrBudgetReached) {
			t.Errorf("capped: %s %v", r.Status, r.Err)
		}
	}
	if capped != 1 {
		t.Errorf("%d results of 1 capped job", capped)
	}
}

// A dry run fails, without sending or decoding, a file over the limit
// that cannot be cut; one that can be cut is planned.
func TestBatchDryRunChecksCuts(t *testing.T) {
	dir := t.TempDir()
	long := newRecording(16000, 60*time.Second, 9).writeWAV(t, dir)
	adpcm := writeUnsplittable(t, dir, 30<<20)
	c, srv := newClient(t, transcribetest.Config{}, transcribe.WithSplitting(transcribe.SplitOptions{MaxBytes: 1 << 20}))
	got := collect(t, c, pathJobs(long, adpcm), transcribe.BatchOptions{DryRun: true})
	if r := got[long]; r.Status != transcribe.StatusPlanned || r.AudioSeconds != 60 {
		t.Errorf("long file: %s, %v s, %v", r.Status, r.AudioSeconds, r.Err)
	}
	if r := got[adpcm]; r.Status != transcribe.StatusFailed || !errors.Is(r.Err, transcribe.ErrFileTooLarge) || !strings.Contains(r.Err.Error(), "cannot be cut") {
		t.Errorf("ADPCM file: %s, %v", r.Status, r.Err)
	}
	// diarized_json is cut too.
	req := transcribe.Request{Model: "gpt-4o-transcribe-diarize", ResponseFormat: transcribe.DiarizedJSON}
	got = collect(t, c, pathJobs(long), transcribe.BatchOptions{DryRun: true, Request: req})
	if r := got[long]; len(got) != 1 || r.Status != transcribe.StatusPlanned {
		t.Errorf("diarized: %+v", got)
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
}
