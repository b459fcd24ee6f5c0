package transcribe_test

import (
	"context"
	"math"
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

// withSilence returns rec with silence (its noise alone) put in: lead
// before it, trail after it, and each of mids in one of its pauses, spread
// over it.
func withSilence(rec *recording, lead, trail time.Duration, mids ...time.Duration) *recording {
	out := *rec
	out.words = append([]word(nil), rec.words...)
	out.pauses = nil
	shift := lead.Seconds()
	next := 0 // the next of mids
	for i, p := range rec.pauses {
		// A pause at every len/(mids+1)-th place takes the next.
		put := 0.0
		if next < len(mids) && i == (next+1)*len(rec.pauses)/(len(mids)+1) {
			put = mids[next].Seconds()
			next++
		}
		out.pauses = append(out.pauses, [2]float64{p[0] + shift, p[1] + shift + put})
		for k := range out.words {
			if rec.words[k].start >= p[1] && (i+1 == len(rec.pauses) || rec.words[k].start < rec.pauses[i+1][1]) {
				out.words[k].start += shift + put
				out.words[k].end += shift + put
			}
		}
		shift += put
	}
	for k := range out.words { // before the first pause
		if rec.words[k].start < rec.pauses[0][1] {
			out.words[k].start += lead.Seconds()
			out.words[k].end += lead.Seconds()
		}
	}
	total := lead + trail
	for _, m := range mids {
		total += m
	}
	out.n = rec.n + int(total.Seconds()*float64(rec.rate))
	return &out
}

// audioSent wraps a Transcriber to add up the seconds of audio the fake
// receives, measured from each file.
func audioSent(tr transcribetest.TranscribeFunc) (transcribetest.TranscribeFunc, func() float64) {
	var mu sync.Mutex
	sum := 0.0
	return func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
			info, err := audio.Probe(a.File, a.Size)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			sum += info.Duration.Seconds()
			mu.Unlock()
			return tr(ctx, a)
		}, func() float64 {
			mu.Lock()
			defer mu.Unlock()
			return sum
		}
}

// SkipSilence: a 10-minute recording of which 3 minutes are silence (30 s
// before, 30 s after, 4 pauses of 30 s) sends at most 7.2 minutes of
// audio, measured at the fake, in one request, or in pieces when it is
// cut; every word comes back once, within 30 ms of when it was said in
// the original, in the srt cues too; SkippedSeconds is what was not
// sent. MP3 too.
func TestSkipSilence(t *testing.T) {
	speech := newRecording(16000, 7*time.Minute, 41)
	rec := withSilence(speech, 30*time.Second, 30*time.Second, 30*time.Second, 30*time.Second, 30*time.Second, 30*time.Second)
	dir := t.TempDir()
	wav := rec.writeWAV(t, dir)
	if d := float64(rec.n) / float64(rec.rate); d != 600 {
		t.Fatalf("%v s", d)
	}
	files := map[string]string{"wav": wav}
	if _, err := exec.LookPath("lame"); err == nil || os.Getenv("CI") == "true" {
		mp3 := filepath.Join(dir, "talk.mp3")
		if out, err := exec.Command("lame", "--silent", "-b", "64", wav, mp3).CombinedOutput(); err != nil {
			t.Fatalf("lame: %v %s", err, out)
		}
		files["mp3"] = mp3
	}
	for name, path := range files {
		for _, split := range []transcribe.SplitOptions{{SkipSilence: true}, {SkipSilence: true, MaxDuration: 2 * time.Minute}} {
			tr, sent := audioSent(hearWords)
			c, srv := newClient(t, transcribetest.Config{Transcriber: tr}, transcribe.WithSplitting(split))
			got, err := c.TranscribeFile(context.Background(), path, wordTimes)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkWords(t, rec, got, 0.03)
			if math.Abs(got.Duration-600) > 0.1 { // MP3: to a frame
				t.Errorf("%s: duration %v, want the file's 600 s", name, got.Duration)
			}
			charged := 0.0
			for _, a := range srv.Stats().Audio {
				charged += a.Seconds
			}
			s := sent()
			// What is sent twice (an MP3 piece's pre-roll) is not
			// skipped: sent and skipped add up to a little more.
			if s > 7.2*60 || math.Abs(600-s-got.SkippedSeconds) > 1 || (split.MaxDuration == 0) != (len(got.Pieces) == 1) {
				t.Errorf("%s, %+v: %.2f s sent of 600 (skipped %.2f) in %d pieces", name, split, s, got.SkippedSeconds, len(got.Pieces))
			}
			t.Logf("%s, cut %v: %d pieces, %.2f s of audio sent (%.0f s charged), %.2f s skipped", name, split.MaxDuration, len(got.Pieces), s, charged, got.SkippedSeconds)

			srt, err := c.TranscribeFile(context.Background(), path, transcribe.Request{ResponseFormat: transcribe.SRT})
			if err != nil {
				t.Fatal(err)
			}
			if len(srt.Segments) != len(rec.words) {
				t.Fatalf("%s: %d cues for %d words", name, len(srt.Segments), len(rec.words))
			}
			for i, cue := range srt.Segments {
				if w := rec.words[i]; math.Abs(cue.Start-w.start) > 0.03 || strings.TrimSpace(cue.Text) == "" {
					t.Fatalf("%s: cue %d at %.3f s, word at %.3f s", name, i, cue.Start, w.start)
				}
			}
		}
	}
}

// Without SkipSilence, the same file is sent whole: 600 s.
func TestSkipSilenceOffByDefault(t *testing.T) {
	rec := withSilence(newRecording(16000, time.Minute, 42), 20*time.Second, 20*time.Second)
	path := rec.writeWAV(t, t.TempDir())
	tr, sent := audioSent(hearWords)
	c, _ := newClient(t, transcribetest.Config{Transcriber: tr})
	got, err := c.TranscribeFile(context.Background(), path, wordTimes)
	if err != nil {
		t.Fatal(err)
	}
	checkWords(t, rec, got, 0.03)
	if sent() != 100 || got.SkippedSeconds != 0 || len(got.Pieces) != 0 {
		t.Fatalf("%.2f s sent, %.2f skipped, %d pieces", sent(), got.SkippedSeconds, len(got.Pieces))
	}
	if _, err := transcribe.NewClient(transcribe.WithAPIKey("k"), transcribe.WithSplitting(transcribe.SplitOptions{SkipSilence: true, SkipPause: 500 * time.Millisecond})); err == nil {
		t.Fatal("a SkipPause of 500ms is accepted")
	}
}
