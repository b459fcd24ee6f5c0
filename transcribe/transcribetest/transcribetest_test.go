package transcribetest_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	key            = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"
	memURL         = "http://fake.invalid/v1/audio/transcriptions"
	memTranslation = "http://fake.invalid/v1/audio/translations"
)

// upload describes a multipart request to build by hand.
type upload struct {
	url      string   // default memURL
	key      string   // bearer key; "" sends no Authorization header
	fields   []string // name, value, name, value, …
	filename string   // with file nil and filename "": no file part
	file     []byte
}

// request builds the request with mime/multipart, with a Content-Length.
func (u upload) request(t testing.TB) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(u.fields); i += 2 {
		if err := mw.WriteField(u.fields[i], u.fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if u.filename != "" || u.file != nil {
		fw, err := mw.CreateFormFile("file", u.filename)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(u.file)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, cmp.Or(u.url, memURL), &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if u.key != "" {
		req.Header.Set("Authorization", "Bearer "+u.key)
	}
	return req
}

// do sends req and returns the response with its body read.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// memClient returns a client that talks to h in memory.
func memClient(h *tt.Handler) *http.Client { return &http.Client{Transport: h.Transport()} }

// object unmarshals a JSON object.
func object(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

// keys checks that m has exactly the keys want.
func keys(t testing.TB, what string, m any, want ...string) {
	t.Helper()
	obj, ok := m.(map[string]any)
	if !ok {
		t.Fatalf("%s: %T is not an object", what, m)
	}
	got := slices.Sorted(maps.Keys(obj))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: keys %q, want %q", what, got, want)
	}
}

// apiError checks that b is an OpenAI error body and returns its fields;
// param and code are "<null>" when null.
func apiError(t testing.TB, b []byte) (message, typ, param, code string) {
	t.Helper()
	m := object(t, b)
	keys(t, "body", m, "error")
	e, _ := m["error"].(map[string]any)
	keys(t, "error", e, "message", "type", "param", "code")
	str := func(k string) string {
		switch v := e[k].(type) {
		case nil:
			return "<null>"
		case string:
			return v
		default:
			t.Errorf("error.%s is %T, want string or null", k, v)
			return ""
		}
	}
	return str("message"), str("type"), str("param"), str("code")
}

var requestIDPattern = regexp.MustCompile(`^req_[0-9a-f]{32}$`)

// TestResponseFormats checks each response format against the shapes of
// CreateTranscriptionResponseJson, …VerboseJson, …DiarizedJson,
// CreateTranslationResponseVerboseJson, TranscriptionSegment,
// TranscriptionWord, TranscriptionDiarizedSegment and the usage objects
// (TranscriptTextUsageDuration, TranscriptTextUsageTokens), through a real
// server.
func TestResponseFormats(t *testing.T) {
	srv := tt.NewServer(tt.Config{APIKey: key})
	defer srv.Close()
	wav := tt.WAV(12 * time.Second)
	post := func(t *testing.T, url string, fields ...string) (*http.Response, []byte) {
		t.Helper()
		resp, b := do(t, srv.Client(), upload{url: srv.BaseURL() + url, key: key, fields: fields, filename: "speech.wav", file: wav}.request(t))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if id := resp.Header.Get("x-request-id"); !requestIDPattern.MatchString(id) {
			t.Errorf("x-request-id %q", id)
		}
		if resp.Header.Get("openai-version") != "2020-10-01" || resp.Header.Get("openai-processing-ms") == "" {
			t.Errorf("openai-* headers: %v", resp.Header)
		}
		if resp.Header.Get("x-ratelimit-limit-requests") != "" {
			t.Errorf("x-ratelimit headers without a RateLimit: %v", resp.Header)
		}
		return resp, b
	}
	segmentKeys := []string{"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"}

	t.Run("json whisper-1", func(t *testing.T) {
		resp, b := post(t, "/audio/transcriptions", "model", "whisper-1")
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		m := object(t, b)
		keys(t, "json", m, "text", "usage")
		keys(t, "usage", m["usage"], "type", "seconds")
		u := m["usage"].(map[string]any)
		if u["type"] != "duration" || u["seconds"] != 12.0 {
			t.Errorf("usage %v", u)
		}
		if n := len(strings.Fields(m["text"].(string))); n != 30 {
			t.Errorf("%d words for 12 s, want 30", n)
		}
	})
	t.Run("json gpt-4o-transcribe logprobs", func(t *testing.T) {
		_, b := post(t, "/audio/transcriptions", "model", "gpt-4o-transcribe", "include[]", "logprobs", "prompt", "Names: Ada.")
		m := object(t, b)
		keys(t, "json", m, "text", "logprobs", "usage")
		keys(t, "usage", m["usage"], "type", "input_tokens", "input_token_details", "output_tokens", "total_tokens")
		u := m["usage"].(map[string]any)
		keys(t, "input_token_details", u["input_token_details"], "text_tokens", "audio_tokens")
		d := u["input_token_details"].(map[string]any)
		if u["type"] != "tokens" || u["input_tokens"] != d["text_tokens"].(float64)+d["audio_tokens"].(float64) ||
			u["total_tokens"] != u["input_tokens"].(float64)+u["output_tokens"].(float64) || d["audio_tokens"] != 120.0 {
			t.Errorf("usage %v", u)
		}
		lp := m["logprobs"].([]any)
		if len(lp) != len(strings.Fields(m["text"].(string))) {
			t.Errorf("%d logprobs for %q", len(lp), m["text"])
		}
		keys(t, "logprob", lp[1], "token", "logprob", "bytes")
		l := lp[1].(map[string]any)
		if tok := l["token"].(string); !strings.HasPrefix(tok, " ") || len(l["bytes"].([]any)) != len(tok) || l["logprob"].(float64) > 0 {
			t.Errorf("logprob %v", l)
		}
	})
	t.Run("text", func(t *testing.T) {
		resp, b := post(t, "/audio/transcriptions", "model", "gpt-4o-mini-transcribe", "response_format", "text")
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if !regexp.MustCompile(`^[A-Z][A-Za-z .]+\.\n$`).Match(b) {
			t.Errorf("text %q", b)
		}
	})
	t.Run("srt", func(t *testing.T) {
		resp, b := post(t, "/audio/transcriptions", "model", "whisper-1", "response_format", "srt")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-subrip") {
			t.Errorf("Content-Type %q", ct)
		}
		cue := `(\d+)\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n[A-Z][^\n]+\.\n\n`
		if !regexp.MustCompile(`^(`+cue+`)+$`).Match(b) || !strings.HasPrefix(string(b), "1\n00:00:00,000 --> ") ||
			!strings.Contains(string(b), " --> 00:00:12,000\n") {
			t.Errorf("srt:\n%s", b)
		}
	})
	t.Run("vtt", func(t *testing.T) {
		resp, b := post(t, "/audio/transcriptions", "model", "whisper-1", "response_format", "vtt")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/vtt") {
			t.Errorf("Content-Type %q", ct)
		}
		cue := `\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n[A-Z][^\n]+\.\n\n`
		if !regexp.MustCompile(`^WEBVTT\n\n(`+cue+`)+$`).Match(b) || !strings.HasPrefix(string(b), "WEBVTT\n\n00:00:00.000 --> ") {
			t.Errorf("vtt:\n%s", b)
		}
	})
	t.Run("verbose_json", func(t *testing.T) {
		_, b := post(t, "/audio/transcriptions", "model", "whisper-1", "response_format", "verbose_json", "language", "en", "temperature", "0.2")
		m := object(t, b)
		keys(t, "verbose_json", m, "task", "language", "duration", "text", "segments", "usage")
		if m["task"] != "transcribe" || m["language"] != "english" || m["duration"] != 12.0 {
			t.Errorf("task, language, duration: %v %v %v", m["task"], m["language"], m["duration"])
		}
		keys(t, "usage", m["usage"], "type", "seconds")
		segs := m["segments"].([]any)
		var texts []string
		for i, s := range segs {
			keys(t, "segment", s, segmentKeys...)
			seg := s.(map[string]any)
			text := seg["text"].(string)
			texts = append(texts, strings.TrimPrefix(text, " "))
			if seg["id"] != float64(i) || !strings.HasPrefix(text, " ") || seg["temperature"] != 0.2 ||
				seg["end"].(float64) <= seg["start"].(float64) || len(seg["tokens"].([]any)) < 3 {
				t.Errorf("segment %d: %v", i, seg)
			}
		}
		if got := strings.Join(texts, " "); got != m["text"] {
			t.Errorf("text %q is not the segments joined %q", m["text"], got)
		}
		if last := segs[len(segs)-1].(map[string]any); last["end"] != 12.0 {
			t.Errorf("last segment ends at %v", last["end"])
		}
	})
	t.Run("verbose_json words", func(t *testing.T) {
		_, b := post(t, "/audio/transcriptions", "model", "whisper-1", "response_format", "verbose_json",
			"timestamp_granularities[]", "word")
		m := object(t, b)
		keys(t, "verbose_json", m, "task", "language", "duration", "text", "words", "usage")
		words := m["words"].([]any)
		if len(words) != 30 {
			t.Errorf("%d words", len(words))
		}
		prev := 0.0
		for _, w := range words {
			keys(t, "word", w, "word", "start", "end")
			w := w.(map[string]any)
			if strings.ContainsAny(w["word"].(string), " .") || w["start"].(float64) < prev || w["end"].(float64) <= w["start"].(float64) {
				t.Errorf("word %v after %v", w, prev)
			}
			prev = w["end"].(float64)
		}
		_, b = post(t, "/audio/transcriptions", "model", "whisper-1", "response_format", "verbose_json",
			"timestamp_granularities[]", "word", "timestamp_granularities[]", "segment")
		keys(t, "verbose_json", object(t, b), "task", "language", "duration", "text", "segments", "words", "usage")
	})
	t.Run("diarized_json", func(t *testing.T) {
		_, b := post(t, "/audio/transcriptions", "model", "gpt-4o-transcribe-diarize", "response_format", "diarized_json",
			"chunking_strategy", "auto")
		m := object(t, b)
		keys(t, "diarized_json", m, "task", "duration", "text", "segments", "usage")
		for i, s := range m["segments"].([]any) {
			keys(t, "segment", s, "type", "id", "start", "end", "text", "speaker")
			seg := s.(map[string]any)
			if seg["type"] != "transcript.text.segment" || seg["speaker"] != []string{"A", "B"}[i%2] ||
				!regexp.MustCompile(`^seg_\d{3}$`).MatchString(seg["id"].(string)) {
				t.Errorf("segment %v", seg)
			}
		}
		if id := m["segments"].([]any)[0].(map[string]any)["id"]; id != "seg_001" {
			t.Errorf("first id %v", id)
		}
	})
	t.Run("translation verbose_json", func(t *testing.T) {
		_, b := post(t, "/audio/translations", "model", "whisper-1", "response_format", "verbose_json")
		m := object(t, b)
		keys(t, "verbose_json", m, "task", "language", "duration", "text", "segments")
		if m["task"] != "translate" || m["language"] != "english" {
			t.Errorf("task %v, language %v", m["task"], m["language"])
		}
		_, b = post(t, "/audio/translations", "model", "whisper-1")
		keys(t, "json", object(t, b), "text")
	})
}

