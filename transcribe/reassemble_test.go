package transcribe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// seg is a verbose_json segment as Whisper writes it: text with a leading
// space, some tokens and statistics.
func seg(start, end float64, text string) Segment {
	return Segment{Start: start, End: end, Text: text, Tokens: []int{50364, len(text), 50414},
		AvgLogprob: -0.25, CompressionRatio: 1.2, NoSpeechProb: 0.01}
}

// spread gives the words of segs evenly spread over each segment's time,
// without punctuation, as word timestamps are.
func spread(segs ...Segment) []Word {
	var ws []Word
	for _, s := range segs {
		fields := strings.Fields(s.Text)
		step := (s.End - s.Start) / float64(len(fields))
		for i, f := range fields {
			ws = append(ws, Word{Word: strings.Trim(f, ".,!?"), Start: s.Start + float64(i)*step, End: s.Start + float64(i+1)*step})
		}
	}
	return ws
}

// verbose is a verbose_json piece of the given length.
func verbose(duration float64, words bool, segs ...Segment) *Transcription {
	t := &Transcription{Format: VerboseJSON, Task: "transcribe", Language: "english", Duration: duration, Segments: segs,
		Usage: &Usage{Type: "duration", Seconds: math.Ceil(duration)}, Attempts: 1}
	texts := make([]string, len(segs))
	for i, s := range segs {
		texts[i] = strings.TrimSpace(s.Text)
		t.Segments[i].ID = i
	}
	t.Text = strings.Join(texts, " ")
	if words {
		t.Words = spread(segs...)
	}
	return t
}

// plain is a json piece: text only.
func plain(text string) *Transcription { return &Transcription{Format: JSON, Text: text} }

func mustReassemble(t *testing.T, parts []part, format ResponseFormat) *Transcription {
	t.Helper()
	out, err := reassemble(parts, format)
	if err != nil {
		t.Fatalf("reassemble: %v", err)
	}
	return out
}

// checkTimeline fails unless segments are numbered from 0, in order and do
// not overlap, and words are in order.
func checkTimeline(t *testing.T, tr *Transcription) {
	t.Helper()
	for i, s := range tr.Segments {
		if s.ID != i || s.Start > s.End || i > 0 && s.Start < tr.Segments[i-1].End {
			t.Errorf("segment %d: %+v after %+v", i, s, tr.Segments[max(0, i-1)])
		}
	}
	for i := 1; i < len(tr.Words); i++ {
		if tr.Words[i].Start < tr.Words[i-1].Start {
			t.Errorf("word %d %+v before word %d %+v", i, tr.Words[i], i-1, tr.Words[i-1])
		}
	}
}

// checkRaw decodes tr.Raw as the API's body would be and compares.
func checkRaw(t *testing.T, tr *Transcription) {
	t.Helper()
	back, err := decode(tr.Raw, "application/json", tr.Format)
	if tr.Format == SRT || tr.Format == VTT || tr.Format == Text {
		back, err = decode(tr.Raw, "text/plain", tr.Format)
	}
	if err != nil {
		t.Fatalf("decoding Raw: %v\n%s", err, tr.Raw)
	}
	back.RequestID, back.Attempts = tr.RequestID, tr.Attempts
	if tr.Format != JSON && tr.Format != VerboseJSON {
		back.Usage = tr.Usage // not in the body
	}
	if !reflect.DeepEqual(back, tr) {
		t.Errorf("Raw decodes to\n%+v\nwant\n%+v\nRaw: %s", back, tr, tr.Raw)
	}
}

func TestReassembleSilenceCut(t *testing.T) {
	parts := []part{
		{t: verbose(10, true, seg(0, 4, " Hello there.  "), seg(4.5, 9.8, " This is the first piece.")), offset: 0},
		{t: verbose(8.5, true, seg(0.2, 3, " And this is"), seg(3, 7.5, "the second one.")), offset: 10},
	}
	parts[1].t.Segments[1].Seek = 300
	parts[1].t.RequestID = "req_2"
	tr := mustReassemble(t, parts, VerboseJSON)

	if want := "Hello there. This is the first piece. And this is the second one."; tr.Text != want {
		t.Errorf("Text %q, want %q", tr.Text, want)
	}
	type span struct {
		id         int
		start, end float64
		seek       int
		text       string
	}
	var got []span
	for _, s := range tr.Segments {
		got = append(got, span{s.ID, s.Start, s.End, s.Seek, s.Text})
	}
	want := []span{{0, 0, 4, 0, " Hello there.  "}, {1, 4.5, 9.8, 0, " This is the first piece."},
		{2, 10.2, 13, 1000, " And this is"}, {3, 13, 17.5, 1300, "the second one."}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("segments\n%v\nwant\n%v", got, want)
	}
	if tr.Segments[2].Tokens[1] != len(" And this is") || tr.Segments[3].AvgLogprob != -0.25 {
		t.Errorf("decoding statistics lost: %+v", tr.Segments[2:])
	}
	if len(tr.Words) != 13 || tr.Words[8] != (Word{"this", 11.133333, 12.066667}) || tr.Words[12].End != 17.5 {
		t.Errorf("words %+v", tr.Words)
	}
	if tr.Duration != 18.5 || tr.Usage.Seconds != 19 || tr.Usage.Type != "duration" || tr.Language != "english" ||
		tr.Task != "transcribe" || tr.Attempts != 2 || tr.RequestID != "req_2" {
		t.Errorf("duration %v usage %+v language %q task %q attempts %d id %q", tr.Duration, tr.Usage, tr.Language, tr.Task, tr.Attempts, tr.RequestID)
	}
	checkTimeline(t, tr)
	checkRaw(t, tr)
	if !strings.Contains(string(tr.Raw), `"words":[{"word":"Hello","start":0,"end":2},`) ||
		!strings.HasPrefix(string(tr.Raw), `{"task":"transcribe","language":"english","duration":18.5,"text":"Hello there.`) {
		t.Errorf("Raw %s", tr.Raw)
	}

	// A word said again after a silence is said twice.
	tr = mustReassemble(t, []part{{t: plain(" I said no. ")}, {t: plain("No way"), offset: 30}}, Text)
	if tr.Text != "I said no. No way" || string(tr.Raw) != "I said no. No way\n" {
		t.Errorf("text %q raw %q", tr.Text, tr.Raw)
	}
}

// The overlap of a hard cut: piece 2 starts 2 s before piece 1 ends, and
// both transcribe "near the river bank" in those 2 s.
func overlapParts(words bool) []part {
	return []part{
		{t: verbose(12, words,
			seg(0, 5, " The quick brown fox jumps"), seg(5, 10, " over the lazy dog"), seg(10, 12, " near the river bank."))},
		{t: verbose(8, words,
			seg(0.1, 3.2, " near the river bank, and then"), seg(3.2, 8, " it ran away home.")), offset: 10, overlap: 2},
	}
}

