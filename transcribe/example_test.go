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

func ExampleClient_BatchTranscribe() {
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	var paths []string
	for _, name := range []string{"a.wav", "b.wav", "c.wav"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, transcribetest.WAV(2*time.Second), 0o600)
		paths = append(paths, p)
	}
	jobs := func(yield func(transcribe.Job) bool) {
		for _, p := range paths { // or walk a directory: jobs are pulled as they are needed
			if !yield(transcribe.Job{ID: filepath.Base(p), Path: p}) {
				return
			}
		}
	}

	client, _ := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"))
	out, err := transcribe.NewOutputWriter(filepath.Join(dir, "transcripts"))
	if err != nil {
		log.Fatal(err) // also when another batch is writing there (ErrOutputLocked)
	}
	defer out.Close()
	results, err := client.BatchTranscribe(context.Background(), jobs, transcribe.BatchOptions{
		Output:     out,  // each transcript is on disk the moment it arrives
		MaxCostUSD: 1.00, // never spend more than a dollar
	})
	if err != nil {
		log.Fatal(err)
	}
	var done, failed int
	var seconds float64
	for r := range results {
		switch r.Status {
		case transcribe.StatusDone:
			done++
			seconds += r.AudioSeconds
		case transcribe.StatusFailed:
			failed++
			fmt.Println(r.Job.ID, r.Err)
		}
	}
	fmt.Printf("%d done (%.0f s of audio), %d failed\n", done, seconds, failed)

	// A second run finds everything done and sends nothing.
	results, _ = client.BatchTranscribe(context.Background(), jobs, transcribe.BatchOptions{Output: out})
	skipped := 0
	for r := range results {
		if r.Status == transcribe.StatusSkipped {
			skipped++
		}
	}
	fmt.Println(skipped, "skipped;", srv.Stats().Requests, "requests in all")
	// Output:
	// 3 done (6 s of audio), 0 failed
	// 3 skipped; 3 requests in all
}

// Files over the API's limit are cut at silences and stitched back; a
// lower limit (MaxBytes, MaxDuration) cuts sooner, so that the pieces of
// a long file are transcribed in parallel.
func ExampleWithSplitting() {
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	client, err := transcribe.NewClient(transcribe.WithBaseURL(srv.BaseURL()), transcribe.WithAPIKey("sk-example"),
		transcribe.WithSplitting(transcribe.SplitOptions{MaxDuration: 50 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	t, err := client.TranscribeFile(context.Background(), exampleClip(dir, 120), transcribe.Request{ResponseFormat: transcribe.SRT})
	if err != nil {
		log.Fatal(err)
	}
	// A steady tone has no pause: the cuts are hard ones, and the
	// pieces overlap by 2 s, which the stitching removes.
	for _, p := range t.Pieces {
		fmt.Printf("%3.0f s to %3.0f s, %d bytes, overlap %.0f s\n", p.Start, p.End, p.Bytes, p.Overlap)
	}
	fmt.Println(srv.Stats().Requests, "requests;", t.Duration, "s of audio")
	// Output:
	//   0 s to  50 s, 1600044 bytes, overlap 0 s
	//  48 s to  98 s, 1600044 bytes, overlap 2 s
	//  96 s to 120 s, 768044 bytes, overlap 2 s
	// 3 requests; 120 s of audio
}