// TestAudioFields checks what a Transcriber receives, and that its
// transcript and *Error come back.
func TestAudioFields(t *testing.T) {
	var got tt.Audio
	var fileHead []byte
	h := tt.NewHandler(tt.Config{Transcriber: func(_ context.Context, a *tt.Audio) (*tt.Transcript, error) {
		got = *a
		fileHead = make([]byte, 4)
		a.File.ReadAt(fileHead, 0)
		return &tt.Transcript{Duration: 3, Segments: []tt.Segment{
			{Start: 0, End: 1.5, Text: "Hello there.", Speaker: "agent"},
			{Start: 1.5, End: 3, Text: "Hi."},
		}}, nil
	}})
	wav := tt.WAV(time.Second)
	resp, b := do(t, memClient(h), upload{key: "any", filename: "call.WAV", file: wav, fields: []string{
		"model", "gpt-4o-transcribe-diarize", "response_format", "diarized_json", "language", "de", "temperature", "0.5",
		"chunking_strategy[type]", "server_vad", "chunking_strategy[silence_duration_ms]", "500",
		"known_speaker_names[]", "agent",
	}}.request(t))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if got.Task != "transcribe" || got.Filename != "call.WAV" || got.Model != "gpt-4o-transcribe-diarize" || got.Language != "de" ||
		got.Temperature != 0.5 || got.ResponseFormat != "diarized_json" || got.Size != int64(len(wav)) || string(fileHead) != "RIFF" {
		t.Errorf("audio %+v", got)
	}
	if v := got.Fields["chunking_strategy[type]"]; len(v) != 1 || v[0] != "server_vad" {
		t.Errorf("fields %v", got.Fields)
	}
	if v := got.Fields["known_speaker_names[]"]; len(v) != 1 || v[0] != "agent" {
		t.Errorf("fields %v", got.Fields)
	}
	want := `{"task":"transcribe","duration":3,"text":"Hello there. Hi.","segments":[` +
		`{"type":"transcript.text.segment","id":"seg_001","start":0,"end":1.5,"text":"Hello there.","speaker":"agent"},` +
		`{"type":"transcript.text.segment","id":"seg_002","start":1.5,"end":3,"text":"Hi.","speaker":"B"}],` +
		`"usage":{"type":"duration","seconds":3}}` + "\n"
	if string(b) != want {
		t.Errorf("body\n%s\nwant\n%s", b, want)
	}

	// Arrays under both names, and granularities.
	do(t, memClient(h), upload{key: "any", filename: "a.wav", file: wav, fields: []string{
		"model", "whisper-1", "response_format", "verbose_json",
		"timestamp_granularities[]", "word", "timestamp_granularities", "segment",
	}}.request(t))
	if !slices.Equal(got.TimestampGranularities, []string{"word", "segment"}) {
		t.Errorf("granularities %q", got.TimestampGranularities)
	}
	do(t, memClient(h), upload{key: "any", filename: "a.wav", file: wav, fields: []string{
		"model", "gpt-4o-transcribe", "include", "logprobs",
	}}.request(t))
	if !slices.Equal(got.Include, []string{"logprobs"}) || got.ResponseFormat != "json" {
		t.Errorf("include %q, format %q", got.Include, got.ResponseFormat)
	}
}
