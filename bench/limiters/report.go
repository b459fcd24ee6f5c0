package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// report prints sc's table from its runs (by contender, then round) and
// returns how many runs failed.
func report(w io.Writer, sc *scenario, runs [][]figures) (failed int) {
	fmt.Fprintf(w, "== %s: %s\n", sc.name, sc.about)

	// The reference: a contender's median time (paired with each run of
	// the same round where it succeeded), or the ideal.
	ref := sc.ideal
	var refRuns []figures
	if sc.ref != "" {
		ref = 0
		if i := slices.IndexFunc(sc.contenders, func(c contender) bool { return c.name == sc.ref }); i >= 0 {
			refRuns = runs[i]
			if ok := succeeded(refRuns); len(ok) > 0 {
				ref = seconds(median(ok, func(f figures) float64 { return f.elapsed.Seconds() }))
			}
		}
		if ref > 0 {
			fmt.Fprintf(w, "   reference: %s, median %.2fs", sc.ref, ref.Seconds())
		} else {
			fmt.Fprintf(w, "   reference: %s, which has no successful run", sc.ref)
		}
	} else {
		fmt.Fprintf(w, "   reference: the ideal, %.2fs", ref.Seconds())
		if sc.chargeAudio {
			fmt.Fprint(w, " (the audio beyond the whole budget ÷ its refill rate)")
		} else {
			fmt.Fprint(w, " (requests ÷ budget × window)")
		}
	}
	fmt.Fprintf(w, "; target for steno: %s\n", sc.target.describe(sc.refName()))

	header := []string{"contender", "time (s)", "min–max", "× " + sc.refName(), "429s"}
	if sc.splitAudio {
		header = append(header, "for requests", "for audio")
	}
	header = append(header, "failed", "wasted")
	if sc.showWindow {
		header = append(header, "most in a "+sc.window.String())
	}
	header = append(header, "most in flight", "target")

	var rows [][]string
	var notes, failures []string
	for i, c := range sc.contenders {
		ok := succeeded(runs[i])
		for round, f := range runs[i] {
			if f.err != nil {
				failed++
				failures = append(failures, fmt.Sprintf("%s, round %d: %v", c.name, round+1, f.err))
			} else if f.note != "" && !slices.Contains(notes, c.name+": "+f.note) {
				notes = append(notes, c.name+": "+f.note)
			}
		}
		lost := len(runs[i]) - len(ok)
		if len(ok) == 0 {
			row := []string{c.name, "FAILED"}
			for len(row) < len(header)-1 {
				row = append(row, "—")
			}
			rows = append(rows, append(row, fmt.Sprintf("FAILED %d/%d", lost, len(runs[i]))))
			continue
		}
		elapsed := median(ok, func(f figures) float64 { return f.elapsed.Seconds() })
		lo := slices.MinFunc(ok, func(a, b figures) int { return int(a.elapsed - b.elapsed) }).elapsed
		hi := slices.MaxFunc(ok, func(a, b figures) int { return int(a.elapsed - b.elapsed) }).elapsed
		limited := median(ok, func(f figures) float64 { return float64(f.limited) })
		limitedAudio := median(ok, func(f figures) float64 { return float64(f.limitedAudio) })
		ratio := "—"
		if ref > 0 {
			ratio = strconv.FormatFloat(elapsed/ref.Seconds(), 'f', 3, 64)
		}
		row := []string{c.name, strconv.FormatFloat(elapsed, 'f', 2, 64),
			fmt.Sprintf("%.2f–%.2f", lo.Seconds(), hi.Seconds()), ratio,
			countRange(ok, func(f figures) int { return f.limited })}
		if sc.splitAudio {
			row = append(row,
				countRange(ok, func(f figures) int { return f.limitedReq }),
				countRange(ok, func(f figures) int { return f.limitedAudio }))
		}
		failedUploads := median(ok, func(f figures) float64 { return float64(f.failed) })
		if failedUploads > 0 {
			notes = append(notes, fmt.Sprintf("%s: gave up on %s of %d uploads (median), returning the 429 to its caller: its time is until its last upload ended, answered or given up, and does not compare with the others'",
				c.name, formatCount(failedUploads), sc.requests))
		}
		row = append(row, countRange(ok, func(f figures) int { return f.failed }),
			fmt.Sprintf("%.0f %%", median(ok, func(f figures) float64 { return 100 * float64(f.wasted) / float64(max(1, f.sent)) })))
		if sc.showWindow {
			row = append(row, formatCount(median(ok, func(f figures) float64 { return float64(f.maxInWindow) }))+"/"+strconv.Itoa(sc.budget))
		}
		row = append(row, formatCount(median(ok, func(f figures) float64 { return float64(f.peakInFlight) })))

		verdict := "—"
		if c.steno {
			// The medians against the median reference; each run against
			// the reference's run of the same round.
			verdict = "MISS"
			if failedUploads == 0 && sc.target.met(c, seconds(elapsed), limited, limitedAudio, ref) {
				verdict = "PASS"
			}
			met := 0
			for round, f := range runs[i] {
				r := ref
				if refRuns != nil && refRuns[round].err == nil {
					r = refRuns[round].elapsed
				}
				if f.err == nil && f.failed == 0 && sc.target.met(c, f.elapsed, float64(f.limited), float64(f.limitedAudio), r) {
					met++
				}
			}
			verdict += fmt.Sprintf(" %d/%d", met, len(runs[i]))
		}
		if lost > 0 {
			verdict += fmt.Sprintf(", FAILED %d/%d", lost, len(runs[i]))
		}
		rows = append(rows, append(row, verdict))
	}
	printTable(w, header, rows)
	for _, n := range notes {
		fmt.Fprintln(w, "   "+n)
	}
	for _, f := range failures {
		fmt.Fprintln(w, "   FAILED "+f)
	}
	fmt.Fprintln(w)
	return failed
}

// succeeded returns the runs that did not fail.
func succeeded(fs []figures) []figures {
	var ok []figures
	for _, f := range fs {
		if f.err == nil {
			ok = append(ok, f)
		}
	}
	return ok
}

// seconds returns s seconds as a Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// median returns the median of f over vs.
func median[T any](vs []T, f func(T) float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	v := make([]float64, len(vs))
	for i := range vs {
		v[i] = f(vs[i])
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// countRange formats the median of a count over fs, followed by its
// range when the runs differ: "1 (0–3)".
func countRange(fs []figures, f func(figures) int) string {
	s := formatCount(median(fs, func(x figures) float64 { return float64(f(x)) }))
	lo, hi := f(fs[0]), f(fs[0])
	for _, x := range fs[1:] {
		lo, hi = min(lo, f(x)), max(hi, f(x))
	}
	if lo != hi {
		s += fmt.Sprintf(" (%d–%d)", lo, hi)
	}
	return s
}

// formatCount formats a count, or a median of counts that may end in .5.
func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// printTable prints rows under header in aligned columns: the first
// column left-aligned, the others right-aligned.
func printTable(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, cell := range r {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for _, r := range append([][]string{header}, rows...) {
		var line []byte
		for i, cell := range r {
			pad := width[i] - len([]rune(cell))
			if i == 0 {
				line = fmt.Appendf(line, "%s%*s", cell, pad, "")
			} else {
				line = fmt.Appendf(line, "  %*s%s", pad, "", cell)
			}
		}
		fmt.Fprintf(w, "%s\n", line)
	}
}
