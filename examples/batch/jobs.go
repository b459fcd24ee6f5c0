package main

import (
	"context"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/steno-go/steno/transcribe"
)

// audioExt holds the extensions (lower case, no dot) that make a file found
// in a directory a job.
var audioExt = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range transcribe.AudioExtensions() {
		m[e] = true
	}
	return m
}()

// isAudioName reports whether name has an audio extension, in any case.
func isAudioName(name string) bool {
	return audioExt[strings.ToLower(strings.TrimPrefix(filepath.Ext(name), "."))]
}

// walkJobs returns the jobs of the command line's paths, walking
// directories only as the jobs are pulled: the list is never held whole.
//
// A path that is not a directory (a file, or one that cannot be read at
// all) is a job named by its base name; the batch then reports what is
// wrong with it. Under a directory D, every file with an audio extension is
// a job named by its path relative to D's parent, so that D's name stays
// in the output's path. The output directory skip is not searched; a
// directory that cannot be read is a job that fails with the reason.
// Walking stops when ctx is done.
func walkJobs(ctx context.Context, paths []string, skip string) iter.Seq[transcribe.Job] {
	skipAbs, _ := filepath.Abs(skip)
	return func(yield func(transcribe.Job) bool) {
		for _, p := range paths {
			if ctx.Err() != nil {
				return
			}
			st, err := os.Stat(p)
			if err != nil || !st.IsDir() {
				if !yield(transcribe.Job{ID: filepath.Base(p), Path: p}) {
					return
				}
				continue
			}
			if !walkDir(ctx, p, skipAbs, yield) {
				return
			}
		}
	}
}

// walkDir yields the jobs under the directory dir; false means stop.
func walkDir(ctx context.Context, dir, skipAbs string, yield func(transcribe.Job) bool) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return yield(failingJob(filepath.Base(dir), err))
	}
	parent := filepath.Dir(abs)
	root := dir
	if lst, err := os.Lstat(dir); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
		root = dir + string(filepath.Separator) // walk the linked directory, not the link
	}
	id := func(path string) string {
		rel, err := filepath.Rel(dir, path) // dir and path share their prefix
		if err != nil {
			return path
		}
		id, err := filepath.Rel(parent, filepath.Join(abs, rel))
		if err != nil {
			return path
		}
		return filepath.ToSlash(id)
	}
	more := true
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case ctx.Err() != nil:
			more = false
			return filepath.SkipAll
		case err != nil:
			// A directory (or the root) that cannot be read: report
			// it as a failed job and go on with the rest.
			if !yield(failingJob(id(path), err)) {
				more = false
				return filepath.SkipAll
			}
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir():
			if p, err := filepath.Abs(path); err == nil && p == skipAbs {
				return filepath.SkipDir
			}
			return nil
		case !isAudioName(d.Name()):
			return nil
		}
		if !yield(transcribe.Job{ID: id(path), Path: path}) {
			more = false
			return filepath.SkipAll
		}
		return nil
	})
	return more
}

// failingJob is a job whose every opening fails with err, so that the batch
// reports err under id like any other bad input.
func failingJob(id string, err error) transcribe.Job {
	return transcribe.Job{
		ID:   id,
		Name: filepath.Base(id),
		Size: 1,
		Open: func() (io.ReadCloser, error) { return nil, err },
	}
}

// countJobs walks paths as walkJobs does and returns how many jobs there
// are, for the live display's total. It holds nothing but the count.
func countJobs(ctx context.Context, paths []string, skip string) int {
	n := 0
	for range walkJobs(ctx, paths, skip) {
		n++
	}
	return n
}
