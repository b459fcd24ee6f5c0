package transcribetest_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/steno-go/steno/internal/audio"
	tt "github.com/steno-go/steno/transcribe/transcribetest"
)

// lowRateWAV returns a WAV file of seconds of silence at 1 kHz: long audio
// in few bytes.
func lowRateWAV(t testing.TB, seconds float64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := audio.SynthWAV(&b, 1000, int(seconds*1000), func(int) float64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The gpt-4o models refuse audio over 1,400 s, whatever its size, with
// OpenAI's 400 invalid_value; whisper-1 and audio up to the cap pass.
func TestModelDurationCap(t *testing.T) {
	h := tt.NewHandler(tt.Config{})
	c := memClient(h)
	long := lowRateWAV(t, 1830.53)
	for _, model := range []string{"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize"} {
		resp, b := do(t, c, upload{key: key, fields: []string{"model", model}, filename: "long.wav", file: long}.request(t))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d: %s", model, resp.StatusCode, b)
		}
		msg, typ, param, code := apiError(t, b)
		if want := "audio duration 1830.53 seconds is longer than 1400 seconds which is the maximum for this model"; msg != want || typ != "invalid_request_error" || code != "invalid_value" || param != "file" {
			t.Errorf("%s: %q %s %s %s", model, msg, typ, param, code)
		}
	}
	for _, tc := range []struct {
		model   string
		seconds float64
	}{{"whisper-1", 1830.53}, {"gpt-4o-transcribe", 1400}, {"my-model", 5000}} {
		fields := []string{"model", tc.model}
		resp, b := do(t, c, upload{key: key, fields: fields, filename: "a.wav", file: lowRateWAV(t, tc.seconds)}.request(t))
		if tc.model == "my-model" {
			if _, _, param, _ := apiError(t, b); param == "file" {
				t.Errorf("unknown model: refused for its duration: %s", b)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s, %.0f s: status %d: %s", tc.model, tc.seconds, resp.StatusCode, b)
		}
	}
}
