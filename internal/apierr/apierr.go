// Package apierr reads the error bodies of servers that speak OpenAI's
// transcription protocol, in every shape they send them, and tells an
// exhausted quota from everything else. It is the one classifier that the
// client (transcribe) and the limiter's HTTP transport (ratelimit) share,
// so that both agree on what a body means.
//
// Parse never fails: whatever the body, it returns what it could read, and
// it never allocates more than the body's own size (nor more than
// MaxMessage plus three times MaxToken bytes, whatever the body's size). It
// reads truncated JSON as far as it goes, so the first few kilobytes of a
// body are enough.
package apierr

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what Parse keeps of a body: a longer message or token is cut
// at a character boundary.
const (
	MaxMessage = 2048 // bytes of Fields.Message
	MaxToken   = 256  // bytes of Fields.Type, Fields.Code and Fields.Param each
)

// Shape is the form in which a body came.
type Shape uint8

// The shapes Parse tells apart.
const (
	// ShapeEmpty: no body, or only white space.
	ShapeEmpty Shape = iota
	// ShapeError: an object with an "error" member, OpenAI's
	// {"error":{"message","type","param","code"}} and its variants: Azure's
	// string codes ("429", "InsufficientQuota"), numeric codes (LocalAI,
	// OpenRouter), {"error":"text"}, and the same wrapped in an array
	// (Google's [{"error":{…}}]).
	ShapeError
	// ShapeTopLevel: an object with "message" or "code" at the top, as
	// some gateways and vLLM send ({"object":"error","message",…,"code":400}).
	ShapeTopLevel
	// ShapeDetail: FastAPI's {"detail": …}, a string, an object or a list
	// of validation errors (speaches, vLLM, many proxies).
	ShapeDetail
	// ShapeJSON: JSON of no known error shape: {}, null, [], a transcript.
	ShapeJSON
	// ShapeText: plain text, or a bare JSON string (whisper.cpp's server).
	ShapeText
	// ShapeHTML: an HTML page, as gateways and login pages send. It says
	// nothing useful: Message is empty.
	ShapeHTML
)

var shapeNames = [...]string{"empty", "error object", "top-level object", "detail object", "JSON", "text", "HTML"}

func (s Shape) String() string {
	if int(s) < len(shapeNames) {
		return shapeNames[s]
	}
	return "unknown"
}

// IsErrorObject reports whether s is one of the JSON shapes in which
// servers send errors (ShapeError, ShapeTopLevel, ShapeDetail): a body
// that no server sends as a transcript.
func (s Shape) IsErrorObject() bool {
	return s == ShapeError || s == ShapeTopLevel || s == ShapeDetail
}

// Fields is what an error body says. Every field is valid UTF-8 with
// control characters (escape sequences, CR, LF, tabs) replaced by spaces,
// trimmed of surrounding space, and bounded by MaxMessage or MaxToken. A
// JSON number (a code of 429) is kept as written; null is "".
type Fields struct {
	Message string // what the server says, for people
	Type    string // e.g. "invalid_request_error", "insufficient_quota", "requests"
	Code    string // e.g. "rate_limit_exceeded", "insufficient_quota", "InsufficientQuota", "429"
	Param   string // the request field at fault, e.g. "file"; FastAPI's last element of loc
	Shape   Shape
}

