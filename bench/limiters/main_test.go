package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStrategies runs each strategy on a tiny configuration: each must get
// every request answered 200 (measure checks the server's counts), and
// steno's must spend the bucket without a 429.
func TestStrategies(t *testing.T) {
	// Small enough to run every strategy in about two seconds. The window
	// is 1 s, one the limiter recognises when it learns a window from the
	// headers (it rounds what it infers to 1 s, 10 s, 1 min…), and the
	// budget is large enough that the server's latency (1/30 of the
	// window) is longer than the limiter's pacing interval.
	tiny := params{requests: 60, budget: 40, window: time.Second}
	for _, s := range strategies() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f, err := measure(t.Context(), s, tiny)
			if err != nil {
				t.Fatal(err)
			}
			w := tiny.window - tiny.window/20
			inW := f.server.MaxInWindow(f.server.Sent, w)
			t.Logf("%v, %d 429s, at most %d in a window of %v and %d in %v, %d in flight; %s",
				f.elapsed.Round(time.Millisecond), f.limited, f.maxInWindow, tiny.window, inW, w, f.peakInFlight, f.note)
			if f.peakInFlight > maxInFlight {
				t.Errorf("%d requests in flight at once, want at most %d", f.peakInFlight, maxInFlight)
			}
			if strings.HasPrefix(s.name, "steno-") && f.limited > 0 {
				t.Errorf("%d 429s, want none", f.limited)
			}
		})
	}
}

func TestRun(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"-requests", "5", "-budget", "40", "-window", "1s", "-only", "cookbook", "-runs", "2"}
	if err := run(t.Context(), args, &out, &errs); err != nil {
		t.Fatalf("run(%q): %v\n%s", args, err, errs.String())
	}
	got := out.String()
	for _, want := range []string{"5 requests; budget 40 per 1s window", "median of 2 runs", "max in any 1s", "\ncookbook  "} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "steno") {
		t.Errorf("-only cookbook ran other strategies:\n%s", got)
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "nonesuch"},
		{"-budget", "0"},
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
	fs := func(v ...int) []figures {
		var f []figures
		for _, n := range v {
			f = append(f, figures{limited: n})
		}
		return f
	}
	limited := func(f figures) float64 { return float64(f.limited) }
	if got := median(fs(5, 1, 3), limited); got != 3 {
		t.Errorf("median of 5, 1, 3 = %v, want 3", got)
	}
	if got := median(fs(4, 1, 2, 3), limited); got != 2.5 {
		t.Errorf("median of 4, 1, 2, 3 = %v, want 2.5", got)
	}
}
