package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
)

// failure is a file that failed, and why.
type failure struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// partial is a file transcribed in part (-partial): the stretches its
// transcript lacks, which a re-run sends.
type partial struct {
	File    string                 `json:"file"`
	Missing []transcribe.TimeRange `json:"missing"`
}

// summary counts a batch's results; it is also the -json output. It holds
// the failures, not the jobs: its size does not grow with the number of
// files that went well.
type summary struct {
	Done             int       `json:"done"`
	Partial          int       `json:"partial"` // of Done: pieces missing (-partial)
	Failed           int       `json:"failed"`
	Skipped          int       `json:"skipped"`
	NotAttempted     int       `json:"not_attempted"`
	Planned          int       `json:"planned"` // -dry-run: would be sent
	Requests         int       `json:"requests"`
	Retries          int       `json:"retries"`
	RateLimited      int       `json:"rate_limited"` // 429 rate_limit_exceeded answers
	AudioSeconds     float64   `json:"audio_seconds"`
	SkippedSeconds   float64   `json:"skipped_seconds"` // silence not sent (-skip-silence)
	EstimatedCostUSD float64   `json:"estimated_cost_usd"`
	ElapsedSeconds   float64   `json:"elapsed_seconds"`
	Failures         []failure `json:"failures"`
	Partials         []partial `json:"partials"`
	Aborted          string    `json:"aborted,omitempty"`      // quota_exhausted, invalid_key, permission_denied, not_found, redirect_refused, output_error, budget_reached
	AbortReason      string    `json:"abort_reason,omitempty"` // the same, in a sentence
	Interrupted      bool      `json:"interrupted,omitempty"`
	DryRun           bool      `json:"dry_run"`
	Model            string    `json:"model"`
	OutputDir        string    `json:"output_dir"`

	abortErr error // the first cause of an abort seen
	maxCost  float64
}

func newSummary(cfg config) *summary {
	return &summary{
		Failures:  []failure{},
		Partials:  []partial{},
		DryRun:    cfg.dryRun,
		Model:     cfg.req.Model,
		OutputDir: cfg.out,
		maxCost:   cfg.maxCost,
	}
}

// interrupted reports whether r ended only because ctx was cancelled (by
// Ctrl-C): such a job is not failed, a re-run will do it.
func interrupted(ctx context.Context, r transcribe.BatchResult) bool {
	return ctx.Err() != nil && r.Err != nil && errors.Is(r.Err, context.Canceled)
}

// add counts one result.
func (s *summary) add(ctx context.Context, r transcribe.BatchResult) {
	s.Requests += r.Attempts
	s.Retries += max(0, r.Attempts-1)
	switch r.Status {
	case transcribe.StatusDone:
		s.Done++
		s.AudioSeconds += r.AudioSeconds
		s.EstimatedCostUSD += r.CostUSD
		if t := r.Transcription; t != nil {
			s.SkippedSeconds += t.SkippedSeconds
			if len(t.Missing) > 0 {
				s.Partial++
				s.Partials = append(s.Partials, partial{File: r.Job.ID, Missing: t.Missing})
			}
		}
	case transcribe.StatusPlanned:
		s.Planned++
		s.AudioSeconds += r.AudioSeconds
		s.EstimatedCostUSD += r.CostUSD
	case transcribe.StatusSkipped:
		s.Skipped++
	case transcribe.StatusNotAttempted:
		s.NotAttempted++
		if s.abortErr == nil && (errors.Is(r.Err, transcribe.ErrBudgetReached) || errors.As(r.Err, new(*transcribe.AbortError))) {
			s.abortErr = r.Err
		}
	case transcribe.StatusFailed:
		if interrupted(ctx, r) {
			s.NotAttempted++
			return
		}
		s.Failed++
		s.Failures = append(s.Failures, failure{File: r.Job.ID, Error: reason(r.Err)})
		if s.abortErr == nil && transcribe.Fatal(r.Err) {
			s.abortErr = r.Err // aborts even when it was the last job
		}
	}
}

// finish records the totals known at the end.
func (s *summary) finish(elapsed time.Duration, lim ratelimit.Stats, interrupted bool) {
	s.ElapsedSeconds = elapsed.Seconds()
	s.RateLimited = lim.RateLimited
	s.Interrupted = interrupted
	s.EstimatedCostUSD = float64(int64(s.EstimatedCostUSD*1e6+0.5)) / 1e6
	if s.abortErr != nil {
		s.Aborted, s.AbortReason = s.abortCause()
	}
}

