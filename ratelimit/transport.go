package ratelimit

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/steno-go/steno/internal/apierr"
)

// Transport returns an http.RoundTripper that sends every request through
// base (http.DefaultTransport when nil) under the limiter: each request
// acquires a Permit first and reports its response to it. Any HTTP client
// can use it, including OpenAI's official SDKs:
//
//	client := openai.NewClient(option.WithHTTPClient(&http.Client{Transport: lim.Transport(nil)}))
//
// The permit is done when the response's headers arrive. To tell an
// exhausted quota from a rate limit, and to read the budget a 429's message
// names, it reads the first 4 KB of a 429's body, which the caller still
// receives whole.
//
// A request whose context carries a permit of the same limiter
// (ContextWithPermit) is sent under that permit: the transport takes no
// other, and leaves Done to the permit's owner.
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

type permitKey struct{}

// ContextWithPermit returns a copy of ctx that carries p. A request made
// with it and sent through the Transport of p's limiter goes under p
// instead of acquiring another permit: this is how a caller that acquires
// a permit for each attempt itself (transcribe.Client does) shares its
// limiter with the HTTP client it sends through, one permit per attempt.
func ContextWithPermit(ctx context.Context, p *Permit) context.Context {
	return context.WithValue(ctx, permitKey{}, p)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if p, _ := req.Context().Value(permitKey{}).(*Permit); p != nil && p.l == t.l {
		return t.base.RoundTrip(req)
	}
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
		head := make([]byte, quotaHead)
		n, _ := io.ReadFull(resp.Body, head)
		head = head[:n]
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		verdict = throttleBody(head)
		// The same classifier as transcribe.APIError's: quota in every
		// shape servers send it (OpenAI, Azure, FastAPI, gateways).
		if apierr.IsQuota(resp.StatusCode, apierr.Parse(resp.StatusCode, resp.Header, head)) {
			verdict = ErrQuotaExceeded
		}
	}
	p.Done(resp, verdict)
	return resp, err
}

// quotaHead is how much of a 429's body the transport reads to tell an
// exhausted quota from a rate limit: the error object comes first, and
// apierr reads JSON cut short as far as it goes.
const quotaHead = 4 << 10

// throttleBody is the start of a 429's body, handed to Permit.Done so the
// limiter can read the budget its message names.
type throttleBody []byte

func (b throttleBody) Error() string { return string(b) }
