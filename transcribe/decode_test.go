package transcribe

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestDecodeFormats(t *testing.T) {
	verbose := `{"task":"transcribe","language":"english","duration":8.47,"text":"The beach. People swam.",
	 "segments":[{"id":0,"seek":0,"start":0.0,"end":3.32,"text":" The beach.","tokens":[50364,440],"temperature":0.0,
	 "avg_logprob":-0.28,"compression_ratio":1.23,"no_speech_prob":0.0098},
	 {"id":1,"seek":0,"start":3.32,"end":8.47,"text":" People swam.","tokens":[1],"temperature":0.0,"avg_logprob":-0.1,"compression_ratio":1.1,"no_speech_prob":0.01}],
	 "words":[{"word":"The","start":0,"end":0.4}],"usage":{"type":"duration","seconds":9}}`
	tr, err := decode([]byte(verbose), "application/json", VerboseJSON)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Text != "The beach. People swam." || tr.Language != "english" || tr.Duration != 8.47 || tr.Task != "transcribe" ||
		len(tr.Segments) != 2 || tr.Segments[1].ID != 1 || tr.Segments[1].Start != 3.32 || tr.Segments[0].Tokens[1] != 440 ||
		tr.Segments[0].NoSpeechProb != 0.0098 || len(tr.Words) != 1 || tr.Usage.Seconds != 9 || tr.Usage.Type != "duration" {
		t.Fatalf("verbose_json decoded to %+v", tr)
	}

	diarized := `{"task":"transcribe","duration":42.7,"text":"Thanks. Hi.","segments":[
	 {"type":"transcript.text.segment","id":"seg_001","start":0.0,"end":5.2,"text":"Thanks.","speaker":"agent"},
	 {"type":"transcript.text.segment","id":"seg_002","start":5.2,"end":12.8,"text":"Hi.","speaker":"A"}],
	 "usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":10,"audio_tokens":4},"output_tokens":101,"total_tokens":115}}`
	tr, err = decode([]byte(diarized), "application/json", DiarizedJSON)
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Segments[1]; s.ID != 1 || s.SegmentID != "seg_002" || s.Speaker != "A" || s.End != 12.8 ||
		tr.Usage.TotalTokens != 115 || tr.Usage.InputTokenDetails.AudioTokens != 4 {
		t.Fatalf("diarized_json decoded to %+v", tr)
	}

	// vLLM sends duration as a string.
	tr, err = decode([]byte(`{"text":"hi","language":"en","duration":"3.5","segments":[]}`), "application/json", VerboseJSON)
	if err != nil || tr.Duration != 3.5 {
		t.Fatalf("string duration: %v %v", tr, err)
	}

	srt := "1\r\n00:00:00,000 --> 00:00:02,500\r\nHello there.\r\n\r\n2\r\n00:00:02,500 --> 01:00:03,000\r\nGeneral\r\nKenobi.\r\n\r\n"
	tr, err = decode([]byte(srt), "text/plain; charset=utf-8", SRT)
	if err != nil || len(tr.Segments) != 2 || tr.Segments[1].End != 3603 || tr.Segments[1].Text != "General\nKenobi." ||
		tr.Text != "Hello there. General\nKenobi." || string(tr.Raw) != srt {
		t.Fatalf("srt: %+v %v", tr, err)
	}
	vtt := "WEBVTT\n\nNOTE made by 00:00.000 --> a server\n\n00:00.000 --> 00:01.250 align:start\nHi.\n\n00:00:01.250 --> 00:00:02.000\nBye.\n"
	tr, err = decode([]byte(vtt), "text/vtt", VTT)
	if err != nil || len(tr.Segments) != 2 || tr.Segments[0].End != 1.25 || tr.Text != "Hi. Bye." {
		t.Fatalf("vtt: %+v %v", tr, err)
	}

	tr, err = decode([]byte("Just the words.\n"), "text/plain; charset=utf-8", Text)
	if err != nil || tr.Text != "Just the words." {
		t.Fatalf("text: %+v %v", tr, err)
	}
	// A server answering JSON to a text request is still understood.
	tr, err = decode([]byte(`{"text":"json anyway"}`), "application/json", Text)
	if err != nil || tr.Text != "json anyway" {
		t.Fatalf("json for text: %+v %v", tr, err)
	}
	if _, err := decode([]byte(`{"text":`), "application/json", JSON); err == nil {
		t.Fatal("truncated JSON decoded")
	}
}

