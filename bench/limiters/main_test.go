package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// tiny is a configuration small enough to run every contender of every
// scenario, side by side, in a few seconds. The budget window of 1 s is one
// the limiter recognises when it learns a window from the headers, and the
// audio scenario's scaled hour stays a minute, which the fake names "per
// minute" in its 429s: its budget of 60 s of audio refills 1 s a second,
// and the 2 clips beyond it wait 2 s.
var tiny = config{
	requests: 24, budget: 20, window: time.Second, inFlight: 5,
	hlUploads: 20, hlBytes: 64 << 10, hlLimit: 10000, hlInFlight: 8, hlLatency: 10 * time.Millisecond,
	audioClips: 62, audioClip: time.Second, audioBudget: 60, audioHour: time.Minute, audioRequests: 100, audioInFlight: 64,
	maxPause: 300 * time.Millisecond, deadline: 150 * time.Millisecond,
}

// TestScenarios runs every contender of every scenario once on the tiny
// configuration, all at once (as the command's rounds do; t.Parallel would
// run only GOMAXPROCS of them at a time): each must get every request
// answered 200 with its transcript (measure checks) and keep to the bound
// on requests in flight. The times are logged, not checked: wall-clock
// targets are the command's business. Hostile's measurements must succeed.
func TestScenarios(t *testing.T) {
	type run struct {
		sc *scenario
		c  contender
		f  figures
	}
	var runs []*run
	for _, sc := range scenarios(tiny) {
		for _, c := range sc.contenders {
			runs = append(runs, &run{sc: sc, c: c})
		}
	}
	hostile := make([]hostileFigures, len(hostileVariants))
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() { r.f = measure(t.Context(), r.sc, r.c) })
	}
	for i, limit := range hostileVariants {
		wg.Go(func() { hostile[i] = measureHostile(t.Context(), limit, tiny.maxPause, tiny.deadline) })
	}
	wg.Wait()

	for _, r := range runs {
		t.Run(r.sc.name+"/"+r.c.name, func(t *testing.T) {
			f, sc := r.f, r.sc
			if f.err != nil {
				t.Fatal(f.err)
			}
			t.Logf("%v, %d 429s (%d for audio), at most %d in a window of %v, %d in flight; %s",
				f.elapsed.Round(time.Millisecond), f.limited, f.limitedAudio, f.maxInWindow, sc.window, f.peakInFlight, f.note)
			if f.peakInFlight > sc.inFlight {
				t.Errorf("%d requests in flight at once, want at most %d", f.peakInFlight, sc.inFlight)
			}
			if f.server.ByStatus[http.StatusOK] != sc.requests-f.failed {
				t.Errorf("the server answered %v, want %d 200s (%d requests, %d given up)", f.server.ByStatus, sc.requests-f.failed, sc.requests, f.failed)
			}
			if f.failed > 0 && r.c.name != openaiGoName {
				t.Errorf("%s gave up on %d uploads; only openai-go gives up", r.c.name, f.failed)
			}
			if f.wasted != f.limited || f.sent != f.server.Requests {
				t.Errorf("wasted %d of %d sent, want the %d 429s of %d", f.wasted, f.sent, f.limited, f.server.Requests)
			}
		})
	}
	for i, limit := range hostileVariants {
		t.Run(hostileName+"/"+limit, func(t *testing.T) {
			f := hostile[i]
			if f.err != nil {
				t.Fatal(f.err)
			}
			t.Logf("the second request waited %v (MaxPause %v); the caller with a deadline of %v got %q after %v",
				f.wait.Round(time.Millisecond), tiny.maxPause, tiny.deadline, describeErr(f.dlErr), f.dlAfter)
		})
	}
}

