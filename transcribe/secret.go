package transcribe

import (
	"context"
	"encoding"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/steno-go/steno/ratelimit"
)

// redacted replaces the API key wherever the client would otherwise show
// it: in errors, header values, log attributes and its own formatting.
const redacted = "[REDACTED]"

// gramLen is the length, in characters, of the shortest piece of the key
// that is redacted on its own: any 12 characters of it in a row (a prefix
// of 12, the whole key, a key cut short by a server) go, while a shorter
// key is redacted only whole. OpenAI's own mask ("sk-abc***…wxyz") shows
// fewer and is kept as it is.
const gramLen = 12

// maxDecodeLevels is how many layers of escaping (URL-encoding,
// JSON-escaping, HTML character references) are taken off a text to find
// the key in it: enough for a key JSON-escaped inside a URL-encoded query.
const maxDecodeLevels = 3

// foreignKey matches a whole OpenAI-style key, which never belongs in an
// error or a log even when it is not the client's own (a proxy's key, a
// server echoing another header). OpenAI's masks ("sk-abc12***wxyz",
// "sk-proj-****…") show too few characters in a row to match.
var foreignKey = regexp.MustCompile(`\bsk-[A-Za-z0-9_\-]{16,}`)

// A redactor finds one API key in texts in every form a server might echo
// it: raw, URL-encoded (query or path escaping), JSON-escaped ("\u002f",
// "\/", non-ASCII as \uXXXX), as HTML character references, or several of
// these nested; whole, or any gramLen characters of it in a row. Build one
// per key with newRedactor; the zero redactor (no key) still removes
// foreign OpenAI-style keys. It is safe for concurrent use.
type redactor struct {
	n          int                    // the length of a gram: min(gramLen, characters in the key); 0 without a key
	grams      map[[gramLen]rune]bool // every run of n characters of the key, and of its query form (' ' as '+')
	first      map[rune]bool          // the characters a gram can start with, beyond ASCII
	firstASCII [utf8.RuneSelf]bool    // the same, in ASCII
}

func newRedactor(key string) *redactor {
	r := &redactor{}
	if key == "" {
		return r
	}
	runes := []rune(key)
	r.n = min(gramLen, len(runes))
	r.grams = make(map[[gramLen]rune]bool, len(runes)-r.n+1)
	r.first = make(map[rune]bool)
	r.addGrams(runes)
	if strings.Contains(key, " ") {
		// A query escapes ' ' as '+' (a '+' of the key as %2B). Only
		// a '+' of the text may stand for a space of the key, never
		// the other way round.
		r.addGrams([]rune(strings.ReplaceAll(key, " ", "+")))
	}
	return r
}

func (r *redactor) addGrams(runes []rune) {
	for i := 0; i+r.n <= len(runes); i++ {
		var g [gramLen]rune
		copy(g[:], runes[i:i+r.n])
		r.grams[g] = true
		if c := runes[i]; c < utf8.RuneSelf {
			r.firstASCII[c] = true
		} else {
			r.first[c] = true
		}
	}
}

// redact returns s with every appearance of the key, and of any whole
// OpenAI-style key, replaced by redacted.
func (r *redactor) redact(s string) string {
	if s == "" {
		return s
	}
	if r.n > 0 {
		s = r.redactKey(s)
	}
	if strings.Contains(s, "sk-") {
		s = foreignKey.ReplaceAllLiteralString(s, redacted)
	}
	return s
}

// unit is one character of a view of a text, with the bytes of the
// original text it stands for.
type unit struct {
	c          rune
	start, end int
}

