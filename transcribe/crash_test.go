package transcribe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steno-go/steno/transcribe/transcribetest"
)

// TestCrashSafety runs examples/batch on a folder with short files and
// files it cuts in pieces, against a fake API over loopback, and kills it
// with SIGKILL at random moments, at least 20 times, running it again
// after each kill. After every kill each transcript on disk is complete
// and valid, and no request is answered twice for a file or a piece that
// was safe on disk before; after the last run every file has its
// transcript (the same as a run never killed makes), and no temporary file
// or kept piece is left.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/batch and kills it 20 times: not with -short")
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("SIGKILL")
	}
	bin := filepath.Join(t.TempDir(), "batch")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/batch").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The fake counts the requests it answered 200, by the name the file
	// or piece was sent under ("s07.wav", "L2.part03.wav"). The latency is
	// spent in the transcriber, so that a request cut by the kill is not
	// answered (nor counted), and one counted is answered at once.
	const latency = 150 * time.Millisecond
	var mu sync.Mutex
	answered := map[string]int{}
	srv := transcribetest.NewServer(transcribetest.Config{Transcriber: func(ctx context.Context, a *transcribetest.Audio) (*transcribetest.Transcript, error) {
		select {
		case <-time.After(latency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		tr, err := transcribetest.DefaultTranscriber(ctx, a)
		if err == nil {
			mu.Lock()
			answered[a.Filename]++
			mu.Unlock()
		}
		return tr, err
	}})
	defer srv.Close()
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps(answered)
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	const shorts, longs, piecesPerLong = 200, 6, 3
	var items []string // every file and piece that must be transcribed once
	for i := range shorts {
		writeWAV(t, in, fmt.Sprintf("s%02d.wav", i), 1)
		items = append(items, fmt.Sprintf("s%02d.wav", i))
	}
	for i := range longs {
		writeWAV(t, in, fmt.Sprintf("L%d.wav", i), 25) // cut by -cut 10s into 3 pieces
		for p := range piecesPerLong {
			items = append(items, fmt.Sprintf("L%d.part%02d.wav", i, p+1))
		}
	}
	out := filepath.Join(dir, "out")
	command := func(out string, paths ...string) *exec.Cmd {
		if len(paths) == 0 {
			paths = []string{in}
		}
		cmd := exec.Command(bin, append([]string{"-concurrency", "4", "-cut", "10s", "-format", "srt", "-out", out}, paths...)...)
		cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+srv.BaseURL(), "OPENAI_API_KEY=sk-test")
		return cmd
	}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	seen := map[string][]byte{} // transcripts on disk after a kill, by path
	safe := map[string]bool{}   // files and pieces on disk after a kill
	var before map[string]int
	kills, repeats := 0, 0
	start := time.Now()
	for run := 0; kills < 20; run++ {
		if run == 60 {
			t.Fatalf("only %d kills in %d runs: the batch ends too soon", kills, run)
		}
		before = snapshot()
		cmd := command(out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			t.Fatalf("run %d ended before its kill (%v): the batch is too small\n%s", run, err, tail(stderr.String()))
		case <-time.After(time.Duration(rng.Int64N(int64(500 * time.Millisecond)))):
			cmd.Process.Kill()
			<-exited
			kills++
		}
		settle(t, srv)
		after := snapshot()
		again := 0
		for name, n := range after {
			if n > before[name] && safe[name] {
				t.Errorf("run %d: %s answered again (%d times in all) after it was safe on disk", run, name, n)
			}
			if n > before[name] && before[name] > 0 {
				again++ // answered before, lost in a kill before it was on disk
			}
		}
		// A kill loses at most what was in flight: 4 requests, and 4
		// answers being written.
		if again > 8 {
			t.Errorf("run %d: %d files or pieces paid for again", run, again)
		}
		repeats += again
		checkOutputs(t, out, seen)
		for name := range safeOnDisk(t, out) {
			safe[name] = true
		}
	}
	killed := time.Since(start)

	before = snapshot()
	cmd := command(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the run after the kills: %v\n%s", err, tail(string(b)))
	}
	final := snapshot()
	for name, n := range final {
		if n > before[name] && safe[name] {
			t.Errorf("last run: %s answered again (%d times in all) after it was safe on disk", name, n)
		}
	}
	for _, name := range items {
		if final[name] == 0 {
			t.Errorf("%s was never answered", name)
		}
	}
	got := checkOutputs(t, out, seen)
	if len(got) != shorts+longs {
		t.Fatalf("%d transcripts, want %d", len(got), shorts+longs)
	}
	var stray []string
	filepath.WalkDir(filepath.Join(out, ".steno"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".srt.json") && d.Name() != "lock" {
			stray = append(stray, path)
		}
		return nil
	})
	if len(stray) > 0 {
		t.Errorf("left behind: %v", stray)
	}
	t.Logf("%d kills in %v; %d items; %d requests answered 200 (%d answered again after a kill had lost them before they were on disk); %d requests in all",
		kills, killed.Round(time.Millisecond), len(items), sum(final), repeats, srv.Stats().Requests)

	// The transcripts stitched from pieces kept across kills are those of
	// a run never killed.
	fresh := filepath.Join(dir, "fresh")
	var long []string
	for i := range longs {
		long = append(long, filepath.Join(in, fmt.Sprintf("L%d.wav", i)))
	}
	if b, err := command(fresh, long...).CombinedOutput(); err != nil {
		t.Fatalf("fresh run: %v\n%s", err, tail(string(b)))
	}
	for i := range longs {
		b := got[filepath.Join("in", fmt.Sprintf("L%d.srt", i))]
		want, err := os.ReadFile(filepath.Join(fresh, fmt.Sprintf("L%d.srt", i)))
		if err != nil || !bytes.Equal(b, want) || len(b) == 0 {
			t.Errorf("L%d.srt differs from a fresh run's (%v)", i, err)
		}
	}
}

