package ratehdr

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ms, s string
		want  time.Duration
		ok    bool
	}{
		{"", "", 0, false},
		{"", "3", 3 * time.Second, true},
		{"", "0.5", 500 * time.Millisecond, true},
		{"1500", "3", 1500 * time.Millisecond, true}, // ms wins
		{"12.5", "", 12500 * time.Microsecond, true},
		{"junk", "2", 2 * time.Second, true}, // unusable ms falls back
		{"", "Wed, 25 Nov 2026 12:00:20 GMT", 20 * time.Second, true},
		{"", "Wed, 25 Nov 2026 11:59:00 GMT", 0, true}, // in the past: go now
		{"", "-4", 0, false},
		{"", "soon", 0, false},
		{"", "1e300", 24 * time.Hour, true}, // absurd: capped
		{"NaN", "", 0, false},
		{"ms:250", "", 250 * time.Millisecond, true}, // Azure's x-ms-retry-after-ms
		{"-5", "", 0, false},
	} {
		h := http.Header{}
		if ms, ok := strings.CutPrefix(tc.ms, "ms:"); ok {
			h.Set(HeaderMSRetryAfter, ms)
		} else if tc.ms != "" {
			h.Set(HeaderRetryAfterMs, tc.ms)
		}
		if tc.s != "" {
			h.Set(HeaderRetryAfter, tc.s)
		}
		got, ok := RetryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ms=%q s=%q: got %v %v, want %v %v", tc.ms, tc.s, got, ok, tc.want, tc.ok)
		}
	}
}

func TestShouldRetry(t *testing.T) {
	for v, want := range map[string][2]bool{"true": {true, true}, "FALSE": {false, true}, "": {false, false}, "maybe": {false, false}} {
		h := http.Header{}
		h.Set(HeaderShouldRetry, v)
		if r, set := ShouldRetry(h); [2]bool{r, set} != want {
			t.Errorf("%q: got %v %v, want %v", v, r, set, want)
		}
	}
}

// FuzzRetryAfter: no header value makes a negative or absurd wait, or a
// panic.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "0.25", "1e9", "-1", "NaN", "Inf", "Wed, 21 Oct 2015 07:28:00 GMT", "20ms", ""} {
		f.Add(s, s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, ms, s string) {
		h := http.Header{}
		h.Set(HeaderRetryAfterMs, ms)
		h.Set(HeaderRetryAfter, s)
		d, ok := RetryAfter(h, now)
		if d < 0 || d > maxHeaderWait || (!ok && d != 0) {
			t.Fatalf("ms=%q s=%q: wait %v ok %v", ms, s, d, ok)
		}
	})
}

// FuzzParseReport: no header values make a panic, a negative or absurd
// reset, or a report whose remaining exceeds its limit.
func FuzzParseReport(f *testing.F) {
	for _, s := range [][3]string{
		{"50", "49", "1.2s"}, {"60", "59", "1s"}, {"150000", "149984", "6m0s"}, {"10", "0", "20ms"},
		{"14400", "14399", "2m59.56s"}, {"6000", "5000", "7.66s"}, {"1", "1", "0s"}, {"-5", "3", "1h"},
		{"NaN", "NaN", "NaN"}, {"1e308", "0", "9999999999h"}, {"50", "51", "1s"}, {"", "", ""}, {"50", "49", "-3s"},
	} {
		f.Add(s[0], s[1], s[2], 429)
	}
	f.Fuzz(func(t *testing.T, limit, remaining, reset string, status int) {
		h := http.Header{}
		h.Set(HeaderLimitRequests, limit)
		h.Set(HeaderRemainingRequests, remaining)
		h.Set(HeaderResetRequests, reset)
		r, ok := ParseReport(h, HeaderLimitRequests, HeaderRemainingRequests, HeaderResetRequests)
		if ok && (!(r.Limit > 0) || r.Remaining < 0 || r.Remaining > r.Limit || r.Reset < 0 || r.Reset > maxHeaderWait) {
			t.Fatalf("%q %q %q: %+v", limit, remaining, reset, r)
		}
		if !ok && r != (Report{}) {
			t.Fatalf("not ok but %+v", r)
		}
	})
}
