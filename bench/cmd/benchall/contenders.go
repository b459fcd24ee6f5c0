package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	openaigo "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe"
)

// The contenders of the uploads scenario, in the order they run in a round.
const (
	cSteno    = "steno"
	cGoOpenAI = "go-openai"
	cOpenAIGo = "openai-go"
	cFloor    = "stdlib-floor"
	cPipe     = "stdlib-pipe"
)

// uploadContenders are the contenders of the uploads scenario, with what
// each is.
var uploadContenders = []struct{ name, about string }{
	{cSteno, "steno's transcribe.Client: TranscribeFile for every file at once, its limiter allowing them all in flight"},
	{cGoOpenAI, "github.com/sashabaranov/go-openai: CreateTranscription with FilePath"},
	{cOpenAIGo, "github.com/openai/openai-go/v3: Audio.Transcriptions.New with the *os.File, default options"},
	{cFloor, "the standard library, streamed from disk with an exact Content-Length (the floor)"},
	{cPipe, "the standard library, streamed through io.Pipe: chunked, which the API refuses (reference)"},
}

// apiKey is the key every contender sends; the fake takes any.
const apiKey = "sk-bench"

// childEnv marks a process started by benchall as one of its contenders,
// so that a test binary runs main's contender mode too (see TestMain).
const childEnv = "BENCHALL_CHILD"

// answer is one file's outcome in a contender's run.
type answer struct {
	File   string `json:"file"`
	Status int    `json:"status"` // HTTP status; 0 for an error without one
	Text   string `json:"text,omitempty"`
	Err    string `json:"err,omitempty"`
}

// childReport is what a contender process prints on stdout, as JSON, when
// it has sent every file.
type childReport struct {
	Contender  string   `json:"contender"`
	WallNs     int64    `json:"wall_ns"`      // from the first request to the last answer
	AllocBytes uint64   `json:"alloc_bytes"`  // Go heap bytes allocated meanwhile
	Mallocs    uint64   `json:"mallocs"`      // Go heap objects allocated meanwhile
	NumGC      uint32   `json:"num_gc"`       // collections meanwhile
	VmHWMkB    int64    `json:"vmhwm_kb"`     // the process's peak resident set, from /proc/self/status
	StartRSSkB int64    `json:"start_rss_kb"` // its resident set before the first request (VmRSS)
	CPUNs      int64    `json:"cpu_ns"`       // user + system time of the process meanwhile (getrusage)
	Syscalls   int64    `json:"syscalls"`     // read and write system calls meanwhile (syscr + syscw of /proc/self/io)
	Answers    []answer `json:"answers"`
}

// contenderMain is the contender mode: it sends every file listed in the
// file named by -list to the API at -url, at once, the way contender
// -contender would, and prints a childReport on stdout.
func contenderMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchall -contender", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("contender", "", "the contender to run")
	url := fs.String("url", "", "the API's base URL, up to /v1")
	list := fs.String("list", "", "a file listing the audio files to send, one path a line")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	paths, err := readList(*list)
	if err != nil {
		return err
	}
	send, err := newSender(*name, *url, len(paths))
	if err != nil {
		return err
	}

	startRSS, err := procStatus("VmRSS")
	if err != nil {
		return err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0, sys0 := selfCPU(), ioSyscalls()
	start := time.Now()
	answers := make([]answer, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() {
			a := answer{File: filepath.Base(p)}
			text, status, err := send(ctx, p)
			a.Status, a.Text = status, text
			if err != nil {
				a.Err = err.Error()
			}
			answers[i] = a
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu, sysc := selfCPU()-cpu0, ioSyscalls()-sys0
	runtime.ReadMemStats(&after)
	hwm, err := vmHWM()
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(childReport{
		Contender:  *name,
		WallNs:     wall.Nanoseconds(),
		AllocBytes: after.TotalAlloc - before.TotalAlloc,
		Mallocs:    after.Mallocs - before.Mallocs,
		NumGC:      after.NumGC - before.NumGC,
		VmHWMkB:    hwm,
		StartRSSkB: startRSS,
		CPUNs:      cpu.Nanoseconds(),
		Syscalls:   sysc,
		Answers:    answers,
	})
}

// readList reads the paths listed in the file at name, one a line.
func readList(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	paths := strings.Fields(string(b))
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s lists no file", name)
	}
	return paths, nil
}

// vmHWM returns this process's peak resident set size in kB, as the kernel
// counts it (VmHWM in /proc/self/status: what GNU time reports as the
// maximum resident set size).
func vmHWM() (int64, error) { return procStatus("VmHWM") }

// procStatus returns the figure in kB of the line key of /proc/self/status.
func procStatus(key string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.Join(fmt.Errorf("no %s in /proc/self/status", key), sc.Err())
}

// selfCPU returns this process's user + system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ioSyscalls returns the read and write system calls this process has made
// so far (syscr + syscw in /proc/self/io), or 0 where the file is missing.
func ioSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	var n int64
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		if k == "syscr" || k == "syscw" {
			c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += c
		}
	}
	return n
}

