package transcribe

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PrintableLine returns s fit to print on a terminal as one line: every
// character that could move the cursor, erase or recolour the screen, end
// the line or reorder text is shown as an escape instead ("\x1b", "\r",
// "\u202e"), so that nothing a server says (a transcript, an error
// message, a request ID) and no file name can forge a line of a program's
// display. Replaced are the C0 controls (ESC, CR, LF, TAB and the rest),
// DEL, the C1 controls, Unicode's bidirectional controls, the line and
// paragraph separators, and bytes that are not UTF-8. Errors of this
// package hold server text as it came: print them through PrintableLine.
func PrintableLine(s string) string { return escapeControls(s, false) }

// PrintableText is PrintableLine for multi-line text, such as a transcript
// or an SRT body: LF and TAB are kept, and CRLF becomes LF.
func PrintableText(s string) string { return escapeControls(s, true) }

// escapeControls is PrintableLine, or with keepLines PrintableText.
func escapeControls(s string, keepLines bool) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r, keepLines) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			// CRLF: the LF that follows is kept.
		case !unsafeRune(r, keepLines):
			b.WriteString(s[i : i+size])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\n' || r == '\t'):
		return false
	case r == utf8.RuneError:
		return true // a byte that is not UTF-8 (a real U+FFFD is shown escaped too, harmlessly)
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r == '\u2028', r == '\u2029':
		return true
	}
	return unicode.Is(unicode.Bidi_Control, r)
}

// PrintableJSON returns the JSON text b (as encoding/json writes it) with
// the characters that JSON leaves raw but a terminal acts on (C1 controls,
// bidirectional controls) written as \u escapes: the data decodes the same,
// and the text is safe to print. encoding/json already escapes the C0
// controls, U+2028 and U+2029, and replaces bytes that are not UTF-8.
func PrintableJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x80 && unsafeRune(r, false) }) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r >= 0x80 && unsafeRune(r, false) && r != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}
