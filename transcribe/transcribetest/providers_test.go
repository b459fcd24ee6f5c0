package transcribetest_test

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

// errorBody decodes {"error":{…}} and returns the error object, checking
// it has exactly the keys want.
func errorBody(t *testing.T, b []byte, want ...string) map[string]any {
	t.Helper()
	m := object(t, b)
	keys(t, "body", m, "error")
	e, _ := m["error"].(map[string]any)
	keys(t, "error", e, want...)
	return e
}

// TestAzureShape: the Azure-shaped fake serves deployments under
// /openai/deployments/{d}/audio/… with api-version, reads the api-key
// header only, and answers its errors in Azure's shape.
func TestAzureShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{Provider: tt.Azure, APIKey: key, Deployment: "whisper", QuotaRequests: 1,
			RateLimit: tt.RateLimit{Requests: 3}})
		c := memClient(h)
		wav := tt.WAV(3 * time.Second)
		const base = "http://fake.invalid/openai/deployments/"
		post := func(url string, header ...string) (*http.Response, []byte) {
			req := upload{url: url, fields: []string{"model", "ignored", "response_format", "srt"}, filename: "a.wav", file: wav}.request(t)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			return do(t, c, req)
		}

		for _, url := range []string{base + "whisper/audio/transcriptions", "http://fake.invalid/v1/audio/transcriptions"} {
			resp, b := post(url, "api-key", key)
			e := errorBody(t, b, "code", "message")
			if resp.StatusCode != 404 || e["code"] != "404" || e["message"] != "Resource not found" {
				t.Errorf("%s: %d %s", url, resp.StatusCode, b)
			}
		}
		resp, b := post(base+"whisper/audio/transcriptions?api-version=2024-10-21", "Authorization", "Bearer "+key)
		if e := errorBody(t, b, "code", "message"); resp.StatusCode != 401 || e["code"] != "401" ||
			!strings.HasPrefix(e["message"].(string), "Access denied due to invalid subscription key") {
			t.Errorf("bearer key: %d %s", resp.StatusCode, b)
		}
		resp, b = post(base+"gpt-4o/audio/transcriptions?api-version=2024-10-21", "api-key", key)
		if e := errorBody(t, b, "code", "message"); resp.StatusCode != 404 || e["code"] != "DeploymentNotFound" {
			t.Errorf("other deployment: %d %s", resp.StatusCode, b)
		}

		resp, b = post(base+"whisper/audio/transcriptions?api-version=2024-10-21", "api-key", key)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "1\n00:00:00,000 --> ") {
			t.Fatalf("success: %d %s", resp.StatusCode, b)
		}
		if resp.Header.Get("x-ratelimit-remaining-requests") != "2" || resp.Header.Get("x-ratelimit-limit-requests") != "" ||
			resp.Header.Get("x-ratelimit-reset-requests") != "" {
			t.Errorf("rate-limit headers: %v", resp.Header)
		}

		// The quota is spent: Azure's InsufficientQuota.
		resp, b = post(base+"whisper/audio/transcriptions?api-version=2024-10-21", "api-key", key)
		if e := errorBody(t, b, "code", "message"); resp.StatusCode != 429 || e["code"] != "InsufficientQuota" {
			t.Errorf("quota: %d %s", resp.StatusCode, b)
		}

		h = tt.NewHandler(tt.Config{Provider: tt.Azure, APIKey: key, Faults: []tt.Fault{tt.FaultRateLimited}})
		resp, b = do(t, memClient(h), func() *http.Request {
			req := upload{url: base + "any/audio/translations?api-version=2024-10-21", fields: []string{"model", "x"}, filename: "a.wav", file: wav}.request(t)
			req.Header.Set("api-key", key)
			return req
		}())
		e := errorBody(t, b, "code", "message")
		if resp.StatusCode != 429 || e["code"] != "429" ||
			!strings.Contains(e["message"].(string), "Requests to the Audio_Translations Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit") ||
			!strings.Contains(e["message"].(string), "Please retry after 1 seconds.") {
			t.Errorf("429: %d %s", resp.StatusCode, b)
		}
		if resp.Header.Get("retry-after") != "1" || resp.Header.Get("retry-after-ms") != "1000" || resp.Header.Get("x-ms-retry-after-ms") != "1000" {
			t.Errorf("429 headers: %v", resp.Header)
		}
	})
}

