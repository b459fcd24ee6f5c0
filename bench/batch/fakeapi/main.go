// Command fakeapi serves steno's fake of OpenAI's transcription API
// (transcribetest) on a loopback port, for benchmarks that run a client in
// another process.
//
//	fakeapi [-addr 127.0.0.1:0] [-rpm 50] [-window 1m] [-latency 0] [-quota 0]
//
// It prints its base URL (to give as OPENAI_BASE_URL) as the first line on
// stdout. When it stops (SIGTERM, SIGINT), it prints what it received as one
// JSON object on stdout: requests by status, the most in flight at once, the
// most requests in any window of the budget's length, and how many
// requests came with chunked transfer encoding (which the fake, like the
// API, refuses with a 400).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// report is what the fake received, printed when it stops.
type report struct {
	Requests        int            `json:"requests"`
	ByStatus        map[string]int `json:"by_status"` // "0" counts dropped connections
	RateLimited     int            `json:"rate_limited_429"`
	BadRequests     int            `json:"bad_request_400"`
	Chunked         int64          `json:"chunked"`
	MaxInFlight     int            `json:"max_in_flight"`
	MaxSentInWindow int            `json:"max_sent_in_window"` // requests past the quota check, in any window
	Billed          int            `json:"billed"`
	BytesReceived   int64          `json:"bytes_received"`
	Budget          string         `json:"budget"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	rpm := flag.Int("rpm", 50, "requests per -window (0: no rate limit, no x-ratelimit headers)")
	window := flag.Duration("window", time.Minute, "the rate limit's window; shrink it to scale time down")
	latency := flag.Duration("latency", 0, "added before each answer")
	quota := flag.Int("quota", 0, "requests billed before the quota runs out (0: never)")
	flag.Parse()
	if err := run(*addr, *rpm, *window, *latency, *quota); err != nil {
		fmt.Fprintln(os.Stderr, "fakeapi:", err)
		os.Exit(1)
	}
}

func run(addr string, rpm int, window, latency time.Duration, quota int) error {
	if rpm < 0 || window <= 0 || latency < 0 || quota < 0 {
		return errors.New("negative -rpm, -latency or -quota, or a -window that is not positive")
	}
	h := transcribetest.NewHandler(transcribetest.Config{
		RateLimit:     transcribetest.RateLimit{Requests: rpm, Window: window},
		Latency:       latency,
		QuotaRequests: quota,
	})
	var chunked atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength < 0 || slices.Contains(r.TransferEncoding, "chunked") {
			chunked.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("http://%s/v1\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)

	s := h.Stats()
	rep := report{
		Requests:        s.Requests,
		ByStatus:        map[string]int{},
		RateLimited:     s.ByStatus[http.StatusTooManyRequests],
		BadRequests:     s.ByStatus[http.StatusBadRequest],
		Chunked:         chunked.Load(),
		MaxInFlight:     s.MaxInFlight,
		MaxSentInWindow: s.MaxInWindow(s.Sent, window),
		Billed:          len(s.Billed),
		BytesReceived:   s.BytesReceived,
		Budget:          fmt.Sprintf("%d per %v", rpm, window),
	}
	for status, n := range s.ByStatus {
		rep.ByStatus[strconv.Itoa(status)] = n
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