func TestReassembleOverlap(t *testing.T) {
	const want = "The quick brown fox jumps over the lazy dog near the river bank, and then it ran away home."
	wantSegs := []string{" The quick brown fox jumps", " over the lazy dog", " near the", " river bank, and then", " it ran away home."}
	wantTimes := [][2]float64{{0, 5}, {5, 10}, {10, 11}, {11, 13.2}, {13.2, 18}}
	for _, tc := range []struct {
		name  string
		parts []part
	}{
		{"word timestamps", overlapParts(true)},
		{"segment timestamps", overlapParts(false)},
		{"words that do not spell the text", func() []part {
			p := overlapParts(true)
			p[0].t.Words[len(p[0].t.Words)-2].Word = "rivers"
			return p
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustReassemble(t, tc.parts, VerboseJSON)
			if tr.Text != want {
				t.Errorf("Text\n%q\nwant\n%q", tr.Text, want)
			}
			var texts []string
			var times [][2]float64
			for _, s := range tr.Segments {
				texts = append(texts, s.Text)
				times = append(times, [2]float64{s.Start, s.End})
			}
			if !slices.Equal(texts, wantSegs) || !reflect.DeepEqual(times, wantTimes) {
				t.Errorf("segments %q %v\nwant %q %v", texts, times, wantSegs, wantTimes)
			}
			if tc.parts[0].t.Words != nil {
				var ws []string
				for _, w := range tr.Words {
					ws = append(ws, stitchKey(w.Word))
				}
				if got, want := strings.Join(ws, " "), "the quick brown fox jumps over the lazy dog near the river bank and then it ran away home"; got != want {
					t.Errorf("words %q, want %q", got, want)
				}
			}
			if tr.Duration != 18 || tr.Usage.Seconds != 20 {
				t.Errorf("duration %v, usage %+v", tr.Duration, tr.Usage)
			}
			checkTimeline(t, tr)
			checkRaw(t, tr)

			srt := mustReassemble(t, tc.parts, SRT)
			wantSRT := "1\n00:00:00,000 --> 00:00:05,000\nThe quick brown fox jumps\n\n" +
				"2\n00:00:05,000 --> 00:00:10,000\nover the lazy dog\n\n" +
				"3\n00:00:10,000 --> 00:00:11,000\nnear the\n\n" +
				"4\n00:00:11,000 --> 00:00:13,200\nriver bank, and then\n\n" +
				"5\n00:00:13,200 --> 00:00:18,000\nit ran away home.\n\n"
			if string(srt.Raw) != wantSRT || srt.Text != want || len(srt.Segments) != 5 || srt.Segments[3].Start != 11 {
				t.Errorf("srt %q\nText %q", srt.Raw, srt.Text)
			}
			checkRaw(t, srt)
		})
	}

	// Text only: the same words found by aligning the texts.
	for _, tc := range []struct{ name, a, b, want string }{
		{"same words", "The quick brown fox jumps over the lazy dog near the river bank.",
			"near the river bank, and then it ran away home.", want},
		{"case and punctuation differ", "The quick brown fox jumps over the lazy dog. Near the river bank",
			"near the River-bank, and then it ran away home.", "The quick brown fox jumps over the lazy dog. Near the River-bank, and then it ran away home."},
		{"garbled edges", "We met at the old mill by the stream yesterd",
			"ill by the stream yesterday and talked.", "We met at the old mill by the stream yesterday and talked."},
		{"one word", "It was over.", "Over and out.", "It was Over and out."},
		{"no common words", "Alpha beta gamma.", "Delta epsilon zeta.", "Alpha beta gamma. Delta epsilon zeta."},
		{"the overlap was silent in one", "Alpha beta gamma.", "", "Alpha beta gamma."},
		{"a lone common word is not enough", "the cat sat on the mat", "a dog on a log", "the cat sat on the mat a dog on a log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := []part{{t: plain(tc.a)}, {t: plain(tc.b), offset: 300, overlap: 2}}
			tr := mustReassemble(t, parts, JSON)
			if tr.Text != tc.want {
				t.Errorf("Text\n%q\nwant\n%q", tr.Text, tc.want)
			}
			checkRaw(t, tr)
		})
	}
}

func TestReassembleThreePieces(t *testing.T) {
	// Piece 0 ends at a silence at 10 s; piece 1 (10–22 s) is cut hard and
	// piece 2 starts 2 s before its end, at 20 s.
	mk := func(words bool) []part {
		return []part{
			{t: verbose(10, words, seg(0, 4, " One two three."), seg(4.2, 9.9, " Four five six seven."))},
			{t: verbose(12, words, seg(0, 6, " Eight nine ten eleven,"), seg(6, 10, " twelve thirteen"), seg(10, 12, " fourteen fifteen sixteen")), offset: 10},
			{t: verbose(6, words, seg(0, 2.1, " fourteen fifteen sixteen."), seg(2.1, 6, " Seventeen eighteen.")), offset: 20, overlap: 2},
		}
	}
	const want = "One two three. Four five six seven. Eight nine ten eleven, twelve thirteen fourteen fifteen sixteen. Seventeen eighteen."
	for _, words := range []bool{true, false} {
		t.Run(fmt.Sprint("words=", words), func(t *testing.T) {
			parts := mk(words)
			parts[1].t.Segments[2].Seek = 1000
			tr := mustReassemble(t, parts, VerboseJSON)
			if tr.Text != want {
				t.Errorf("Text\n%q\nwant\n%q", tr.Text, want)
			}
			if len(tr.Segments) != 7 || tr.Segments[6].ID != 6 || tr.Segments[6].Start != 22.1 || tr.Segments[6].End != 26 ||
				tr.Segments[4].Seek != 2000 || tr.Segments[5].Seek != 2000 || tr.Duration != 26 || tr.Usage.Seconds != 28 {
				t.Errorf("segments %+v duration %v usage %+v", tr.Segments, tr.Duration, tr.Usage)
			}
			if words {
				var ws []string
				for _, w := range tr.Words {
					ws = append(ws, stitchKey(w.Word))
				}
				if got := strings.Join(ws, " "); got != stitchKeys(want) {
					t.Errorf("words %q", got)
				}
			}
			checkTimeline(t, tr)
			checkRaw(t, tr)
			vtt := mustReassemble(t, parts, VTT)
			if !strings.HasPrefix(string(vtt.Raw), "WEBVTT\n\n00:00:00.000 --> 00:00:04.000\nOne two three.\n\n") ||
				!strings.HasSuffix(string(vtt.Raw), "\n\n00:00:22.100 --> 00:00:26.000\nSeventeen eighteen.\n\n") || vtt.Text != want {
				t.Errorf("vtt %q", vtt.Raw)
			}
			checkRaw(t, vtt)
		})
	}

	// Three text-only pieces, both cuts hard.
	tr := mustReassemble(t, []part{
		{t: plain("a b c d e f")}, {t: plain("e f g h i j"), offset: 5, overlap: 1}, {t: plain("i j k"), offset: 10, overlap: 1},
	}, Text)
	if tr.Text != "a b c d e f g h i j k" {
		t.Errorf("Text %q", tr.Text)
	}
}