// TestGroqShape: the Groq-shaped fake serves /openai/v1, Groq's models and
// formats, its prompt limit, its headers (requests per day) and its error
// objects without "param".
func TestGroqShape(t *testing.T) {
	// In a bubble: the budget refills in virtual time, so the headers are exact.
	synctest.Test(t, func(t *testing.T) {
		h := tt.NewHandler(tt.Config{Provider: tt.Groq, APIKey: key, QuotaRequests: 1,
			RateLimit: tt.RateLimit{Requests: 2000, Tokens: 100000}})
		c := memClient(h)
		wav := tt.WAV(3 * time.Second)
		const url = "http://fake.invalid/openai/v1/audio/transcriptions"
		post := func(k string, fields ...string) (*http.Response, []byte) {
			return do(t, c, upload{url: url, key: k, fields: fields, filename: "a.wav", file: wav}.request(t))
		}
		for _, tc := range []struct {
			key    string
			fields []string
			status int
			code   string
			says   string
		}{
			{"gsk_wrong", []string{"model", "whisper-large-v3"}, 401, "invalid_api_key", "Invalid API Key"},
			{key, []string{"model", "whisper-1"}, 404, "model_not_found", "The model `whisper-1` does not exist"},
			{key, []string{"model", "whisper-large-v3", "response_format", "srt"}, 400, "", "response_format must be one of [json text verbose_json]"},
			{key, []string{"model", "whisper-large-v3", "prompt", strings.Repeat("é", 897)}, 400, "",
				"prompt length must be 896 characters or fewer, but provided prompt contains 897 characters"},
		} {
			resp, b := post(tc.key, tc.fields...)
			want := []string{"message", "type", "code"}
			if tc.code == "" {
				want = want[:2]
			}
			e := errorBody(t, b, want...)
			if resp.StatusCode != tc.status || e["type"] != "invalid_request_error" || tc.code != "" && e["code"] != tc.code ||
				!strings.Contains(e["message"].(string), tc.says) {
				t.Errorf("%v: %d %s", tc.fields, resp.StatusCode, b)
			}
		}

		resp, b := post(key, "model", "whisper-large-v3-turbo", "response_format", "verbose_json")
		if resp.StatusCode != 200 {
			t.Fatalf("success: %d %s", resp.StatusCode, b)
		}
		if v := object(t, b); v["usage"] != nil || v["segments"] == nil {
			t.Errorf("verbose_json: %s", b)
		}
		if resp.Header.Get("openai-version") != "" {
			t.Errorf("openai-version sent: %v", resp.Header)
		}
		// Requests per day: a request refills in 86400/2000 s = 43.2 s, and
		// four were admitted (the refused ones were charged, as the API does).
		if resp.Header.Get("x-ratelimit-limit-requests") != "2000" || resp.Header.Get("x-ratelimit-reset-requests") != "2m52.8s" ||
			resp.Header.Get("x-ratelimit-limit-tokens") != "100000" {
			t.Errorf("rate-limit headers: %v", resp.Header)
		}

		// The spend limit is reached: 400 blocked_api_access.
		resp, b = post(key, "model", "whisper-large-v3")
		if e := errorBody(t, b, "message", "type", "code"); resp.StatusCode != 400 || e["code"] != "blocked_api_access" {
			t.Errorf("quota: %d %s", resp.StatusCode, b)
		}

		// A spent day's budget: Groq's 429, retry-after in seconds only.
		h = tt.NewHandler(tt.Config{Provider: tt.Groq, RateLimit: tt.RateLimit{Requests: 1}})
		c = memClient(h)
		post(key, "model", "whisper-large-v3")
		resp, b = post(key, "model", "whisper-large-v3")
		e := errorBody(t, b, "message", "type", "code")
		if resp.StatusCode != 429 || e["type"] != "requests" || e["code"] != "rate_limit_exceeded" ||
			!strings.Contains(e["message"].(string), "on requests per day (RPD): Limit 1, Used 1, Requested 1. Please try again in 24h0m0s.") {
			t.Errorf("429: %d %s", resp.StatusCode, b)
		}
		if resp.Header.Get("retry-after") != "86400" || resp.Header.Get("retry-after-ms") != "" {
			t.Errorf("429 headers: %v", resp.Header)
		}
	})
}