// Parse reads the body of an answer with the given status and header. It
// understands:
//
//   - OpenAI's {"error":{"message","type","param","code"}}, with a code that
//     is null, a string or a number, and Azure's variant
//     ({"error":{"code":"429","message":…}}, {"error":{"code":"InsufficientQuota",…}}),
//     members matched case-insensitively as encoding/json does ("Code",
//     "Message");
//   - {"error":"text"}, and an error object inside an array;
//   - a top-level {"code":…,"message":…,"type":…,"param":…};
//   - FastAPI's {"detail":"text"}, {"detail":{…}} (read like an error
//     object) and {"detail":[{"loc":[…],"msg":…,"type":…},…]} (the messages
//     joined with "; ", the first type, the last element of the first loc
//     as Param);
//   - plain text (the whole body is the message) and HTML pages (no
//     message: a gateway's page says nothing useful).
//
// status is not needed to read a body and is accepted for symmetry with
// IsQuota; header's Content-Type helps to recognise an HTML page.
func Parse(status int, header http.Header, body []byte) Fields {
	_ = status
	b := trimSpace(body)
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF { // a byte order mark
		b = trimSpace(b[3:])
	}
	if len(b) == 0 {
		return Fields{Shape: ShapeEmpty}
	}
	if IsHTML(header.Get("Content-Type"), b) {
		return Fields{Shape: ShapeHTML}
	}
	switch b[0] {
	case '{':
		var f Fields
		if shape, ok := f.fromObject(b, 0); ok {
			f.Shape = shape
			return f
		}
	case '[':
		if f, ok := fromArray(b); ok {
			return f
		}
	case '"':
		if end, closed := skipString(b, 0); closed && len(trimSpace(b[end:])) == 0 {
			return Fields{Message: unquote(b[1:end-1], MaxMessage), Shape: ShapeText}
		}
	case 'n', 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if string(b) == "null" || string(b) == "true" || string(b) == "false" || isNumber(b) {
			return Fields{Shape: ShapeJSON}
		}
	case '<':
		return Fields{Shape: ShapeHTML}
	}
	return Fields{Message: clean(b, MaxMessage), Shape: ShapeText}
}

// IsQuota reports whether an answer with this status and these fields
// says that the account has no money or credit left: an error that no
// retry can mend and that must stop every request paid from the account.
// That is:
//
//   - status 402 Payment Required, whatever the body (OpenRouter's and
//     DeepSeek's "Insufficient credits", "Insufficient Balance");
//   - a code or type naming an exhausted quota, compared without regard to
//     case, "_" or "-": insufficient_quota (OpenAI, in code or in type,
//     code null in older answers), InsufficientQuota (Azure),
//     insufficient_credits (gateways), billing_hard_limit_reached
//     (OpenAI's 400 when a spending limit is reached), budget_exceeded
//     (LiteLLM's proxy budgets), blocked_api_access (Groq's 400 once an
//     organisation's spend limit is reached), or the code "402";
//   - a message carrying the code insufficient_quota as a word, or OpenAI's
//     words "exceeded your current quota", as proxies send when they pass
//     on only the upstream error's text ({"detail":"Error code: 429 -
//     {'error': {… 'code': 'insufficient_quota'}}"}).
//
// A code of rate_limit_exceeded is never quota, whatever the type or
// message: it is a rate limit, which waiting mends. Any status qualifies,
// 200 included: a server that puts an error object in a 200 is still out
// of money.
func IsQuota(status int, f Fields) bool {
	if status == http.StatusPaymentRequired {
		return true
	}
	if normEqual(f.Code, "rate_limit_exceeded") {
		return false
	}
	for _, q := range quotaCodes {
		if normEqual(f.Code, q) || normEqual(f.Type, q) {
			return true
		}
	}
	return f.Code == "402" || containsWord(f.Message, "insufficient_quota") ||
		containsFold(f.Message, "exceeded your current quota")
}

// quotaCodes are the codes and types that name an exhausted quota, as
// normEqual compares them.
var quotaCodes = [...]string{
	"insufficient_quota",         // OpenAI; Azure's "InsufficientQuota"
	"insufficient_credits",       // gateways (with type insufficient_quota)
	"billing_hard_limit_reached", // OpenAI, 400
	"budget_exceeded",            // LiteLLM proxy budgets
	"blocked_api_access",         // Groq, 400 once the organisation's spend limit is reached (console.groq.com/docs/spend-limits)
}

