package transcribetest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

const null = "<null>"

func TestAuth(t *testing.T) {
	srv := tt.NewServer(tt.Config{APIKey: key})
	defer srv.Close()
	url := srv.BaseURL() + "/audio/transcriptions"
	wav := tt.WAV(time.Second)
	const noKey = `{"error":{"message":"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":null}}` + "\n"

	for _, auth := range []string{"", "Bearer ", "Basic dXNlcjpwYXNz"} {
		req := upload{url: url, fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, b := do(t, srv.Client(), req)
		if resp.StatusCode != 401 || string(b) != noKey {
			t.Errorf("Authorization %q: %d %s", auth, resp.StatusCode, b)
		}
		if !requestIDPattern.MatchString(resp.Header.Get("x-request-id")) {
			t.Errorf("x-request-id %q", resp.Header.Get("x-request-id"))
		}
	}

	const wrong = "sk-proj-WRONGwrongWRONGwrong1234wxyz"
	resp, b := do(t, srv.Client(), upload{url: url, key: wrong, fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
	msg, typ, param, code := apiError(t, b)
	if resp.StatusCode != 401 || typ != "invalid_request_error" || param != null || code != "invalid_api_key" {
		t.Errorf("wrong key: %d %s", resp.StatusCode, b)
	}
	want := "Incorrect API key provided: sk-pro" + strings.Repeat("*", len(wrong)-10) + "wxyz. You can find your API key at https://platform.openai.com/account/api-keys."
	if msg != want {
		t.Errorf("message %q\nwant    %q", msg, want)
	}
	for _, secret := range []string{wrong, key, "WRONGwrong", "1234"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("body shows %q: %s", secret, b)
		}
	}
	// Short keys are masked almost entirely.
	_, b = do(t, srv.Client(), upload{url: url, key: "short", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
	if msg, _, _, _ := apiError(t, b); !strings.Contains(msg, "provided: s****.") {
		t.Errorf("short key: %s", msg)
	}
	if s := srv.Stats(); s.Requests != 5 || s.ByStatus[401] != 5 || len(s.Sent) != 0 {
		t.Errorf("stats %+v", s)
	}

	// Without Config.APIKey, any key will do.
	open := tt.NewHandler(tt.Config{})
	resp, b = do(t, memClient(open), upload{key: "anything", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav}.request(t))
	if resp.StatusCode != 200 {
		t.Errorf("any key: %d %s", resp.StatusCode, b)
	}
}

func TestRoutes(t *testing.T) {
	h := tt.NewHandler(tt.Config{})
	c := memClient(h)
	for _, tc := range []struct {
		method, url string
		status      int
		message     string
	}{
		{"POST", "http://fake.invalid/v1/models", 404, "Invalid URL (POST /v1/models)"},
		{"POST", "http://fake.invalid/audio/transcriptions", 404, "Invalid URL (POST /audio/transcriptions)"},
		{"POST", "http://fake.invalid/v1/audio/transcriptions/", 404, "Invalid URL (POST /v1/audio/transcriptions/)"},
		{"GET", memURL, 405, "Invalid method for URL (GET /v1/audio/transcriptions)"},
		{"PUT", memTranslation, 405, "Invalid method for URL (PUT /v1/audio/translations)"},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		req.Header.Set("Authorization", "Bearer x")
		resp, b := do(t, c, req)
		msg, typ, param, code := apiError(t, b)
		if resp.StatusCode != tc.status || msg != tc.message || typ != "invalid_request_error" || param != null || code != null {
			t.Errorf("%s %s: %d %s", tc.method, tc.url, resp.StatusCode, b)
		}
	}
}

func TestValidation(t *testing.T) {
	failing := func(err error) tt.TranscribeFunc {
		return func(context.Context, *tt.Audio) (*tt.Transcript, error) { return nil, err }
	}
	long := func(seconds float64) tt.TranscribeFunc {
		return func(context.Context, *tt.Audio) (*tt.Transcript, error) {
			return &tt.Transcript{Duration: seconds, Text: "Long."}, nil
		}
	}
	wav := tt.WAV(time.Second)
	mp3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), make([]byte, 16000)...)
	const formats = "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
	for _, tc := range []struct {
		name     string
		url      string
		fields   []string
		filename string
		file     []byte
		tr       tt.TranscribeFunc

		status           int
		typ, param, code string
		message          string // exact, or a prefix when it ends in "…"
	}{
		{name: "missing model", filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "model", code: null, message: "you must provide a model parameter"},
		{name: "missing file", fields: []string{"model", "whisper-1"},
			status: 400, typ: "invalid_request_error", param: "file", code: "missing_required_parameter", message: "Missing required parameter: 'file'."},
		{name: "unknown model", fields: []string{"model", "whisper-2"}, filename: "a.wav", file: wav,
			status: 404, typ: "invalid_request_error", param: null, code: "model_not_found", message: "The model `whisper-2` does not exist or you do not have access to it."},
		{name: "translation model", url: memTranslation, fields: []string{"model", "gpt-4o-transcribe"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "model", code: "unsupported_value", message: "Model 'gpt-4o-transcribe' does not support translations. Use 'whisper-1' instead."},
		{name: "unknown format", fields: []string{"model", "whisper-1", "response_format", "xml"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "response_format", code: "invalid_value",
			message: "Invalid value: 'xml'. Supported values are: 'json', 'text', 'srt', 'verbose_json', 'vtt' and 'diarized_json'."},
		{name: "verbose_json with gpt-4o", fields: []string{"model", "gpt-4o-transcribe", "response_format", "verbose_json"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "response_format", code: "unsupported_value",
			message: "response_format 'verbose_json' is not compatible with model 'gpt-4o-transcribe'. Use 'json' or 'text' instead."},
		{name: "diarized_json with whisper", fields: []string{"model", "whisper-1", "response_format", "diarized_json"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "response_format", code: "unsupported_value",
			message: "response_format 'diarized_json' is not compatible with model 'whisper-1'. Use 'json', 'text', 'srt', 'verbose_json' or 'vtt' instead."},
		{name: "srt with diarize", fields: []string{"model", "gpt-4o-transcribe-diarize", "response_format", "srt"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "response_format", code: "unsupported_value", message: "response_format 'srt' is not compatible with model 'gpt-4o-transcribe-diarize'. Use 'json', 'text' or 'diarized_json' instead."},
		{name: "granularities without verbose_json", fields: []string{"model", "whisper-1", "timestamp_granularities[]", "word"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "timestamp_granularities", code: "unsupported_value", message: "timestamp_granularities requires response_format 'verbose_json'."},
		{name: "bad granularity", fields: []string{"model", "whisper-1", "response_format", "verbose_json", "timestamp_granularities[]", "char"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "timestamp_granularities", code: "invalid_value", message: "Invalid value: 'char'…"},
		{name: "temperature above", fields: []string{"model", "whisper-1", "temperature", "1.5"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "temperature", code: "decimal_above_max_value", message: "Invalid 'temperature': decimal above maximum value. Expected a value <= 1, but got 1.5 instead."},
		{name: "temperature below", fields: []string{"model", "whisper-1", "temperature", "-0.1"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "temperature", code: "decimal_below_min_value", message: "Invalid 'temperature': decimal below minimum value…"},
		{name: "temperature not a number", fields: []string{"model", "whisper-1", "temperature", "warm"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "temperature", code: "invalid_type", message: "Invalid 'temperature': expected a decimal, but got a string instead."},
		{name: "logprobs with whisper", fields: []string{"model", "whisper-1", "include[]", "logprobs"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "include", code: "unsupported_value", message: "logprobs are only returned…"},
		{name: "logprobs with text", fields: []string{"model", "gpt-4o-transcribe", "response_format", "text", "include[]", "logprobs"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "include", code: "unsupported_value", message: "logprobs are only returned…"},
		{name: "prompt with diarize", fields: []string{"model", "gpt-4o-transcribe-diarize", "prompt", "hi"}, filename: "a.wav", file: wav,
			status: 400, typ: "invalid_request_error", param: "prompt", code: "unsupported_value", message: "prompt is not supported…"},
		{name: "empty file", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: []byte{},
			status: 400, typ: "invalid_request_error", param: "file", code: "empty_file", message: "The audio file is empty."},
		{name: "bad extension", fields: []string{"model", "whisper-1"}, filename: "a.aac", file: wav,
			status: 400, typ: "invalid_request_error", param: null, code: null, message: formats},
		{name: "no extension", fields: []string{"model", "whisper-1"}, filename: "audio", file: wav,
			status: 400, typ: "invalid_request_error", param: null, code: null, message: formats},
		{name: "not audio", fields: []string{"model", "whisper-1"}, filename: "a.mp3", file: []byte("<html>hello, this is not audio at all</html>"),
			status: 400, typ: "invalid_request_error", param: null, code: null, message: formats},
		{name: "too short", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(50 * time.Millisecond),
			status: 400, typ: "invalid_request_error", param: "file", code: "audio_too_short", message: "Audio file is too short. Minimum audio length is 0.1 seconds."},
		{name: "too short mp3", fields: []string{"model", "whisper-1"}, filename: "a.mp3", file: mp3[:1000],
			status: 400, typ: "invalid_request_error", param: "file", code: "audio_too_short", message: "Audio file is too short. Minimum audio length is 0.1 seconds."},
		{name: "too long for diarize", fields: []string{"model", "gpt-4o-transcribe-diarize"}, filename: "a.wav", file: wav, tr: long(1830.53),
			status: 400, typ: "invalid_request_error", param: "file", code: "invalid_value", message: "audio duration 1830.53 seconds is longer than 1400 seconds which is the maximum for this model"},
		{name: "transcriber *Error", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav,
			tr:     failing(fmt.Errorf("wrapped: %w", &tt.Error{Status: 422, Code: "custom", Message: "nope"})),
			status: 422, typ: "invalid_request_error", param: null, code: "custom", message: "nope"},
		{name: "transcriber error", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: wav, tr: failing(errors.New("secret detail")),
			status: 500, typ: "server_error", param: null, code: null, message: "The server had an error while processing your request. Sorry about that!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tt.NewHandler(tt.Config{Transcriber: tc.tr})
			resp, b := do(t, memClient(h), upload{url: tc.url, key: "k", fields: tc.fields, filename: tc.filename, file: tc.file}.request(t))
			msg, typ, param, code := apiError(t, b)
			okMsg := msg == tc.message
			if prefix, ok := strings.CutSuffix(tc.message, "…"); ok {
				okMsg = strings.HasPrefix(msg, prefix)
			}
			if resp.StatusCode != tc.status || typ != tc.typ || param != tc.param || code != tc.code || !okMsg {
				t.Errorf("got %d %s", resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	t.Run("mp3 accepted", func(t *testing.T) {
		h := tt.NewHandler(tt.Config{})
		resp, b := do(t, memClient(h), upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.mp3", file: mp3}.request(t))
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"seconds":2`) { // 16010 bytes at 16000 B/s
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
}

func TestMultipartLimits(t *testing.T) {
	h := tt.NewHandler(tt.Config{})
	c := memClient(h)
	check := func(name string, req *http.Request, message string) {
		t.Helper()
		resp, b := do(t, c, req)
		msg, typ, _, _ := apiError(t, b)
		if resp.StatusCode != 400 || typ != "invalid_request_error" || !strings.HasPrefix(msg, message) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	many := []string{"model", "whisper-1"}
	for i := range 100 {
		many = append(many, fmt.Sprint("f", i), "x")
	}
	check("too many fields", upload{key: "k", fields: many}.request(t), "Too many fields")
	check("field too long", upload{key: "k", fields: []string{"prompt", strings.Repeat("x", 65<<10)}}.request(t), `Field "prompt" is longer`)
	check("two files", func() *http.Request {
		req := upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(time.Second)}.request(t)
		b, _ := io.ReadAll(req.Body)
		// Append a second file part before the closing boundary.
		boundary := strings.TrimPrefix(req.Header.Get("Content-Type"), "multipart/form-data; boundary=")
		s := strings.Replace(string(b), "--"+boundary+"--", "--"+boundary+"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.wav\"\r\n\r\nRIFF\r\n--"+boundary+"--", 1)
		req2, _ := http.NewRequest("POST", memURL, strings.NewReader(s))
		req2.Header = req.Header
		return req2
	}(), "Only one file")
	req := upload{key: "k", fields: []string{"model", "whisper-1"}}.request(t)
	req.Header.Set("Content-Type", "application/json")
	check("not multipart", req, "Invalid Content-Type header")
	req = upload{key: "k", fields: []string{"model", "whisper-1"}}.request(t)
	req.Header.Set("Content-Type", "multipart/form-data")
	check("no boundary", req, "Invalid Content-Type header")
	req, _ = http.NewRequest("POST", memURL, strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.Header.Set("Authorization", "Bearer k")
	check("truncated", req, "Could not parse multipart form")
}

// TestChunkedRefused sends bodies of unknown length, which net/http sends
// chunked, through the real server and through Transport.
func TestChunkedRefused(t *testing.T) {
	const message = "Chunked transfer encoding is not supported; send a Content-Length."
	srv := tt.NewServer(tt.Config{})
	defer srv.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var wg sync.WaitGroup
	wg.Go(func() {
		mw.WriteField("model", "whisper-1")
		fw, _ := mw.CreateFormFile("file", "a.wav")
		fw.Write(tt.WAV(time.Second))
		pw.CloseWithError(mw.Close())
	})
	req, _ := http.NewRequest("POST", srv.BaseURL()+"/audio/transcriptions", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer k")
	if req.ContentLength != 0 {
		t.Fatalf("ContentLength %d", req.ContentLength)
	}
	resp, b := do(t, srv.Client(), req)
	pr.Close()
	wg.Wait()
	if msg, typ, param, _ := apiError(t, b); resp.StatusCode != 400 || msg != message || typ != "invalid_request_error" || param != null {
		t.Errorf("server: %d %s", resp.StatusCode, b)
	}

	h := tt.NewHandler(tt.Config{})
	for _, cl := range []int64{-1, 0} {
		req := upload{key: "k", fields: []string{"model", "whisper-1"}, filename: "a.wav", file: tt.WAV(time.Second)}.request(t)
		req.ContentLength = cl
		req.Body = io.NopCloser(req.Body) // not http.NoBody: length unknown
		resp, b := do(t, memClient(h), req)
		if msg, _, _, _ := apiError(t, b); resp.StatusCode != 400 || msg != message {
			t.Errorf("Transport, ContentLength %d: %d %s", cl, resp.StatusCode, b)
		}
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestTooLarge(t *testing.T) {
	post := func(c *http.Client, url string, n int64) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", url, io.LimitReader(zeros{}, n))
		req.ContentLength = n
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		req.Header.Set("Authorization", "Bearer k")
		return do(t, c, req)
	}
	check := func(resp *http.Response, b []byte, message string) {
		t.Helper()
		want := `{"error":{"message":"` + message + `","type":"server_error","param":null,"code":null}}` + "\n"
		if resp.StatusCode != 413 || string(b) != want {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	}
	h := tt.NewHandler(tt.Config{})
	resp, b := post(memClient(h), memURL, tt.DefaultMaxBodyBytes+5000)
	check(resp, b, "Maximum content size limit (26214400) exceeded (26214401 bytes read)")
	if got := h.Stats().BytesReceived; got != tt.DefaultMaxBodyBytes+1 {
		t.Errorf("read %d bytes", got)
	}

	srv := tt.NewServer(tt.Config{MaxBodyBytes: 1000})
	defer srv.Close()
	resp, b = post(srv.Client(), srv.BaseURL()+"/audio/transcriptions", 50000)
	check(resp, b, "Maximum content size limit (1000) exceeded (1001 bytes read)")
}

func TestQuota(t *testing.T) {
	const body = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}` + "\n"
	h := tt.NewHandler(tt.Config{QuotaRequests: 2, RateLimit: tt.RateLimit{Requests: 100}})
	wav := tt.WAV(time.Second)
	var statuses []int
	for i := range 5 {
		fields := []string{"model", "whisper-1"}
		if i == 0 {
			fields = nil // a 400 is not billed
		}
		resp, b := do(t, memClient(h), upload{key: "k", fields: fields, filename: "a.wav", file: wav}.request(t))
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == 429 {
			if string(b) != body {
				t.Errorf("body %s", b)
			}
			if resp.Header.Get("retry-after") != "" || resp.Header.Get("retry-after-ms") != "" {
				t.Errorf("retry-after on insufficient_quota: %v", resp.Header)
			}
			if resp.Header.Get("x-ratelimit-remaining-requests") != "97" {
				t.Errorf("quota errors spend no request budget: %v", resp.Header)
			}
		}
	}
	if fmt.Sprint(statuses) != "[400 200 200 429 429]" {
		t.Errorf("statuses %v", statuses)
	}
	if s := h.Stats(); len(s.Billed) != 2 || len(s.Sent) != 3 || s.ByStatus[429] != 2 {
		t.Errorf("stats %+v", s)
	}
}