// redactKey replaces every span of s that shows the key (or gramLen
// characters of it) in any view of s: as it is, and with up to
// maxDecodeLevels layers of escaping taken off.
func (r *redactor) redactKey(s string) string {
	spans := r.findRaw(s, nil)
	if strings.ContainsAny(s, "%\\&") { // something may be escaped
		view := make([]unit, 0, len(s))
		for i, c := range s {
			_, size := utf8.DecodeRuneInString(s[i:])
			view = append(view, unit{c, i, i + size})
		}
		for level := 1; level <= maxDecodeLevels; level++ {
			next, changed := unescape(view)
			if !changed {
				break
			}
			view = next
			spans = r.find(view, spans)
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for i := 0; i < len(spans); {
		start, end := spans[i][0], spans[i][1]
		for i++; i < len(spans) && spans[i][0] <= end; i++ { // merge overlapping and touching spans
			end = max(end, spans[i][1])
		}
		b.WriteString(s[at:start])
		b.WriteString(redacted)
		at = end
	}
	b.WriteString(s[at:])
	return b.String()
}

// findRaw appends to spans the byte spans of s that are grams of the key
// as they are, without building a view.
func (r *redactor) findRaw(s string, spans [][2]int) [][2]int {
	var g [gramLen]rune
	for i, c := range s {
		if !r.starts(c) {
			continue
		}
		j, n := i, 0
		for n < r.n && j < len(s) {
			c, size := utf8.DecodeRuneInString(s[j:])
			g[n] = c
			n, j = n+1, j+size
		}
		if n < r.n {
			break
		}
		if r.grams[g] {
			spans = append(spans, [2]int{i, j})
		}
	}
	return spans
}

// starts reports whether a gram of the key can start with c.
func (r *redactor) starts(c rune) bool {
	if c < utf8.RuneSelf {
		return r.firstASCII[c]
	}
	return r.first[c]
}

// find appends to spans the byte spans of the original text covered by
// grams of the key in view.
func (r *redactor) find(view []unit, spans [][2]int) [][2]int {
	var g [gramLen]rune
	for i := 0; i+r.n <= len(view); i++ {
		if !r.starts(view[i].c) {
			continue
		}
		for j := range r.n {
			g[j] = view[i+j].c
		}
		if r.grams[g] {
			spans = append(spans, [2]int{view[i].start, view[i+r.n-1].end})
		}
	}
	return spans
}

// unescape takes one layer of escaping off view: %XX sequences (decoded as
// UTF-8), JSON escapes (\uXXXX with surrogate pairs, \/ \\ \" \b \f \n \r
// \t) and HTML character references (&#N; &#xH; &amp; &lt; &gt; &quot;
// &apos;). Each decoded character stands for all the bytes its escape
// took. It reports whether anything was decoded.
func unescape(view []unit) ([]unit, bool) {
	out := make([]unit, 0, len(view))
	changed := false
	for i := 0; i < len(view); {
		switch view[i].c {
		case '%':
			// A run of %XX escapes is a sequence of bytes, decoded as
			// UTF-8.
			var bytes []byte
			var starts []int
			j := i
			for j+2 < len(view) && view[j].c == '%' {
				hi, ok1 := unhex(view[j+1].c)
				lo, ok2 := unhex(view[j+2].c)
				if !ok1 || !ok2 {
					break
				}
				bytes = append(bytes, hi<<4|lo)
				starts = append(starts, j)
				j += 3
			}
			if len(bytes) == 0 {
				break
			}
			for k := 0; k < len(bytes); {
				c, size := utf8.DecodeRune(bytes[k:])
				last := starts[k+size-1]
				out = append(out, unit{c, view[starts[k]].start, view[last+2].end})
				k += size
			}
			i, changed = j, true
			continue
		case '\\':
			if c, n, ok := jsonEscape(view[i:]); ok {
				out = append(out, unit{c, view[i].start, view[i+n-1].end})
				i, changed = i+n, true
				continue
			}
		case '&':
			if c, n, ok := htmlReference(view[i:]); ok {
				out = append(out, unit{c, view[i].start, view[i+n-1].end})
				i, changed = i+n, true
				continue
			}
		}
		out = append(out, view[i])
		i++
	}
	return out, changed
}

func unhex(c rune) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return byte(c - '0'), true
	case 'a' <= c && c <= 'f':
		return byte(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return byte(c - 'A' + 10), true
	}
	return 0, false
}

// hexRune reads n hex digits from v.
func hexRune(v []unit, n int) (rune, bool) {
	if len(v) < n {
		return 0, false
	}
	var c rune
	for _, u := range v[:n] {
		d, ok := unhex(u.c)
		if !ok {
			return 0, false
		}
		c = c<<4 | rune(d)
	}
	return c, true
}

// jsonEscape decodes the JSON escape at the start of v (which starts with
// a backslash) and returns the character and the units it took.
func jsonEscape(v []unit) (rune, int, bool) {
	if len(v) < 2 {
		return 0, 0, false
	}
	switch v[1].c {
	case '"', '\\', '/':
		return v[1].c, 2, true
	case 'b':
		return '\b', 2, true
	case 'f':
		return '\f', 2, true
	case 'n':
		return '\n', 2, true
	case 'r':
		return '\r', 2, true
	case 't':
		return '\t', 2, true
	case 'u', 'U':
		c, ok := hexRune(v[2:], 4)
		if !ok {
			return 0, 0, false
		}
		if utf16.IsSurrogate(c) && len(v) >= 12 && v[6].c == '\\' && (v[7].c == 'u' || v[7].c == 'U') {
			if lo, ok := hexRune(v[8:], 4); ok {
				if pair := utf16.DecodeRune(c, lo); pair != utf8.RuneError {
					return pair, 12, true
				}
			}
		}
		return c, 6, true
	}
	return 0, 0, false
}

// htmlReference decodes the character reference at the start of v (which
// starts with '&').
func htmlReference(v []unit) (rune, int, bool) {
	end := -1
	for j := 1; j < len(v) && j < 12; j++ {
		if v[j].c == ';' {
			end = j
			break
		}
	}
	if end < 2 {
		return 0, 0, false
	}
	var name strings.Builder
	for _, u := range v[1:end] {
		name.WriteRune(u.c)
	}
	ref := name.String()
	switch strings.ToLower(ref) {
	case "amp":
		return '&', end + 1, true
	case "lt":
		return '<', end + 1, true
	case "gt":
		return '>', end + 1, true
	case "quot":
		return '"', end + 1, true
	case "apos":
		return '\'', end + 1, true
	}
	if !strings.HasPrefix(ref, "#") {
		return 0, 0, false
	}
	base, digits := 10, ref[1:]
	if strings.HasPrefix(digits, "x") || strings.HasPrefix(digits, "X") {
		base, digits = 16, digits[1:]
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil || n > utf8.MaxRune {
		return 0, 0, false
	}
	return rune(n), end + 1, true
}

// scrub redacts key from every text field of e. newAPIError calls it on
// each error it builds; so does the redirect policy.
func scrub(e *APIError, key string) {
	scrubWith(e, newRedactor(key))
}

func scrubWith(e *APIError, r *redactor) {
	e.Message = r.redact(e.Message)
	e.Type = r.redact(e.Type)
	e.Code = r.redact(e.Code)
	e.Param = r.redact(e.Param)
	e.RequestID = r.redact(e.RequestID)
}

// scrubTransport redacts the API key from the header values of every
// response (x-request-id and every other), so that none of them carries it
// into a Transcription, an error, a record or a log. Location is left
// alone: it steers redirects, and the redirect policy shows it sanitised.
type scrubTransport struct {
	base http.RoundTripper
	r    *redactor
}

func (t *scrubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if resp != nil {
		t.scrubHeader(resp.Header)
	}
	return resp, err
}

func (t *scrubTransport) scrubHeader(h http.Header) {
	for name, values := range h {
		if name == "Location" {
			continue
		}
		for i, v := range values {
			values[i] = t.r.redact(v)
		}
	}
}

// CloseIdleConnections closes the idle connections of the transport
// underneath, as http.Client.CloseIdleConnections expects.
func (t *scrubTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// redactHandler is a slog.Handler that redacts the API key from the
// message and every attribute of each record before the handler beneath
// sees it.
type redactHandler struct {
	h slog.Handler
	r *redactor
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &redactHandler{h.h.WithAttrs(clean), h.r}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h.h.WithGroup(name), h.r}
}

// attr returns a with the key redacted from its value, resolved first.
// Values of other kinds than strings are rendered as the handlers beneath
// would render them (an error's message, a TextMarshaler's text, %+v) and
// replaced by the redacted rendering only when it held the key.
func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	a.Key = h.r.redact(a.Key)
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.r.redact(a.Value.String()))
	case slog.KindGroup:
		group := a.Value.Group()
		clean := make([]slog.Attr, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		a.Value = slog.GroupValue(clean...)
	case slog.KindAny:
		var text string
		switch v := a.Value.Any().(type) {
		case error:
			text = v.Error()
		case encoding.TextMarshaler:
			b, err := v.MarshalText()
			if err != nil {
				return a
			}
			text = string(b)
		default:
			text = fmt.Sprintf("%+v", v)
		}
		if clean := h.r.redact(text); clean != text {
			a.Value = slog.StringValue(clean)
		}
	}
	return a
}