// fromObject reads the object b (which starts with '{') into the fields
// of f not yet set, and returns the object's shape. ok is false when the
// object is malformed before anything was found: then the body is better
// read as text. Objects nested in "error" and "detail" are read to a
// small depth.
func (f *Fields) fromObject(b []byte, depth int) (shape Shape, ok bool) {
	var errV, detailV, msgV, altMsgV, typeV, codeV, paramV []byte
	it := members{b: b, i: 1}
	found := false
	for {
		key, val, more := it.next()
		if !more {
			break
		}
		found = true
		switch {
		case equalKey(key, "error"):
			errV = first(errV, val)
		case equalKey(key, "detail"):
			detailV = first(detailV, val)
		case equalKey(key, "message"):
			msgV = first(msgV, val)
		case equalKey(key, "msg"):
			altMsgV = first(altMsgV, val)
		case equalKey(key, "type"):
			typeV = first(typeV, val)
		case equalKey(key, "code"):
			codeV = first(codeV, val)
		case equalKey(key, "param"):
			paramV = first(paramV, val)
		}
	}
	if it.bad && !found {
		return ShapeText, false
	}
	shape = ShapeJSON
	if len(errV) > 0 && !isNull(errV) {
		shape = ShapeError
		if depth < 3 {
			f.fromValue(errV, depth+1)
		}
	} else if len(detailV) > 0 && !isNull(detailV) {
		shape = ShapeDetail
		if depth < 3 {
			f.fromValue(detailV, depth+1)
		}
	}
	if msgV == nil {
		msgV = altMsgV
	}
	if shape == ShapeJSON && (isScalar(msgV) || isScalar(codeV)) {
		shape = ShapeTopLevel
	}
	if f.Message == "" {
		f.Message = scalar(msgV, MaxMessage)
	}
	if f.Type == "" {
		f.Type = scalar(typeV, MaxToken)
	}
	if f.Code == "" {
		f.Code = scalar(codeV, MaxToken)
	}
	if f.Param == "" {
		f.Param = scalar(paramV, MaxToken)
	}
	return shape, true
}

// fromValue reads the value of an "error" or "detail" member: an object
// read like the body, a string taken as the message, or FastAPI's list of
// validation errors.
func (f *Fields) fromValue(v []byte, depth int) {
	switch v[0] {
	case '{':
		f.fromObject(v, depth)
	case '"':
		if f.Message == "" {
			f.Message = scalar(v, MaxMessage)
		}
	case '[':
		f.fromDetailList(v)
	}
}

// fromDetailList reads FastAPI's [{"loc":["body","file"],"msg":"Field
// required","type":"missing"},…]: the messages joined with "; ", the first
// type, and the last element of the first loc as the param.
func (f *Fields) fromDetailList(v []byte) {
	// Two passes: the first measures the messages, so that the second
	// writes them into one allocation no bigger than their raw text.
	size := 0
	for it := (elements{b: v, i: 1}); ; {
		e, more := it.next()
		if !more {
			break
		}
		if msgV, _, _ := detailItem(e); msgV != nil {
			size += len(msgV) // the quotes make room for the "; " between
		}
	}
	var msg strings.Builder
	if f.Message == "" && size > 0 {
		msg.Grow(min(size, MaxMessage))
	}
	for it := (elements{b: v, i: 1}); ; {
		e, more := it.next()
		if !more {
			break
		}
		msgV, typeV, locV := detailItem(e)
		if f.Message == "" && len(msgV) > 0 && msgV[0] == '"' && msg.Len()+3 <= MaxMessage {
			if msg.Len() > 0 {
				msg.WriteString("; ")
			}
			appendUnquoted(&msg, stringContents(msgV), MaxMessage)
		}
		if f.Type == "" {
			f.Type = scalar(typeV, MaxToken)
		}
		if f.Param == "" && len(locV) > 0 && locV[0] == '[' {
			var last []byte
			for loc := (elements{b: locV, i: 1}); ; {
				x, more := loc.next()
				if !more {
					break
				}
				last = x
			}
			f.Param = scalar(last, MaxToken)
		}
	}
	if f.Message == "" {
		f.Message = strings.TrimSpace(msg.String())
	}
}

