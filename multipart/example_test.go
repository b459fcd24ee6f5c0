package multipart_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/steno-go/steno/multipart"
)

func ExampleForm_NewRequest() {
	audio := strings.NewReader("RIFF....WAVEfmt ") // an *os.File in real use
	form := multipart.NewForm()
	form.SetBoundary("example-boundary")
	form.WriteField("model", "whisper-1")
	form.AddFile("file", "talk.wav", "audio/wav", multipart.FileFromReaderAt(audio, audio.Size()))

	req, err := form.NewRequest(context.Background(), http.MethodPost, "https://api.openai.com/v1/audio/transcriptions")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(req.ContentLength, req.Header.Get("Content-Type"))
	// Output: 232 multipart/form-data; boundary=example-boundary
}
