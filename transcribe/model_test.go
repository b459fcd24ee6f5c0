package transcribe_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// A file over gpt-4o-transcribe's 1,400 s, small enough to be sent whole
// (8 kHz 16-bit: 23 MB for 1,450 s), is cut by duration and succeeds
// against a fake that refuses more than 1,400 s; whisper-1, which has no
// cap, gets it whole.
func TestModelDurationCapCuts(t *testing.T) {
	rec := newRecording(8000, 1450*time.Second, 3)
	path := rec.writeWAV(t, t.TempDir())
	ctx := context.Background()

	c, srv := newClient(t, transcribetest.Config{Transcriber: hearWords})
	tr, err := c.TranscribeFile(ctx, path, transcribe.Request{Model: "gpt-4o-transcribe"})
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	if len(tr.Pieces) < 2 || st.Requests != len(tr.Pieces) || st.ByStatus[400] != 0 {
		t.Fatalf("%d pieces, %d requests, by status %v", len(tr.Pieces), st.Requests, st.ByStatus)
	}
	for i, p := range tr.Pieces {
		if p.End-p.Start > 1400 {
			t.Errorf("piece %d lasts %.1f s, over the model's 1,400 s", i, p.End-p.Start)
		}
		if i > 0 && (p.Cut != transcribe.CutPause || !rec.inPause(p.Start) || p.PauseLevel >= p.Speech-20) {
			t.Errorf("piece %d: cut %v at %.2f s (in a pause: %v), pause %.1f dBFS, speech %.1f", i, p.Cut, p.Start, rec.inPause(p.Start), p.PauseLevel, p.Speech)
		}
	}
	t.Logf("%d pieces: %+v", len(tr.Pieces), tr.Pieces)
	if got, want := len(strings.Fields(tr.Text)), len(rec.words); got != want {
		t.Fatalf("%d words, want %d", got, want)
	}

	// A stream is cut the same way.
	cs, srvs := newClient(t, transcribetest.Config{Transcriber: hearWords})
	var done *transcribe.Transcription
	for ev, err := range cs.TranscribeFileStream(ctx, path, transcribe.Request{Model: "gpt-4o-transcribe"}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if ev.Type == transcribe.EventDone {
			done = ev.Transcription
		}
	}
	if st := srvs.Stats(); done == nil || len(done.Pieces) < 2 || st.ByStatus[400] != 0 || st.Requests != len(done.Pieces) {
		t.Fatalf("stream: %v, by status %v", done, st.ByStatus)
	}

	// whisper-1 has no duration cap: one request, as before.
	c2, srv2 := newClient(t, transcribetest.Config{Transcriber: hearWords})
	tr, err = c2.TranscribeFile(ctx, path, transcribe.Request{Model: "whisper-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Pieces) != 0 || srv2.Stats().Requests != 1 {
		t.Fatalf("whisper-1: %d pieces, %d requests", len(tr.Pieces), srv2.Stats().Requests)
	}

	// An unknown model keeps today's behaviour: sent whole.
	c3, srv3 := newClient(t, transcribetest.Config{Transcriber: hearWords})
	_, err = c3.TranscribeFile(ctx, path, transcribe.Request{Model: "my-model"})
	if srv3.Stats().Requests != 1 {
		t.Fatalf("unknown model: %d requests (%v)", srv3.Stats().Requests, err)
	}

	// diarized_json is cut by the cap too, each piece with a chunking
	// strategy (the fake refuses diarized audio over 30 s without one).
	tr, err = c.TranscribeFile(ctx, path, transcribe.Request{Model: "gpt-4o-transcribe-diarize", ResponseFormat: transcribe.DiarizedJSON})
	if err != nil || len(tr.Pieces) < 2 || srv.Stats().ByStatus[400] != 0 || len(tr.Segments) != len(rec.words) {
		t.Fatalf("diarized over the cap: %v, by status %v", err, srv.Stats().ByStatus)
	}
}

// openAIClient returns a client of OpenAI's API (api.openai.com), whose
// requests go to a fake in memory.
func openAIClient(t testing.TB, cfg transcribetest.Config) (*transcribe.Client, *transcribetest.Handler) {
	t.Helper()
	cfg.APIKey = testKey
	h := transcribetest.NewHandler(cfg)
	c, err := transcribe.NewClient(transcribe.WithBaseURL("https://api.openai.com/v1"), transcribe.WithAPIKey(testKey),
		transcribe.WithHTTPClient(&http.Client{Transport: h.Transport()}))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Provider(); p.Name != "OpenAI" {
		t.Fatalf("provider %v", p)
	}
	return c, h
}

// A request an OpenAI model cannot serve fails before it is sent, saying
// what to change; a model the table does not know is sent as it is, and
// so is any request to a server that is not OpenAI's (or Azure's), which
// may serve other models under the same names.
func TestModelRefusesBeforeSending(t *testing.T) {
	path := writeWAV(t, t.TempDir(), "a.wav", 2)
	ctx := context.Background()
	c, srv := openAIClient(t, transcribetest.Config{})
	for _, tc := range []struct {
		req  transcribe.Request
		want string
	}{
		{transcribe.Request{Model: "gpt-4o-transcribe", ResponseFormat: transcribe.SRT}, "gives no timestamps"},
		{transcribe.Request{Model: "gpt-4o-mini-transcribe", ResponseFormat: transcribe.VerboseJSON}, "ask for json, text"},
		{transcribe.Request{Model: "gpt-4o-transcribe", TimestampGranularities: []transcribe.Granularity{transcribe.GranularityWord}}, "TimestampGranularities"},
		{transcribe.Request{Model: "gpt-4o-transcribe-diarize", Prompt: "Names: Ann."}, "leave Request.Prompt empty"},
		{transcribe.Request{Model: "gpt-4o-transcribe-diarize", Include: []string{"logprobs"}}, "returns no logprobs"},
		{transcribe.Request{Model: "whisper-1", Include: []string{"logprobs"}}, "returns no logprobs"},
		{transcribe.Request{Model: "whisper-1", ChunkingStrategy: &transcribe.ChunkingStrategy{Auto: true}}, "Request.ChunkingStrategy nil"},
		{transcribe.Request{ResponseFormat: transcribe.DiarizedJSON}, "does not return diarized_json"}, // whisper-1, the default
	} {
		_, err := c.TranscribeFile(ctx, path, tc.req)
		if !errors.Is(err, transcribe.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrBadRequest saying %q", tc.req, err, tc.want)
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Fatalf("%d requests sent", n)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.Translate(ctx, f, transcribe.Request{Model: "gpt-4o-transcribe"}); !errors.Is(err, transcribe.ErrBadRequest) || !strings.Contains(err.Error(), "does not translate") {
		t.Errorf("translate with gpt-4o-transcribe: %v", err)
	}

	// What the models do serve goes through.
	for _, req := range []transcribe.Request{
		{Model: "gpt-4o-transcribe", ResponseFormat: transcribe.Text},
		{Model: "gpt-4o-transcribe", Include: []string{"logprobs"}},
		{Model: "gpt-4o-transcribe-diarize", ResponseFormat: transcribe.DiarizedJSON, ChunkingStrategy: &transcribe.ChunkingStrategy{Auto: true}},
		{Model: "whisper-1", ResponseFormat: transcribe.SRT, Prompt: "Names: Ann."},
	} {
		if _, err := c.TranscribeFile(ctx, path, req); err != nil {
			t.Errorf("%+v: %v", req, err)
		}
	}
	// A model the table does not know is sent as it is, and the server
	// judges it (the fake knows no such model).
	_, err = c.TranscribeFile(ctx, path, transcribe.Request{Model: "my-model", ResponseFormat: transcribe.SRT})
	var apiErr *transcribe.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("unknown model: %v, want the server's 404", err)
	}

	// Another server judges for itself: the fake's 400.
	other, _ := newClient(t, transcribetest.Config{})
	_, err = other.TranscribeFile(ctx, path, transcribe.Request{Model: "gpt-4o-transcribe", ResponseFormat: transcribe.SRT})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("another server: %v, want its 400", err)
	}
}