// detailItem returns the raw msg (or message), type and loc of one of
// FastAPI's validation errors; nil for what it lacks or when e is not an
// object.
func detailItem(e []byte) (msgV, typeV, locV []byte) {
	if e[0] != '{' {
		return nil, nil, nil
	}
	var altMsgV []byte
	for m := (members{b: e, i: 1}); ; {
		key, val, more := m.next()
		if !more {
			break
		}
		switch {
		case equalKey(key, "msg"):
			msgV = first(msgV, val)
		case equalKey(key, "message"):
			altMsgV = first(altMsgV, val)
		case equalKey(key, "type"):
			typeV = first(typeV, val)
		case equalKey(key, "loc"):
			locV = first(locV, val)
		}
	}
	if msgV == nil {
		msgV = altMsgV
	}
	if len(msgV) > 0 && msgV[0] != '"' {
		msgV = nil
	}
	return msgV, typeV, locV
}

// fromArray reads a body that is a JSON array: an error object inside one
// (Google's OpenAI-compatible endpoint sends [{"error":{…}}]) is read as
// the body; another array is JSON of no known shape; a body that only
// starts with "[" ("[Errno 2] No such file") is text.
func fromArray(b []byte) (Fields, bool) {
	it := elements{b: b, i: 1}
	e, more := it.next()
	if more && e[0] == '{' {
		var f Fields
		if shape, ok := f.fromObject(e, 0); ok {
			f.Shape = shape
			return f, true
		}
	}
	if it.bad {
		return Fields{}, false
	}
	for more {
		_, more = it.next()
	}
	if it.bad || !it.closed || len(trimSpace(b[it.i:])) > 0 {
		return Fields{}, false
	}
	return Fields{Shape: ShapeJSON}, true
}

// members iterates over the members of a JSON object, leniently: values
// are skipped by counting brackets, and a body cut short ends the
// iteration as if the object closed there.
type members struct {
	b   []byte
	i   int
	bad bool // the object is malformed (not merely cut short)
}

// next returns the next member's key (its raw bytes between the quotes)
// and value (its raw bytes, at least one).
func (m *members) next() (key, val []byte, ok bool) {
	b := m.b
	i := skipSpace(b, m.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == '}' {
		return nil, nil, false
	}
	if b[i] != '"' {
		m.bad = true
		return nil, nil, false
	}
	end, closed := skipString(b, i)
	if !closed {
		return nil, nil, false
	}
	key = b[i+1 : end-1]
	i = skipSpace(b, end)
	if i >= len(b) {
		return nil, nil, false
	}
	if b[i] != ':' {
		m.bad = true
		return nil, nil, false
	}
	i = skipSpace(b, i+1)
	if i >= len(b) {
		return nil, nil, false
	}
	end = skipValue(b, i)
	if end == i {
		m.bad = true
		return nil, nil, false
	}
	m.i = end
	return key, b[i:end], true
}

// elements iterates over the elements of a JSON array, as members does
// over an object's members.
type elements struct {
	b      []byte
	i      int
	bad    bool
	closed bool // the closing bracket was reached
}

func (e *elements) next() (val []byte, ok bool) {
	b := e.b
	i := skipSpace(b, e.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) {
		return nil, false
	}
	if b[i] == ']' {
		e.closed, e.i = true, i+1
		return nil, false
	}
	end := skipValue(b, i)
	if end == i {
		e.bad = true
		return nil, false
	}
	e.i = end
	return b[i:end], true
}

// skipValue returns the end of the JSON value at b[i], or len(b) when it
// is cut short, or i when b[i] cannot start a value. Objects and arrays
// are skipped by counting brackets, without a stack: nesting costs no
// memory.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				j, _ = skipString(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(b)
	}
	j := i
	for j < len(b) && !isDelim(b[j]) {
		j++
	}
	return j
}

// skipString returns the end of the JSON string at b[i] ('"'), just past
// its closing quote; closed is false when the string is cut short.
func skipString(b []byte, i int) (end int, closed bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(b), false
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'
}

func first(have, v []byte) []byte {
	if have != nil {
		return have
	}
	return v
}

func isNull(v []byte) bool { return string(v) == "null" }

// isScalar reports whether v is a JSON string or number.
func isScalar(v []byte) bool {
	return len(v) > 0 && (v[0] == '"' || isNumber(v))
}

