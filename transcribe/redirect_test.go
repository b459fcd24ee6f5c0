package transcribe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// redirKey is the key the redirect tests send.
const redirKey = "sk-redirect-0123456789SECRETabcdefghijkl"

// seen is what one server received: each request's method, path, secret
// headers and body size.
type seen struct {
	mu       sync.Mutex
	requests []seenRequest
}

type seenRequest struct {
	method, path string
	secrets      []string // the values of Authorization, api-key, OpenAI-Organization, OpenAI-Project sent
	cookie       string
	bytes        int64
}

func (s *seen) record(r *http.Request) seenRequest {
	n, _ := io.Copy(io.Discard, r.Body)
	req := seenRequest{method: r.Method, path: r.URL.Path, bytes: n, cookie: r.Header.Get("Cookie")}
	for _, h := range []string{"Authorization", "Api-Key", "OpenAI-Organization", "OpenAI-Project"} {
		if v := r.Header.Get(h); v != "" {
			req.secrets = append(req.secrets, h+": "+v)
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	return req
}

func (s *seen) all() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.requests...)
}

// redirServer starts a loopback server (TLS when tls is set) that records
// every request and answers it with answer.
func redirServer(t *testing.T, tls bool, answer func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		s.mu.Lock()
		n := len(s.requests)
		s.mu.Unlock()
		answer(w, r, n)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // a plain-HTTP request to the TLS port would be logged
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, s
}

// redirect answers with status and a Location.
func redirect(status int, location string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Location", location)
		w.WriteHeader(status)
	}
}