// A contender that leaves a request unanswered has failed its run; so has
// one that does not finish in time.
func TestLostRequestFails(t *testing.T) {
	t.Parallel()
	sc := scenarios(tiny)[0]
	lazy := contender{name: "lazy", run: func(ctx context.Context, sc *scenario, u *uploader) (string, error) {
		c := &http.Client{Transport: u.base}
		for range sc.requests - 1 {
			if _, _, err := u.post(ctx, c); err != nil {
				return "", err
			}
		}
		return "", nil
	}}
	if f := measure(t.Context(), sc, lazy); f.err == nil || !strings.Contains(f.err.Error(), "23 of 24") {
		t.Errorf("a contender that sent 23 of 24 requests: err %v, want 23 of 24 answered", f.err)
	}

	stuck := contender{name: "stuck", run: func(ctx context.Context, sc *scenario, u *uploader) (string, error) {
		<-ctx.Done()
		return "", context.Cause(ctx)
	}}
	short := *sc
	short.timeout = 50 * time.Millisecond
	if f := measure(t.Context(), &short, stuck); !errors.Is(f.err, errTimeout) {
		t.Errorf("a contender that never finishes: err %v, want errTimeout", f.err)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	var out, errs bytes.Buffer
	args := []string{"-requests", "5", "-budget", "40", "-window", "1s", "-scenario", "bucket", "-only", "cookbook", "-runs", "2"}
	if err := run(t.Context(), args, &out, &errs); err != nil {
		t.Fatalf("run(%q): %v\n%s", args, err, errs.String())
	}
	got := out.String()
	for _, want := range []string{"== bucket: 5 requests; a bucket, 40 per 1s", "median of the rounds", "most in a 1s",
		"reference: xrate, median", "\ncookbook  ", "\nxrate  "} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"\nsteno-", "== sliding", "== hostile", "FAILED"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("-scenario bucket -only cookbook printed %q:\n%s", unwanted, got)
		}
	}
}

func TestRunHostile(t *testing.T) {
	t.Parallel()
	var out, errs bytes.Buffer
	args := []string{"-window", "600ms", "-scenario", "hostile", "-runs", "1"}
	if err := run(t.Context(), args, &out, &errs); err != nil {
		t.Fatalf("run(%q): %v\n%s", args, err, errs.String())
	}
	got := out.String()
	for _, want := range []string{"== hostile", "MaxPause 200ms", "caller with a 100ms deadline got", "\n1  ", "\n0.001  "} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "nonesuch"},
		{"-scenario", "nonesuch"},
		{"-scenario", "bucket", "-only", "plain"},
		{"-budget", "0"},
		{"-runs", "0"},
		{"-window", "-1s"},
		{"extra"},
		{"-nonesuch"},
	} {
		var out, errs bytes.Buffer
		if err := run(context.Background(), args, &out, &errs); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
		if out.Len() > 0 || !strings.Contains(errs.String(), "Usage of limiters") {
			t.Errorf("run(%q) printed %q on stdout and %q on stderr, want only the error and usage on stderr", args, out.String(), errs.String())
		}
	}
}

func TestPick(t *testing.T) {
	all := scenarios(tiny)
	got, hostile, err := pick(all, "audio, bucket,hostile")
	if err != nil || len(got) != 2 || got[0].name != bucketName || got[1].name != audioName || !hostile {
		t.Errorf("pick(audio, bucket, hostile) = %d scenarios, hostile %v, %v; want bucket, audio and hostile", len(got), hostile, err)
	}
	if got, hostile, err := pick(all, ""); err != nil || len(got) != len(all) || !hostile {
		t.Errorf("pick of all = %d scenarios, hostile %v, %v", len(got), hostile, err)
	}
}

func TestTarget(t *testing.T) {
	learned, configured := contender{name: stenoLearned}, contender{name: stenoConfigured}
	audio := target{ratio: 1.1, max429: 2, learnedAudio429: true}
	ref := 40 * time.Second
	for _, tc := range []struct {
		c                     contender
		elapsed               time.Duration
		limited, limitedAudio float64
		want                  bool
	}{
		{learned, 42 * time.Second, 21, 1, true},
		{learned, 42 * time.Second, 21, 3, false},
		{learned, 45 * time.Second, 1, 1, false},
		{configured, 42 * time.Second, 21, 1, false},
		{configured, 44 * time.Second, 2, 2, true},
	} {
		if got := audio.met(tc.c, tc.elapsed, tc.limited, tc.limitedAudio, ref); got != tc.want {
			t.Errorf("%s, %v, %g 429s (%g for audio): met = %v, want %v", tc.c.name, tc.elapsed, tc.limited, tc.limitedAudio, got, tc.want)
		}
	}
	if (target{ratio: 1.1, max429: math.Inf(1)}).met(learned, time.Second, 5, 0, 0) {
		t.Error("met without a reference time")
	}
}

