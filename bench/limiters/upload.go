package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// apiKey is the key the fake servers require.
const apiKey = "sk-bench"

// uploader sends the benchmark's request, a transcription upload of one
// WAV clip, and checks and counts the answers.
type uploader struct {
	url         string
	body        []byte // the multipart form
	clip        []byte // the WAV file in it
	contentType string
	seconds     float64           // the clip's duration, which every 200 must report
	base        http.RoundTripper // to the server, shared by the contender's clients

	mu           sync.Mutex
	lastDone     time.Time // when the last upload ended: its 200 read, or given up
	ok           int       // 200s read, each a verified transcript
	gaveUp       int       // uploads the contender gave up on (see giveUp)
	limitedReq   int       // 429s for the requests budget (or any other but audio)
	limitedAudio int       // 429s for seconds of audio
}

// newUploader returns an uploader of clip, a WAV file, to url.
func newUploader(url string, base http.RoundTripper, clip []byte) (*uploader, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range [][2]string{{"model", "whisper-1"}, {"response_format", "verbose_json"}} {
		if err := w.WriteField(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	fw, err := w.CreateFormFile("file", "clip.wav")
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(clip); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return &uploader{
		url: url, body: body.Bytes(), clip: clip, contentType: w.FormDataContentType(),
		seconds: wavSeconds(clip), base: base,
	}, nil
}

// wavSeconds returns the duration of a WAV file made by transcribetest.WAV:
// 16-bit mono at 16 kHz after a 44-byte header.
func wavSeconds(clip []byte) float64 { return float64(len(clip)-44) / 32000 }

// wavOf returns a WAV file of about n bytes, as transcribetest.WAV makes
// them.
func wavOf(n int) []byte {
	return transcribetest.WAV(time.Duration(float64(n-44) / 32000 * float64(time.Second)))
}

// request returns a new request of the upload, made with ctx.
func (u *uploader) request(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(u.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", u.contentType)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	return req, nil
}

// finish reads and closes resp's body and returns its status, 200 or 429,
// and the body; any other status, or a 200 that is not the transcript of
// the clip, is an error. It counts the answer.
func (u *uploader) finish(resp *http.Response) (int, []byte, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var t struct {
			Text     string  `json:"text"`
			Duration float64 `json:"duration"`
		}
		if err := json.Unmarshal(body, &t); err != nil || t.Text == "" || math.Abs(t.Duration-u.seconds) > 0.01 {
			return 0, nil, fmt.Errorf("200 whose body is not the clip's transcript (%v): %.200q", err, body)
		}
		u.mu.Lock()
		u.lastDone = time.Now()
		u.ok++
		u.mu.Unlock()
	case http.StatusTooManyRequests:
		u.mu.Lock()
		if bytes.Contains(body, []byte("seconds of audio")) {
			u.limitedAudio++
		} else {
			u.limitedReq++
		}
		u.mu.Unlock()
	default:
		return 0, nil, fmt.Errorf("unexpected status %s: %.200q", resp.Status, body)
	}
	return resp.StatusCode, body, nil
}

// post sends the upload with c and returns the answer's status, 200 or
// 429, and headers; any other status is an error.
func (u *uploader) post(ctx context.Context, c *http.Client) (int, http.Header, error) {
	req, err := u.request(ctx)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	status, _, err := u.finish(resp)
	return status, resp.Header, err
}

// giveUp records that the contender gave up on an upload: a client that
// returns an error to its caller after its own retries (openai-go) ends
// an upload without a transcript. Such an upload is failed, not lost:
// the run goes on and counts it.
func (u *uploader) giveUp() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastDone = time.Now()
	u.gaveUp++
}

// tally is what an uploader counted.
type tally struct {
	lastDone                 time.Time
	ok, gaveUp               int
	limitedReq, limitedAudio int
}

// counts returns the answers counted so far.
func (u *uploader) counts() tally {
	u.mu.Lock()
	defer u.mu.Unlock()
	return tally{u.lastDone, u.ok, u.gaveUp, u.limitedReq, u.limitedAudio}
}

// checkingTransport hands every answer of base to an uploader to check
// and count (finish), then gives the client a copy of the body it read:
// for a client that reads answers itself, such as an SDK.
type checkingTransport struct {
	u    *uploader
	base http.RoundTripper
}

func (t checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, body, err := t.u.finish(resp)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// retryAfter returns the wait a 429's headers ask for: retry-after-ms, else
// retry-after in seconds, else a second.
func retryAfter(h http.Header) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("retry-after-ms"), 64); err == nil && ms >= 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	return retryAfterSeconds(h)
}

// retryAfterSeconds returns the wait of the retry-after header alone,
// whole seconds, as a client that knows only that header reads it; a
// second when it is absent.
func retryAfterSeconds(h http.Header) time.Duration {
	if s, err := strconv.ParseFloat(h.Get("retry-after"), 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	return time.Second
}

// batch runs functions concurrently; the first error cancels the context
// they were given and is returned by wait.
type batch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

func newBatch(ctx context.Context) *batch {
	b := &batch{}
	b.ctx, b.cancel = context.WithCancelCause(ctx)
	return b
}

func (b *batch) goDo(f func(ctx context.Context) error) {
	b.wg.Go(func() {
		if err := f(b.ctx); err != nil {
			b.cancel(err)
		}
	})
}

func (b *batch) wait() error {
	b.wg.Wait()
	err := context.Cause(b.ctx)
	b.cancel(nil)
	return err
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// acquire takes a slot of sem, or fails when ctx is done.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
