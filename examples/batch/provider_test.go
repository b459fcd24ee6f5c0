package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// clearProviderEnv clears every variable that chooses a provider.
func clearProviderEnv(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_VERSION", "GROQ_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"} {
		t.Setenv(k, "")
	}
}

// TestProviderFromEnvironment: the batch chooses its provider from the
// environment, says so on its first line, and uses the provider's model
// when -model is not given.
func TestProviderFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, dir, "in/a.wav", 2*time.Second)
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")

	// Groq, from GROQ_API_KEY: a dry run sends nothing.
	clearProviderEnv(t)
	t.Setenv("GROQ_API_KEY", "gsk_test")
	r := runBatch(t, "-dry-run", "-out", out, in)
	first, rest, _ := strings.Cut(r.stderr, "\n")
	if r.code != exitOK || first != "batch: using Groq at https://api.groq.com/openai/v1 (from GROQ_API_KEY)" ||
		!strings.Contains(rest, "whisper-large-v3-turbo") {
		t.Errorf("groq: exit %d\n%s", r.code, r.stderr)
	}

	// Azure, from AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY, -model
	// naming the deployment.
	const azureKey = "0123456789abcdef0123456789abcdef"
	h := transcribetest.NewHandler(transcribetest.Config{Provider: transcribetest.Azure, APIKey: azureKey, Deployment: "whisper-prod"})
	var bearer atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			bearer.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	clearProviderEnv(t)
	t.Setenv("AZURE_OPENAI_ENDPOINT", srv.URL)
	t.Setenv("AZURE_OPENAI_API_KEY", azureKey)
	r = runBatch(t, "-model", "whisper-prod", "-format", "vtt", "-out", out, in)
	first, _, _ = strings.Cut(r.stderr, "\n")
	if r.code != exitOK || !strings.HasPrefix(first, "batch: using Azure OpenAI at "+srv.URL) {
		t.Fatalf("azure: exit %d\n%s", r.code, r.stderr)
	}
	if got := transcripts(t, out); len(got) != 1 || h.Stats().ByStatus[http.StatusOK] != 1 || bearer.Load() != 0 {
		t.Errorf("transcripts %v, answers %v, %d requests with Authorization", got, h.Stats().ByStatus, bearer.Load())
	}
	if r := runBatch(t, "-out", filepath.Join(dir, "out2"), in); r.code != exitUsage || !strings.Contains(r.stderr, "Azure OpenAI needs -model DEPLOYMENT") {
		t.Errorf("no -model: exit %d\n%s", r.code, r.stderr)
	}

	// No key for the provider chosen: its variable is named.
	clearProviderEnv(t)
	t.Setenv("AZURE_OPENAI_ENDPOINT", srv.URL)
	t.Setenv("OPENAI_API_KEY", "sk-not-for-azure")
	if r := runBatch(t, "-model", "whisper-prod", "-out", out, in); r.code != exitUsage ||
		!strings.Contains(r.stderr, "batch: no API key for Azure OpenAI: AZURE_OPENAI_API_KEY is not set: export it") {
		t.Errorf("no key: exit %d\n%s", r.code, r.stderr)
	}
}