func TestReportFailedRun(t *testing.T) {
	sc := scenarios(tiny)[1] // sliding: the ideal is the reference
	runs := make([][]figures, len(sc.contenders))
	for i := range runs {
		runs[i] = []figures{{elapsed: sc.ideal * 9 / 10}, {err: errors.New("1 of 24 lost")}, {elapsed: sc.ideal}}
	}
	var out bytes.Buffer
	if failed := report(&out, sc, runs); failed != len(sc.contenders) {
		t.Errorf("report counted %d failed runs, want %d", failed, len(sc.contenders))
	}
	got := out.String()
	for _, want := range []string{"0.950  ", "PASS 2/3, FAILED 1/3", "—, FAILED 1/3", "FAILED steno-learned, round 2: 1 of 24 lost"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestBucket(t *testing.T) {
	b := &bucket{size: 3, window: time.Second}
	t0 := time.Now()
	for i := range 3 {
		if !b.take(t0) {
			t.Fatalf("take %d of a full bucket of 3 failed", i+1)
		}
	}
	if b.take(t0) {
		t.Fatal("took a 4th from a bucket of 3")
	}
	if b.take(t0.Add(300 * time.Millisecond)) {
		t.Fatal("took from a bucket refilled by 0.9")
	}
	if !b.take(t0.Add(340 * time.Millisecond)) {
		t.Fatal("could not take from a bucket refilled by 1.02")
	}
	later, n := t0.Add(time.Hour), 0
	for b.take(later) {
		n++
	}
	if n != 3 {
		t.Fatalf("took %d from a bucket of 3 left idle for an hour, want 3", n)
	}
}

func TestMedian(t *testing.T) {
	id := func(v float64) float64 { return v }
	if got := median([]float64{5, 1, 3}, id); got != 3 {
		t.Errorf("median of 5, 1, 3 = %v, want 3", got)
	}
	if got := median([]float64{4, 1, 2, 3}, id); got != 2.5 {
		t.Errorf("median of 4, 1, 2, 3 = %v, want 2.5", got)
	}
}

func TestWAVSize(t *testing.T) {
	clip := wavOf(1 << 20)
	if d := len(clip) - 1<<20; d < -2 || d > 2 {
		t.Errorf("wavOf(1 MiB) is %d bytes", len(clip))
	}
	if s := wavSeconds(clip); math.Abs(s-float64(len(clip)-44)/32000) > 1e-9 {
		t.Errorf("wavSeconds = %v", s)
	}
}

// openai-go gives up on an upload after the SDK's two retries of a 429:
// the upload is counted as failed, its three 429s as read, and the run
// goes on. In a synctest bubble, against the in-memory fake, so that the
// SDK's waits of a second pass at once.
func TestOpenAIGoGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := transcribetest.NewHandler(transcribetest.Config{APIKey: apiKey,
			RateLimit: transcribetest.RateLimit{Requests: 1, Window: time.Second}})
		u, err := newUploader("http://fake/v1/audio/transcriptions", h.Transport(), transcribetest.WAV(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		sc := &scenario{requests: 4, inFlight: 4}
		if _, err := runOpenAIGo(t.Context(), sc, u); err != nil {
			t.Fatal(err)
		}
		n, st := u.counts(), h.Stats()
		if n.gaveUp == 0 || n.ok+n.gaveUp != sc.requests {
			t.Errorf("%d answered, %d given up; want 4 in all, some given up (one a second passes, each has three tries)", n.ok, n.gaveUp)
		}
		if st.ByStatus[http.StatusOK] != n.ok || st.ByStatus[http.StatusTooManyRequests] != n.limitedReq || st.Requests != n.ok+n.limitedReq {
			t.Errorf("the server answered %v of %d; the client read %d 200s and %d 429s", st.ByStatus, st.Requests, n.ok, n.limitedReq)
		}
		t.Logf("%d answered, %d given up, %d 429s", n.ok, n.gaveUp, n.limitedReq)
		if n.limitedReq < 3*n.gaveUp {
			t.Errorf("%d 429s for %d uploads given up: the SDK gives up after three", n.limitedReq, n.gaveUp)
		}
	})
}
