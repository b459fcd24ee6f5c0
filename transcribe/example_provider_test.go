package transcribe_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func ExampleAzure() {
	// An Azure-shaped simulated API stands in for https://NAME.openai.azure.com.
	srv := transcribetest.NewServer(transcribetest.Config{Provider: transcribetest.Azure, Deployment: "my-whisper"})
	defer srv.Close()

	client, err := transcribe.NewClient(
		transcribe.Azure(srv.Endpoint(), "my-whisper", "2024-10-21"),
		transcribe.WithAPIKey("azure-example-key"), // sent as api-key
	)
	if err != nil {
		log.Fatal(err)
	}
	p := client.Provider()
	fmt.Println(p.Name, p.Deployment, p.APIVersion, p.AuthHeader)
	t, err := client.Transcribe(context.Background(), bytes.NewReader(transcribetest.WAV(2*time.Second)), transcribe.Request{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Text != "")
	// Output:
	// Azure OpenAI my-whisper 2024-10-21 api-key
	// true
}

func ExampleGroq() {
	// A Groq-shaped simulated API stands in for https://api.groq.com/openai/v1.
	srv := transcribetest.NewServer(transcribetest.Config{Provider: transcribetest.Groq})
	defer srv.Close()

	client, err := transcribe.NewClient(transcribe.Groq(), transcribe.WithBaseURL(srv.Endpoint()), transcribe.WithAPIKey("gsk_example"))
	if err != nil {
		log.Fatal(err)
	}
	// Groq has no srt: it is asked for verbose_json, and the subtitles are
	// rendered here.
	t, err := client.Transcribe(context.Background(), bytes.NewReader(transcribetest.WAV(3*time.Second)), transcribe.Request{ResponseFormat: transcribe.SRT})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.Provider().DefaultModel)
	fmt.Println(strings.Join(strings.SplitN(string(t.Raw), "\n", 3)[:2], "\n"))
	// Output:
	// whisper-large-v3-turbo
	// 1
	// 00:00:00,000 --> 00:00:03,000
}

func ExampleSelfHosted() {
	// A speaches-like server that needs no key, and takes any size.
	srv := transcribetest.NewServer(transcribetest.Config{Provider: transcribetest.SelfHosted})
	defer srv.Close()

	client, err := transcribe.NewClient(transcribe.SelfHosted(srv.Endpoint(), transcribe.ServerLimits{
		MaxBodyBytes: 0, // no limit: files are sent whole
		MaxInFlight:  1, // one request at a time, as whisper.cpp's server
	}))
	if err != nil {
		log.Fatal(err)
	}
	t, err := client.Transcribe(context.Background(), bytes.NewReader(transcribetest.WAV(2*time.Second)), transcribe.Request{ResponseFormat: transcribe.VTT})
	if err != nil {
		log.Fatal(err)
	}
	p := client.Provider()
	fmt.Println(p.Name, p.MaxBodyBytes, p.Formats)
	fmt.Println(strings.HasPrefix(string(t.Raw), "WEBVTT\n\n"))
	// Output:
	// self-hosted server 0 [json verbose_json]
	// true
}