// transcript answers with a JSON transcript.
func transcript(w http.ResponseWriter, r *http.Request, _ int) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"text":"redirected fine"}`)
}

// redirClient returns a client of baseURL sending through hc, with an
// organization and a project, so that the three secret headers are sent
// (Authorization, OpenAI-Organization, OpenAI-Project; api-key is counted
// too, should a provider send it).
func redirClient(t *testing.T, baseURL string, hc *http.Client, opts ...transcribe.Option) *transcribe.Client {
	t.Helper()
	c, err := transcribe.NewClient(append([]transcribe.Option{
		transcribe.WithBaseURL(baseURL), transcribe.WithAPIKey(redirKey), transcribe.WithHTTPClient(hc),
		transcribe.WithOrganization("org-redirect"), transcribe.WithProject("proj-redirect"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upload sends one second of audio and returns the result and the size of
// the request body.
func upload(t *testing.T, c *transcribe.Client) (*transcribe.Transcription, int64, error) {
	t.Helper()
	wav := transcribetest.WAV(time.Second)
	tr, err := c.Transcribe(context.Background(), bytes.NewReader(wav), transcribe.Request{})
	return tr, int64(len(wav)), err
}

// refused checks that err is the *APIError of a refused redirect with
// status, whose message says every one of says, and never the key.
func refused(t *testing.T, err error, status int, says ...string) {
	t.Helper()
	var e *transcribe.APIError
	if !errors.As(err, &e) || e.StatusCode != status {
		t.Fatalf("err = %v, want an *APIError with status %d", err, status)
	}
	if !strings.Contains(e.Message, "the server redirected the POST to ") {
		t.Errorf("message %q does not say the upload was redirected", e.Message)
	}
	if !errors.Is(err, transcribe.ErrRedirect) || !transcribe.Fatal(err) {
		t.Errorf("err = %v: not ErrRedirect, or does not stop a batch", err)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, e), "0123456789SECRET") {
		t.Errorf("the key is in the error: %v", err)
	}
}

// TestRedirectToAnotherOriginNeverCarriesKey: a 307 or 308 to another
// port of the same host, and a 301/302/303 there, reach the other server
// with nothing at all: not the key, not the audio.
func TestRedirectToAnotherOriginNeverCarriesKey(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			other, otherSaw := redirServer(t, false, transcript)
			api, apiSaw := redirServer(t, false, redirect(status, other.URL+"/v1/audio/transcriptions?x=1"))
			c := redirClient(t, api.URL+"/v1", api.Client())
			tr, _, err := upload(t, c)
			if tr != nil {
				t.Fatalf("a redirected upload gave a transcript: %+v", tr)
			}
			why := "another origin"
			if status < 307 {
				why = "as a GET without its body"
			}
			refused(t, err, status, strings.TrimPrefix(other.URL, "http://")+"/v1/audio/transcriptions?…", why)
			if got := otherSaw.all(); len(got) != 0 {
				t.Errorf("the other origin got %d requests: %+v", len(got), got)
			}
			if got := apiSaw.all(); len(got) != 1 || len(got[0].secrets) != 3 {
				t.Errorf("the API got %+v, want one request with its 3 secret headers (no retry)", got)
			}
		})
	}
}

// TestRedirectToAnotherHostName: 127.0.0.1 and localhost are different
// origins, even on the same port.
func TestRedirectToAnotherHostName(t *testing.T) {
	var api *httptest.Server
	api, saw := redirServer(t, false, func(w http.ResponseWriter, r *http.Request, n int) {
		_, port, _ := net.SplitHostPort(api.Listener.Addr().String())
		redirect(307, "http://localhost:"+port+"/v1/audio/transcriptions")(w, r, n)
	})
	_, _, err := upload(t, redirClient(t, api.URL+"/v1", api.Client()))
	refused(t, err, 307, "another origin than http://127.0.0.1:")
	if got := saw.all(); len(got) != 1 {
		t.Errorf("%d requests, want 1: %+v", len(got), got)
	}
}

// TestRedirectDowngradeRefused: from https to http is refused, to another
// server and to the same host and port alike.
func TestRedirectDowngradeRefused(t *testing.T) {
	plain, plainSaw := redirServer(t, false, transcript)
	t.Run("to another server", func(t *testing.T) {
		api, apiSaw := redirServer(t, true, redirect(307, plain.URL+"/v1/audio/transcriptions"))
		_, _, err := upload(t, redirClient(t, api.URL+"/v1", api.Client()))
		refused(t, err, 307, "from https to http")
		if got := plainSaw.all(); len(got) != 0 {
			t.Errorf("the http server got %d requests: %+v", len(got), got)
		}
		if got := apiSaw.all(); len(got) != 1 {
			t.Errorf("the API got %d requests, want 1", len(got))
		}
	})
	t.Run("same host and port", func(t *testing.T) {
		var conns sync.WaitGroup
		var mu sync.Mutex
		newConns := 0
		var api *httptest.Server
		api = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, "http://"+api.Listener.Addr().String()+r.URL.Path, http.StatusPermanentRedirect)
		}))
		api.Config.ErrorLog = log.New(io.Discard, "", 0)
		api.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				newConns++
				mu.Unlock()
			}
		}
		api.StartTLS()
		defer conns.Wait()
		defer api.Close()
		_, _, err := upload(t, redirClient(t, api.URL+"/v1", api.Client()))
		refused(t, err, 308, "from https to http")
		mu.Lock()
		defer mu.Unlock()
		if newConns != 1 {
			t.Errorf("%d connections to the server, want 1 (the TLS one): the redirect was followed over plain http", newConns)
		}
	})
}

// TestRedirectSeeOtherIsAnError: a 301, 302 or 303 answering the upload,
// even to the same origin, is an error; no GET follows.
func TestRedirectSeeOtherIsAnError(t *testing.T) {
	for _, status := range []int{301, 302, 303} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			api, saw := redirServer(t, false, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Method == http.MethodGet {
					transcript(w, r, n) // what a silent GET would get
					return
				}
				redirect(status, "/v1/result/42")(w, r, n)
			})
			tr, size, err := upload(t, redirClient(t, api.URL+"/v1", api.Client()))
			if tr != nil {
				t.Fatalf("the answer to a GET became the transcript: %+v", tr)
			}
			refused(t, err, status, "/v1/result/42", fmt.Sprintf("a %d would resend the POST as a GET without its body", status))
			got := saw.all()
			if len(got) != 1 || got[0].method != http.MethodPost || got[0].bytes < size {
				t.Errorf("requests %+v, want the one POST (no GET, no retry)", got)
			}
		})
	}
}

// TestRedirectLoopCostsAtMostMaxUploads: a server that redirects the
// upload to itself forever gets it MaxUploads times, whole each time, and
// the call fails without a retry.
func TestRedirectLoopCostsAtMostMaxUploads(t *testing.T) {
	for _, status := range []int{307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			api, saw := redirServer(t, false, func(w http.ResponseWriter, r *http.Request, n int) {
				redirect(status, fmt.Sprintf("/v1/audio/transcriptions?hop=%d", n))(w, r, n)
			})
			_, size, err := upload(t, redirClient(t, api.URL+"/v1", api.Client()))
			refused(t, err, status, "already sent 3 times")
			got := saw.all()
			var sent int64
			for _, r := range got {
				sent += r.bytes
				if len(r.secrets) != 3 {
					t.Errorf("a same-origin request without its headers: %+v", r)
				}
			}
			if len(got) != transcribe.MaxUploads || transcribe.MaxUploads != 3 {
				t.Errorf("%d uploads, want %d", len(got), 3)
			}
			// Each upload is the whole form: at least the audio.
			if sent < int64(len(got))*size || sent > int64(len(got))*(size+2048) {
				t.Errorf("%d bytes received in %d uploads of %d bytes of audio", sent, len(got), size)
			}
		})
	}
}

// TestRedirectSameOriginFollowed: a 307 or 308 to the same origin is
// followed, the body sent again whole and the headers with it, up to
// MaxUploads uploads in all; a user's Jar sees the cookies on the way.
func TestRedirectSameOriginFollowed(t *testing.T) {
	for hops := 1; hops <= transcribe.MaxUploads; hops++ {
		t.Run(fmt.Sprint(hops, " hops"), func(t *testing.T) {
			api, saw := redirServer(t, false, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= hops {
					http.SetCookie(w, &http.Cookie{Name: "hop", Value: fmt.Sprint(n), Path: "/"})
					redirect(307+n%2, fmt.Sprintf("/v%d/audio/transcriptions", n+1))(w, r, n)
					return
				}
				transcript(w, r, n)
			})
			jar, _ := cookiejar.New(nil)
			hc := api.Client()
			hc.Jar = jar
			tr, size, err := upload(t, redirClient(t, api.URL+"/v1", hc))
			got := saw.all()
			if hops == transcribe.MaxUploads {
				// A chain longer than MaxUploads uploads.
				refused(t, err, 307+hops%2, "already sent 3 times")
				if len(got) != transcribe.MaxUploads {
					t.Errorf("%d uploads, want %d", len(got), transcribe.MaxUploads)
				}
				return
			}
			if err != nil || tr.Text != "redirected fine" {
				t.Fatalf("err %v, transcript %+v", err, tr)
			}
			if len(got) != hops+1 {
				t.Fatalf("%d requests, want %d", len(got), hops+1)
			}
			for i, r := range got {
				if r.method != http.MethodPost || r.bytes < size || len(r.secrets) != 3 || r.path != fmt.Sprintf("/v%d/audio/transcriptions", i+1) {
					t.Errorf("request %d: %+v", i+1, r)
				}
				if i > 0 && r.cookie != fmt.Sprintf("hop=%d", i) {
					t.Errorf("request %d: cookie %q, want the jar's hop=%d", i+1, r.cookie, i)
				}
			}
		})
	}
}

// TestWithHTTPClientIsNotChanged: NewClient copies the caller's
// http.Client; the caller's own is left as it was, and its CheckRedirect
// is still asked about the redirects the policy allows.
func TestWithHTTPClientIsNotChanged(t *testing.T) {
	var asked []string
	var api *httptest.Server
	api, saw := redirServer(t, false, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/v1/audio/transcriptions":
			redirect(307, "/allowed/audio/transcriptions")(w, r, n)
		case "/vetoed/v1/audio/transcriptions":
			redirect(307, "/vetoed/next")(w, r, n)
		default:
			transcript(w, r, n)
		}
	})
	veto := errors.New("vetoed by the caller")
	hc := api.Client()
	transport := hc.Transport
	hc.Timeout = time.Hour
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		asked = append(asked, req.URL.Path)
		if strings.HasPrefix(req.URL.Path, "/vetoed") {
			return veto
		}
		return nil
	}
	c := redirClient(t, api.URL+"/v1", hc)
	if hc.Transport != transport || hc.Timeout != time.Hour {
		t.Fatalf("NewClient changed the caller's http.Client: %+v", hc)
	}
	// The caller's CheckRedirect is still its own: it allows what the
	// policy would refuse.
	cross, _ := http.NewRequest(http.MethodPost, "http://elsewhere.invalid/", nil)
	if err := hc.CheckRedirect(cross, []*http.Request{cross}); err != nil {
		t.Fatalf("the caller's CheckRedirect was replaced: %v", err)
	}
	asked = nil

	if tr, _, err := upload(t, c); err != nil || tr.Text != "redirected fine" {
		t.Fatalf("err %v, transcript %+v", err, tr)
	}
	if len(asked) != 1 || asked[0] != "/allowed/audio/transcriptions" {
		t.Errorf("the caller's CheckRedirect was asked about %q", asked)
	}
	c = redirClient(t, api.URL+"/vetoed/v1", hc, transcribe.WithMaxAttempts(1)) // whether a veto is retried is not the point
	if _, _, err := upload(t, c); !errors.Is(err, veto) {
		t.Errorf("err = %v, want the caller's veto", err)
	}
	if n := len(saw.all()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}
