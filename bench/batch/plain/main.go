// Command plain is the reference for the batch benchmark: a client with no
// limiter that sends every file in a directory at once, each from its own
// goroutine, streamed from disk with an exact Content-Length (a multipart
// header, the file, a trailer), the standard library only. It is as fast as
// an upload can be when the server grants every request; it knows nothing
// of budgets and retries nothing.
//
//	plain -dir AUDIO -url BASE_URL [-key sk-…]
//
// It prints the wall time and the answers by status, and exits 1 unless
// every file was answered 200.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory of .wav files")
	url := flag.String("url", "", "base URL, up to /v1")
	key := flag.String("key", "sk-bench", "API key")
	flag.Parse()
	paths, err := filepath.Glob(filepath.Join(*dir, "*.wav"))
	if err != nil || len(paths) == 0 || *url == "" {
		fmt.Fprintln(os.Stderr, "plain: want -dir with .wav files and -url")
		os.Exit(2)
	}
	sort.Strings(paths)
	start := time.Now()
	var mu sync.Mutex
	byStatus := map[int]int{}
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Go(func() {
			status, err := post(*url+"/audio/transcriptions", *key, p)
			if err != nil {
				fmt.Fprintln(os.Stderr, "plain:", p, err)
			}
			mu.Lock()
			byStatus[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("plain: %d files in %.2fs, by status %v\n", len(paths), time.Since(start).Seconds(), byStatus)
	if byStatus[200] != len(paths) {
		os.Exit(1)
	}
}

// post uploads the file at path with an exact Content-Length and returns
// the answer's status (0 for a transport error).
func post(url, key, path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var head, tail bytes.Buffer
	w := multipart.NewWriter(&head)
	if err := w.WriteField("model", "whisper-1"); err != nil {
		return 0, err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filepath.Base(path)))
	h.Set("Content-Type", "audio/wav")
	if _, err := w.CreatePart(h); err != nil {
		return 0, err
	}
	boundary := w.Boundary()
	fmt.Fprintf(&tail, "\r\n--%s--\r\n", boundary)
	body := io.MultiReader(&head, f, &tail)
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = int64(head.Len()) + st.Size() + int64(tail.Len())
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