// sendFunc sends the file at path and returns the transcript's text and
// the answer's status.
type sendFunc func(ctx context.Context, path string) (text string, status int, err error)

// newSender returns contender name's way of sending one file to the API at
// base; n files are sent at once.
func newSender(name, base string, n int) (sendFunc, error) {
	if base == "" {
		return nil, errors.New("no -url")
	}
	switch name {
	case cSteno:
		lim, err := ratelimit.New(ratelimit.Config{MaxInFlight: n})
		if err != nil {
			return nil, err
		}
		c, err := transcribe.NewClient(transcribe.WithBaseURL(base), transcribe.WithAPIKey(apiKey), transcribe.WithLimiter(lim))
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, path string) (string, int, error) {
			t, err := c.TranscribeFile(ctx, path, transcribe.Request{})
			if err != nil {
				var ae *transcribe.APIError
				if errors.As(err, &ae) {
					return "", ae.StatusCode, err
				}
				return "", 0, err
			}
			return t.Text, http.StatusOK, nil
		}, nil

	case cGoOpenAI:
		cfg := goopenai.DefaultConfig(apiKey)
		cfg.BaseURL = base
		c := goopenai.NewClientWithConfig(cfg)
		return func(ctx context.Context, path string) (string, int, error) {
			r, err := c.CreateTranscription(ctx, goopenai.AudioRequest{Model: goopenai.Whisper1, FilePath: path})
			if err != nil {
				var ae *goopenai.APIError
				if errors.As(err, &ae) {
					return "", ae.HTTPStatusCode, err
				}
				var re *goopenai.RequestError
				if errors.As(err, &re) {
					return "", re.HTTPStatusCode, err
				}
				return "", 0, err
			}
			return r.Text, http.StatusOK, nil
		}, nil

	case cOpenAIGo:
		c := openaigo.NewClient(option.WithBaseURL(base), option.WithAPIKey(apiKey))
		return func(ctx context.Context, path string) (string, int, error) {
			f, err := os.Open(path)
			if err != nil {
				return "", 0, err
			}
			defer f.Close()
			r, err := c.Audio.Transcriptions.New(ctx, openaigo.AudioTranscriptionNewParams{File: f, Model: openaigo.AudioModel("whisper-1")})
			if err != nil {
				var ae *openaigo.Error
				if errors.As(err, &ae) {
					return "", ae.StatusCode, err
				}
				return "", 0, err
			}
			return r.Text, http.StatusOK, nil
		}, nil

	case cFloor, cPipe:
		hc := &http.Client{Transport: http.DefaultTransport}
		url := strings.TrimSuffix(base, "/") + "/audio/transcriptions"
		chunked := name == cPipe
		return func(ctx context.Context, path string) (string, int, error) {
			return stdlibPost(ctx, hc, url, path, chunked)
		}, nil
	}
	return nil, fmt.Errorf("no contender %q", name)
}

// stdlibPost uploads the file at path with the standard library alone: the
// multipart body streamed from disk, with an exact Content-Length (a part
// header, the file, a trailer), or, chunked, written through an io.Pipe by
// multipart.Writer with no length. It reads at most 1 MiB of the answer.
func stdlibPost(ctx context.Context, hc *http.Client, url, path string, chunked bool) (string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	part := textproto.MIMEHeader{}
	part.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filepath.Base(path)))
	part.Set("Content-Type", "audio/wav")

	var req *http.Request
	if chunked {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			err := mw.WriteField("model", "whisper-1")
			if err == nil {
				var w io.Writer
				if w, err = mw.CreatePart(part); err == nil {
					_, err = io.Copy(w, f)
				}
			}
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		// Whatever happens to the request, the writer must not outlive
		// the call: closing the reader ends its copy.
		defer pr.Close()
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, url, pr); err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
	} else {
		var head bytes.Buffer
		mw := multipart.NewWriter(&head)
		if err := mw.WriteField("model", "whisper-1"); err != nil {
			return "", 0, err
		}
		if _, err := mw.CreatePart(part); err != nil {
			return "", 0, err
		}
		tail := "\r\n--" + mw.Boundary() + "--\r\n"
		body := io.MultiReader(&head, f, strings.NewReader(tail))
		size := int64(head.Len()) + st.Size() + int64(len(tail))
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, url, body); err != nil {
			return "", 0, err
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", mw.FormDataContentType())
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	var t struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Text == nil {
		return "", resp.StatusCode, fmt.Errorf("a 200 that is not a transcript: %.200q", b)
	}
	return *t.Text, resp.StatusCode, nil
}
