package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/steno-go/steno/transcribe"
)

// sharedOutput is one output directory written by several worker
// processes, the way the batch CLI writes it (same transcript files, same
// records under DIR/.steno/), so that the record decides whether a file
// was already paid for, whichever process paid.
//
// A transcribe.OutputWriter locks its directory from NewOutputWriter to
// Close, so that two runs never both pay for one file: a second writer,
// in any process, fails with transcribe.ErrOutputLocked. A worker
// therefore holds a writer only for the two short steps that need it,
// never while a request is in flight:
//
//  1. before sending a file: open, Done (is its transcript recorded?),
//     close;
//  2. once its transcript arrived: open, Done again (did another worker
//     write it meanwhile?), Write, close.
//
// The lock turns each step into one atomic decision across the fleet.
// Between the steps, the queue's lease on the file (see queue.takeLease)
// keeps every other worker from sending it. What the workers lose by not
// holding the writer throughout: the pieces of a file cut in pieces are not
// kept as they arrive, so a cut file whose transcription failed half-way
// is sent whole again (the batch CLI, which holds its writer for the whole
// run, sends only the missing pieces).
type sharedOutput struct {
	dir string
	sem chan struct{} // one step of this process at a time: the lock is the directory's, not a goroutine's
	log *slog.Logger  // told when the folder stays locked long (a batch run holds it); nil: not told
}

func newSharedOutput(dir string) *sharedOutput {
	return &sharedOutput{dir: dir, sem: make(chan struct{}, 1)}
}

// Longest and shortest waits between two tries of a locked directory.
const (
	lockRetryMin = 2 * time.Millisecond
	lockRetryMax = 100 * time.Millisecond
	// lockPatience is how long a step waits for the folder before it
	// says so in the log.
	lockPatience = 5 * time.Second
)

// with runs f with a writer on the directory, waiting while another
// process holds it, until ctx is done: then the error wraps
// transcribe.ErrOutputLocked and ctx's cause.
func (o *sharedOutput) with(ctx context.Context, f func(w *transcribe.OutputWriter) error) error {
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("output %s: %w", o.dir, context.Cause(ctx))
	}
	defer func() { <-o.sem }()
	wait := lockRetryMin
	start, told := time.Now(), false
	for {
		w, err := transcribe.NewOutputWriter(o.dir)
		if err == nil {
			err = f(w)
			return errors.Join(err, w.Close())
		}
		if !errors.Is(err, transcribe.ErrOutputLocked) {
			return err
		}
		if !told && o.log != nil && time.Since(start) > lockPatience {
			told = true
			o.log.Warn("fleet: the output folder is held by another process (a batch run?); waiting for it", "error", err)
		}
		t := time.NewTimer(wait/2 + rand.N(wait)) // jittered: the workers do not retry in step
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
		wait = min(2*wait, lockRetryMax)
	}
}

// done reports whether the transcript of in for req is recorded in the
// directory, and where it is.
func (o *sharedOutput) done(ctx context.Context, in transcribe.Input, req transcribe.Request) (path string, done bool, err error) {
	err = o.with(ctx, func(w *transcribe.OutputWriter) error {
		path, done = w.Done(in, req)
		return nil
	})
	return path, done, err
}

// write records t, the transcript of in for req, unless another worker
// recorded one first (then first is false and nothing is written), and
// returns its path.
func (o *sharedOutput) write(ctx context.Context, in transcribe.Input, req transcribe.Request, t *transcribe.Transcription) (path string, first bool, err error) {
	err = o.with(ctx, func(w *transcribe.OutputWriter) error {
		if p, done := w.Done(in, req); done {
			path = p
			return nil
		}
		first = true
		path, err = w.Write(in, req, t)
		return err
	})
	return path, first, err
}