func TestAPIErrorClasses(t *testing.T) {
	const key = "sk-proj-SECRETSECRETSECRET1234"
	for _, tc := range []struct {
		status    int
		body      string
		is        []error
		retryable bool
	}{
		{429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, []error{ErrQuotaExceeded}, false},
		{429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":null}}`, []error{ErrQuotaExceeded}, false},
		{429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, []error{ErrRateLimited}, true},
		{429, `{"error":{"code":"429","message":"Requests to the Whisper API have exceeded call rate limit"}}`, []error{ErrRateLimited}, true}, // Azure
		{401, `{"error":{"message":"Incorrect API key provided: sk-proj-****1234. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, []error{ErrUnauthorized}, false},
		{403, `{"detail":"Invalid API key"}`, []error{ErrPermissionDenied}, false}, // speaches
		{404, `{"error":{"message":"The model 'x' does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`, []error{ErrNotFound}, false},
		{413, `{"error":{"message":"Maximum content size limit (26214400) exceeded (26214401 bytes read)","type":"server_error","param":null,"code":null}}`, []error{ErrFileTooLarge}, false},
		{400, `{"error":{"message":"Invalid file format. Supported formats: ['flac']","type":"invalid_request_error","param":null,"code":null}}`, []error{ErrInvalidAudio, ErrBadRequest}, false},
		{400, `{"error":{"message":"you must provide a model parameter","type":"invalid_request_error","param":null,"code":null}}`, []error{ErrBadRequest}, false},
		{415, `{"detail":"could not decode audio"}`, []error{ErrInvalidAudio}, false},
		{500, `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`, []error{ErrServer}, true},
		{502, `<html><body>Bad gateway</body></html>`, []error{ErrServer}, true},
		{503, `Invalid request`, []error{ErrServer}, true}, // whisper.cpp: plain text
		{408, ``, nil, true},
		{409, ``, nil, true},
		// Quota in every shape servers send it: never retried.
		{429, `{"error":{"code":"InsufficientQuota","message":"The specified capacity is bigger than available capacity '0'."}}`, []error{ErrQuotaExceeded}, false}, // Azure
		{429, `{"code":"insufficient_quota","message":"You exceeded your current quota"}`, []error{ErrQuotaExceeded}, false},                                        // a gateway
		{429, `{"detail":{"code":"insufficient_quota","message":"You exceeded your current quota"}}`, []error{ErrQuotaExceeded}, false},                             // FastAPI
		{429, `{"detail":"Error code: 429 - {'error': {'message': 'You exceeded your current quota', 'type': 'insufficient_quota', 'code': 'insufficient_quota'}}"}`, []error{ErrQuotaExceeded}, false},
		{429, `{"error":{"message":"LiteLLM User: u1, exceeded budget","type":"budget_exceeded","param":null,"code":"429"}}`, []error{ErrQuotaExceeded}, false}, // LiteLLM
		{402, `{"error":{"message":"Insufficient credits.","code":402}}`, []error{ErrQuotaExceeded}, false},                                                     // OpenRouter
		{400, `{"error":{"code":"billing_hard_limit_reached","message":"Billing hard limit has been reached","param":null,"type":"invalid_request_error"}}`, []error{ErrQuotaExceeded, ErrBadRequest}, false},
		{429, `{"error":{"message":"not insufficient_quota","type":"insufficient_quota","code":"rate_limit_exceeded"}}`, []error{ErrRateLimited}, true},
		{422, `{"detail":[{"type":"missing","loc":["body","file"],"msg":"Field required","input":null}]}`, []error{ErrBadRequest}, false}, // FastAPI validation
		{500, "upstream \x1b[2Kfailed\r\nall files done", []error{ErrServer}, true},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"X-Request-Id": {"req_1"}}}
		e := newAPIError(resp, []byte(tc.body), time.Second, key)
		for _, target := range tc.is {
			if !errors.Is(e, target) {
				t.Errorf("%d %s: not %v", tc.status, tc.body, target)
			}
		}
		all := []error{ErrQuotaExceeded, ErrRateLimited, ErrUnauthorized, ErrPermissionDenied, ErrNotFound, ErrFileTooLarge, ErrInvalidAudio, ErrServer}
		for _, other := range all {
			want := false
			for _, target := range tc.is {
				want = want || target == other
			}
			if errors.Is(e, other) != want {
				t.Errorf("%d %s: errors.Is(%v) = %v", tc.status, tc.body, other, !want)
			}
		}
		if retryable(e) != tc.retryable {
			t.Errorf("%d %s: retryable = %v", tc.status, tc.body, !tc.retryable)
		}
		if strings.Contains(e.Error(), "SECRET") {
			t.Errorf("key leaked: %v", e)
		}
		if strings.ContainsAny(e.Error(), "\x1b\r\n") {
			t.Errorf("control characters in %q", e.Error())
		}
		if !strings.Contains(e.Error(), "req_1") || strings.Contains(e.Error(), "<html") {
			t.Errorf("error text: %v", e)
		}
	}
}

func TestShouldRetryHeader(t *testing.T) {
	yes, no := true, false
	e := &APIError{StatusCode: 500, shouldRetry: &no}
	if retryable(e) {
		t.Error("x-should-retry: false did not stop a 500")
	}
	e = &APIError{StatusCode: 418, shouldRetry: &yes}
	if !retryable(e) {
		t.Error("x-should-retry: true did not retry a 418")
	}
	e = &APIError{StatusCode: 429, Code: "insufficient_quota", shouldRetry: &yes}
	if retryable(e) {
		t.Error("x-should-retry: true retried an insufficient_quota 429")
	}
}

func TestRedact(t *testing.T) {
	const key = "my-self-hosted-key"
	// OpenAI's own mask of a key (sk-abc123***wxyz) may stay: see secret.go.
	got := redact("bad key my-self-hosted-key, and sk-abc123***wxyz and sk-proj-ABCdef_123-xyz", key)
	if strings.Contains(got, key) || strings.Contains(got, "ABCdef") {
		t.Fatalf("redact left a key: %q", got)
	}
}

func TestRequestFields(t *testing.T) {
	f, err := Request{
		Language: "en", ResponseFormat: VerboseJSON, Temperature: 0.2,
		TimestampGranularities: []Granularity{GranularityWord, GranularitySegment},
		ChunkingStrategy:       &ChunkingStrategy{SilenceDurationMs: 500, Threshold: 0.6},
		Extra:                  map[string]string{"b": "2", "a": "1"},
	}.fields(false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range f {
		got = append(got, x.name+"="+x.value)
	}
	want := "model=whisper-1 language=en response_format=verbose_json temperature=0.2 timestamp_granularities[]=word " +
		"timestamp_granularities[]=segment chunking_strategy[type]=server_vad chunking_strategy[silence_duration_ms]=500 " +
		"chunking_strategy[threshold]=0.6 a=1 b=2"
	if strings.Join(got, " ") != want {
		t.Fatalf("fields:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	for name, r := range map[string]Request{
		"granularity without verbose_json": {TimestampGranularities: []Granularity{GranularityWord}},
		"temperature":                      {Temperature: 1.5},
		"format":                           {ResponseFormat: "xml"},
		"stream":                           {Stream: true},
	} {
		if _, err := r.fields(false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := (Request{Language: "de"}).fields(true); err == nil {
		t.Error("translation with a language accepted")
	}
}

// Every body that is not a transcript in the format asked for is an
// error, never a Transcription: an error object (errorObject, which the
// client turns into an *APIError) or an *InvalidResponseError.
func TestDecodeRejects(t *testing.T) {
	const html = "text/html; charset=utf-8"
	login := "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>…</form></body></html>"
	for _, tc := range []struct {
		name        string
		body        string
		contentType string
		formats     []ResponseFormat
		errorObject bool
	}{
		{"error object", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, "application/json", allFormats, true},
		{"error object as text", `{"error":{"message":"boom","type":"server_error"}}`, "text/plain", allFormats, true},
		{"error string", `{"error":"Internal error"}`, "application/json", allFormats, true},
		{"error beside text", `{"text":"","error":{"message":"boom"}}`, "application/json", jsonFormats, true},
		{"error with wrong types", `{"segments":"x","error":{"message":"boom"}}`, "application/json", jsonFormats, true},
		{"top-level error", `{"code":"insufficient_quota","message":"You exceeded your current quota"}`, "application/json", jsonFormats, true},
		{"fastapi detail", `{"detail":"Not authenticated"}`, "application/json", allFormats, true},
		{"empty object", `{}`, "application/json", allFormats, false},
		{"null", `null`, "application/json", allFormats, false},
		{"empty array", `[]`, "application/json", allFormats, false},
		{"array", `[{"text":"hi"}]`, "application/json", jsonFormats, false},
		{"string", `"hi"`, "application/json", jsonFormats, false},
		{"number", `42`, "application/json", jsonFormats, false},
		{"empty", ``, "application/json", jsonFormats, false},
		{"white space", " \r\n", "application/json", jsonFormats, false},
		{"html page", login, html, allFormats, false},
		{"html page as text/plain", "  <html><body>Bad gateway</body></html>", "text/plain", allFormats, false},
		{"html page without a type", "\ufeff<!doctype html><p>hi", "", allFormats, false},
		{"internal server error", "Internal Server Error", "text/plain", jsonFormats, false},
		{"internal server error as json", "Internal Server Error", "application/json", jsonFormats, false},
		{"truncated", `{"text":"hello`, "application/json", jsonFormats, false},
		{"trailing garbage", `{"text":"hello"} trailing`, "application/json", jsonFormats, false},
		{"text is a number", `{"text":5}`, "application/json", jsonFormats, false},
		{"text is null", `{"text":null}`, "application/json", jsonFormats, false},
		{"no text", `{"language":"english","duration":1.5,"segments":[]}`, "application/json", jsonFormats, false},
		{"segments not a list", `{"text":"a","segments":{"id":0}}`, "application/json", jsonFormats, false},
		{"segment start not a number", `{"text":"a","segments":[{"id":0,"start":"soon","end":1,"text":"a"}]}`, "application/json", jsonFormats, false},
		{"segment id an object", `{"text":"a","segments":[{"id":{},"start":0,"end":1,"text":"a"}]}`, "application/json", jsonFormats, false},
		{"words not a list", `{"text":"a","words":"a"}`, "application/json", jsonFormats, false},
		{"word start a string", `{"text":"a","words":[{"word":"a","start":"0","end":1}]}`, "application/json", jsonFormats, false},
		{"usage a string", `{"text":"a","usage":"lots"}`, "application/json", jsonFormats, false},
		{"duration NaN", `{"text":"a","duration":"NaN"}`, "application/json", jsonFormats, false},
		{"duration a word", `{"text":"a","duration":"long"}`, "application/json", jsonFormats, false},
		{"language a number", `{"text":"a","language":1}`, "application/json", jsonFormats, false},
		{"garbage srt", "Internal Server Error", "text/plain", cueFormats, false},
		{"srt cut in a timing", "1\n00:00:00,000 --> 00:00:01,000\nHi.\n\n2\n00:00:01,0", "text/plain", cueFormats, false},
		{"srt bad time", "1\n00:00:00,000 --> 00:00:99,000\nHi.\n", "text/plain", cueFormats, false},
		{"srt with garbage after", "1\n00:00:00,000 --> 00:00:01,000\nHi.\n\nupstream timed out\n", "text/plain", cueFormats, false},
		{"vtt of garbage", "WEBVTT\n\nsomething went wrong\n", "text/vtt", cueFormats, false},
	} {
		for _, format := range tc.formats {
			t.Run(tc.name+"/"+string(format), func(t *testing.T) {
				tr, err := decode([]byte(tc.body), tc.contentType, format)
				if tr != nil || err == nil {
					t.Fatalf("decoded to %+v, %v", tr, err)
				}
				var invalid *InvalidResponseError
				switch {
				case tc.errorObject:
					if !errors.As(err, new(errorObject)) {
						t.Fatalf("%v (%T), want an error object", err, err)
					}
				case !errors.As(err, &invalid) || !errors.Is(err, ErrInvalidResponse):
					t.Fatalf("%v (%T), want an *InvalidResponseError", err, err)
				case invalid.Format != format || invalid.ContentType != tc.contentType || invalid.Err == nil:
					t.Fatalf("%+v", invalid)
				case strings.ContainsAny(invalid.Excerpt, "\r\n\x00") || len(invalid.Excerpt) > excerptLen+len("…"):
					t.Fatalf("excerpt %q", invalid.Excerpt)
				}
			})
		}
	}
}

var (
	jsonFormats = []ResponseFormat{JSON, VerboseJSON, DiarizedJSON}
	cueFormats  = []ResponseFormat{SRT, VTT}
	allFormats  = []ResponseFormat{JSON, VerboseJSON, DiarizedJSON, Text, SRT, VTT}
)

// What a silent recording, or a server's quirks, legitimately send.
func TestDecodeAccepts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		body        string
		contentType string
		format      ResponseFormat
		text        string
		segments    int
	}{
		{"silent json", `{"text":""}`, "application/json", JSON, "", 0},
		{"silent verbose", `{"task":"transcribe","language":"english","duration":3.2,"text":"","segments":[]}`, "application/json", VerboseJSON, "", 0},
		{"silent diarized", `{"task":"transcribe","duration":3.2,"text":"","segments":[]}`, "application/json", DiarizedJSON, "", 0},
		{"json sent as text/plain", `{"text":"hi"}`, "text/plain", JSON, "hi", 0},
		{"error null", `{"text":"hi","error":null}`, "application/json", JSON, "hi", 0},
		{"no speech prob null", `{"text":"a","segments":[{"id":0,"start":0,"end":1,"text":"a","no_speech_prob":null}]}`, "application/json", VerboseJSON, "a", 1},
		{"silent text", "", "text/plain", Text, "", 0},
		{"silent text, newline", "\n", "text/plain", Text, "", 0},
		{"text of brackets", "[Music] [BLANK_AUDIO]\n", "text/plain", Text, "[Music] [BLANK_AUDIO]", 0},
		{"whisper.cpp text as text/html", " And so my fellow Americans.\n", "text/html; charset=utf-8", Text, "And so my fellow Americans.", 0},
		{"text with a tag later", "He said <html> twice.", "text/plain", Text, "He said <html> twice.", 0},
		{"silent srt", "", "application/x-subrip", SRT, "", 0},
		{"silent srt, newlines", "\n\n", "application/x-subrip", SRT, "", 0},
		{"silent vtt", "WEBVTT\n\n", "text/vtt", VTT, "", 0},
		{"vtt header with metadata", "WEBVTT - made by a server\nKind: captions\n\nNOTE a note\n\n00:01.000 --> 00:02.000\nHi.\n", "text/vtt", VTT, "Hi.", 1},
		{"vtt cue right after the header", "WEBVTT\n00:01.000 --> 00:02.000\nHi.\n", "text/vtt", VTT, "Hi.", 1},
		{"srt with dots and extra blank lines", "\r\n1\r\n00:00:00.000 --> 00:00:01.000\r\nHi.\r\n\r\n\r\n\r\n2\r\n00:00:01.000 --> 00:00:02.000 X1:0 X2:10\r\nBye.", "text/plain", SRT, "Hi. Bye.", 2},
		{"srt without numbers", "00:00:00,000 --> 00:00:01,000\nHi.\n", "text/plain", SRT, "Hi.", 1},
		{"srt cue without text", "1\n00:00:00,000 --> 00:00:01,000\n\n2\n00:00:01,000 --> 00:00:02,000\nBye.\n", "text/plain", SRT, " Bye.", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := decode([]byte(tc.body), tc.contentType, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Text != tc.text || len(tr.Segments) != tc.segments || tr.Format != tc.format || string(tr.Raw) != tc.body {
				t.Fatalf("%+v", tr)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]float64{
		"00:00:00,000": 0, "00:00:03,320": 3.32, "01:00:03.000": 3603, "101:00:00,000": 363600,
		"00:01.250": 1.25, "59:59.999": 3599.999, "1:2:3": 3723, "00:00:01.5": 1.5, "00:00:01,123456789": 1.123456789,
		" 00:00:02,000 ": 2,
	} {
		if got, err := parseTimestamp(in); err != nil || got != want {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "1", "00:00:60,000", "00:60:00,000", "00:00:00,", "00:00:00,0000000000", "-1:00:00,000", "+1:00:00,000",
		"1e3:00:00", "00:00:1e1", "NaN:00:00", "00:00:Inf", "00:00:00:00,000", "0x1:00:00", "00:00:0 1", "1234567890:00:00",
		"00::00", ":00:00", "00:00:00,00a", "00:000:00", "aa:bb",
	} {
		if got, err := parseTimestamp(in); err == nil {
			t.Errorf("parseTimestamp(%q) = %v, want an error", in, got)
		}
	}
}

// A body is read into one buffer, never past the bound: a declared length
// exactly, an undeclared one in chunks.
func TestReadBody(t *testing.T) {
	const limit = 1 << 20
	body := bytes.Repeat([]byte("0123456789"), 50_000) // 500 kB
	for _, tc := range []struct {
		name string
		r    io.Reader
		size int64
		want []byte
		err  error
	}{
		{"declared", bytes.NewReader(body), int64(len(body)), body, nil},
		{"undeclared", bytes.NewReader(body), -1, body, nil},
		{"undeclared, one read at a time", iotest.OneByteReader(bytes.NewReader(body[:40_000])), -1, body[:40_000], nil},
		{"empty", strings.NewReader(""), -1, []byte{}, nil},
		{"empty, declared", strings.NewReader(""), 0, []byte{}, nil},
		{"exactly the bound", bytes.NewReader(make([]byte, limit)), -1, make([]byte, limit), nil},
		{"one byte over the bound", bytes.NewReader(make([]byte, limit+1)), -1, nil, errTooLarge},
		{"declared over the bound", errReader{}, limit + 1, nil, errTooLarge},
		{"longer than declared", bytes.NewReader(body), 10, body, nil}, // a hand-made response
		{"declared 0, as hand-made responses leave it", strings.NewReader(`{"text":"ok"}`), 0, []byte(`{"text":"ok"}`), nil},
		{"longer than declared and over the bound", bytes.NewReader(make([]byte, limit+1)), 10, nil, errTooLarge},
		{"shorter than declared", bytes.NewReader(body[:10]), 20, nil, io.ErrUnexpectedEOF},
		{"cut by an error", io.MultiReader(bytes.NewReader(body[:10]), errReader{}), -1, nil, errBroken},
		{"a chunked body cut short", io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(io.ErrUnexpectedEOF)), -1, nil, io.ErrUnexpectedEOF},
		{"a chunked body cut short, data and error at once", iotest.DataErrReader(io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(io.ErrUnexpectedEOF))), -1, nil, io.ErrUnexpectedEOF},
		{"data with EOF at once", iotest.DataErrReader(bytes.NewReader(body[:10])), -1, body[:10], nil},
		{"no progress", iotest.ErrReader(nil), -1, nil, io.ErrNoProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(tc.r, tc.size, limit)
			if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) || (tc.err == nil) != (got != nil) {
				t.Fatalf("%d bytes, %v; want %d, %v", len(got), err, len(tc.want), tc.err)
			}
		})
	}
}

var errBroken = errors.New("connection reset")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// endlessBody is a body that never ends.
type endlessBody struct{}

func (endlessBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// An endless body costs the bound in memory, no more, and is an error.
func TestReadBodyEndlessCostsTheBound(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := readBody(endlessBody{}, -1, maxResponseBody)
	runtime.ReadMemStats(&after)
	if got != nil || !errors.Is(err, errTooLarge) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("an endless body cost %d bytes (bound %d)", alloc, maxResponseBody)
	if alloc > maxResponseBody+64<<10 {
		t.Errorf("an endless body cost %d bytes; the bound is %d", alloc, maxResponseBody)
	}

	// A body of a declared length costs that length, once.
	body := bytes.Repeat([]byte("a"), 3<<20)
	runtime.ReadMemStats(&before)
	got, err = readBody(bytes.NewReader(body), int64(len(body)), maxResponseBody)
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != len(body) {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(body))+16<<10 {
		t.Errorf("a declared body of %d bytes cost %d", len(body), alloc)
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []struct {
		body, contentType string
		format            ResponseFormat
	}{
		{`{"text":"hi"}`, "application/json", JSON},
		{`{"task":"transcribe","language":"english","duration":8.47,"text":"The beach.","segments":[{"id":0,"seek":0,"start":0.0,"end":3.32,"text":" The beach.","tokens":[50364,440],"temperature":0.0,"avg_logprob":-0.28,"compression_ratio":1.23,"no_speech_prob":0.0098}],"words":[{"word":"The","start":0,"end":0.4}],"usage":{"type":"duration","seconds":9}}`, "application/json", VerboseJSON},
		{`{"task":"transcribe","duration":42.7,"text":"Hi.","segments":[{"type":"transcript.text.segment","id":"seg_001","start":0.0,"end":5.2,"text":"Hi.","speaker":"A"}],"usage":{"type":"tokens","input_tokens":14,"output_tokens":101,"total_tokens":115}}`, "application/json", DiarizedJSON},
		{`{"text":"hi","language":"en","duration":"3.5","segments":[]}`, "application/json", VerboseJSON},
		{`{"text":"Hi there.","logprobs":[{"token":"Hi","logprob":-0.1,"bytes":[72,105]}]}`, "application/json", JSON},
		{"1\r\n00:00:00,000 --> 00:00:02,500\r\nHello there.\r\n\r\n2\r\n00:00:02,500 --> 01:00:03,000\r\nGeneral\r\nKenobi.\r\n\r\n", "application/x-subrip", SRT},
		{"WEBVTT\n\nNOTE x --> y\n\n00:00.000 --> 00:01.250 align:start\nHi.\n\n00:00:01.250 --> 00:00:02.000\nBye.\n", "text/vtt", VTT},
		{"Just the words.\n", "text/plain; charset=utf-8", Text},
		{"", "text/plain", Text},
		{`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, "application/json", JSON},
		{`{"detail":"Not authenticated"}`, "application/json", VerboseJSON},
		{`{}`, "application/json", JSON},
		{`null`, "text/plain", Text},
		{`[]`, "application/json", DiarizedJSON},
		{"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html", Text},
		{"Internal Server Error", "text/plain", JSON},
		{"Internal Server Error", "text/plain", SRT},
		{`{"text":5}`, "application/json", VerboseJSON},
		{`{"text":"a","segments":[{"id":true}]}`, "application/json", VerboseJSON},
		{"\ufeffWEBVTT\n00:01.000 --> 00:02.000\nHi.", "text/vtt", VTT},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.contentType, formatIndex(s.format))
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, fi uint8) {
		format := allFormats[int(fi)%len(allFormats)]
		tr, err := decode(body, contentType, format)
		if err != nil {
			if tr != nil {
				t.Fatalf("a transcript and an error: %+v, %v", tr, err)
			}
			if !errors.Is(err, ErrInvalidResponse) && !errors.As(err, new(errorObject)) {
				t.Fatalf("untyped error %v (%T)", err, err)
			}
			return
		}
		rendered := format == Text || format == SRT || format == VTT
		if rendered && !bytes.Equal(tr.Raw, body) {
			// A JSON answer to a text, srt or vtt request is rendered
			// locally (render.go): Raw is the rendering, which decodes
			// to the same transcript.
			again, err := decode(tr.Raw, "text/plain", format)
			if err != nil || again.Text != tr.Text || tr.Format != format {
				t.Fatalf("rendered %q from %q: decodes to %+v, %v; want the text %q", tr.Raw, body, again, err, tr.Text)
			}
		} else if !bytes.Equal(tr.Raw, body) || tr.Format != format {
			t.Fatalf("Raw or Format changed: %+v", tr)
		}
		text := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\ufeff")))
		if bytes.HasPrefix(bytes.ToLower(text), []byte("<html")) || bytes.HasPrefix(bytes.ToLower(text), []byte("<!doctype")) {
			t.Fatalf("an HTML page decoded as %+v", tr)
		}
		if format == JSON || format == VerboseJSON || format == DiarizedJSON {
			var w struct {
				Text  *string         `json:"text"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(body, &w) != nil || w.Text == nil || len(w.Error) > 0 && string(w.Error) != "null" {
				t.Fatalf("%q decoded as %s", body, format)
			}
		}
		for _, s := range tr.Segments {
			if math.IsNaN(s.Start) || math.IsInf(s.Start, 0) || math.IsNaN(s.End) || math.IsInf(s.End, 0) {
				t.Fatalf("segment %+v", s)
			}
		}
		if math.IsNaN(tr.Duration) || math.IsInf(tr.Duration, 0) {
			t.Fatalf("duration %v", tr.Duration)
		}
	})
}

func formatIndex(f ResponseFormat) uint8 {
	for i, g := range allFormats {
		if g == f {
			return uint8(i)
		}
	}
	panic(f)
}

func FuzzParseCues(f *testing.F) {
	for _, s := range []string{
		"1\r\n00:00:00,000 --> 00:00:02,500\r\nHello there.\r\n\r\n2\r\n00:00:02,500 --> 01:00:03,000\r\nGeneral\r\nKenobi.\r\n\r\n",
		"WEBVTT\n\nNOTE made by 00:00.000 --> a server\n\n00:00.000 --> 00:01.250 align:start\nHi.\n\n00:00:01.250 --> 00:00:02.000\nBye.\n",
		"WEBVTT\n00:01.000 --> 00:02.000\nHi.",
		"\ufeff1\n00:00:00.000-->00:00:01.000\n\n",
		"STYLE\n::cue { color: red }\n\nREGION\nid:x\n",
		"", "\n\n", "WEBVTT", "Internal Server Error", "1\n00:00:0", "00:00:60,000 --> 00:00:61,000\nx",
		"1\n2\n00:00:00,000 --> 00:00:01,000\nx", "--> -->\n-->",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		segs, err := parseCues(doc)
		if err != nil {
			if segs != nil {
				t.Fatalf("cues and an error: %v", err)
			}
			return
		}
		if len(segs) > strings.Count(doc, "-->") {
			t.Fatalf("%d cues from %d arrows", len(segs), strings.Count(doc, "-->"))
		}
		for i, s := range segs {
			if s.ID != i || s.Start < 0 || s.End < 0 || math.IsNaN(s.Start) || math.IsNaN(s.End) || math.IsInf(s.Start, 0) || math.IsInf(s.End, 0) {
				t.Fatalf("cue %d: %+v", i, s)
			}
		}
		// What we render from them parses again, as many cues as have text.
		withText := 0
		for _, s := range segs {
			if cueText(s.Text) != "" {
				withText++
			}
		}
		for _, render := range []func([]Segment) []byte{renderSRT, renderVTT} {
			back, err := parseCues(string(render(segs)))
			if err != nil || len(back) != withText {
				t.Fatalf("rendered cues: %d, %v; want %d", len(back), err, withText)
			}
		}
	})
}
