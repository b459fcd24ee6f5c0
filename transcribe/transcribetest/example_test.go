package transcribetest_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// newUpload builds a transcription request for two seconds of audio, as
// any client would send it.
func newUpload(url, format string) *http.Request {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("model", "whisper-1")
	mw.WriteField("response_format", format)
	fw, _ := mw.CreateFormFile("file", "tone.wav")
	fw.Write(transcribetest.WAV(2 * time.Second))
	mw.Close()
	req, _ := http.NewRequest("POST", url, &body)
	req.Header.Set("Authorization", "Bearer sk-test")
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

// A fake server: point a client's base URL at BaseURL.
func Example() {
	srv := transcribetest.NewServer(transcribetest.Config{
		APIKey:    "sk-test",
		RateLimit: transcribetest.RateLimit{Requests: 50},
	})
	defer srv.Close()

	resp, err := srv.Client().Do(newUpload(srv.BaseURL()+"/audio/transcriptions", "srt"))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	srt, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, resp.Header.Get("x-ratelimit-remaining-requests"))
	fmt.Print(string(srt))
	fmt.Println(srv.Stats().ByStatus)
	// Output:
	// 200 OK 49
	// 1
	// 00:00:00,000 --> 00:00:02,000
	// Air line find night fact.
	//
	// map[200:1]
}

// Faults in memory: the first request gets a 429 with retry-after, the
// second goes through.
func ExampleHandler_Transport() {
	h := transcribetest.NewHandler(transcribetest.Config{
		Faults: []transcribetest.Fault{transcribetest.FaultRateLimited},
	})
	client := &http.Client{Transport: h.Transport()}
	for range 2 {
		resp, err := client.Do(newUpload("http://fake/v1/audio/transcriptions", "text"))
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d retry-after=%q %.60s\n", resp.StatusCode, resp.Header.Get("retry-after"), b)
	}
	// Output:
	// 429 retry-after="1" {"error":{"message":"Rate limit reached for whisper-1 in org
	// 200 retry-after="" Air line find night fact.
}
