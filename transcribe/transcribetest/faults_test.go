package transcribetest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

// TestScriptedFaults runs the same script of faults through the real server
// and through Transport.
func TestScriptedFaults(t *testing.T) {
	script := []tt.Fault{tt.FaultServerError, tt.FaultBadGateway, tt.FaultOverloaded, tt.FaultDropConnection, tt.FaultRateLimited, tt.FaultNone}
	wav := tt.WAV(time.Second)
	req := func(url string) *http.Request {
		return upload{url: url, key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t)
	}
	size := req(memURL).ContentLength
	run := func(t *testing.T, h *tt.Handler, c *http.Client, url string) {
		// A request refused by the key check is not counted against the script.
		unauth := req(url)
		unauth.Header.Del("Authorization")
		if resp, _ := do(t, c, unauth); resp.StatusCode != 401 {
			t.Fatalf("no key: %d", resp.StatusCode)
		}
		for _, f := range script {
			resp, err := c.Do(req(url))
			if f == tt.FaultDropConnection {
				if err == nil {
					resp.Body.Close()
					t.Errorf("%v: got %d, want an error", f, resp.StatusCode)
				}
				t.Logf("dropped connection: %v", err)
				continue
			}
			if err != nil {
				t.Fatalf("%v: %v", f, err)
			}
			b := readAll(t, resp)
			switch f {
			case tt.FaultServerError:
				want := `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}` + "\n"
				if resp.StatusCode != 500 || string(b) != want {
					t.Errorf("%v: %d %s", f, resp.StatusCode, b)
				}
			case tt.FaultBadGateway:
				if resp.StatusCode != 502 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "<title>502 Bad Gateway</title>") {
					t.Errorf("%v: %d %v %s", f, resp.StatusCode, resp.Header, b)
				}
			case tt.FaultOverloaded:
				msg, typ, param, code := apiError(t, b)
				if resp.StatusCode != 503 || msg != "The engine is currently overloaded, please try again later." ||
					typ != "server_error" || param != null || code != "server_is_overloaded" {
					t.Errorf("%v: %d %s", f, resp.StatusCode, b)
				}
			case tt.FaultRateLimited:
				msg, typ, _, code := apiError(t, b)
				if resp.StatusCode != 429 || typ != "requests" || code != "rate_limit_exceeded" ||
					!strings.HasPrefix(msg, "Rate limit reached for whisper-1 in organization org-fake on requests per min (RPM): Limit 50, Used 50, Requested 1. Please try again in 1s.") ||
					resp.Header.Get("retry-after") != "1" || resp.Header.Get("retry-after-ms") != "1000" {
					t.Errorf("%v: %d %v %s", f, resp.StatusCode, resp.Header, b)
				}
			case tt.FaultNone:
				if resp.StatusCode != 200 {
					t.Errorf("%v: %d %s", f, resp.StatusCode, b)
				}
			}
		}
		s := h.Stats()
		want := map[int]int{401: 1, 500: 1, 502: 1, 503: 1, 0: 1, 429: 1, 200: 1}
		if fmt.Sprint(s.ByStatus) != fmt.Sprint(want) || s.Requests != 7 || len(s.Billed) != 1 || len(s.Sent) != 1 {
			t.Errorf("stats %+v", s)
		}
		// The dropped request was read about half-way; the others not at all
		// (faults answer before the body), but the one served in full.
		if s.BytesReceived < size+size/2 || s.BytesReceived > 2*size {
			t.Errorf("BytesReceived %d for a body of %d", s.BytesReceived, size)
		}
	}
	t.Run("server", func(t *testing.T) {
		srv := tt.NewServer(tt.Config{Faults: script})
		defer srv.Close()
		run(t, srv.Handler, srv.Client(), srv.BaseURL()+"/audio/transcriptions")
	})
	t.Run("transport", func(t *testing.T) {
		h := tt.NewHandler(tt.Config{Faults: script})
		run(t, h, memClient(h), memURL)
		_, err := memClient(tt.NewHandler(tt.Config{Faults: []tt.Fault{tt.FaultDropConnection}})).Do(req(memURL))
		if !errors.Is(err, tt.ErrConnectionDropped) || !errors.Is(err, io.EOF) {
			t.Errorf("err %v, want ErrConnectionDropped and io.EOF", err)
		}
	})
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRandomFaults checks that FaultRate draws are repeatable for a seed.
func TestRandomFaults(t *testing.T) {
	wav := tt.WAV(time.Second)
	outcomes := func(cfg tt.Config) string {
		h := tt.NewHandler(cfg)
		var out []string
		for range 40 {
			resp, err := memClient(h).Do(upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
			if err != nil {
				out = append(out, "drop")
				continue
			}
			resp.Body.Close()
			out = append(out, strconv.Itoa(resp.StatusCode))
		}
		return strings.Join(out, " ")
	}
	a := outcomes(tt.Config{FaultRate: 0.5, Seed: 42})
	if b := outcomes(tt.Config{FaultRate: 0.5, Seed: 42}); a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if b := outcomes(tt.Config{FaultRate: 0.5, Seed: 43}); a == b {
		t.Errorf("different seeds, same faults: %s", a)
	}
	for _, s := range []string{"200", "500", "502", "503", "drop"} {
		if !strings.Contains(a, s) {
			t.Errorf("no %s in %s", s, a)
		}
	}
	// Scripted faults come first, then the random ones, of the kinds given.
	c := outcomes(tt.Config{Faults: []tt.Fault{tt.FaultOverloaded, tt.FaultNone}, FaultRate: 1, FaultKinds: []tt.Fault{tt.FaultRateLimited}})
	if !strings.HasPrefix(c, "503 200 429 429") || strings.Count(c, "429") != 38 {
		t.Errorf("outcomes %s", c)
	}
}

// TestRateLimit drains a bucket of 5 requests per (virtual) second.
func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{Requests: 5, Window: time.Second}})
		wav := tt.WAV(time.Second)
		post := func() (*http.Response, []byte) {
			return do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
		}
		headers := func(resp *http.Response, remaining, reset string) {
			t.Helper()
			got := [3]string{resp.Header.Get("x-ratelimit-limit-requests"), resp.Header.Get("x-ratelimit-remaining-requests"), resp.Header.Get("x-ratelimit-reset-requests")}
			if want := [3]string{"5", remaining, reset}; got != want {
				t.Errorf("x-ratelimit-*-requests %q, want %q", got, want)
			}
			if resp.Header.Get("x-ratelimit-limit-tokens") != "" {
				t.Errorf("token headers without a token budget")
			}
		}
		start := time.Now()
		for i := range 5 {
			resp, b := post()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
			}
			headers(resp, strconv.Itoa(4-i), []string{"200ms", "400ms", "600ms", "800ms", "1s"}[i])
		}
		resp, b := post()
		msg, typ, param, code := apiError(t, b)
		if resp.StatusCode != 429 || typ != "requests" || code != "rate_limit_exceeded" || param != null ||
			msg != "Rate limit reached for whisper-1 in organization org-fake on requests per min (RPM): Limit 5, Used 5, Requested 1. Please try again in 200ms. Visit https://platform.openai.com/account/rate-limits to learn more." {
			t.Fatalf("6th request: %d %s", resp.StatusCode, b)
		}
		if ra, ms := resp.Header.Get("retry-after"), resp.Header.Get("retry-after-ms"); ra != "1" || ms != "200" {
			t.Errorf("retry-after %q, retry-after-ms %q", ra, ms)
		}
		headers(resp, "0", "1s")

		time.Sleep(200 * time.Millisecond) // one request's worth
		resp, _ = post()
		if resp.StatusCode != 200 {
			t.Fatalf("after 200ms: %d", resp.StatusCode)
		}
		headers(resp, "0", "1s")
		time.Sleep(100 * time.Millisecond) // half a request: still limited
		resp, _ = post()
		if resp.StatusCode != 429 || resp.Header.Get("retry-after-ms") != "100" {
			t.Errorf("after 300ms: %d, retry-after-ms %q", resp.StatusCode, resp.Header.Get("retry-after-ms"))
		}
		headers(resp, "0", "900ms")

		time.Sleep(10 * time.Second) // full again, not beyond
		for i := range 6 {
			resp, _ = post()
			if want := []int{200, 200, 200, 200, 200, 429}[i]; resp.StatusCode != want {
				t.Errorf("after the refill, request %d: %d, want %d", i, resp.StatusCode, want)
			}
		}

		s := h.Stats()
		if len(s.Sent) != 14 || len(s.Billed) != 11 || s.ByStatus[429] != 3 {
			t.Errorf("stats %+v", s)
		}
		// The bucket lets a burst of 5 and then one more per 200ms through.
		if n := s.MaxInWindow(s.Billed, time.Second); n != 6 {
			t.Errorf("MaxInWindow(Billed, 1s) = %d", n)
		}
		if got := s.Billed[5].Sub(start); got != 200*time.Millisecond {
			t.Errorf("6th billed at %v", got)
		}
	})
}