// tail is the end of a program's output, for a failure message.
func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

func maps(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// settle waits until the fake has answered every request it received and
// no more come: the killed process's requests have all ended.
func settle(t *testing.T, srv *transcribetest.Server) {
	t.Helper()
	last := -1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st := srv.Stats()
		answered := 0
		for _, n := range st.ByStatus {
			answered += n
		}
		if answered == st.Requests && st.Requests == last {
			return
		}
		last = st.Requests
	}
	t.Fatal("the fake still has requests in flight 10 s after a kill")
}

// cue is one SRT cue: its number, its times, at least a line of text.
var cue = regexp.MustCompile(`^\d+\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\n[^\n]+(\n[^\n]+)*$`)

// checkOutputs checks every transcript under out: a complete SRT document,
// the same as when it was first seen; and nothing else outside .steno.
// It returns the transcripts by path relative to out.
func checkOutputs(t *testing.T, out string, seen map[string][]byte) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if d.Name() == ".steno" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(out, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		got[rel] = b
		if !strings.HasSuffix(rel, ".srt") {
			t.Errorf("%s: not a transcript", rel)
			return nil
		}
		blocks := strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n")
		if !strings.HasSuffix(string(b), "\n\n") || len(blocks) == 0 || !slices.ContainsFunc(blocks, cue.MatchString) {
			t.Errorf("%s: not a complete SRT document: %q", rel, b)
		}
		for _, bl := range blocks {
			if !cue.MatchString(bl) {
				t.Errorf("%s: not an SRT cue: %q", rel, bl)
			}
		}
		if prev, ok := seen[path]; ok && !bytes.Equal(prev, b) {
			t.Errorf("%s changed after it was written", rel)
		}
		seen[path] = b
		return nil
	})
	return got
}

// safeOnDisk returns the files and pieces whose transcripts are safe
// under out: files with a record (and all their pieces), and the pieces
// kept of files not done.
func safeOnDisk(t *testing.T, out string) map[string]bool {
	t.Helper()
	safe := map[string]bool{}
	records := filepath.Join(out, ".steno", "in")
	entries, _ := os.ReadDir(records)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".srt.json")
		if !ok {
			continue
		}
		safe[name+".wav"] = true
		for p := range 9 {
			safe[fmt.Sprintf("%s.part%02d.wav", name, p+1)] = true
		}
	}
	filepath.WalkDir(filepath.Join(out, ".steno", ".steno", "pieces"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		var kept struct{ Name string }
		if err != nil || json.Unmarshal(b, &kept) != nil || kept.Name == "" {
			t.Errorf("kept piece %s: %v %q", path, err, b)
			return nil
		}
		safe[kept.Name] = true
		return nil
	})
	return safe
}
