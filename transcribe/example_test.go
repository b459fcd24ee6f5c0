package transcribe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// exampleClip writes seconds of tone to a WAV file and returns its path.
func exampleClip(dir string, seconds int) string {
	path := filepath.Join(dir, "clip.wav")
	if err := os.WriteFile(path, transcribetest.WAV(time.Duration(seconds)*time.Second), 0o600); err != nil {
		log.Fatal(err)
	}
	return path
}

func ExampleClient_TranscribeFile() {
	// A simulated API stands in for https://api.openai.com/v1 here.
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	client, err := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"))
	if err != nil {
		log.Fatal(err)
	}
	t, err := client.TranscribeFile(context.Background(), exampleClip(dir, 3), transcribe.Request{
		Language:               "en",
		ResponseFormat:         transcribe.VerboseJSON,
		TimestampGranularities: []transcribe.Granularity{transcribe.GranularitySegment},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.0f s of %s audio, %d segment(s), billed %v s\n", t.Duration, t.Language, len(t.Segments), t.Usage.Seconds)
	// Output: 3 s of english audio, 1 segment(s), billed 3 s
}

func ExampleClient_Transcribe() {
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	data, _ := os.ReadFile(exampleClip(dir, 2))

	client, err := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"))
	if err != nil {
		log.Fatal(err)
	}
	// A *bytes.Reader has a size, so it streams in place; the name's
	// extension is fixed to match the content.
	t, err := client.Transcribe(context.Background(), bytes.NewReader(data), transcribe.Request{
		FileName:       "voicemail",
		ResponseFormat: transcribe.SRT,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d cue(s), the first from %.0f s to %.0f s\n", len(t.Segments), t.Segments[0].Start, t.Segments[0].End)
	// Output: 1 cue(s), the first from 0 s to 2 s
}

// A quota error is never retried: stop everything.
func Example_quotaExceeded() {
	srv := transcribetest.NewServer(transcribetest.Config{QuotaRequests: 1})
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	clip := exampleClip(dir, 1)

	client, _ := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"))
	for i := range 3 {
		_, err := client.TranscribeFile(context.Background(), clip, transcribe.Request{})
		if errors.Is(err, transcribe.ErrQuotaExceeded) {
			fmt.Printf("file %d: out of credit, stopping\n", i)
			break
		}
		fmt.Printf("file %d: done\n", i)
	}
	fmt.Println("requests sent:", srv.Stats().Requests)
	// Output:
	// file 0: done
	// file 1: out of credit, stopping
	// requests sent: 2
}

// A self-hosted server (speaches, whisper.cpp, vLLM, LocalAI) needs no key.
func ExampleNewClient() {
	client, err := transcribe.NewClient(
		transcribe.WithBaseURL("http://localhost:8000/v1"),
		transcribe.WithMaxAttempts(5),
	)
	fmt.Println(client != nil, err)
	// Output: true <nil>
}
