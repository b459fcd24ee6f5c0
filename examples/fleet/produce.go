package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/steno-go/steno/transcribe"
)

// isAudioName reports whether a file found in a folder is a job: its
// extension is one of the API's (transcribe.AudioExtensions), as the batch
// CLI searches for.
func isAudioName(name string) bool {
	return slices.Contains(transcribe.AudioExtensions(), strings.ToLower(strings.TrimPrefix(filepath.Ext(name), ".")))
}

// produceBatch is how many jobs go to Redis in one round trip.
const produceBatch = 100

// runProduce enqueues the jobs of the paths.
func runProduce(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: fleet produce [flags] PATH...

Enqueues a job for each audio file (flac m4a mp3 mp4 mpeg mpga oga ogg wav
webm) under each folder PATH, searched recursively, and for each file PATH.
A file found under a folder D is written by the workers to
OUT/<D's name>/<path under D>, as the batch CLI does; a file named on the
command line to OUT/<its name>. Enqueuing a folder again is harmless: a
job whose transcript is recorded is not sent again.

exit status: 0 all enqueued; 1 some path could not be read (the others
are enqueued) or Redis failed; 2 usage error.

flags:
`)
		fs.PrintDefaults()
	}
	var rf redisFlags
	rf.register(fs)
	if code := parse(fs, args); code >= 0 {
		return code
	}
	problems := rf.check()
	if fs.NArg() == 0 {
		problems = append(problems, "no PATH given")
	}
	if len(problems) > 0 {
		return usage(stderr, "produce", problems)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rdb, where, err := rf.connect(ctx)
	if err != nil {
		log.Error("fleet produce: cannot reach Redis", "error", err)
		return exitFailed
	}
	defer rdb.Close()
	q := newQueue(rdb, rf.queue)
	op := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
		defer cancel()
		return f(ctx)
	}
	if err := op(q.ensureGroup); err != nil {
		log.Error("fleet produce: cannot create the queue", "redis", where, "error", err)
		return exitFailed
	}
	var batch []job
	n, skipped := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := op(func(ctx context.Context) error { return q.add(ctx, batch) })
		if err == nil {
			n += len(batch)
		}
		batch = batch[:0]
		return err
	}
	var walkErr error
	for _, p := range fs.Args() {
		err := walkJobs(p, func(j job) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch = append(batch, j)
			if len(batch) == produceBatch {
				return flush()
			}
			return nil
		}, func(path string, err error) {
			skipped++
			log.Warn("fleet produce: skipped", "path", path, "error", err)
		})
		if err != nil {
			walkErr = err
			break
		}
	}
	if walkErr == nil {
		walkErr = flush()
	}
	if walkErr != nil {
		log.Error("fleet produce: stopped", "enqueued", n, "error", walkErr)
		return exitFailed
	}
	log.Info("fleet produce: enqueued", "jobs", n, "skipped", skipped, "queue", rf.queue, "redis", where)
	if skipped > 0 {
		return exitFailed
	}
	return exitOK
}

// walkJobs calls add with the job of each audio file under root (a folder,
// searched recursively, or a file), and skip with each path that cannot be
// read. It stops at add's first error and returns it.
func walkJobs(root string, add func(job) error, skip func(path string, err error)) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		skip(root, err)
		return nil
	}
	st, err := os.Stat(abs)
	if err != nil {
		skip(root, err)
		return nil
	}
	if !st.IsDir() {
		// A file named on the command line is always a job: the worker
		// tells what is wrong with it.
		return add(job{ID: filepath.Base(abs), Path: abs})
	}
	parent := filepath.Dir(abs)
	walkRoot := abs
	if lst, err := os.Lstat(abs); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
		walkRoot = abs + string(filepath.Separator) // walk the linked folder, not the link
	}
	return filepath.WalkDir(walkRoot, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			skip(path, err)
			if d != nil && d.IsDir() && path != walkRoot {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir() || !isAudioName(d.Name()):
			return nil
		}
		path = filepath.Clean(path)
		id, err := filepath.Rel(parent, path)
		if err != nil {
			skip(path, err)
			return nil
		}
		return add(job{ID: filepath.ToSlash(id), Path: path})
	})
}
