package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// overheadContenders are the contenders of the overhead scenario.
var overheadContenders = []string{cSteno, cFloor}

// overheadResults are the runs of the overhead scenario: the same shape as
// the uploads'.
type overheadResults = uploadResults

// runOverhead runs steno and the floor on each of s.overhead's cases,
// interleaved over s.rounds rounds; the files of a case already written
// for the uploads (same count and size) are used again.
func runOverhead(ctx context.Context, self, dir string, s settings, made []*uploadCase, progress io.Writer) (*overheadResults, error) {
	res := &overheadResults{runs: map[*uploadCase]map[string][]upFigures{}}
	for i, want := range s.overhead {
		c := want
		for _, m := range made {
			if m.files == want.files && m.bytes == want.bytes && m.list != "" {
				c = m
			}
		}
		if c.list == "" {
			fmt.Fprintf(progress, "benchall: overhead: writing %s of audio and computing the expected transcripts\n", c.name)
			if err := makeCase(ctx, c, filepath.Join(dir, fmt.Sprintf("overhead%d", i+1))); err != nil {
				return nil, err
			}
			if f := runUpload(ctx, self, cFloor, c, s.timeout); f.err != nil {
				return nil, fmt.Errorf("the warm-up run on %s: %w", c.name, f.err)
			}
		}
		res.cases = append(res.cases, c)
		res.runs[c] = map[string][]upFigures{}
	}
	for round := range s.rounds {
		for _, c := range res.cases {
			for _, name := range overheadContenders {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				f := runUpload(ctx, self, name, c, s.timeout)
				res.runs[c][name] = append(res.runs[c][name], f)
				status := "ok"
				if f.err != nil {
					status = "FAILED: " + f.err.Error()
				}
				fmt.Fprintf(progress, "benchall: overhead round %d/%d, %s, %-12s %6.2fs wall, %6.3fs CPU sending, %6.3fs CPU in all: %s\n",
					round+1, s.rounds, c.name, name, f.wall.Seconds(), f.sendCPU.Seconds(), f.cpu.Seconds(), status)
			}
		}
	}
	return res, nil
}

// perUnit splits CPU time between requests and bytes: given two cases'
// CPU times c1 and c2 for n1 and n2 requests of m1 and m2 MiB in all, it
// solves c = n × perRequest + m × perMiB for both. ok is false when the
// cases do not tell the two apart.
func perUnit(n1, m1, c1, n2, m2, c2 float64) (perRequest, perMiB float64, ok bool) {
	det := n1*m2 - n2*m1
	if det == 0 {
		return 0, 0, false
	}
	return (c1*m2 - c2*m1) / det, (n1*c2 - n2*c1) / det, true
}