func stitchKeys(s string) string {
	var ks []string
	for _, f := range strings.Fields(s) {
		ks = append(ks, stitchKey(f))
	}
	return strings.Join(ks, " ")
}

// A single piece comes back as itself, in whatever format.
func TestReassembleSinglePart(t *testing.T) {
	body := `{"task":"transcribe","language":"english","duration":8.470000267028809,"text":"The beach was a popular spot. People <swam> & played.",
	 "words":[{"word":"The","start":0,"end":0.4},{"word":"beach","start":0.4,"end":0.9}],
	 "segments":[{"id":0,"seek":0,"start":0.0,"end":3.319999933242798,"text":" The beach was a popular spot.","tokens":[50364,440],"temperature":0.0,
	 "avg_logprob":-0.28,"compression_ratio":1.23,"no_speech_prob":0.0098},
	 {"id":1,"seek":0,"start":3.32,"end":8.47,"text":" People <swam> & played.","tokens":[1],"temperature":0.2,"avg_logprob":-0.1,"compression_ratio":1.1,"no_speech_prob":0.01}],
	 "usage":{"type":"duration","seconds":9}}`
	in, err := decode([]byte(body), "application/json", VerboseJSON)
	if err != nil {
		t.Fatal(err)
	}
	in.RequestID, in.Attempts = "req_1", 2
	parts := []part{{t: in}}

	tr := mustReassemble(t, parts, VerboseJSON)
	want := *in
	want.Raw = tr.Raw
	if !reflect.DeepEqual(tr, &want) {
		t.Errorf("got\n%+v\nwant\n%+v", tr, &want)
	}
	checkRaw(t, tr)
	if strings.Contains(string(tr.Raw), `\u003c`) {
		t.Errorf("Raw escapes HTML: %s", tr.Raw)
	}

	tr = mustReassemble(t, parts, SRT)
	srt := "1\n00:00:00,000 --> 00:00:03,320\nThe beach was a popular spot.\n\n2\n00:00:03,320 --> 00:00:08,470\nPeople <swam> & played.\n\n"
	if string(tr.Raw) != srt || tr.Text != in.Text || tr.Usage.Seconds != 9 || tr.Language != "" {
		t.Errorf("srt %+v", tr)
	}
	checkRaw(t, tr)

	tr = mustReassemble(t, parts, JSON)
	if string(tr.Raw) != `{"text":"The beach was a popular spot. People <swam> & played.","usage":{"type":"duration","seconds":9}}`+"\n" || tr.Text != in.Text {
		t.Errorf("json %+v %s", tr, tr.Raw)
	}
	checkRaw(t, tr)

	tr = mustReassemble(t, parts, Text)
	if string(tr.Raw) != in.Text+"\n" || tr.Text != in.Text {
		t.Errorf("text %+v", tr)
	}
	checkRaw(t, tr)

	// A json piece with token usage and logprobs.
	in, err = decode([]byte(`{"text":"Hi there.","logprobs":[{"token":"Hi","logprob":-0.1,"bytes":[72,105]}],`+
		`"usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":10,"audio_tokens":4},"output_tokens":3,"total_tokens":17}}`),
		"application/json", JSON)
	if err != nil {
		t.Fatal(err)
	}
	tr = mustReassemble(t, []part{{t: in}}, "")
	want = *in
	want.Raw = tr.Raw
	if !reflect.DeepEqual(tr, &want) {
		t.Errorf("got\n%+v\nwant\n%+v", tr, &want)
	}
	checkRaw(t, tr)
}

func TestReassembleUsage(t *testing.T) {
	tokens := func(text string, in, out int) *Transcription {
		return &Transcription{Format: JSON, Text: text, Usage: &Usage{Type: "tokens", InputTokens: in, OutputTokens: out, TotalTokens: in + out,
			InputTokenDetails: &InputTokenDetails{TextTokens: 1, AudioTokens: in - 1}}}
	}
	tr := mustReassemble(t, []part{{t: tokens("One.", 100, 2)}, {t: plain("Two.")}, {t: tokens("Three.", 50, 3), offset: 60}}, JSON)
	want := `{"text":"One. Two. Three.","usage":{"type":"tokens","input_tokens":150,"input_token_details":{"text_tokens":2,"audio_tokens":148},"output_tokens":5,"total_tokens":155}}` + "\n"
	if string(tr.Raw) != want {
		t.Errorf("Raw\n%s\nwant\n%s", tr.Raw, want)
	}
	checkRaw(t, tr)

	tr = mustReassemble(t, []part{{t: plain("One.")}, {t: plain("Two."), offset: 1}}, VerboseJSON)
	if tr.Usage != nil || tr.Segments != nil || tr.Words != nil || tr.Duration != 1 ||
		string(tr.Raw) != `{"task":"transcribe","language":"","duration":1,"text":"One. Two.","segments":[]}`+"\n" {
		t.Errorf("verbose from text: %+v %s", tr, tr.Raw)
	}
}

func TestReassembleErrors(t *testing.T) {
	ok := []part{{t: plain("a")}}
	for name, tc := range map[string]struct {
		parts  []part
		format ResponseFormat
	}{
		"unknown format":     {ok, "xml"},
		"no parts":           {nil, JSON},
		"no transcript":      {[]part{{}}, JSON},
		"negative offset":    {[]part{{t: plain("a"), offset: -1.5}}, JSON},
		"NaN overlap":        {[]part{{t: plain("a"), overlap: math.NaN()}}, JSON},
		"out of order":       {[]part{{t: plain("a"), offset: 5}, {t: plain("b"), offset: 1}}, JSON},
		"srt without times":  {ok, SRT},
		"vtt without times":  {[]part{{t: verbose(3, false, seg(0, 3, " a"))}, {t: plain("b"), offset: 3}}, VTT},
		"infinite offset":    {[]part{{t: plain("a"), offset: math.Inf(1)}}, Text},
		"unsupported in srt": {[]part{{t: plain("a")}}, SRT},
	} {
		if tr, err := reassemble(tc.parts, tc.format); err == nil {
			t.Errorf("%s: no error, got %+v", name, tr)
		}
	}
	// An empty piece needs no times.
	if _, err := reassemble([]part{{t: verbose(3, false, seg(0, 3, " a"))}, {t: plain(""), offset: 3}}, SRT); err != nil {
		t.Errorf("empty piece: %v", err)
	}
}

