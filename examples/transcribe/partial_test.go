package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// With -partial, a file one of whose pieces fails prints the others'
// transcript and lists the missing stretch; without it the command fails
// and says which stretch is missing.
func TestPartialFlag(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		if strings.Contains(a.Filename, ".part02.") {
			return nil, &transcribetest.Error{Status: 400, Param: "file", Message: "Audio file might be corrupted or unsupported"}
		}
		return transcribetest.DefaultTranscriber(ctx, a)
	}})
	defer srv.Close()
	for _, k := range []string{"AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "GROQ_API_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("OPENAI_BASE_URL", srv.BaseURL())
	t.Setenv("OPENAI_API_KEY", "sk-partial")
	clip := writeClip(t)

	var out, errOut bytes.Buffer
	if code := run([]string{"-cut", "2s", "-partial", clip}, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) == "" {
		t.Fatalf("-partial: exit %d, stdout %q, stderr:\n%s", code, out.String(), errOut.String())
	}
	if !regexp.MustCompile(`(?m)^partial transcript: pieces failed; missing [0-9.]+–[0-9.]+ s$`).MatchString(errOut.String()) {
		t.Fatalf("-partial: stderr:\n%s", errOut.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run([]string{"-cut", "2s", clip}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "pieces not transcribed, missing") {
		t.Fatalf("without -partial: exit %d, stderr:\n%s", code, errOut.String())
	}
}