// writeOverhead writes the overhead scenario's section.
func (d *document) writeOverhead(w io.Writer) {
	r := d.overhead
	fmt.Fprint(w, "## 4. Overhead: CPU per request and per MiB\n\n")
	fmt.Fprint(w, "What the client itself costs, at high concurrency against a fast server: each set of files is sent all at once (every file from its own goroutine; steno's limiter allowing all of them in flight) ")
	fmt.Fprint(w, "to the fake API with no latency and no rate limit on a loopback port, which runs in benchall's process while the client runs in its own. ")
	fmt.Fprintf(w, "steno (TranscribeFile) and the standard-library floor (an exact Content-Length, streamed from disk), interleaved over %d rounds, a fresh server for every run; the files already written for scenario 1 are used again. ", d.settings.rounds)
	fmt.Fprint(w, "Every answer is verified as in scenario 1. *CPU sending*: the client process's user + system time (getrusage) from just before its first request to its last answer; *CPU in all*: the whole process's, start-up included (wait4). ")
	fmt.Fprint(w, "*Syscalls*: read and write system calls meanwhile (syscr + syscw of /proc/self/io). *Go allocated*: heap allocated meanwhile. Medians, with [min–max] for CPU sending.\n\n")
	type unit struct {
		reqs, mib float64
		cpu       map[string]float64 // median CPU sending, by contender
	}
	var units []unit
	for _, c := range r.cases {
		byName := r.runs[c]
		mib := float64(c.files) * float64(c.bytes) / (1 << 20)
		fmt.Fprintf(w, "### %s (%.0f MiB in all)\n\n", c.name, mib)
		fmt.Fprint(w, "| contender | wall (s) | CPU sending (s) | CPU in all (s) | ms per request | ms per MiB | × floor | syscalls per request | Go allocated per request (KiB) | allocations per request | GCs | runs ok |\n")
		fmt.Fprint(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		sendS := func(f upFigures) float64 { return f.sendCPU.Seconds() }
		floor, okF := summarise(byName[cFloor], sendS)
		u := unit{reqs: float64(c.files), mib: mib, cpu: map[string]float64{}}
		var failures []string
		for _, name := range overheadContenders {
			runs := byName[name]
			ok := 0
			for i, f := range runs {
				if f.err == nil {
					ok++
				} else {
					failures = append(failures, fmt.Sprintf("%s, round %d: %v", name, i+1, f.err))
				}
			}
			if ok == 0 {
				fmt.Fprintf(w, "| %s | — | — | — | — | — | — | — | — | — | — | 0/%d |\n", name, len(runs))
				continue
			}
			wall, _ := summarise(runs, wallS)
			send, _ := summarise(runs, sendS)
			all, _ := summarise(runs, cpuS)
			sysc, _ := summarise(runs, func(f upFigures) float64 { return float64(f.syscalls) })
			alloc, _ := summarise(runs, func(f upFigures) float64 { return float64(f.allocBytes) / 1024 })
			mallocs, _ := summarise(runs, func(f upFigures) float64 { return float64(f.mallocs) })
			gc, _ := summarise(runs, gcs)
			u.cpu[name] = send.med
			fmt.Fprintf(w, "| %s | %.2f | %.3f [%.3f–%.3f] | %.3f | %.3f | %.3f | %s | %.1f | %.1f | %.0f | %.0f | %d/%d |\n",
				name, wall.med, send.med, send.lo, send.hi, all.med, send.med*1000/u.reqs, send.med*1000/mib, ratio(send.med, floor.med, okF),
				sysc.med/u.reqs, alloc.med/u.reqs, mallocs.med/u.reqs, gc.med, ok, len(runs))
		}
		fmt.Fprintln(w)
		if len(failures) > 0 {
			fmt.Fprint(w, "Failed runs (left out of the medians):\n\n")
			for _, f := range failures {
				fmt.Fprintf(w, "- %s\n", f)
			}
			fmt.Fprintln(w)
		}
		if n := overheadVerdict(byName, u.reqs); n != "" {
			fmt.Fprintf(w, "%s\n\n", n)
		}
		units = append(units, u)
	}
	if len(units) != 2 {
		return
	}
	fmt.Fprint(w, "### Per request and per MiB, apart\n\n")
	fmt.Fprintf(w, "Each case's CPU sending (median) is requests × a cost per request + MiB × a cost per MiB; the two cases (%g requests and %g MiB in all; %g requests and %g MiB) give both costs:\n\n",
		units[0].reqs, units[0].mib, units[1].reqs, units[1].mib)
	fmt.Fprint(w, "| contender | CPU per request (ms) | × floor | CPU per MiB (ms) | × floor |\n| --- | ---: | ---: | ---: | ---: |\n")
	fr, fm, okF := perUnit(units[0].reqs, units[0].mib, units[0].cpu[cFloor], units[1].reqs, units[1].mib, units[1].cpu[cFloor])
	for _, name := range overheadContenders {
		c1, ok1 := units[0].cpu[name]
		c2, ok2 := units[1].cpu[name]
		pr, pm, ok := perUnit(units[0].reqs, units[0].mib, c1, units[1].reqs, units[1].mib, c2)
		if !ok1 || !ok2 || !ok {
			fmt.Fprintf(w, "| %s | — | — | — | — |\n", name)
			continue
		}
		fmt.Fprintf(w, "| %s | %.3f | %s | %.3f | %s |\n", name, pr*1000, ratio(pr, fr, okF), pm*1000, ratio(pm, fm, okF))
	}
	fmt.Fprintln(w)
}

// overheadVerdict says, when steno's median CPU sending is above the
// floor's, by how much and what steno's runs did more of.
func overheadVerdict(byName map[string][]upFigures, reqs float64) string {
	sendS := func(f upFigures) float64 { return f.sendCPU.Seconds() }
	s, ok1 := summarise(byName[cSteno], sendS)
	f, ok2 := summarise(byName[cFloor], sendS)
	if !ok1 || !ok2 {
		return ""
	}
	if s.med <= f.med {
		return fmt.Sprintf("steno used no more CPU than the floor here (%.3f s against %.3f s).", s.med, f.med)
	}
	med := func(name string, get func(upFigures) float64) float64 {
		st, _ := summarise(byName[name], get)
		return st.med
	}
	sysc := func(x upFigures) float64 { return float64(x.syscalls) / reqs }
	mallocs := func(x upFigures) float64 { return float64(x.mallocs) / reqs }
	kib := func(x upFigures) float64 { return float64(x.allocBytes) / 1024 / reqs }
	var why []string
	if s.med <= f.hi {
		why = append(why, fmt.Sprintf("its median lies within the floor's range over the rounds (%.3f–%.3f s)", f.lo, f.hi))
	}
	why = append(why, fmt.Sprintf("per request, steno made %.1f read/write system calls against %.1f and allocated %.1f KiB of Go heap in %.0f objects against %.1f KiB in %.0f",
		med(cSteno, sysc), med(cFloor, sysc), med(cSteno, kib), med(cSteno, mallocs), med(cFloor, kib), med(cFloor, mallocs)))
	return fmt.Sprintf("Where steno is not ahead: it used %.3f s of CPU sending against the floor's %.3f s (%.2f×, %.3f ms more per request). Measured: %s. What steno does on top of the floor, per request: it checks the file before paying for a request (open, stat, its header read for the duration), goes through its limiter and its retry logic with per-attempt timeouts, and parses every answer as a transcript; the figures are what that costs in all, not a breakdown of it.",
		s.med, f.med, s.med/f.med, (s.med-f.med)*1000/reqs, strings.Join(why, "; "))
}