// diarized_json pieces stitch like the others: segments shifted, with
// their speakers, the words of a hard cut's overlap once, ids renumbered,
// and the document in the API's shape.
func TestReassembleDiarized(t *testing.T) {
	diarized := func(duration float64, segs ...Segment) *Transcription {
		var texts []string
		for i := range segs {
			segs[i].ID, segs[i].SegmentID = i, fmt.Sprintf("seg_%03d", i+1)
			texts = append(texts, segs[i].Text)
		}
		return &Transcription{Format: DiarizedJSON, Task: "transcribe", Duration: duration, Segments: segs, Text: strings.Join(texts, " "),
			Usage: &Usage{Type: "duration", Seconds: duration}}
	}
	who := func(start, end float64, text, speaker string) Segment {
		return Segment{Start: start, End: end, Text: text, Speaker: speaker}
	}
	parts := []part{
		{t: diarized(10, who(0.5, 3, "Hello there.", "A"), who(4, 9.5, "Hi, how are you today?", "B"))},
		// A pause cut at 10 s.
		{t: diarized(10, who(0.2, 4, "Fine, thanks.", "A"), who(5, 9.8, "Good to hear it.", "B")), offset: 10},
		// A hard cut at 20 s, 2 s shared: "it." heard again, kept once
		// (here, the later piece's).
		{t: diarized(8, who(0, 1.7, "it.", "B"), who(2.5, 7, "Shall we start?", "A")), offset: 18, overlap: 2},
	}
	out := mustReassemble(t, parts, DiarizedJSON)
	want := `{"task":"transcribe","duration":26,"text":"Hello there. Hi, how are you today? Fine, thanks. Good to hear it. Shall we start?","segments":[` +
		`{"type":"transcript.text.segment","id":"seg_001","start":0.5,"end":3,"text":"Hello there.","speaker":"A"},` +
		`{"type":"transcript.text.segment","id":"seg_002","start":4,"end":9.5,"text":"Hi, how are you today?","speaker":"B"},` +
		`{"type":"transcript.text.segment","id":"seg_003","start":10.2,"end":14,"text":"Fine, thanks.","speaker":"A"},` +
		`{"type":"transcript.text.segment","id":"seg_004","start":15,"end":18.84,"text":"Good to hear","speaker":"B"},` +
		`{"type":"transcript.text.segment","id":"seg_005","start":18.84,"end":19.7,"text":"it.","speaker":"B"},` +
		`{"type":"transcript.text.segment","id":"seg_006","start":20.5,"end":25,"text":"Shall we start?","speaker":"A"}],` +
		`"usage":{"type":"duration","seconds":28}}` + "\n"
	if string(out.Raw) != want {
		t.Fatalf("got\n%s\nwant\n%s", out.Raw, want)
	}
	again, err := decode(out.Raw, "application/json", DiarizedJSON)
	if err != nil || len(again.Segments) != 6 || again.Segments[5].Speaker != "A" || again.Segments[5].SegmentID != "seg_006" {
		t.Fatalf("decoded: %+v, %v", again, err)
	}
}

func TestRenderCues(t *testing.T) {
	segs := []Segment{
		{Start: 0, End: 2.5, Text: " Hello there."},
		{Start: 2.5, End: 3603.0004, Text: "General\r\nKenobi. "},
		{Start: 3603.0006, End: 3604, Text: "  "},
		{Start: 3604, End: 363599.9996, Text: " Bye --> now\n\n  really.\n"},
	}
	srt := "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n" +
		"2\n00:00:02,500 --> 01:00:03,000\nGeneral\nKenobi.\n\n" +
		"3\n01:00:04,000 --> 101:00:00,000\nBye -> now\n  really.\n\n"
	if got := string(renderSRT(segs)); got != srt {
		t.Errorf("srt\n%q\nwant\n%q", got, srt)
	}
	vtt := "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n" +
		"00:00:02.500 --> 01:00:03.000\nGeneral\nKenobi.\n\n" +
		"01:00:04.000 --> 101:00:00.000\nBye -> now\n  really.\n\n"
	if got := string(renderVTT(segs)); got != vtt {
		t.Errorf("vtt\n%q\nwant\n%q", got, vtt)
	}
	if got := string(renderSRT(nil)); got != "" {
		t.Errorf("empty srt %q", got)
	}
	if got := string(renderVTT(nil)); got != "WEBVTT\n\n" {
		t.Errorf("empty vtt %q", got)
	}

	want := []Segment{
		{ID: 0, Start: 0, End: 2.5, Text: "Hello there."},
		{ID: 1, Start: 2.5, End: 3603, Text: "General\nKenobi."},
		{ID: 2, Start: 3604, End: 363600, Text: "Bye -> now\n  really."},
	}
	for _, render := range []func([]Segment) []byte{renderSRT, renderVTT} {
		got, err := parseCues(string(render(segs)))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("round trip: %v\n%+v\nwant\n%+v", err, got, want)
		}
	}
}

// Random cues at millisecond times come back from parseCues as they went in.
func TestRenderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var segs []Segment
		at := 0.0
		for i := range r.IntN(20) {
			start := at + float64(r.IntN(5000))/1000
			end := start + float64(r.IntN(20000))/1000
			at = end
			lines := make([]string, 1+r.IntN(3))
			for j := range lines {
				lines[j] = randomWords(r, 1+r.IntN(8))
			}
			segs = append(segs, Segment{ID: i, Start: start, End: end, Text: strings.Join(lines, "\n")})
		}
		for _, render := range []func([]Segment) []byte{renderSRT, renderVTT} {
			doc := render(segs)
			got, err := parseCues(string(doc))
			if err != nil || len(got) != len(segs) {
				t.Fatalf("%v: %d cues from\n%s", err, len(got), doc)
			}
			for i := range got {
				if w := segs[i]; got[i].ID != i || math.Abs(got[i].Start-w.Start) > 1e-9 || math.Abs(got[i].End-w.End) > 1e-9 || got[i].Text != w.Text {
					t.Fatalf("cue %d: %+v, want %+v", i, got[i], w)
				}
			}
		}
	}
}