func isNumber(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
		case c == '-' && i == 0:
		case c == '.', c == 'e', c == 'E', c == '+', c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return v[0] != '-' || len(v) > 1
}

// scalar renders a JSON string (unquoted) or number (as written), at most
// max bytes of it; null, booleans, objects and arrays are "". A message
// cut short by the end of the body is kept as far as it goes; a token
// (max is MaxToken) is not: its start may name something else
// ("insufficient_quota" is the start of a longer code).
func scalar(v []byte, max int) string {
	switch {
	case len(v) == 0:
		return ""
	case v[0] == '"':
		if _, closed := skipString(v, 0); !closed && max == MaxToken {
			return ""
		}
		return unquote(stringContents(v), max)
	case isNumber(v):
		return clean(v, max)
	}
	return ""
}

// stringContents returns the contents of the JSON string v (which starts
// with a quote): between the quotes, or to the end when it is cut short.
func stringContents(v []byte) []byte {
	if end, closed := skipString(v, 0); closed {
		return v[1 : end-1]
	}
	return v[1:]
}

// equalKey reports whether the raw JSON key k is name, ignoring ASCII
// case as encoding/json does. Keys written with escapes are decoded first.
func equalKey(k []byte, name string) bool {
	if len(k) == len(name) && hasPrefixFold(k, name) {
		return true
	}
	if len(k) > 6*len(name) || !hasByte(k, '\\') {
		return false
	}
	var buf [64]byte
	n := unquoteTo(buf[:], k)
	return n == len(name) && hasPrefixFold(buf[:n], name)
}

func hasByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// unquote decodes the contents of a JSON string, at most max bytes of the
// result, cleaned as clean cleans text. The result is never longer than
// raw: every escape decodes to no more bytes than it takes.
func unquote(raw []byte, max int) string {
	if !hasByte(raw, '\\') {
		return clean(raw, max)
	}
	var sb strings.Builder
	sb.Grow(min(len(raw), max))
	appendUnquoted(&sb, raw, max)
	return strings.TrimSpace(sb.String())
}

// appendUnquoted decodes the contents of a JSON string into sb, cleaned,
// until sb holds max bytes. It writes no more bytes than raw has.
func appendUnquoted(sb *strings.Builder, raw []byte, max int) {
	var enc [utf8.UTFMax]byte
	for i := 0; i < len(raw); {
		r, size := decodeAt(raw, i)
		i += size
		if r < 0 { // an invalid byte, or an escape cut short: dropped
			continue
		}
		out := enc[:1]
		if isControl(r) {
			out[0] = ' '
		} else {
			out = enc[:utf8.EncodeRune(enc[:], r)]
		}
		if sb.Len()+len(out) > max {
			return
		}
		sb.Write(out)
	}
}

// unquoteTo decodes raw into buf as far as it fits and returns the length
// decoded, or len(buf)+1 when it does not fit.
func unquoteTo(buf []byte, raw []byte) int {
	n := 0
	for i := 0; i < len(raw); {
		r, size := decodeAt(raw, i)
		i += size
		if r < 0 {
			continue
		}
		if n+utf8.RuneLen(r) > len(buf) {
			return len(buf) + 1
		}
		n += utf8.EncodeRune(buf[n:], r)
	}
	return n
}

