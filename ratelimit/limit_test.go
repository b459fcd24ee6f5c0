package ratelimit_test

import (
	"flag"
	"testing"
	"time"

	"github.com/steno-go/steno/ratelimit"
)

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]ratelimit.Limit{
		"":           {},
		"0":          {},
		"50/1m":      {N: 50, Per: time.Minute},
		"50/min":     {N: 50, Per: time.Minute},
		" 7200/h ":   {N: 7200, Per: time.Hour},
		"28800/day":  {N: 28800, Per: 24 * time.Hour},
		"0.5/s":      {N: 0.5, Per: time.Second},
		"150000/60s": {N: 150000, Per: time.Minute},
		"20/1m30s":   {N: 20, Per: 90 * time.Second},
	} {
		got, err := ratelimit.ParseLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
		if again, err := ratelimit.ParseLimit(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q reads back as %v, %v", in, got.String(), again, err)
		}
	}
	for _, in := range []string{"50", "50/", "/1m", "-5/1m", "NaN/1m", "Inf/1m", "50/0s", "50/-1m", "50/fortnight", "fifty/1m"} {
		if l, err := ratelimit.ParseLimit(in); err == nil {
			t.Errorf("ParseLimit(%q) = %v, want an error", in, l)
		}
	}
	var l ratelimit.Limit
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(&l, "requests", "")
	if err := fs.Parse([]string{"-requests", "50/1m"}); err != nil || l != (ratelimit.Limit{N: 50, Per: time.Minute}) {
		t.Fatalf("as a flag: %v, %v", l, err)
	}
}
