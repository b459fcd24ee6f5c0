package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steno-go/steno/transcribe"
)

// runCmd runs the program in-process.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Bad command lines are usage errors (2) that say what is wrong, before
// anything is reached.
func TestUsageErrors(t *testing.T) {
	t.Setenv("STENO_REDIS_URL", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "usage: fleet COMMAND"},
		{[]string{"nope"}, "unknown command nope"},
		{[]string{"work"}, "STENO_REDIS_URL"},
		{[]string{"status"}, "STENO_REDIS_URL"},
		{[]string{"produce", "-redis", "redis://127.0.0.1:1/0"}, "no PATH given"},
		{[]string{"work", "-redis", "redis://127.0.0.1:1/0", "-concurrency", "0"}, "-concurrency 0"},
		{[]string{"work", "-redis", "redis://127.0.0.1:1/0", "-visibility", "10ms"}, "-visibility 10ms"},
		{[]string{"work", "-redis", "redis://127.0.0.1:1/0", "-format", "mp3"}, `-format "mp3"`},
		{[]string{"work", "-redis", "redis://127.0.0.1:1/0", "-requests", "lots"}, "-requests"},
		{[]string{"work", "-redis", "redis://127.0.0.1:1/0", "recordings/"}, "fleet produce"},
		{[]string{"simulate", "-fault-rate", "2"}, "-fault-rate 2"},
	} {
		code, _, stderr := runCmd(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("fleet %q: exit %d, stderr %q; want %d and %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
}

// A Redis URL's password is never printed: not by -h (the URL from
// STENO_REDIS_URL is not shown as a default), not when Redis cannot be
// reached, not when the URL is malformed.
func TestRedisPasswordNeverPrinted(t *testing.T) {
	const secret = "hunter2-Secret"
	t.Setenv("STENO_REDIS_URL", "redis://:"+secret+"@127.0.0.1:1/0")
	for _, args := range [][]string{
		{"work", "-h"},
		{"produce", "-h"},
		{"status"},
		{"status", "-redis", "redis://:" + secret + "@[::1/0"},
		{"status", "-redis", "redis://:" + secret + "@127.0.0.1:1/notanumber"},
	} {
		code, stdout, stderr := runCmd(args...)
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("fleet %q (exit %d) printed the password:\n%s%s", args, code, stdout, stderr)
		}
		if args[len(args)-1] != "-h" && code != exitFailed {
			t.Errorf("fleet %q: exit %d, want %d; stderr %q", args, code, exitFailed, stderr)
		}
	}
}

// produce names jobs as the batch CLI names them, so that the workers
// write where it writes: a file found under a folder D is D's name and
// its path under D; a file named on the command line, its own name. Only
// audio extensions are searched for, in any case.
func TestProduceNamesJobsAsBatch(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"rec/sub/a.WAV", "rec/b.mp3", "rec/notes.txt", "rec/.steno/rec/b.txt.json", "c.ogg"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []job
	for _, root := range []string{filepath.Join(dir, "rec"), filepath.Join(dir, "c.ogg"), filepath.Join(dir, "missing")} {
		err := walkJobs(root, func(j job) error { got = append(got, j); return nil },
			func(path string, err error) {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("skipped %s: %v", path, err)
				}
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []job{
		{"rec/b.mp3", filepath.Join(dir, "rec", "b.mp3")},
		{"rec/sub/a.WAV", filepath.Join(dir, "rec", "sub", "a.WAV")},
		{"c.ogg", filepath.Join(dir, "c.ogg")},
	}
	if !slices.Equal(got, want) {
		t.Errorf("jobs:\n%v\nwant\n%v", got, want)
	}
}

// While another process (a batch run) holds the output folder, a worker's
// step waits for it, and gives up when its context ends, with an error
// matching transcribe.ErrOutputLocked; once the folder is free, the step
// runs. A transcript is recorded once: a second worker's write finds it
// and writes nothing.
func TestSharedOutputWaitsForTheFolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		batch, err := transcribe.NewOutputWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		o := newSharedOutput(dir)
		in := transcribe.Input{ID: "rec/a.wav", Path: filepath.Join(dir, "a.wav"), Size: 10, ModTime: time.Unix(1e9, 0)}
		req := transcribe.Request{Model: "whisper-1", ResponseFormat: transcribe.JSON}

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, _, err = o.done(ctx, in, req)
		cancel()
		if !errors.Is(err, transcribe.ErrOutputLocked) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("done while the folder is held: %v; want ErrOutputLocked and the deadline", err)
		}

		go func() {
			time.Sleep(time.Minute)
			batch.Close()
		}()
		start := time.Now()
		if _, done, err := o.done(t.Context(), in, req); err != nil || done {
			t.Fatalf("done once the folder is free: %v, %v", done, err)
		}
		if waited := time.Since(start); waited < time.Minute || waited > time.Minute+2*lockRetryMax {
			t.Errorf("the step ran %v after it began, want within %v of the folder's release, a minute in", waited, 2*lockRetryMax)
		}

		tr := &transcribe.Transcription{Text: "first", Format: transcribe.JSON}
		path, first, err := o.write(t.Context(), in, req, tr)
		if err != nil || !first || path != filepath.Join(dir, "rec", "a.txt") {
			t.Fatalf("write: %s, first %v, %v", path, first, err)
		}
		path2, first, err := o.write(t.Context(), in, req, &transcribe.Transcription{Text: "second", Format: transcribe.JSON})
		if err != nil || first || path2 != path {
			t.Errorf("second write: %s, first %v, %v; want the first's path, not first", path2, first, err)
		}
		if b, _ := os.ReadFile(path); string(b) != "first\n" {
			t.Errorf("transcript %q, want the first", b)
		}
		if p, done, err := o.done(t.Context(), in, req); err != nil || !done || p != path {
			t.Errorf("done after the write: %s, %v, %v", p, done, err)
		}
	})
}
