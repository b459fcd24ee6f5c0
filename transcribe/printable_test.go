package transcribe_test

import (
	"encoding/json"
	"testing"

	"github.com/steno-go/steno/transcribe"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, 100% fine: é ü 日本":  "plain text, 100% fine: é ü 日本",
		"\r\x1b[2Kall 40 files done\n":   `\r\x1b[2Kall 40 files done\n`,
		"tab\there\x00\x7f":              `tab\there\x00\x7f`,
		"c1 \u009b2J bidi \u202e\u2066x": `c1 \u009b2J bidi \u202e\u2066x`,
		"line\u2028sep":                  `line\u2028sep`,
		"bad \xff\xfe utf-8":             `bad \xff\xfe utf-8`,
	} {
		if got := transcribe.PrintableLine(in); got != want {
			t.Errorf("PrintableLine(%q) = %q, want %q", in, got, want)
		}
	}
	if got := transcribe.PrintableText("1\r\n00:00 --> 00:01\r\nhi\x1b[31m\tred\n"); got != "1\n00:00 --> 00:01\nhi\\x1b[31m\tred\n" {
		t.Errorf("PrintableText: %q", got)
	}
	in := map[string]string{"text": "a\u009b2J\u202eb\x1b"}
	b, _ := json.Marshal(in)
	out := transcribe.PrintableJSON(b)
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["text"] != in["text"] {
		t.Fatalf("PrintableJSON(%s) = %s: decodes to %q (%v)", b, out, back, err)
	}
	if string(out) != `{"text":"a\u009b2J\u202eb\u001b"}` {
		t.Errorf("PrintableJSON(%s) = %s", b, out)
	}
}