var vocabulary = func() []string {
	r := rand.New(rand.NewPCG(3, 4))
	words := make([]string, 300)
	for i := range words {
		b := make([]byte, 2+r.IntN(7))
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		words[i] = string(b)
	}
	return words
}()

func randomWords(r *rand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = vocabulary[r.IntN(len(vocabulary))]
	}
	return strings.Join(ws, " ")
}

// Random text cut into pieces that repeat the last k words of the piece
// before them is put back together exactly.
func TestLCSRestoresOverlappingChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 500 {
		words := strings.Fields(randomWords(r, 20+r.IntN(300)))
		perturb := trial%2 == 1 // the later piece writes the shared words differently
		var parts []part
		for start, end := 0, 0; end < len(words); {
			k := 0
			if end > 0 {
				k = min(end, 2+r.IntN(9)) // shared words
			}
			start = end - k
			end = min(len(words), end+11+r.IntN(60)) // more new words than any overlap
			chunk := slices.Clone(words[start:end])
			if perturb {
				for i := range k {
					switch r.IntN(3) {
					case 0:
						chunk[i] = strings.ToUpper(chunk[i][:1]) + chunk[i][1:]
					case 1:
						chunk[i] += ","
					}
				}
			}
			p := part{t: plain(strings.Join(chunk, " ")), offset: float64(start)}
			if k > 0 {
				p.overlap = 2
			}
			parts = append(parts, p)
		}
		tr := mustReassemble(t, parts, Text)
		got, want := tr.Text, strings.Join(words, " ")
		if perturb {
			got = stitchKeys(got)
		}
		if got != want {
			t.Fatalf("trial %d (%d pieces):\n%q\nwant\n%q", trial, len(parts), got, want)
		}
	}
}

func TestLCSCut(t *testing.T) {
	for _, tc := range []struct {
		name        string
		left, right []int
		l, r        int
		ok          bool
	}{
		{"exact overlap of 4", []int{1, 2, 3, 4, 5, 6, 7, 8}, []int{5, 6, 7, 8, 9}, 6, 2, true},
		{"exact overlap of 3", []int{1, 2, 3, 4, 5}, []int{3, 4, 5, 6}, 3, 1, true},
		{"a garbled word at each edge", []int{1, 2, 3, 4, 5, 99}, []int{98, 3, 4, 5, 6}, 3, 2, true},
		{"one word at the boundary", []int{1, 2, 3}, []int{3, 4}, 2, 0, true},
		{"one word elsewhere", []int{1, 2, 3}, []int{4, 2, 5}, 3, 0, false},
		{"one long word between garbled edges", []int{1, 7, 3}, []int{4, 7, 5}, 1, 1, true},
		{"one long word, a garbled edge", []int{1, 2, 7}, []int{4, 7, 5}, 2, 1, true},
		{"one long word further in", []int{1, 7, 3, 6}, []int{4, 8, 7, 5}, 4, 0, false},
		{"nothing in common", []int{1, 2, 3}, []int{4, 5, 6}, 3, 0, false},
		{"too few matches in a long span", []int{1, 2, 3, 4, 5, 6}, []int{1, 9, 9, 9, 9, 6}, 6, 0, false},
		{"empty", nil, []int{1}, 0, 0, false},
	} {
		alone := make([]bool, 10)
		alone[7] = true
		l, r, ok := lcsCut(tc.left, tc.right, alone, len(tc.left)+len(tc.right))
		if l != tc.l || r != tc.r || ok != tc.ok {
			t.Errorf("%s: lcsCut = %d, %d, %v; want %d, %d, %v", tc.name, l, r, ok, tc.l, tc.r, tc.ok)
		}
	}
}