// abortCause names why the batch stopped, as a code and as a sentence.
func (s *summary) abortCause() (code, sentence string) {
	const rerun = "; finished transcripts are kept"
	err := s.abortErr
	switch {
	case errors.Is(err, transcribe.ErrQuotaExceeded):
		return "quota_exhausted", "the account's quota is exhausted: add credit, then re-run to continue" + rerun
	case errors.Is(err, transcribe.ErrUnauthorized):
		return "invalid_key", "the API key was refused (401): check OPENAI_API_KEY, then re-run to continue" + rerun
	case errors.Is(err, transcribe.ErrPermissionDenied):
		return "permission_denied", fmt.Sprintf("the server refused access (403), e.g. to model %q: %s", s.Model, reason(err))
	case errors.Is(err, transcribe.ErrNotFound):
		return "not_found", fmt.Sprintf("the server knows no such model or URL (404): check -model %q and OPENAI_BASE_URL", s.Model)
	case errors.Is(err, transcribe.ErrRedirect):
		return "redirect_refused", fmt.Sprintf("the server redirected the upload (%s): check OPENAI_BASE_URL, then re-run to continue", reason(err)) + rerun
	case errors.Is(err, transcribe.ErrOutput):
		return "output_error", fmt.Sprintf("a transcript could not be written to %s (%s): free some space or fix the directory, then re-run to continue", s.OutputDir, reason(err)) + rerun
	case errors.Is(err, transcribe.ErrBudgetReached):
		return "budget_reached", fmt.Sprintf("the -max-cost budget of $%.4f would have been passed: raise it, then re-run to continue", s.maxCost) + rerun
	}
	return "aborted", reason(err)
}

// reason is err for a line that already names the file: an input error's
// cause, without the package prefix, made safe for a terminal (it holds
// what the server said).
func reason(err error) string {
	if err == nil {
		return ""
	}
	var ie *transcribe.InputError
	if errors.As(err, &ie) && ie.Err != nil {
		err = ie.Err
	}
	var ae *transcribe.AbortError
	if errors.As(err, &ae) {
		err = ae.Err
	}
	return transcribe.PrintableLine(strings.TrimPrefix(err.Error(), "transcribe: "))
}

// maxListed is how many failures the human summary lists; -json has all.
const maxListed = 50

// print writes the human summary.
func (s *summary) print(w io.Writer) {
	if s.DryRun {
		s.printDryRun(w)
		return
	}
	fmt.Fprintf(w, "\n%d done, %d failed, %d skipped (already done), %d not attempted\n", s.Done, s.Failed, s.Skipped, s.NotAttempted)
	s.printFailures(w)
	if s.Partial > 0 {
		fmt.Fprintf(w, "%d of the done are partial (pieces failed): re-run to send only their missing pieces\n", s.Partial)
		for i, p := range s.Partials {
			if i == maxListed {
				fmt.Fprintf(w, "  … and %d more (see -json)\n", len(s.Partials)-maxListed)
				break
			}
			fmt.Fprintf(w, "  partial %s: missing", transcribe.PrintableLine(p.File))
			for _, m := range p.Missing {
				fmt.Fprintf(w, " %.1f–%.1f s", m.Start, m.End)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "audio: %.1f min; estimated cost: %s\n", s.AudioSeconds/60, s.cost())
	if s.SkippedSeconds > 0 {
		fmt.Fprintf(w, "silence skipped: %.1f min not sent (nor billed)\n", s.SkippedSeconds/60)
	}
	fmt.Fprintf(w, "requests: %d; retries: %d; rate limited (429): %d; elapsed: %v\n",
		s.Requests, s.Retries, s.RateLimited, time.Duration(s.ElapsedSeconds*float64(time.Second)).Round(100*time.Millisecond))
	switch {
	case s.Interrupted:
		fmt.Fprintln(w, "interrupted: requests in flight were cancelled and files not reached were left; finished transcripts are kept: re-run to continue")
	case s.AbortReason != "":
		fmt.Fprintln(w, "stopped:", s.AbortReason)
	}
}

func (s *summary) printDryRun(w io.Writer) {
	fmt.Fprintf(w, "\ndry run, nothing sent: %d files to transcribe, %.1f min of audio, estimated cost %s; %d already done, %d would fail\n",
		s.Planned, s.AudioSeconds/60, s.cost(), s.Skipped, s.Failed)
	s.printFailures(w)
	if s.maxCost > 0 && s.EstimatedCostUSD > s.maxCost {
		fmt.Fprintf(w, "-max-cost $%.4f would stop the batch before the end\n", s.maxCost)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: the count is incomplete")
	}
}

func (s *summary) printFailures(w io.Writer) {
	for i, f := range s.Failures {
		if i == maxListed {
			fmt.Fprintf(w, "  … and %d more (see -json)\n", len(s.Failures)-maxListed)
			break
		}
		fmt.Fprintf(w, "  failed %s: %s\n", transcribe.PrintableLine(f.File), f.Error)
	}
}

// cost renders the estimated cost with the price it comes from.
func (s *summary) cost() string {
	p, ok := transcribe.DefaultPricePerMinute[s.Model]
	if !ok {
		return fmt.Sprintf("unknown (no price known for model %q)", s.Model)
	}
	return fmt.Sprintf("$%.4f (%s at $%.3f/min)", s.EstimatedCostUSD, s.Model, p)
}

// exitCode is the command's exit status for the batch.
func (s *summary) exitCode() int {
	switch {
	case s.Interrupted:
		return exitInterrupted
	case s.DryRun:
		return exitOK
	case s.abortErr != nil:
		return exitAborted
	case s.Failed > 0, s.Partial > 0:
		return exitFailed
	}
	return exitOK
}
