package transcribe_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

var diarizeMinutes = flag.Int("diarize-minutes", 10, "length of the conversation in TestDiarizeAcrossPieces (the issue's figure is 120)")

const diarizeModel = "gpt-4o-transcribe-diarize"

// diarizedRequest is what the fake saw of one diarized request.
type diarizedRequest struct {
	piece    string
	names    []string
	refs     int
	chunking string
}

// recordDiarized wraps a Transcriber to record the known speakers and
// chunking of each request, in the order they arrive, and to take delay
// over each, so that requests in parallel overlap at the fake.
func recordDiarized(tr transcribetest.TranscribeFunc, delay time.Duration) (transcribetest.TranscribeFunc, func() []diarizedRequest) {
	var mu sync.Mutex
	var seen []diarizedRequest
	return func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
			mu.Lock()
			seen = append(seen, diarizedRequest{piece: a.Filename, names: a.Fields["known_speaker_names[]"],
				refs: len(a.Fields["known_speaker_references[]"]), chunking: strings.Join(a.Fields["chunking_strategy"], ",")})
			mu.Unlock()
			time.Sleep(delay)
			return tr(ctx, a)
		}, func() []diarizedRequest {
			mu.Lock()
			defer mu.Unlock()
			return append([]diarizedRequest(nil), seen...)
		}
}

// checkSpeakers checks that tr, a diarized transcript of rec heard by
// hearWords (a segment a word), has every word once, in order, on time,
// and names each of rec's speakers with one label, a label per speaker.
func checkSpeakers(t *testing.T, rec *recording, tr *transcribe.Transcription) {
	t.Helper()
	if len(tr.Segments) != len(rec.words) {
		t.Fatalf("%d segments for %d words", len(tr.Segments), len(rec.words))
	}
	label, speaker := map[int]string{}, map[string]int{}
	worst := 0.0
	for i, s := range tr.Segments {
		w := rec.words[i]
		if got, want := strings.TrimSpace(s.Text), fmt.Sprintf("w%d.", w.label); got != want {
			t.Fatalf("segment %d at %.2f s: %q, want %q", i, s.Start, got, want)
		}
		worst = max(worst, math.Abs(s.Start-w.start))
		if l, ok := label[w.speaker]; ok && l != s.Speaker {
			t.Fatalf("speaker %d is %q at %.2f s, %q before", w.speaker, s.Speaker, s.Start, l)
		}
		if p, ok := speaker[s.Speaker]; ok && p != w.speaker {
			t.Fatalf("%q is speaker %d at %.2f s, speaker %d before", s.Speaker, w.speaker, s.Start, p)
		}
		label[w.speaker], speaker[s.Speaker] = s.Speaker, w.speaker
	}
	if worst > 0.05 {
		t.Fatalf("a segment is %.0f ms off its word", worst*1000)
	}
	t.Logf("%d words, %d speakers named %v; worst start error %.1f ms", len(rec.words), len(label), label, worst*1000)
}

