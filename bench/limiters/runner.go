package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// figures are the measurements of one run of one contender.
type figures struct {
	err          error         // the run failed: a request was lost, or it did not finish
	elapsed      time.Duration // until the last upload ended: its 200 read, or given up
	limited      int           // 429s the server sent
	limitedReq   int           // of those, the ones not for audio
	limitedAudio int           // of those, the ones for seconds of audio
	failed       int           // uploads the contender gave up on, without a transcript
	wasted       int           // requests the server received that brought no transcript
	sent         int           // requests the server received
	maxInWindow  int           // the most requests the server saw in any window of the budget's
	peakInFlight int           // the most requests the server handled at once
	note         string        // what the contender reported

	server transcribetest.Stats // all the server's figures
}

// errTimeout is the cause of a run that did not finish in time.
var errTimeout = errors.New("did not finish in time")

// measure runs c once on sc against a fresh server, and checks that every
// request was answered 200 with the clip's transcript or given up by the
// contender (see uploader.giveUp), and that the server sent nothing but
// 429s besides those 200s.
func measure(ctx context.Context, sc *scenario, c contender) figures {
	srv := transcribetest.NewServer(sc.server)
	defer srv.Close()
	// A transport of its own for each run, keeping a connection for each
	// request in flight.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = sc.inFlight
	defer base.CloseIdleConnections()
	u, err := newUploader(srv.BaseURL()+"/audio/transcriptions", base, sc.clip)
	if err != nil {
		return figures{err: err}
	}

	// Cancelled, not given a deadline: a deadline would change how a
	// limiter waits.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(sc.timeout, func() { cancel(fmt.Errorf("%w (%v)", errTimeout, sc.timeout)) })
	defer timer.Stop()

	start := time.Now()
	note, err := c.run(ctx, sc, u)
	n := u.counts()
	if err != nil {
		return figures{err: fmt.Errorf("%d of %d answered 200 (%d given up), then: %w", n.ok, sc.requests, n.gaveUp, err)}
	}
	st := srv.Stats()
	switch {
	case n.ok+n.gaveUp != sc.requests:
		err = fmt.Errorf("%d of %d requests answered 200 and %d given up", n.ok, sc.requests, n.gaveUp)
	case st.ByStatus[http.StatusOK] != n.ok || len(st.ByStatus) > 2 ||
		st.ByStatus[http.StatusOK]+st.ByStatus[http.StatusTooManyRequests] != st.Requests:
		err = fmt.Errorf("the server answered %d requests with %v; want %d 200s and only 429s besides",
			st.Requests, st.ByStatus, n.ok)
	case n.limitedReq+n.limitedAudio != st.ByStatus[http.StatusTooManyRequests]:
		err = fmt.Errorf("the client read %d 429s, the server sent %d", n.limitedReq+n.limitedAudio, st.ByStatus[http.StatusTooManyRequests])
	}
	if err != nil {
		return figures{err: err}
	}
	return figures{
		elapsed:      n.lastDone.Sub(start),
		limited:      st.ByStatus[http.StatusTooManyRequests],
		limitedReq:   n.limitedReq,
		limitedAudio: n.limitedAudio,
		failed:       n.gaveUp,
		wasted:       st.Requests - n.ok,
		sent:         st.Requests,
		maxInWindow:  st.MaxInWindow(st.Sent, sc.window),
		peakInFlight: st.MaxInFlight,
		note:         note,
		server:       st,
	}
}

// results holds the figures of every run: by scenario, contender (in the
// scenario's order) and round.
type results map[*scenario][][]figures

// runScenarios runs every contender of every scenario runs times, in
// rounds. In each round, the contenders of every scenario that is not
// serial run side by side, each against its own server (one after the
// other, in order, when serial is set); then, round by round, those of the
// serial scenarios run one after another. It reports progress to progress.
func runScenarios(ctx context.Context, scs []*scenario, runs int, serial bool, progress io.Writer) (results, error) {
	res := results{}
	for _, sc := range scs {
		res[sc] = make([][]figures, len(sc.contenders))
		for i := range res[sc] {
			res[sc][i] = make([]figures, runs)
		}
	}
	type job struct {
		sc *scenario
		c  int
	}
	var side, alone []job
	for _, sc := range scs {
		for i := range sc.contenders {
			if sc.serial {
				alone = append(alone, job{sc, i})
			} else {
				side = append(side, job{sc, i})
			}
		}
	}
	do := func(round int, j job) {
		f := measure(ctx, j.sc, j.sc.contenders[j.c])
		res[j.sc][j.c][round] = f
		if f.err != nil {
			fmt.Fprintf(progress, "limiters: %s / %s, round %d: %v\n", j.sc.name, j.sc.contenders[j.c].name, round+1, f.err)
		}
	}
	for round := range runs {
		if len(side) > 0 {
			start := time.Now()
			if serial {
				for _, j := range side {
					do(round, j)
				}
			} else {
				var wg sync.WaitGroup
				for _, j := range side {
					wg.Go(func() { do(round, j) })
				}
				wg.Wait()
			}
			fmt.Fprintf(progress, "limiters: round %d of %d: %d runs in %.1fs\n", round+1, runs, len(side), time.Since(start).Seconds())
		}
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
	}
	for round := range runs {
		for _, j := range alone {
			do(round, j)
		}
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}