// decodeAt decodes the character at raw[i] of a JSON string's contents:
// an escape or a UTF-8 sequence. r is -1 for bytes to drop (invalid UTF-8,
// escapes that are malformed or cut short); size is always at least 1.
func decodeAt(raw []byte, i int) (r rune, size int) {
	c := raw[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), 1
		}
		r, size = utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			return -1, 1
		}
		return r, size
	}
	if i+1 >= len(raw) {
		return -1, 1
	}
	switch raw[i+1] {
	case '"', '\\', '/':
		return rune(raw[i+1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r1, ok := hex4(raw, i+2)
		if !ok {
			return -1, 2
		}
		if 0xD800 <= r1 && r1 < 0xDC00 { // a high surrogate: a pair follows
			if i+11 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if r2, ok := hex4(raw, i+8); ok && 0xDC00 <= r2 && r2 < 0xE000 {
					return (r1-0xD800)<<10 | (r2 - 0xDC00) + 0x10000, 12
				}
			}
			return utf8.RuneError, 6
		}
		if 0xDC00 <= r1 && r1 < 0xE000 {
			return utf8.RuneError, 6
		}
		return r1, 6
	}
	return -1, 2
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// isControl reports whether r is a C0 or C1 control character, DEL, or a
// bidirectional control or line separator: what a terminal may act upon
// (escape sequences, carriage returns) or what reorders text on screen.
func isControl(r rune) bool {
	return r < 0x20 || 0x7F <= r && r < 0xA0 || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

// clean returns text as a string of at most max bytes: invalid UTF-8
// dropped, control characters replaced by spaces, surrounding space
// trimmed. The result is never longer than text.
func clean(text []byte, max int) string {
	text = trimSpace(text)
	if len(text) <= max && isClean(text) {
		return string(text)
	}
	var sb strings.Builder
	sb.Grow(min(len(text), max))
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			i++
			continue
		case isControl(r):
			if sb.Len()+1 > max {
				return strings.TrimSpace(sb.String())
			}
			sb.WriteByte(' ')
		default:
			if sb.Len()+size > max {
				return strings.TrimSpace(sb.String())
			}
			sb.Write(text[i : i+size])
		}
		i += size
	}
	return strings.TrimSpace(sb.String())
}

func isClean(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7F {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || isControl(r) {
			return false
		}
		i += size
	}
	return true
}

// IsHTML reports whether body is an HTML page rather than an answer:
// trimmed, it starts with a document's first tag ("<!DOCTYPE", "<html",
// "<head", "<body", "<?xml", in any case), or it is sent as text/html and
// has one of them in its first kilobyte. A body sent as text/html without
// them is not: whisper.cpp's server sends its plain-text answers so.
func IsHTML(contentType string, body []byte) bool {
	b := trimSpace(body)
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		b = trimSpace(b[3:])
	}
	for _, p := range htmlStarts {
		if hasPrefixFold(b, p) {
			return true
		}
	}
	if !hasPrefixFold(contentType, "text/html") && !hasPrefixFold(contentType, "application/xhtml") {
		return false
	}
	head := b[:min(len(b), 1024)]
	for _, p := range htmlStarts {
		if containsFold(head, p) {
			return true
		}
	}
	return false
}

// Excerpt returns the start of body for an error message: at most max
// bytes, cleaned as Fields are (valid UTF-8, control characters replaced
// by spaces, trimmed), followed by "…" when the body was longer.
func Excerpt(body []byte, max int) string {
	s := clean(body[:min(len(body), max+utf8.UTFMax)], max)
	if len(trimSpace(body)) > max {
		s += "…"
	}
	return s
}

// htmlStarts are the tags an HTML page starts with.
var htmlStarts = [...]string{"<!doctype", "<html", "<head", "<body", "<?xml"}

func hasPrefixFold[T string | []byte](b T, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		if lower(b[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains sub (lower case ASCII),
// ignoring ASCII case.
func containsFold[T string | []byte](s T, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// containsWord reports whether s contains word with no letter, digit or
// underscore on either side.
func containsWord(s, word string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(word)
		if (j == 0 || !isWordByte(s[j-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		i = j + 1
	}
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// normEqual reports whether s is code (lower case, with underscores),
// ignoring case and the separators "_", "-", " " and ".": so that
// "InsufficientQuota" and "insufficient-quota" are "insufficient_quota".
func normEqual(s, code string) bool {
	i, j := 0, 0
	for {
		for i < len(s) && isSep(s[i]) {
			i++
		}
		for j < len(code) && isSep(code[j]) {
			j++
		}
		if i == len(s) || j == len(code) {
			return i == len(s) && j == len(code) && len(code) > 0
		}
		if lower(s[i]) != code[j] {
			return false
		}
		i++
		j++
	}
}

func isSep(c byte) bool { return c == '_' || c == '-' || c == ' ' || c == '.' }