// A long diarized_json conversation is cut (by the model's 1,400 s cap,
// or scaled down, by SplitOptions.MaxDuration) and comes back as one
// transcript whose speakers keep one name each across all the pieces:
// the first piece is sent alone, every piece after it with
// chunking_strategy and the known speakers heard so far (a clip of each,
// recognised by the fake), in order; once four speakers are known, the
// rest go in parallel. A stream of the same file names them the same.
func TestDiarizeAcrossPieces(t *testing.T) {
	minutes := *diarizeMinutes
	split := transcribe.SplitOptions{MaxDuration: 2 * time.Minute} // scaled down: pieces of at most 2 min
	if minutes >= 60 {
		split = transcribe.SplitOptions{} // the model's own cap
	}
	for _, tc := range []struct {
		speakers int
		parallel bool // the pieces after the first go in parallel: 4 are known
	}{{3, false}, {4, true}} {
		t.Run(fmt.Sprintf("%d speakers", tc.speakers), func(t *testing.T) {
			rec := newConversation(8000, time.Duration(minutes)*time.Minute, uint64(20+tc.speakers), tc.speakers)
			path := rec.writeWAV(t, t.TempDir())
			tr, seen := recordDiarized(hearWords, 20*time.Millisecond)
			c, srv := newClient(t, transcribetest.Config{Transcriber: tr}, transcribe.WithSplitting(split))
			req := transcribe.Request{Model: diarizeModel, ResponseFormat: transcribe.DiarizedJSON}
			got, err := c.TranscribeFile(context.Background(), path, req)
			if err != nil {
				t.Fatal(err)
			}
			checkSpeakers(t, rec, got)
			reqs := seen()
			if len(got.Pieces) < max(3, minutes/25) || len(reqs) != len(got.Pieces) {
				t.Fatalf("%d pieces, %d requests", len(got.Pieces), len(reqs))
			}
			for i, r := range reqs {
				if r.chunking != "auto" || len(r.names) != r.refs || (i == 0) != (r.refs == 0) {
					t.Errorf("request %d (%s): chunking %q, names %q, %d references", i, r.piece, r.chunking, r.names, r.refs)
				}
			}
			last := reqs[len(reqs)-1]
			if last.refs != tc.speakers {
				t.Errorf("the last piece knew %d speakers (%q) of %d", last.refs, last.names, tc.speakers)
			}
			if most := srv.Stats().MaxInFlight; (most > 1) != tc.parallel {
				t.Errorf("%d pieces in flight at most", most)
			}
			t.Logf("%d min, %d pieces; known speakers per request: %v", minutes, len(got.Pieces), refCounts(reqs))

			// A stream: the same names, in its segment events too, at the
			// file's times.
			var done *transcribe.Transcription
			events := 0
			for ev, err := range c.TranscribeFileStream(context.Background(), path, req) {
				if err != nil {
					t.Fatalf("stream: %v", err)
				}
				switch ev.Type {
				case transcribe.EventSegment:
					if s := got.Segments[events]; ev.Segment.Speaker != s.Speaker || math.Abs(ev.Segment.Start-s.Start) > 0.01 {
						t.Fatalf("stream: segment event %d: %+v, want %+v", events, *ev.Segment, s)
					}
					events++
				case transcribe.EventDone:
					done = ev.Transcription
				}
			}
			// (A stream tells no duration: the rest is the same.)
			if done == nil || done.Text != got.Text || fmt.Sprint(done.Segments) != fmt.Sprint(got.Segments) || events != len(got.Segments) {
				t.Fatalf("stream: %d segment events; done %.200s\nwant %.200s", events, done.Raw, got.Raw)
			}
		})
	}
}

// refCounts lists how many known speakers each request named.
func refCounts(reqs []diarizedRequest) []int {
	n := make([]int, len(reqs))
	for i, r := range reqs {
		n[i] = r.refs
	}
	return n
}

// A batch keeps the pieces of a diarized file as they arrive: when one
// fails, the re-run sends only it and those after it, with the same
// known speakers as a run that never failed (the clips are cut again,
// the same, from the kept pieces), and writes the same transcript.
func TestBatchDiarizedResume(t *testing.T) {
	dir := t.TempDir()
	rec := newConversation(8000, 7*time.Minute, 31, 3)
	path := rec.writeWAV(t, dir)
	var failing sync.Mutex
	fail := true
	tr, seen := recordDiarized(failPieces(func(n int) error {
		failing.Lock()
		defer failing.Unlock()
		if fail && n == 3 {
			return errDamaged
		}
		return nil
	}), 0)
	c, _ := newClient(t, transcribetest.Config{Transcriber: tr}, transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 2 * time.Minute}))
	req := transcribe.Request{Model: diarizeModel, ResponseFormat: transcribe.DiarizedJSON}
	w, err := transcribe.NewOutputWriter(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	opts := transcribe.BatchOptions{Output: w, Request: req}
	r := collect(t, c, pathJobs(path), opts)[path]
	if r.Status != transcribe.StatusFailed || !errors.As(r.Err, new(*transcribe.PartialError)) || len(seen()) != 3 {
		t.Fatalf("first run: %s %v, %d requests", r.Status, r.Err, len(seen()))
	}
	failing.Lock()
	fail = false
	failing.Unlock()
	r = collect(t, c, pathJobs(path), opts)[path]
	reqs := seen()
	if r.Status != transcribe.StatusDone || len(reqs) != 3+len(r.Transcription.Pieces)-2 {
		t.Fatalf("re-run: %s %v, %d requests in all for %d pieces", r.Status, r.Err, len(reqs), len(r.Transcription.Pieces))
	}
	checkSpeakers(t, rec, r.Transcription)
	if a, b := reqs[2], reqs[3]; a.piece != b.piece || fmt.Sprint(a.names) != fmt.Sprint(b.names) {
		t.Fatalf("the failed piece was sent as %+v, then as %+v", a, b)
	}

	fresh, err := transcribe.NewOutputWriter(filepath.Join(dir, "fresh"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	opts.Output = fresh
	f := collect(t, c, pathJobs(path), opts)[path]
	resumed, _ := os.ReadFile(r.OutputPath)
	want, _ := os.ReadFile(f.OutputPath)
	if string(resumed) != string(want) {
		t.Fatalf("resumed:\n%.300s\nfresh:\n%.300s", resumed, want)
	}
}
