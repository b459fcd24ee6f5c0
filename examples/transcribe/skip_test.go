package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// -skip-silence leaves out the silence around a clip and says how much.
func TestSkipSilenceFlag(t *testing.T) {
	srv := transcribetest.NewServer(transcribetest.Config{})
	defer srv.Close()
	for _, k := range []string{"AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "GROQ_API_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("OPENAI_BASE_URL", srv.BaseURL())
	t.Setenv("OPENAI_API_KEY", "sk-skip")
	// 6 s of quiet noise, 4 s of tone bursts, 6 s of quiet noise.
	const rate = 16000
	var b bytes.Buffer
	_ = audio.SynthWAV(&b, rate, 16*rate, func(i int) float64 {
		v := 0.001 * math.Sin(float64(i)*1.7+math.Sin(float64(i)*0.31)*40)
		if s := float64(i) / rate; s >= 6 && s < 10 && math.Mod(s, 1) < 0.7 {
			v += 0.4 * math.Sin(2*math.Pi*440*s)
		}
		return v
	})
	clip := filepath.Join(t.TempDir(), "clip.wav")
	if err := os.WriteFile(clip, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-skip-silence", clip}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	m := regexp.MustCompile(`(?m)^silence skipped: ([0-9.]+) s of ([0-9.]+) s not sent$`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("stderr:\n%s", errOut.String())
	}
	if skipped, _ := strconv.ParseFloat(m[1], 64); skipped < 10 || skipped > 12 {
		t.Fatalf("skipped %s s:\n%s", m[1], errOut.String())
	}
}
