package transcribe_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// failPieces is a Transcriber that hears words (see hearWords) except in
// the pieces whose number fail returns an error for (nil: heard).
func failPieces(fail func(piece int) error) transcribetest.TranscribeFunc {
	return func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		var n int
		if i := strings.Index(a.Filename, ".part"); i >= 0 {
			fmt.Sscanf(a.Filename[i+len(".part"):], "%d", &n)
		}
		if err := fail(n); err != nil {
			return nil, err
		}
		return hearWords(ctx, a)
	}
}

// errDamaged is the 400 OpenAI answers for audio it cannot decode.
var errDamaged = &transcribetest.Error{Status: 400, Param: "file", Message: "Audio file might be corrupted or unsupported"}

// errQuota is the 429 of an exhausted quota.
var errQuota = &transcribetest.Error{Status: 429, Type: "insufficient_quota", Code: "insufficient_quota",
	Message: "You exceeded your current quota, please check your plan and billing details."}

// without returns rec without the words said in the ranges.
func without(rec *recording, ranges []transcribe.TimeRange) *recording {
	out := *rec
	out.words = nil
	for _, w := range rec.words {
		in := false
		for _, r := range ranges {
			in = in || w.start >= r.Start && w.end <= r.End
		}
		if !in {
			out.words = append(out.words, w)
		}
	}
	return &out
}

var wordTimes = transcribe.Request{
	ResponseFormat: transcribe.VerboseJSON, TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord},
}

// A file cut into pieces one of which fails (a 400 for a damaged
// stretch): with AllowPartial, the others are stitched and Missing says
// which stretch has no transcript, exactly that piece's; the words of the
// others are all there, once, on time, whichever piece fails (the last
// too: the duration is still the file's). Without it, a *PartialError
// lists the same stretch and matches the piece's error.
func TestPartialResults(t *testing.T) {
	rec := newRecording(16000, 100*time.Second, 11)
	path := rec.writeWAV(t, t.TempDir())
	ctx := context.Background()
	var failing atomic.Int32
	failing.Store(2)
	cfg := transcribetest.Config{Transcriber: failPieces(func(n int) error {
		if n == int(failing.Load()) {
			return errDamaged
		}
		return nil
	})}
	split := transcribe.SplitOptions{MaxDuration: 30 * time.Second, AllowPartial: true}
	c, srv := newClient(t, cfg, transcribe.WithSplitting(split))
	tr, err := c.TranscribeFile(ctx, path, wordTimes)
	if err != nil {
		t.Fatal(err)
	}
	ps := tr.Pieces
	if len(ps) < 4 || srv.Stats().Requests != len(ps) || tr.Attempts != len(ps) {
		t.Fatalf("%d pieces, %d requests, %d attempts", len(ps), srv.Stats().Requests, tr.Attempts)
	}
	want := []transcribe.TimeRange{{Start: ps[1].Start, End: ps[1].End}}
	if fmt.Sprint(tr.Missing) != fmt.Sprint(want) || ps[1].Start != ps[0].End || ps[1].End != ps[2].Start {
		t.Fatalf("missing %v, want %v (pieces %+v)", tr.Missing, want, ps)
	}
	checkWords(t, without(rec, tr.Missing), tr, 0.05)
	if len(without(rec, tr.Missing).words) == len(rec.words) || math.Abs(tr.Duration-100) > 0.05 {
		t.Fatalf("the missing piece held no word, or the duration is %v", tr.Duration)
	}

	// The last piece: the duration is still the file's, in the document too.
	failing.Store(int32(len(ps)))
	tr, err = c.TranscribeFile(ctx, path, wordTimes)
	if err != nil {
		t.Fatal(err)
	}
	last := ps[len(ps)-1]
	if fmt.Sprint(tr.Missing) != fmt.Sprint([]transcribe.TimeRange{{Start: last.Start, End: 100}}) ||
		math.Abs(tr.Duration-100) > 0.05 || !strings.Contains(string(tr.Raw), `"duration":100`) {
		t.Fatalf("last piece missing: %v, duration %v, %.80s", tr.Missing, tr.Duration, tr.Raw)
	}
	checkWords(t, without(rec, tr.Missing), tr, 0.05)

	// A stream: the pieces after the failed one are sent too.
	failing.Store(2)
	var done *transcribe.Transcription
	for ev, err := range c.TranscribeFileStream(ctx, path, transcribe.Request{}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if ev.Type == transcribe.EventDone {
			done = ev.Transcription
		}
	}
	if done == nil || fmt.Sprint(done.Missing) != fmt.Sprint(want) || len(strings.Fields(done.Text)) != len(without(rec, want).words) {
		t.Fatalf("stream: %+v", done)
	}

	// Without AllowPartial: an error that says what is missing and why.
	strict, _ := newClient(t, cfg, transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 30 * time.Second}))
	_, err = strict.TranscribeFile(ctx, path, wordTimes)
	var pe *transcribe.PartialError
	if !errors.As(err, &pe) || !errors.Is(err, transcribe.ErrInvalidAudio) || pe.Pieces != len(ps) || pe.Failed < 1 || !covers(pe.Missing, want[0]) {
		t.Fatalf("without AllowPartial: %v (%+v)", err, pe)
	}
	t.Logf("without AllowPartial: %v", err)
	var streamErr error
	for ev, err := range strict.TranscribeFileStream(ctx, path, transcribe.Request{}) {
		if ev.Type == transcribe.EventDone {
			t.Fatal("stream without AllowPartial: done")
		}
		streamErr = err
	}
	// The pieces after the failed one are not sent: they are missing too.
	if !errors.As(streamErr, &pe) || pe.Failed != len(ps)-1 || !covers(pe.Missing, transcribe.TimeRange{Start: ps[1].Start, End: 100}) {
		t.Fatalf("stream without AllowPartial: %v", streamErr)
	}

	// Chained prompts go on past the failed piece; the next is prompted
	// as the first was.
	var mu sync.Mutex
	prompts := map[int]string{}
	chained, _ := newClient(t, transcribetest.Config{Transcriber: failPieces(func(n int) error {
		mu.Lock()
		defer mu.Unlock()
		prompts[n] = "?"
		if n == 2 {
			return errDamaged
		}
		return nil
	})}, transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 30 * time.Second, AllowPartial: true, ChainPrompts: true}))
	tr, err = chained.TranscribeFile(ctx, path, transcribe.Request{ResponseFormat: transcribe.SRT, Prompt: "A talk."})
	if err != nil || fmt.Sprint(tr.Missing) != fmt.Sprint(want) || len(prompts) != len(ps) {
		t.Fatalf("chained: %v, missing %v, %d pieces sent", err, tr.Missing, len(prompts))
	}
}

