package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// TestAzureFromEnvironment: with only AZURE_OPENAI_ENDPOINT,
// AZURE_OPENAI_API_KEY and -model DEPLOYMENT set, the command transcribes
// a file through an Azure-shaped server, which sees the deployment's path,
// api-version and api-key, and no Authorization; the first line names
// the provider.
func TestAzureFromEnvironment(t *testing.T) {
	const azureKey = "0123456789abcdef0123456789abcdef"
	h := transcribetest.NewHandler(transcribetest.Config{Provider: transcribetest.Azure, APIKey: azureKey, Deployment: "whisper-prod"})
	var mu sync.Mutex
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, &http.Request{URL: r.URL, Header: r.Header.Clone()})
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	for _, k := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_VERSION", "GROQ_API_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("AZURE_OPENAI_ENDPOINT", srv.URL)
	t.Setenv("AZURE_OPENAI_API_KEY", azureKey)
	file := filepath.Join(t.TempDir(), "talk.wav")
	if err := os.WriteFile(file, transcribetest.WAV(4*time.Second), 0o644); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"-model", "whisper-prod", "-format", "srt", file}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "1\n00:00:00,000 --> ") {
		t.Errorf("transcript %q", out.String())
	}
	first, _, _ := strings.Cut(errOut.String(), "\n")
	if want := "transcribe: using Azure OpenAI at " + srv.URL + " (deployment named by the model, api-version 2024-10-21, from AZURE_OPENAI_ENDPOINT)"; first != want {
		t.Errorf("first line %q, want %q", first, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("%d requests", len(seen))
	}
	r := seen[0]
	if r.URL.Path != "/openai/deployments/whisper-prod/audio/transcriptions" || r.URL.Query().Get("api-version") != "2024-10-21" ||
		r.Header.Get("api-key") != azureKey || r.Header.Get("Authorization") != "" {
		t.Errorf("the server saw %s with %v", r.URL, r.Header)
	}

	// Without -model there is no deployment to send to.
	out.Reset()
	errOut.Reset()
	if code := run([]string{file}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "Azure OpenAI needs -model DEPLOYMENT") {
		t.Errorf("no -model: exit %d, %q", code, errOut.String())
	}
}

// TestFirstLineNamesTheProvider: whatever chose it, the provider is on the
// first line, before anything else is said.
func TestFirstLineNamesTheProvider(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_VERSION", "GROQ_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"} {
		t.Setenv(k, "")
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-simulate"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(errOut.String(), "\n")
	if !strings.HasPrefix(lines[0], "transcribe: using OpenAI-compatible server at http://127.0.0.1:") || !strings.HasPrefix(lines[1], "simulated API at") {
		t.Errorf("stderr %q", errOut.String())
	}
	out.Reset()
	errOut.Reset()
	t.Setenv("GROQ_API_KEY", "gsk_test")
	if code := run([]string{"missing.wav"}, &out, &errOut); code != 1 ||
		!strings.HasPrefix(errOut.String(), "transcribe: using Groq at https://api.groq.com/openai/v1 (from GROQ_API_KEY)\n") {
		t.Errorf("groq: exit %d, %q", code, errOut.String())
	}
}