func TestReassembleStitchWords(t *testing.T) {
	us := splitStitchWords(" — Well -- it's  fine,\nreally … ", 3, nil)
	var got []string
	for _, u := range us {
		got = append(got, fmt.Sprintf("%q%q%s%d", u.sep, u.text, u.key, u.seg))
	}
	want := []string{`" ""— Well --"well3`, `" ""it's"its3`, `"  ""fine,"fine3`, `"\n""really …"really3`}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// Word timestamps decide where the overlap is cut; text alignment is the
// fallback when the words do not spell the text.
func TestReassembleAlignByTime(t *testing.T) {
	pieces := func(p []part) (a, b *stitchPiece) {
		a, b = newStitchPiece(p[0]), newStitchPiece(p[1])
		a.cutEnd, b.cutStart = 11, 11
		return a, b
	}
	a, b := pieces(overlapParts(true))
	na, nb, cut := cutWords(a.words, b.words, 10, 12, 11, maxWordShift)
	if dropA, dropB, ok := spellOutCut(a, b, na, nb); na != 2 || nb != 2 || cut != 11 || dropA != 2 || dropB != 2 || !ok {
		t.Errorf("cutWords = %d, %d, %v; spellOutCut = %d, %d, %v", na, nb, cut, dropA, dropB, ok)
	}
	p := overlapParts(true)
	p[0].t.Words[len(p[0].t.Words)-2].Word = "rivers"
	a, b = pieces(p)
	if na, nb, _ := cutWords(a.words, b.words, 10, 12, 11, maxWordShift); func() bool { _, _, ok := spellOutCut(a, b, na, nb); return ok }() {
		t.Error("words that do not spell the text aligned")
	}

	// All four shared words said early in the overlap, before its middle:
	// piece 1 keeps them all, with its punctuation.
	p = overlapParts(true)
	for i, w := range p[0].t.Words[len(p[0].t.Words)-4:] {
		w.Start, w.End = 10+0.2*float64(i), 10.2+0.2*float64(i)
		p[0].t.Words[len(p[0].t.Words)-4+i] = w
	}
	for i := range 4 {
		p[1].t.Words[i].Start, p[1].t.Words[i].End = 0.2*float64(i), 0.2+0.2*float64(i)
	}
	tr := mustReassemble(t, p, VerboseJSON)
	if want := "The quick brown fox jumps over the lazy dog near the river bank. and then it ran away home."; tr.Text != want {
		t.Errorf("Text %q, want %q", tr.Text, want)
	}
	if len(tr.Words) != 19 || tr.Segments[2].Text != " near the river bank." || tr.Segments[3].Text != " and then" {
		t.Errorf("words %v segments %+v", tr.Words, tr.Segments)
	}
	checkTimeline(t, tr)
}

// An overlap too short to hold a word (an MP3 pre-roll inside a pause)
// does not merge words that are really said twice.
func TestReassembleTinyOverlap(t *testing.T) {
	tr := mustReassemble(t, []part{{t: plain("I said no.")}, {t: plain("No, no way."), offset: 9.95, overlap: 0.05}}, Text)
	if tr.Text != "I said no. No, no way." {
		t.Errorf("Text %q", tr.Text)
	}
	tr = mustReassemble(t, []part{{t: plain("I said no.")}, {t: plain("No, no way."), offset: 9.5, overlap: 0.5}}, Text)
	if tr.Text != "I said No, no way." {
		t.Errorf("Text %q", tr.Text)
	}
}

// An MP3 piece's offset is less its codec delay, so the first piece's may
// be negative: times it would make negative are 0.
func TestReassembleCodecDelay(t *testing.T) {
	tr := mustReassemble(t, []part{
		{t: verbose(3, true, seg(0, 1.5, " one two"), seg(2, 3, " three")), offset: -0.069},
		{t: verbose(2, true, seg(0.5, 1.5, " four")), offset: 2.931},
	}, VerboseJSON)
	checkTimeline(t, tr)
	if s := tr.Segments; len(s) != 3 || s[0].Start != 0 || s[0].End != 1.431 || s[2].Start != 3.431 || tr.Words[0].Start != 0 || tr.Duration != 4.931 {
		t.Fatalf("segments %+v, words %+v, duration %v", s, tr.Words, tr.Duration)
	}
}

// script is speech with known word times: sentences of words, each word
// with its text as a transcript writes it (capitalised at the start of a
// sentence, punctuation after it) and when it is said, in seconds.
type script []spoken

type spoken struct {
	text       string
	start, end float64
}

// newScript says sentences of 3 to 12 words for length seconds: words of
// 0.15 to 0.6 s, 30 to 150 ms apart, sentences 0.3 to 1.2 s apart. Some
// words are said twice on purpose, as people do: a sentence that starts
// with the word that ended the one before ("I said no. No, …"), a word
// said twice in a row ("very very").
func newScript(r *rand.Rand, length float64) script {
	common := []string{"the", "a", "and", "no", "so", "finally", "next", "spring", "every", "very", "we"}
	pick := func() string {
		if r.IntN(3) == 0 {
			return common[r.IntN(len(common))]
		}
		return vocabulary[r.IntN(len(vocabulary))]
	}
	var s script
	at := 0.3
	for at < length-1 {
		n := 3 + r.IntN(10)
		words := make([]string, n)
		for i := range words {
			words[i] = pick()
			switch {
			case i == 0 && len(s) > 0 && r.IntN(6) == 0:
				words[i] = stitchKey(s[len(s)-1].text) // "no. No"
			case i > 0 && r.IntN(12) == 0:
				words[i] = words[i-1] // "very very"
			}
		}
		for i, w := range words {
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			switch {
			case i == n-1:
				w += "."
			case r.IntN(8) == 0:
				w += ","
			}
			d := 0.15 + 0.45*r.Float64()
			s = append(s, spoken{w, at, at + d})
			at += d + 0.03 + 0.12*r.Float64()
		}
		at += 0.3 + 0.9*r.Float64()
	}
	return s
}

func (s script) keys() string {
	ks := make([]string, len(s))
	for i, w := range s {
		ks[i] = stitchKey(w.text)
	}
	return strings.Join(ks, " ")
}

// cutScript cuts s as the planner does, into pieces about 6 to 16 s long:
// mostly hard cuts, the next piece starting 1 to 3 s before the cut, and
// some cuts in a pause between sentences (no overlap). It returns each
// piece's audio, [start, end) in seconds.
func cutScript(r *rand.Rand, s script) [][2]float64 {
	end := s[len(s)-1].end + 0.3
	var pieces [][2]float64
	start := 0.0
	for {
		cut := start + 6 + 10*r.Float64()
		if cut >= end-1 {
			return append(pieces, [2]float64{start, end})
		}
		next := cut - (1 + 2*r.Float64()) // hard
		if r.IntN(4) == 0 {
			// In the first pause between sentences after the cut.
			for i := 1; i < len(s); i++ {
				if s[i].start > cut && s[i].start-s[i-1].end > 0.25 {
					cut = (s[i-1].end + s[i].start) / 2
					next = cut
					break
				}
			}
		}
		if cut >= end-1 {
			return append(pieces, [2]float64{start, end})
		}
		pieces = append(pieces, [2]float64{start, cut})
		start = next
	}
}

// hearing says how a simulated recogniser hears a piece.
type hearing struct {
	words, segments bool // transcribe with word, segment timestamps
	jitter          bool // time each word 10 to 80 ms early or late, start and end apart
	fragments       bool // a word cut in half at a piece's edge may come out as a fragment
}

// hear transcribes the audio [from, to) of s as a recogniser would: every
// word said wholly inside it, at its time within the piece (jittered); a
// word cut in half at an edge heard whole, not at all, or as a fragment
// that spells no word of the script.
func hear(r *rand.Rand, s script, from, to float64, h hearing) *Transcription {
	var ws []Word
	var texts []string
	var segs []Segment
	sentence := -1
	for _, w := range s {
		if w.end <= from || w.start >= to {
			continue
		}
		text := w.text
		if w.start < from || w.end > to {
			switch r.IntN(3) {
			case 0:
				continue // not heard
			case 1:
				if h.fragments {
					text = "x0" + stitchKey(text)[:1] // a fragment: no word has a digit
				}
			}
		}
		start, end := max(w.start, from)-from, min(w.end, to)-from
		if h.jitter {
			j := func() float64 {
				d := 0.01 + 0.07*r.Float64()
				if r.IntN(2) == 0 {
					return -d
				}
				return d
			}
			start, end = start+j(), end+j()
			start, end = max(start, 0), min(end, to-from)
			if end <= start {
				end = start + 0.01
			}
		}
		ws = append(ws, Word{Word: strings.Trim(text, ".,"), Start: start, End: end})
		texts = append(texts, text)
		newSentence := sentence < 0 || strings.HasSuffix(texts[max(0, len(texts)-2)], ".") && len(texts) > 1
		if newSentence {
			segs = append(segs, Segment{Start: start, End: end, Text: " " + text})
			sentence++
		} else {
			sg := &segs[len(segs)-1]
			sg.End, sg.Text = end, sg.Text+" "+text
		}
	}
	t := &Transcription{Format: JSON, Text: strings.Join(texts, " ")}
	if h.segments || h.words {
		t = verbose(to-from, false, segs...)
		t.Text = strings.Join(texts, " ")
		if h.words {
			t.Words = ws
			if t.Words == nil {
				t.Words = []Word{}
			}
		}
	}
	return t
}

// Speech with known word times, cut as the planner cuts it and heard by a
// recogniser piece by piece, comes back word for word: no word of an
// overlap dropped or doubled, whether the pieces time words apart (±10–80
// ms), hear or miss the word cut in half at an edge, or the speaker says
// a word twice. With word timestamps that holds at every cut. With
// segment timestamps only, or text only, nothing says when each word was
// said, and a word said twice or three times in a row about a cut, or a
// word cut in half that one piece heard as another, can still be taken
// for one the other piece heard: there the test bounds how often.
func TestReassembleOverlapSpeech(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format ResponseFormat
		h      hearing
		// maxWrong is the most words lost or doubled allowed per 1000
		// hard cuts; maxFragments, of fragments kept.
		maxWrong, maxFragments int
	}{
		{"words", VerboseJSON, hearing{words: true, segments: true, jitter: true, fragments: true}, 0, 0},
		{"words, exact times", VerboseJSON, hearing{words: true, segments: true}, 0, 0},
		// Before word-by-word cuts, at 1,600 to 1,700 cuts: words 107
		// lost or doubled; segments 3; segments with fragments 108 and
		// 130 fragments kept; text 23; text with fragments 82 and 108.
		{"segments", VerboseJSON, hearing{segments: true, jitter: true}, 1, 0},
		{"segments, fragments", VerboseJSON, hearing{segments: true, jitter: true, fragments: true}, 8, 2},
		{"text", JSON, hearing{jitter: true}, 1, 0},
		{"text, fragments", JSON, hearing{jitter: true, fragments: true}, 25, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, uint64(len(tc.name))))
			var cuts, words, wrong, fragments int
			for trial := range 400 {
				s := newScript(r, 40+40*r.Float64())
				spans := cutScript(r, s)
				parts := make([]part, len(spans))
				for i, c := range spans {
					parts[i] = part{t: hear(r, s, c[0], c[1], tc.h), offset: c[0]}
					if i > 0 {
						parts[i].overlap = spans[i-1][1] - c[0]
					}
					if parts[i].overlap > 0 {
						cuts++
					}
				}
				tr := mustReassemble(t, parts, tc.format)
				want := s.keys()
				got, frags := dropFragments(stitchKeys(tr.Text))
				words += len(s)
				fragments += frags
				if d := editDistance(strings.Fields(got), strings.Fields(want)); d > 0 {
					wrong += d
					if tc.maxWrong == 0 {
						t.Errorf("trial %d: text\n%s", trial, diffKeys(got, want))
						for i, p := range parts {
							t.Logf("piece %d at %.2f overlap %.2f: %s", i, p.offset, p.overlap, p.t.Text)
						}
					}
				}
				if tc.h.words {
					var ws []string
					for _, w := range tr.Words {
						ws = append(ws, stitchKey(w.Word))
					}
					if got := strings.Join(ws, " "); got != want {
						t.Errorf("trial %d: words\n%s", trial, diffKeys(got, want))
					}
				}
				checkTimeline(t, tr)
			}
			t.Logf("%d words, %d hard cuts: %d words lost or doubled, %d fragments kept", words, cuts, wrong, fragments)
			if wrong*1000 > tc.maxWrong*cuts || fragments*1000 > tc.maxFragments*cuts {
				t.Errorf("%d words lost or doubled, %d fragments kept at %d hard cuts; want at most %d and %d per 1000",
					wrong, fragments, cuts, tc.maxWrong, tc.maxFragments)
			}
		})
	}
}