// TestSelfHostedShape: the speaches-like fake needs no key unless given
// one, answers errors as {"detail": …}, sends no rate-limit headers and
// has no body limit.
func TestSelfHostedShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wav := tt.WAV(3 * time.Second)
		h := tt.NewHandler(tt.Config{Provider: tt.SelfHosted, ResponseFormats: []string{"json", "text", "verbose_json"},
			RateLimit: tt.RateLimit{Requests: 1}})
		c := memClient(h)
		post := func(k string, fields ...string) (*http.Response, []byte) {
			return do(t, c, upload{memURL, k, fields, "a.wav", wav}.request(t))
		}
		resp, b := post("", "model", "Systran/faster-whisper-small", "response_format", "text")
		if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-limit-requests") != "" || resp.Header.Get("x-ratelimit-remaining-requests") != "" {
			t.Fatalf("no key: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		resp, b = post("", "model", "x")
		if m := object(t, b); resp.StatusCode != 429 || !strings.HasPrefix(m["detail"].(string), "Too Many Requests") ||
			resp.Header.Get("retry-after") == "" || resp.Header.Get("retry-after-ms") != "" || len(m) != 1 {
			t.Errorf("429: %d %v %s", resp.StatusCode, resp.Header, b)
		}

		h = tt.NewHandler(tt.Config{Provider: tt.SelfHosted, APIKey: key, ResponseFormats: []string{"json", "text", "verbose_json"}, QuotaRequests: 1})
		c = memClient(h)
		for _, k := range []string{"", "wrong"} {
			resp, b = post(k, "model", "x")
			if m := object(t, b); resp.StatusCode != 403 || !strings.Contains(m["detail"].(string), "API key") || len(m) != 1 {
				t.Errorf("key %q: %d %s", k, resp.StatusCode, b)
			}
		}
		resp, b = post(key, "model", "x", "response_format", "srt")
		if m := object(t, b); resp.StatusCode != 400 || m["detail"] != "Currently only support response_format: `json`, `text`, `verbose_json`" {
			t.Errorf("srt: %d %s", resp.StatusCode, b)
		}
		if resp, b = post(key, "model", "x"); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		resp, b = post(key, "model", "x")
		if m := object(t, b); resp.StatusCode != 429 || !strings.Contains(m["detail"].(string), "'code': 'insufficient_quota'") {
			t.Errorf("quota: %d %s", resp.StatusCode, b)
		}
	})
}

// TestProviderEndpoint: Server.Endpoint is what a client of each provider
// is given.
func TestProviderEndpoint(t *testing.T) {
	for p, want := range map[tt.Provider]string{tt.OpenAI: "/v1", tt.Azure: "", tt.Groq: "/openai/v1", tt.SelfHosted: "/v1"} {
		srv := tt.NewServer(tt.Config{Provider: p})
		if got := srv.Endpoint(); got != srv.URL+want {
			t.Errorf("%v: %q, want %q", p, got, srv.URL+want)
		}
		srv.Close()
	}
	if tt.Provider(9).String() != "Provider(9)" || tt.Groq.String() != "Groq" {
		t.Error("String")
	}
}
