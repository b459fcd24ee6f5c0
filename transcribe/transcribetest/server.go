package transcribetest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
)

// Server is a fake API listening on a loopback address, as
// httptest.NewServer starts it. Its Client is set up for it; Close it when
// done.
type Server struct {
	*httptest.Server
	*Handler
}

// NewServer starts a fake configured by cfg.
func NewServer(cfg Config) *Server {
	h := NewHandler(cfg)
	return &Server{httptest.NewServer(h), h}
}

// BaseURL returns the base URL to give a client: the server's URL and "/v1".
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// ErrConnectionDropped is the error that a round trip through
// [Handler.Transport] returns when a FaultDropConnection closes the
// connection without a response. It comes wrapped together with io.EOF, as
// net/http reports a connection closed before the response (and, by
// http.Client, in a *url.Error).
var ErrConnectionDropped = errors.New("transcribetest: connection closed by the server without a response")

// Transport returns an http.RoundTripper that serves each request with h in
// memory, with no sockets, so it also works inside testing/synctest bubbles.
// The URL's scheme and host are ignored.
//
// It streams the request body into the handler as the wire would: a body
// with a ContentLength is cut or found short at that length, and a body of
// unknown length (ContentLength < 0, or 0 with a Body other than
// http.NoBody) arrives as chunked, which the fake refuses. A dropped
// connection is [ErrConnectionDropped]; a cancelled request returns the
// context's error at once, as net/http does.
func (h *Handler) Transport() http.RoundTripper { return transport{h} }

type transport struct{ h *Handler }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		closeBody()
		return nil, err
	}
	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "192.0.2.1:1234"
	sreq.GetBody = nil
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		sreq.Body, sreq.ContentLength = http.NoBody, 0
	case req.ContentLength <= 0:
		sreq.Body, sreq.ContentLength, sreq.TransferEncoding = io.NopCloser(req.Body), -1, []string{"chunked"}
	default:
		sreq.Body = &exactBody{req.Body, req.ContentLength}
	}

	rec := httptest.NewRecorder()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		t.h.ServeHTTP(rec, sreq)
	}()
	select {
	case p := <-done:
		closeBody()
		if p == http.ErrAbortHandler && rec.Code != 0 && rec.Flushed {
			// The answer began, then the connection closed: its body
			// ends early, as net/http reports it.
			resp := rec.Result()
			resp.Request = req
			resp.Body = io.NopCloser(io.MultiReader(resp.Body, errReader{io.ErrUnexpectedEOF}))
			return resp, nil
		}
		if p == http.ErrAbortHandler {
			return nil, fmt.Errorf("%w (%w)", ErrConnectionDropped, io.EOF)
		} else if p != nil {
			panic(p)
		}
		resp := rec.Result()
		resp.Request = req
		return resp, nil
	case <-ctx.Done():
		closeBody() // unblocks the handler if it is reading the body
		return nil, ctx.Err()
	}
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// exactBody is a request body as a server sees it: exactly n bytes, or
// io.ErrUnexpectedEOF when the client sends fewer.
type exactBody struct {
	r io.Reader
	n int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.n)]
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *exactBody) Close() error { return nil }
