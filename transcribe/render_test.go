package transcribe

import (
	"errors"
	"testing"
)

// TestRenderLocal: a JSON answer to a request for text, srt or vtt is
// rendered in that format, as decoding the rendered document gives it,
// keeping what the answer says was paid for; one that cannot be rendered
// is an invalid response, never a transcript.
func TestRenderLocal(t *testing.T) {
	verbose := `{"task":"transcribe","language":"english","duration":4.5,"text":" Hello there. General Kenobi.",` +
		`"segments":[{"id":0,"seek":0,"start":0,"end":2.5,"text":" Hello there.","tokens":[1],"temperature":0,"avg_logprob":-0.2,"compression_ratio":1.1,"no_speech_prob":0.01},` +
		`{"id":1,"seek":0,"start":2.5,"end":4.5,"text":" General\nKenobi.","tokens":[2],"temperature":0,"avg_logprob":-0.2,"compression_ratio":1.1,"no_speech_prob":0.01}],` +
		`"usage":{"type":"duration","seconds":5}}`
	for _, tc := range []struct {
		name, body string
		format     ResponseFormat
		raw, text  string
		segments   int
	}{
		{"srt from verbose_json", verbose, SRT, "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:02,500 --> 00:00:04,500\nGeneral\nKenobi.\n\n",
			"Hello there. General\nKenobi.", 2},
		{"vtt from verbose_json", verbose, VTT, "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n00:00:02.500 --> 00:00:04.500\nGeneral\nKenobi.\n\n",
			"Hello there. General\nKenobi.", 2},
		{"text from verbose_json", verbose, Text, "Hello there. General Kenobi.\n", "Hello there. General Kenobi.", 0},
		{"text from json", `{"text":"Hi."}`, Text, "Hi.\n", "Hi.", 0},
		{"srt from json with a duration", `{"text":"Hi.","duration":"1.5"}`, SRT, "1\n00:00:00,000 --> 00:00:01,500\nHi.\n\n", "Hi.", 1},
		{"silent srt", `{"text":"","segments":[]}`, SRT, "", "", 0},
		{"silent vtt", `{"text":""}`, VTT, "WEBVTT\n\n", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := decode([]byte(tc.body), "application/json", tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if string(tr.Raw) != tc.raw || tr.Text != tc.text || len(tr.Segments) != tc.segments || tr.Format != tc.format {
				t.Fatalf("%+v\nraw %q", tr, tr.Raw)
			}
			// As if the server had sent the rendered document.
			if tc.format != Text {
				direct, err := decode(tr.Raw, "text/plain", tc.format)
				if err != nil || direct.Text != tr.Text || len(direct.Segments) != len(tr.Segments) {
					t.Fatalf("decoded directly: %+v %v", direct, err)
				}
			}
			if tc.body == verbose && (tr.Usage == nil || tr.Usage.Seconds != 5 || tr.Duration != 4.5) {
				t.Errorf("usage %+v, duration %v: what was paid for is lost", tr.Usage, tr.Duration)
			}
		})
	}
	// Text without timestamps or a duration makes no cues.
	_, err := decode([]byte(`{"text":"Hi."}`), "application/json", SRT)
	var invalid *InvalidResponseError
	if !errors.As(err, &invalid) || !errors.Is(err, errNoSegments) || invalid.Format != SRT {
		t.Fatalf("%v", err)
	}
}