// TestSilentRateLimit: a silent budget is enforced without x-ratelimit-*
// headers; its 429s still say when to come back.
func TestSilentRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{Requests: 2, Window: time.Second, Silent: true}})
		var codes []int
		for range 3 {
			resp, _ := do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(time.Second)}.request(t))
			codes = append(codes, resp.StatusCode)
			for k := range resp.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-ratelimit") {
					t.Errorf("header %s sent", k)
				}
			}
			if resp.StatusCode == 429 && resp.Header.Get("retry-after-ms") != "500" {
				t.Errorf("retry-after-ms %q", resp.Header.Get("retry-after-ms"))
			}
		}
		if fmt.Sprint(codes) != "[200 200 429]" {
			t.Errorf("statuses %v", codes)
		}
	})
}

// TestTokenRateLimit checks the token budget: ceil(Content-Length/1000)
// tokens a request.
func TestTokenRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{Tokens: 100, Window: time.Minute}})
		req := func() *http.Request {
			return upload{key: "k", fields: []string{"model", "gpt-4o-transcribe"}, filename: "a.wav", file: tt.WAV(time.Second)}.request(t)
		}
		cost := (req().ContentLength + 999) / 1000 // 33 for a 1 s WAV
		for i := range 4 {
			resp, b := do(t, memClient(h), req())
			remaining := 100 - int64(i+1)*cost
			if i == 3 {
				remaining = 100 - 3*cost
				msg, typ, _, code := apiError(t, b)
				if resp.StatusCode != 429 || typ != "tokens" || code != "rate_limit_exceeded" ||
					!strings.HasPrefix(msg, fmt.Sprintf("Rate limit reached for whisper-1 in organization org-fake on tokens per min (TPM): Limit 100, Used %d, Requested %d. Please try again in ", 3*cost, cost)) {
					t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
				}
				wait := time.Duration(cost-(100-3*cost)) * time.Minute / 100
				if got := resp.Header.Get("retry-after-ms"); got != strconv.FormatInt(wait.Milliseconds(), 10) {
					t.Errorf("retry-after-ms %s, want %v", got, wait)
				}
			} else if resp.StatusCode != 200 {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
			}
			if got := resp.Header.Get("x-ratelimit-remaining-tokens"); got != strconv.FormatInt(remaining, 10) ||
				resp.Header.Get("x-ratelimit-limit-tokens") != "100" || resp.Header.Get("x-ratelimit-reset-tokens") == "" {
				t.Errorf("request %d: token headers %v", i, resp.Header)
			}
			if resp.Header.Get("x-ratelimit-limit-requests") != "" {
				t.Errorf("request headers without a request budget")
			}
		}

		// A request larger than the whole budget can never pass.
		h = tt.NewHandler(tt.Config{RateLimit: tt.RateLimit{Tokens: 10}})
		resp, b := do(t, memClient(h), req())
		msg, typ, _, _ := apiError(t, b)
		if resp.StatusCode != 429 || typ != "tokens" || !strings.HasPrefix(msg, fmt.Sprintf("Request too large for whisper-1 in organization org-fake on tokens per min (TPM): Limit 10, Requested %d.", cost)) ||
			resp.Header.Get("retry-after") != "" {
			t.Errorf("too large: %d %v %s", resp.StatusCode, resp.Header, b)
		}
	})
}

