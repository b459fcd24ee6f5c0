package ratelimit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseLimit reads a budget written as N/WINDOW: "50/1m", "50/min",
// "7200/1h", "28800/day", "150000/60s". The window is a Go duration or one
// of the units s, sec, second, m, min, minute, h, hour, d, day. "" and "0"
// are the zero Limit (unknown: learned from the server).
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Limit{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("ratelimit: budget %q: want N/WINDOW, e.g. 50/1m or 7200/1h", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return Limit{}, fmt.Errorf("ratelimit: budget %q: %q is not a positive number", s, n)
	}
	per = strings.TrimSpace(per)
	units := map[string]time.Duration{
		"s": time.Second, "sec": time.Second, "second": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute,
		"h": time.Hour, "hour": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour,
	}
	d, ok := units[strings.ToLower(per)]
	if !ok {
		if d, err = time.ParseDuration(per); err != nil || d <= 0 {
			return Limit{}, fmt.Errorf("ratelimit: budget %q: %q is not a positive duration or a unit (s, m, h, day)", s, per)
		}
	}
	return Limit{N: v, Per: d}, nil
}

// String writes l as ParseLimit reads it: "50/1m0s"; "0" for the zero Limit.
func (l Limit) String() string {
	if l.N == 0 && l.Per == 0 {
		return "0"
	}
	return strconv.FormatFloat(l.N, 'f', -1, 64) + "/" + l.Per.String()
}

// Set parses s into l (see ParseLimit), so that a *Limit is a flag.Value:
//
//	flag.Var(&cfg.Requests, "requests", "request budget, e.g. 50/1m")
func (l *Limit) Set(s string) error {
	v, err := ParseLimit(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// UnmarshalText parses text into l (see ParseLimit), for configuration
// files and environment decoders.
func (l *Limit) UnmarshalText(text []byte) error { return l.Set(string(text)) }

// MarshalText writes l as String does.
func (l Limit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }
