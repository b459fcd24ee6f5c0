package ratelimit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// newRequest makes a transcription request for a short clip, for the
// examples.
func newRequest(ctx context.Context, url string) *http.Request {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("model", "whisper-1")
	fw, _ := w.CreateFormFile("file", "clip.wav")
	fw.Write(transcribetest.WAV(time.Second))
	w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/audio/transcriptions", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer sk-example")
	return req
}

// Acquire before each request, Done with what came back: the limiter
// learns the budget from the answer's headers.
func ExampleLimiter_Acquire() {
	srv := transcribetest.NewServer(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{Requests: 50, Window: time.Minute},
	})
	defer srv.Close()

	lim, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	p, err := lim.Acquire(ctx, ratelimit.Cost{AudioSeconds: 1})
	if err != nil {
		log.Fatal(err) // ctx is done, or its deadline is too near
	}
	resp, err := http.DefaultClient.Do(newRequest(ctx, srv.BaseURL()))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	p.Done(resp, err)

	s := lim.Snapshot().Requests
	fmt.Printf("%s budget of %g, %g left\n", s.Source, s.Limit, s.Remaining)
	// Output: learned budget of 50, 49 left
}

// Transport puts any HTTP client under the limiter, OpenAI's official
// SDKs included: each request takes a permit and reports its answer.
func ExampleLimiter_Transport() {
	srv := transcribetest.NewServer(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{Requests: 50, Window: time.Minute},
	})
	defer srv.Close()

	lim, _ := ratelimit.New(ratelimit.Config{Requests: ratelimit.Limit{N: 50, Per: time.Minute}})
	client := &http.Client{Transport: lim.Transport(nil)}
	var wg sync.WaitGroup
	for range 10 { // all ten at once: the budget is whole
		wg.Go(func() {
			resp, err := client.Do(newRequest(context.Background(), srv.BaseURL()))
			if err != nil {
				log.Print(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	st := srv.Stats()
	fmt.Println(st.ByStatus[200], "answered, none refused:", st.ByStatus[429] == 0)
	fmt.Println("budget:", lim.Snapshot().Requests.Limit, "a minute")
	// Output:
	// 10 answered, none refused: true
	// budget: 50 a minute
}

// Every client spending one account's budget shares one limiter: here two
// transcribe clients and a plain HTTP client.
func Example_shared() {
	srv := transcribetest.NewServer(transcribetest.Config{
		RateLimit: transcribetest.RateLimit{Requests: 50, Window: time.Minute},
	})
	defer srv.Close()

	lim, _ := ratelimit.New(ratelimit.Config{MaxInFlight: 16})
	a, _ := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"), transcribe.WithLimiter(lim))
	b, _ := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"), transcribe.WithLimiter(lim),
		// Its own HTTP client may send through the limiter too: the
		// client's permit rides on each request, so it takes one, not two.
		transcribe.WithHTTPClient(&http.Client{Transport: lim.Transport(nil)}))
	sdk := &http.Client{Transport: lim.Transport(nil)}

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "clip.wav")
	os.WriteFile(path, transcribetest.WAV(time.Second), 0o644)
	ctx := context.Background()
	for _, c := range []*transcribe.Client{a, b} {
		if _, err := c.TranscribeFile(ctx, path, transcribe.Request{}); err != nil {
			log.Fatal(err)
		}
	}
	resp, err := sdk.Do(newRequest(ctx, srv.BaseURL()))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(lim.Snapshot().Requests.Remaining, "left of the shared budget")
	// Output: 47 left of the shared budget
}

// A caller that takes its own permits (to charge each request its audio
// seconds, say) and sends through an HTTP client on the same limiter's
// Transport puts the permit on the request's context.
func ExampleContextWithPermit() {
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()

	lim, _ := ratelimit.New(ratelimit.Config{AudioSeconds: ratelimit.Limit{N: 7200, Per: time.Hour}})
	client := &http.Client{Transport: lim.Transport(nil)}
	ctx := context.Background()
	p, err := lim.Acquire(ctx, ratelimit.Cost{AudioSeconds: 1})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(newRequest(ratelimit.ContextWithPermit(ctx, p), srv.BaseURL()))
	if err == nil {
		resp.Body.Close()
	}
	p.Done(resp, err)
	fmt.Printf("%.0f audio seconds left this hour\n", lim.Snapshot().Audio.Available)
	// Output: 7199 audio seconds left this hour
}