// TestLatencyInFlight checks Latency, MaxInFlight and cancellation in
// virtual time.
func TestLatencyInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{Latency: time.Second})
		wav := tt.WAV(time.Second)
		start := time.Now()
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				resp, _ := do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
				if ms := resp.Header.Get("openai-processing-ms"); ms != "1000" {
					t.Errorf("openai-processing-ms %q", ms)
				}
			})
		}
		wg.Wait()
		if d := time.Since(start); d != time.Second {
			t.Errorf("took %v", d)
		}
		if s := h.Stats(); s.MaxInFlight != 5 || s.Requests != 5 {
			t.Errorf("stats %+v", s)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		req := upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t).WithContext(ctx)
		start = time.Now()
		if _, err := memClient(h).Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("cancelled after %v", d)
		}
		synctest.Wait() // the handler finishes
		if s := h.Stats(); s.Requests != 6 || s.ByStatus[200] != 6 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	var s tt.Stats
	for _, tc := range []struct {
		times []time.Time
		d     time.Duration
		want  int
	}{
		{nil, time.Second, 0},
		{at(0), time.Second, 1},
		{at(0, 0, 0), time.Nanosecond, 3},
		{at(0, 500, 1000, 1200), time.Second, 3}, // [500, 1500)
		{at(0, 999, 1000), time.Second, 2},       // half-open: 0 and 1000 are a window apart
		{at(1200, 0, 1000, 500), time.Second, 3}, // unsorted
		{at(0, 100, 200, 5000, 5001), time.Minute, 5},
	} {
		if got := s.MaxInWindow(tc.times, tc.d); got != tc.want {
			t.Errorf("MaxInWindow(%v, %v) = %d, want %d", tc.times, tc.d, got, tc.want)
		}
	}
}

