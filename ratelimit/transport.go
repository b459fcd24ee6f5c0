package ratelimit

import (
	"bytes"
	"io"
	"net/http"
)

// Transport returns an http.RoundTripper that sends every request through
// base (http.DefaultTransport when nil) under the limiter: each request
// acquires a Permit first and reports its response to it. Any HTTP client
// can use it, including OpenAI's official SDKs:
//
//	client := openai.NewClient(option.WithHTTPClient(&http.Client{Transport: lim.Transport(nil)}))
//
// The permit is done when the response's headers arrive. To tell an
// exhausted quota from a rate limit it reads the first 4 KB of a 429's body,
// which the caller still receives whole.
func (l *Limiter) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{l: l, base: base}
}

type transport struct {
	l    *Limiter
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	p, err := t.l.Acquire(req.Context(), Cost{})
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper always closes the body
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	verdict := err
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		if bytes.Contains(head, []byte("insufficient_quota")) {
			verdict = ErrQuotaExceeded
		}
	}
	p.Done(resp, verdict)
	return resp, err
}