// String describes the client without its secrets: the base URL
// (sanitised), whether an API key is set, and the limiter's state. It, and
// GoString, Format and LogValue, have value receivers so that a Client
// printed by value is as safe as a *Client.
func (c Client) String() string {
	return "transcribe.Client{" + c.describe() + "}"
}

// GoString is String for %#v.
func (c Client) GoString() string {
	return "&transcribe.Client{" + c.describe() + "}"
}

// Format implements fmt.Formatter, so that every verb (%v, %+v, %#v, %s,
// %q, and any other) prints String's text and never the key.
func (c Client) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, c.GoString())
	case verb == 'v' || verb == 's':
		fmt.Fprint(f, c.String())
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(c.String()))
	default:
		fmt.Fprintf(f, "%%!%c(%s)", verb, c.String())
	}
}

// LogValue implements slog.LogValuer: a group of the base URL (sanitised),
// whether an API key is set, and the limiter's state.
func (c Client) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("base_url", c.safeBaseURL()),
		slog.Bool("api_key_set", c.apiKey != ""),
	}
	if c.limiter != nil {
		attrs = append(attrs, slog.String("limiter", limiterSummary(c.limiter.Snapshot())))
	}
	return slog.GroupValue(attrs...)
}

func (c Client) describe() string {
	key := "no API key"
	if c.apiKey != "" {
		key = "API key " + redacted
	}
	s := fmt.Sprintf("base URL %s, %s", c.safeBaseURL(), key)
	if c.limiter != nil {
		s += ", limiter: " + limiterSummary(c.limiter.Snapshot())
	}
	return s
}

// safeBaseURL is the base URL without user info, query or the key.
func (c Client) safeBaseURL() string {
	if c.baseURL == "" {
		return "(none)"
	}
	return newRedactor(c.apiKey).redact(sanitizeURL(c.baseURL))
}

// limiterSummary is one line of a limiter's state: its request budget
// and what is in flight.
func limiterSummary(s ratelimit.Stats) string {
	var b strings.Builder
	budget := func(name string, bs ratelimit.BudgetStats) {
		switch {
		case bs.Source == "none" || bs.Source == "":
			return
		case bs.Limit > 0 && bs.Window > 0:
			fmt.Fprintf(&b, "%s %g per %v (%s), ", name, bs.Limit, bs.Window, bs.Source)
		default:
			fmt.Fprintf(&b, "%s %s, ", name, bs.Source)
		}
	}
	budget("requests", s.Requests)
	budget("tokens", s.Tokens)
	budget("audio seconds", s.Audio)
	if b.Len() == 0 {
		b.WriteString("no budget known yet, ")
	}
	fmt.Fprintf(&b, "%d/%d in flight", s.InFlight, s.MaxInFlight)
	return b.String()
}
