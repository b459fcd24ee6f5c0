package transcribe

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// MaxUploads is how many times one attempt sends its upload at most,
// redirects included: the request and at most two 307/308 redirects to the
// same origin. A longer chain of redirects is an error, so that a redirect
// loop costs at most MaxUploads uploads, not net/http's ten.
const MaxUploads = 3

// The redirect policy of a Client's HTTP client (see NewClient), for an
// upload, which is a POST:
//
//   - 301, 302 and 303 are errors: net/http would resend the request as a
//     GET without its audio, and return the answer to that as if it were
//     the transcript.
//   - 307 and 308 are followed, with the body sent again, only to the same
//     origin (scheme, host and port) as the request: one to another origin,
//     or from https to http, is an error, so the API key (Authorization,
//     api-key), the OpenAI-Organization and OpenAI-Project headers and the
//     audio never reach another origin.
//   - At most MaxUploads uploads in all.
//
// A refused redirect is an *APIError with the redirect's status, whose
// Message says where the server redirected to (sanitised) and why it was
// not followed. It is not retried. A CheckRedirect of the caller's own
// http.Client is asked after this policy allows a redirect.
func redirectPolicy(key string, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	r := newRedactor(key)
	return func(req *http.Request, via []*http.Request) error {
		if len(via) == 0 {
			return nextRedirect(next, req, via)
		}
		first := via[0]
		status := 0
		if req.Response != nil {
			status = req.Response.StatusCode
		}
		var why string
		switch {
		case status != http.StatusTemporaryRedirect && status != http.StatusPermanentRedirect && req.Method != first.Method:
			why = fmt.Sprintf("a %d would resend the %s as a %s without its body; check the base URL", status, first.Method, req.Method)
		case first.URL.Scheme == "https" && req.URL.Scheme != "https":
			why = "it leads from https to " + req.URL.Scheme
		case origin(req.URL) != origin(first.URL):
			why = "it leads to another origin than " + origin(first.URL) + ", which never gets the API key or the audio"
		case len(via) >= MaxUploads:
			why = fmt.Sprintf("the upload was already sent %d times (a redirect loop?)", len(via))
		default:
			return nextRedirect(next, req, via)
		}
		e := &APIError{
			StatusCode: status,
			Message:    fmt.Sprintf("the server redirected the %s to %s: not followed, as %s", first.Method, sanitizeURL(req.URL.String()), why),
		}
		if req.Response != nil {
			e.RequestID = req.Response.Header.Get("X-Request-Id")
		}
		scrubWith(e, r)
		return e
	}
}

// nextRedirect asks the caller's own CheckRedirect, if any. Its veto is
// final: the same redirect would come again.
func nextRedirect(next func(*http.Request, []*http.Request) error, req *http.Request, via []*http.Request) error {
	if next == nil {
		return nil
	}
	err := next(req, via)
	if err != nil && !errors.Is(err, http.ErrUseLastResponse) {
		return permanent{err}
	}
	return err
}

// origin is u's scheme, host and port, with the scheme's default port made
// explicit: "https://api.openai.com:443".
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") { // IPv6
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + port
}

// secureHTTPClient returns a shallow copy of hc (which is left as it was)
// that follows the redirect policy above and, when there is a key to hide,
// redacts it from the headers of every response. The copy keeps hc's
// Transport (underneath), Jar and Timeout.
func secureHTTPClient(hc *http.Client, key string) *http.Client {
	c := *hc
	c.CheckRedirect = redirectPolicy(key, hc.CheckRedirect)
	if key != "" {
		c.Transport = &scrubTransport{base: hc.Transport, r: newRedactor(key)}
	}
	return &c
}