// covers reports whether ranges hold all of r.
func covers(ranges []transcribe.TimeRange, r transcribe.TimeRange) bool {
	for _, m := range ranges {
		if m.Start <= r.Start && m.End >= r.End {
			return true
		}
	}
	return false
}

// An exhausted quota, or a cancelled call, is never a partial
// transcript, with AllowPartial too.
func TestPartialNeverForQuotaOrCancel(t *testing.T) {
	rec := newRecording(16000, 100*time.Second, 12)
	path := rec.writeWAV(t, t.TempDir())
	split := transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 30 * time.Second, AllowPartial: true})
	c, _ := newClient(t, transcribetest.Config{Transcriber: failPieces(func(n int) error {
		if n == 2 {
			return errQuota
		}
		return nil
	})}, split)
	tr, err := c.TranscribeFile(context.Background(), path, wordTimes)
	if !errors.Is(err, transcribe.ErrQuotaExceeded) || errors.As(err, new(*transcribe.PartialError)) || tr != nil {
		t.Fatalf("quota: %v, %v", tr, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cc, _ := newClient(t, transcribetest.Config{Transcriber: failPieces(func(n int) error {
		if n == 2 {
			cancel()
			return errDamaged
		}
		return nil
	})}, split)
	tr, err = cc.TranscribeFile(ctx, path, wordTimes)
	if !errors.Is(err, context.Canceled) || errors.As(err, new(*transcribe.PartialError)) || tr != nil {
		t.Fatalf("cancelled: %v, %v", tr, err)
	}
}

// In a batch with AllowPartial, a file one of whose pieces fails is done
// in part: the partial transcript is written, but it is not done, so the
// re-run sends only the missing piece (one request more at the fake) and
// writes the whole transcript over it, the same as a run that never
// failed. An exhausted quota fails the file and stops the batch, and
// writes nothing.
func TestBatchPartialResume(t *testing.T) {
	dir := t.TempDir()
	rec := newRecording(16000, 100*time.Second, 13)
	path := rec.writeWAV(t, dir)
	var failing atomic.Pointer[transcribetest.Error]
	failing.Store(errDamaged)
	c, srv := newClient(t, transcribetest.Config{Transcriber: failPieces(func(n int) error {
		if e := failing.Load(); n == 2 && e != nil {
			return e
		}
		return nil
	})}, transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 30 * time.Second, AllowPartial: true}))
	out := filepath.Join(dir, "out")
	w, err := transcribe.NewOutputWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	opts := transcribe.BatchOptions{Output: w, Request: wordTimes}
	r := collect(t, c, pathJobs(path), opts)[path]
	if r.Status != transcribe.StatusDone || r.Transcription == nil || len(r.Transcription.Missing) != 1 || r.OutputPath == "" {
		t.Fatalf("first run: %s %v, %+v", r.Status, r.Err, r.Transcription)
	}
	pieces := len(r.Transcription.Pieces)
	if srv.Stats().Requests != pieces || r.Attempts != pieces {
		t.Fatalf("first run: %d requests for %d pieces", srv.Stats().Requests, pieces)
	}
	partial, err := os.ReadFile(r.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	in := transcribe.Input{ID: path, Path: path}
	if st, err := os.Stat(path); err == nil {
		in.Size, in.ModTime = st.Size(), st.ModTime()
	}
	if _, done := w.Done(in, wordTimes); done {
		t.Fatal("a partial transcript is done")
	}

	failing.Store(nil)
	r = collect(t, c, pathJobs(path), opts)[path]
	if r.Status != transcribe.StatusDone || len(r.Transcription.Missing) != 0 || r.Attempts != 1 || srv.Stats().Requests != pieces+1 {
		t.Fatalf("re-run: %s %v, missing %v, %d attempts, %d requests in all", r.Status, r.Err, r.Transcription.Missing, r.Attempts, srv.Stats().Requests)
	}
	checkWords(t, rec, r.Transcription, 0.05)
	whole, _ := os.ReadFile(r.OutputPath)
	if len(whole) <= len(partial) {
		t.Fatalf("the whole transcript (%d bytes) is no longer than the partial one (%d)", len(whole), len(partial))
	}
	if _, done := w.Done(in, wordTimes); !done {
		t.Fatal("the whole transcript is not done")
	}
	if left, _ := os.ReadDir(filepath.Join(out, ".steno", ".steno", "pieces")); len(left) != 0 {
		t.Fatalf("pieces kept after the whole transcript was written: %v", left)
	}
	w.Close()

	// The same as a run that never failed.
	fresh, err := transcribe.NewOutputWriter(filepath.Join(dir, "fresh"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	opts.Output = fresh
	f := collect(t, c, pathJobs(path), opts)[path]
	if want, _ := os.ReadFile(f.OutputPath); string(want) != string(whole) {
		t.Fatalf("resumed:\n%.300s\nfresh:\n%.300s", whole, want)
	}

	// An exhausted quota: failed, not partial; the batch stops; nothing
	// is written.
	failing.Store(errQuota)
	qw, err := transcribe.NewOutputWriter(filepath.Join(dir, "quota"))
	if err != nil {
		t.Fatal(err)
	}
	defer qw.Close()
	opts.Output = qw
	q := collect(t, c, pathJobs(path), opts)[path]
	if q.Status != transcribe.StatusFailed || !errors.Is(q.Err, transcribe.ErrQuotaExceeded) || errors.As(q.Err, new(*transcribe.PartialError)) || q.OutputPath != "" {
		t.Fatalf("quota: %s %v %q", q.Status, q.Err, q.OutputPath)
	}
}