// A truncated answer declares its whole length, sends half and closes the
// connection; a stall sends nothing until the client gives up. Both in
// memory and over loopback.
func TestTruncatedAndStalledAnswers(t *testing.T) {
	wav := tt.WAV(time.Second)
	req := func(ctx context.Context, url string) *http.Request {
		r := upload{url: url, key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t)
		return r.WithContext(ctx)
	}
	check := func(t *testing.T, c *http.Client, url string, patience time.Duration) {
		resp, err := c.Do(req(context.Background(), url))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength <= 0 || int64(len(b)) >= resp.ContentLength || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated: %d, %d of %d bytes, %v", resp.StatusCode, len(b), resp.ContentLength, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		start := time.Now()
		if resp, err := c.Do(req(ctx, url)); err == nil || !errors.Is(err, context.DeadlineExceeded) {
			if resp != nil {
				resp.Body.Close()
			}
			t.Fatalf("stall: %v", err)
		}
		if waited := time.Since(start); waited < patience {
			t.Fatalf("stall answered after %v", waited)
		}
	}
	cfg := tt.Config{Faults: []tt.Fault{tt.FaultTruncatedBody, tt.FaultStall}}
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := tt.NewHandler(cfg)
			check(t, &http.Client{Transport: h.Transport()}, memURL, 10*time.Minute)
			synctest.Wait() // the stalled handler sees the client leave
			if st := h.Stats(); st.ByStatus[0] != 2 || st.ByStatus[200] != 0 {
				t.Fatalf("the truncated answer and the abandoned stall are not both counted as dropped: %v", st.ByStatus)
			}
		})
	})
	t.Run("loopback", func(t *testing.T) {
		srv := tt.NewServer(cfg)
		defer srv.Close()
		check(t, srv.Client(), srv.BaseURL()+"/audio/transcriptions", 200*time.Millisecond)
	})
}