// dropFragments removes the fragments hear makes from the words ws, and
// counts them.
func dropFragments(ws string) (string, int) {
	f := strings.Fields(ws)
	kept := f[:0]
	for _, w := range f {
		if !strings.HasPrefix(w, "x0") {
			kept = append(kept, w)
		}
	}
	return strings.Join(kept, " "), len(f) - len(kept)
}

// editDistance is the number of words to insert, delete or replace to
// make a into b.
func editDistance(a, b []string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := range a {
		cur[0] = i + 1
		for j := range b {
			cur[j+1] = min(prev[j+1]+1, cur[j]+1, prev[j]+btoi(a[i] != b[j]))
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// diffKeys shows where two word sequences first differ.
func diffKeys(got, want string) string {
	g, w := strings.Fields(got), strings.Fields(want)
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	ctx := func(ws []string) string { return strings.Join(ws[max(0, i-6):min(len(ws), i+6)], " ") }
	return fmt.Sprintf("got  … %s …\nwant … %s … (word %d of %d)", ctx(g), ctx(w), i, len(w))
}

// heard is a piece's transcript of the words ws (their times in the
// original's, text as written), the piece starting at offset: verbose_json
// with word and segment timestamps (a segment per sentence), without word
// timestamps, or json.
func heard(format string, offset, duration float64, ws ...Word) *Transcription {
	var segs []Segment
	var texts []string
	var words []Word
	for i, w := range ws {
		w.Start, w.End = w.Start-offset, w.End-offset
		if i == 0 || strings.HasSuffix(ws[i-1].Word, ".") {
			segs = append(segs, Segment{Start: w.Start, End: w.End, Text: " " + w.Word})
		} else {
			s := &segs[len(segs)-1]
			s.End, s.Text = w.End, s.Text+" "+w.Word
		}
		texts = append(texts, w.Word)
		words = append(words, Word{Word: strings.Trim(w.Word, ".,"), Start: w.Start, End: w.End})
	}
	if format == "text" {
		return plain(strings.Join(texts, " "))
	}
	t := verbose(duration, false, segs...)
	if format == "words" {
		t.Words = words
	}
	return t
}

// stitched reassembles two pieces, a from 0 to end and b from offset on,
// and returns the words of the result's text (and of its words, when it
// has them, which must be the same).
func stitched(t *testing.T, format string, offset, end float64, a, b []Word) string {
	t.Helper()
	f := VerboseJSON
	if format == "text" {
		f = JSON
	}
	tr := mustReassemble(t, []part{
		{t: heard(format, 0, end, a...)},
		{t: heard(format, offset, 20, b...), offset: offset, overlap: end - offset},
	}, f)
	checkTimeline(t, tr)
	got := stitchKeys(tr.Text)
	if format == "words" {
		var ws []string
		for _, w := range tr.Words {
			ws = append(ws, stitchKey(w.Word))
		}
		if w := strings.Join(ws, " "); w != got {
			t.Errorf("words %q, text %q", w, got)
		}
	}
	return got
}

// The word: "finally", said from 475.10 to 475.45 s, in the
// overlap of two pieces whose middle is 475.28 s. Timed 475.12–475.45 by
// the earlier piece and 475.05–475.45 by the later, it was dropped from
// both; timed the other way round, kept by both. Each piece now times it,
// and every other word, anywhere from 80 ms early to 80 ms late, start and
// end apart, and it comes out once.
func TestReassembleSharedWordTimedApart(t *testing.T) {
	const offset, end = 474.28, 476.28 // the later piece's start, the earlier's end
	script := []Word{
		{"Then", 472.9, 473.2}, {"we", 473.3, 473.5}, {"will", 473.6, 473.9}, {"go,", 474.0, 474.3}, {"and", 474.4, 474.6},
		{"we", 474.7, 474.9}, {"will", 474.95, 475.05}, {"finally", 475.10, 475.45}, {"see", 475.55, 475.8}, {"it.", 475.85, 476.0},
		{"Next", 476.6, 476.9}, {"spring", 477.0, 477.4},
	}
	const want = "then we will go and we will finally see it next spring"
	// hear returns what a piece from `from` to `to` hears of the script,
	// each word's start and end moved by shift(i) and shift(i+1000).
	hear := func(from, to float64, shift func(int) float64) []Word {
		var ws []Word
		for i, w := range script {
			if w.Start >= from && w.End <= to {
				w.Start, w.End = w.Start+shift(i), w.End+shift(i+1000)
				ws = append(ws, w)
			}
		}
		return ws
	}
	for _, format := range []string{"words", "segments", "text"} {
		t.Run(format, func(t *testing.T) {
			// The two timings.
			for _, tc := range []struct{ a, b [2]float64 }{
				{[2]float64{475.12, 475.45}, [2]float64{475.05, 475.45}},
				{[2]float64{475.05, 475.40}, [2]float64{475.15, 475.45}},
			} {
				a, b := hear(0, end, func(int) float64 { return 0 }), hear(offset, 500, func(int) float64 { return 0 })
				for i := range a {
					if a[i].Word == "finally" {
						a[i].Start, a[i].End = tc.a[0], tc.a[1]
					}
				}
				for i := range b {
					if b[i].Word == "finally" {
						b[i].Start, b[i].End = tc.b[0], tc.b[1]
					}
				}
				if got := stitched(t, format, offset, end, a, b); got != want {
					t.Errorf("finally at %v and %v: %q", tc.a, tc.b, got)
				}
			}
			// Every word shifted, in both pieces, by ±10 to ±80 ms.
			shifts := []float64{-0.08, -0.05, -0.01, 0.01, 0.05, 0.08}
			for ka := range shifts {
				for kb := range shifts {
					sa := func(i int) float64 { return shifts[(ka+i)%len(shifts)] }
					sb := func(i int) float64 { return shifts[(kb+2*i)%len(shifts)] }
					if got := stitched(t, format, offset, end, hear(0, end, sa), hear(offset, 500, sb)); got != want {
						t.Errorf("shifts %v, %v: %q", shifts[ka], shifts[kb], got)
					}
				}
			}
		})
	}
}

// A word said twice ("no. No") about a cut is said twice, once from each
// piece, when only one of its times lies in the overlap; and words cut in
// half at an edge of the overlap (heard whole, not at all, or as a
// fragment by the piece cut through them) come out once, as said.
func TestReassembleOverlapEdges(t *testing.T) {
	t.Run("no. No", func(t *testing.T) {
		// The earlier piece ends at 9.7 s, before the second "No".
		script := []Word{{"Yes,", 7.9, 8.3}, {"I", 9.0, 9.1}, {"said", 9.15, 9.4}, {"no.", 9.45, 9.65}, {"No,", 9.8, 10.0}, {"never.", 10.05, 10.4}}
		for _, format := range []string{"words", "segments", "text"} {
			for _, d := range []float64{-0.08, 0, 0.08} {
				a := slices.Clone(script[:4])
				b := slices.Clone(script[1:])
				a[3].Start, a[3].End = a[3].Start+d, a[3].End+d
				b[2].Start, b[2].End = b[2].Start-d, b[2].End-d
				b[3].Start, b[3].End = b[3].Start-d, b[3].End-d
				if got := stitched(t, format, 8.6, 9.7, a, b); got != "yes i said no no never" {
					t.Errorf("%s, shift %v: %q", format, d, got)
				}
			}
		}
	})
	t.Run("heard by one piece only", func(t *testing.T) {
		// Pieces overlap from 11 to 13 s; one of them heard nothing there.
		script := []Word{{"We", 9.0, 9.2}, {"met.", 9.3, 9.6}, {"Then", 11.3, 11.6}, {"rain", 11.7, 12.0}, {"came.", 12.5, 12.9}, {"Later", 13.6, 13.9}}
		for _, format := range []string{"words", "segments", "text"} {
			for _, tc := range []struct{ a, b []Word }{{script[:2], script[2:]}, {script[:5], script[5:]}} {
				if got := stitched(t, format, 11, 13, tc.a, tc.b); got != "we met then rain came later" {
					t.Errorf("%s, %v and %v: %q", format, tc.a, tc.b, got)
				}
			}
		}
	})
	// "next" is cut in half by the later piece's start (11.0 s), "spring"
	// by the earlier piece's end (13.0 s).
	script := []Word{
		{"It", 10.0, 10.2}, {"comes", 10.3, 10.7}, {"next", 10.8, 11.2}, {"spring,", 11.3, 11.8}, {"we", 11.9, 12.1},
		{"think", 12.2, 12.5}, {"next", 12.6, 12.9}, {"spring", 12.9, 13.3}, {"again.", 13.4, 13.8},
	}
	const want = "it comes next spring we think next spring again"
	edge := func(w Word, from, to float64, how int) (Word, bool) {
		switch how {
		case 1: // heard whole, timed within the piece
			w.Start, w.End = max(w.Start, from), min(w.End, to)
			return w, true
		case 2: // heard as a fragment
			w.Word = w.Word[len(w.Word)/2:]
			if from > w.Start {
				w.Start = from
			} else {
				w.End = to
			}
			return w, true
		}
		return w, false // not heard
	}
	for _, format := range []string{"words", "segments", "text"} {
		for howA := range 3 {
			for howB := range 3 {
				var a, b []Word
				for i, w := range script {
					if i == 7 { // "spring", cut by a's end
						if w, ok := edge(w, 0, 13.0, howA); ok {
							a = append(a, w)
						}
					} else if w.End <= 13.0 {
						a = append(a, w)
					}
					if i == 2 { // "next", cut by b's start
						if w, ok := edge(w, 11.0, 20, howB); ok {
							b = append(b, w)
						}
					} else if w.Start >= 11.0 {
						b = append(b, w)
					}
				}
				if got := stitched(t, format, 11.0, 13.0, a, b); got != want {
					t.Errorf("%s, edges heard %d and %d: %q\na: %v\nb: %v", format, howA, howB, got, a, b)
				}
			}
		}
	}
}
