package transcribetest

import (
	"strings"
	"testing"
	"time"
)

func TestFormatReset(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1s"},
		{6 * time.Minute, "6m0s"},
		{20 * time.Millisecond, "20ms"},
		{2*time.Minute + 59555*time.Millisecond, "2m59.56s"},
		{2*time.Minute + 59561*time.Millisecond, "2m59.56s"},
		{7657 * time.Millisecond, "7.66s"},
		{3362 * time.Millisecond, "3.36s"},
		{12400 * time.Microsecond, "12ms"},
		{12500 * time.Microsecond, "13ms"},
		{999600 * time.Microsecond, "1s"},
		{1004 * time.Millisecond, "1s"},
		{300 * time.Microsecond, "1ms"},
		{1, "1ms"},
		{0, "0s"},
		{-time.Second, "0s"},
	} {
		if got := formatReset(tc.d); got != tc.want {
			t.Errorf("formatReset(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestMaskKey(t *testing.T) {
	stars := strings.Repeat
	for key, want := range map[string]string{
		"":                                "",
		"abc":                             "***",
		"short":                           "s****",
		"sk-1234567":                      "sk" + stars("*", 8),
		"sk-123456789":                    "sk-" + stars("*", 9),
		"sk-1234567890abc":                "sk-1" + stars("*", 8) + "0abc",
		"sk-abcdefghijklmnopqrstuvwxyz":   "sk-abc" + stars("*", 19) + "wxyz",
		"sk-proj-0123456789abcdefghijXYZ": "sk-pro" + stars("*", 21) + "jXYZ",
	} {
		if got := maskKey(key); got != want {
			t.Errorf("maskKey(%q) = %q, want %q", key, got, want)
		}
	}
}
