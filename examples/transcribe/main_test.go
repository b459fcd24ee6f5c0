package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"-simulate", "-format", "srt"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "1\n00:00:00,000 --> ") {
		t.Fatalf("srt output: %q", out.String())
	}

	notAudio := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notAudio, []byte("not audio at all"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{}, 2, "usage"},
		{[]string{"-bogus"}, 2, "flag provided but not defined"},
		{[]string{"-simulate", "a", "b"}, 2, "usage"},
		{[]string{"-simulate", notAudio}, 1, "invalid audio"},
		{[]string{"-simulate", "missing.mp3"}, 1, "no such file"},
		{[]string{"-simulate", "-format", "xml"}, 1, "unknown response format"},
		{[]string{"-simulate", "-cut", "-1s"}, 2, "negative split size or duration"},
		{[]string{"-simulate", "-cut", "2s"}, 0, "cut into 5 pieces: 1.76 s (in a pause);"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.says) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), tc.code, tc.says)
		}
	}
}
