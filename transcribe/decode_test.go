package transcribe

import (
	"errors"
	"net/http"
	"strings"
	"testing"
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
		if strings.Contains(e.Error(), "SECRET") || strings.Contains(e.Error(), "****1234") {
			t.Errorf("key leaked: %v", e)
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
	got := redact("bad key my-self-hosted-key, and sk-abc123***wxyz and sk-proj-ABCdef_123-xyz", key)
	if strings.Contains(got, key) || strings.Contains(got, "abc123") || strings.Contains(got, "ABCdef") {
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
