package apierr

import (
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// Bodies as servers send them. Where a body comes from a public report,
// the comment names it.
var (
	openAIQuota = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	// Older OpenAI answers: code null, the type alone says quota.
	openAIQuotaOld = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":null}}`
	openAIRate     = `{"error":{"message":"Rate limit reached for whisper-1 in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	// Azure OpenAI: the code is the status as a string, no type.
	azureRate = `{"error":{"code":"429","message":"Requests to the Audio_Transcriptions_Create Operation under Azure OpenAI API version 2024-06-01 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 9 seconds."}}`
	// Azure (Azure-Samples/jp-azureopenai-samples#35), inside an error
	// object and bare.
	azureQuota    = `{"error":{"code":"InsufficientQuota","message":"The specified capacity '60' of account deployment is bigger than available capacity '0' for UsageName 'Tokens Per Minute (thousands) - Whisper'."}}`
	azureQuotaTop = `{"code": "InsufficientQuota", "message": "The specified capacity '60' of account deployment is bigger than available capacity '0'."}`
	// OpenAI's 400 when an organisation's spending limit is reached
	// (dfinke/PowerShellAI#127).
	billingLimit = `{"error":{"code":"billing_hard_limit_reached","message":"Billing hard limit has been reached","param":null,"type":"invalid_request_error"}}`
	// OpenRouter's 402 (Gitlawb/openclaude#43): a numeric code.
	openRouter402 = `{"error":{"message":"Insufficient credits. This account never purchased credits.","code":402}}`
	// A gateway's 402 (Gitlawb/openclaude#1528).
	gatewayCredits = `{"error":{"message":"Insufficient credits — top up your balance","type":"insufficient_quota","code":"insufficient_credits"}}`
	// LiteLLM's proxy budget (BerriAI/litellm docs, PR #37000).
	liteLLMBudget = `{"error":{"message":"LiteLLM User: engineer-1, exceeded budget for model=whisper-1","type":"budget_exceeded","param":null,"code":"429"}}`
	// A FastAPI proxy passing on openai-python's exception text (the shape
	// in OpenHands/OpenHands#998).
	proxiedQuota = `{"detail":"Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan and billing details.', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}"}`
	// A proxy that passes on only the message (HeyPuter/puter#1977).
	messageOnlyQuota = `{"success":false,"error":"429 You exceeded your current quota, please check your plan and billing details."}`
	fastAPIDetailObj = `{"detail":{"code":"insufficient_quota","message":"You exceeded your current quota","type":"insufficient_quota"}}`
	fastAPIWrapped   = `{"detail":{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}}`
	fastAPIList      = `{"detail":[{"type":"missing","loc":["body","file"],"msg":"Field required","input":null},{"type":"missing","loc":["body","model"],"msg":"Field required","input":null}]}`
	vllmError        = `{"object":"error","message":"Maximum clip duration (30s) exceeded","type":"BadRequestError","param":null,"code":400}`
	googleArray      = `[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]`
	badGateway       = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)

func TestParse(t *testing.T) {
	html := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		want   Fields
	}{
		{"openai quota", nil, openAIQuota, Fields{Message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", Type: "insufficient_quota", Code: "insufficient_quota", Shape: ShapeError}},
		{"openai null code", nil, openAIQuotaOld, Fields{Message: "You exceeded your current quota, please check your plan and billing details.", Type: "insufficient_quota", Shape: ShapeError}},
		{"openai rate limit", nil, openAIRate, Fields{Message: "Rate limit reached for whisper-1 in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", Type: "requests", Code: "rate_limit_exceeded", Shape: ShapeError}},
		{"openai param", nil, `{"error":{"message":"Audio file is too short.","type":"invalid_request_error","param":"file","code":"audio_too_short"}}`, Fields{Message: "Audio file is too short.", Type: "invalid_request_error", Code: "audio_too_short", Param: "file", Shape: ShapeError}},
		{"azure rate limit", nil, azureRate, Fields{Message: "Requests to the Audio_Transcriptions_Create Operation under Azure OpenAI API version 2024-06-01 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 9 seconds.", Code: "429", Shape: ShapeError}},
		{"azure quota", nil, azureQuota, Fields{Message: "The specified capacity '60' of account deployment is bigger than available capacity '0' for UsageName 'Tokens Per Minute (thousands) - Whisper'.", Code: "InsufficientQuota", Shape: ShapeError}},
		{"azure capitalised", nil, `{"Code":"InsufficientQuota","Message":"Operation cannot be completed without additional quota."}`, Fields{Message: "Operation cannot be completed without additional quota.", Code: "InsufficientQuota", Shape: ShapeTopLevel}},
		{"top level", nil, azureQuotaTop, Fields{Message: "The specified capacity '60' of account deployment is bigger than available capacity '0'.", Code: "InsufficientQuota", Shape: ShapeTopLevel}},
		{"top level code only", nil, `{"code":"insufficient_quota"}`, Fields{Code: "insufficient_quota", Shape: ShapeTopLevel}},
		{"numeric code", nil, openRouter402, Fields{Message: "Insufficient credits. This account never purchased credits.", Code: "402", Shape: ShapeError}},
		{"vllm", nil, vllmError, Fields{Message: "Maximum clip duration (30s) exceeded", Type: "BadRequestError", Code: "400", Shape: ShapeTopLevel}},
		{"error string", nil, `{"error":"Invalid API key"}`, Fields{Message: "Invalid API key", Shape: ShapeError}},
		{"google array", nil, googleArray, Fields{Message: "Resource has been exhausted (e.g. check quota).", Code: "429", Shape: ShapeError}},
		{"detail string", nil, `{"detail":"Invalid API key"}`, Fields{Message: "Invalid API key", Shape: ShapeDetail}},
		{"detail object", nil, fastAPIDetailObj, Fields{Message: "You exceeded your current quota", Type: "insufficient_quota", Code: "insufficient_quota", Shape: ShapeDetail}},
		{"detail wrapping an error", nil, fastAPIWrapped, Fields{Message: "You exceeded your current quota", Type: "insufficient_quota", Code: "insufficient_quota", Shape: ShapeDetail}},
		{"detail list", nil, fastAPIList, Fields{Message: "Field required; Field required", Type: "missing", Param: "file", Shape: ShapeDetail}},
		{"detail null", nil, `{"detail":null}`, Fields{Shape: ShapeJSON}},
		{"error null", nil, `{"error":null,"text":"hello"}`, Fields{Shape: ShapeJSON}},
		{"transcript", nil, `{"text":"hello"}`, Fields{Shape: ShapeJSON}},
		{"empty object", nil, `{}`, Fields{Shape: ShapeJSON}},
		{"null", nil, `null`, Fields{Shape: ShapeJSON}},
		{"empty array", nil, ` [ ] `, Fields{Shape: ShapeJSON}},
		{"number", nil, `500`, Fields{Shape: ShapeJSON}},
		{"json string", nil, `"Internal Server Error"`, Fields{Message: "Internal Server Error", Shape: ShapeText}},
		{"plain text", nil, "Internal Server Error\n", Fields{Message: "Internal Server Error", Shape: ShapeText}},
		{"whisper.cpp", html, "Invalid request", Fields{Message: "Invalid request", Shape: ShapeText}},
		{"brackets in text", nil, "[Errno 2] No such file or directory: 'x.wav'", Fields{Message: "[Errno 2] No such file or directory: 'x.wav'", Shape: ShapeText}},
		{"brace in text", nil, "{oops} upstream failed", Fields{Message: "{oops} upstream failed", Shape: ShapeText}},
		{"html", html, badGateway, Fields{Shape: ShapeHTML}},
		{"html without header", nil, "<!DOCTYPE html><html><body>Sign in</body></html>", Fields{Shape: ShapeHTML}},
		{"html after text", html, "Error\n<html><body>oops</body></html>", Fields{Shape: ShapeHTML}},
		{"empty", nil, " \r\n", Fields{Shape: ShapeEmpty}},
		{"bom", nil, "\ufeff{\"error\":{\"message\":\"x\"}}", Fields{Message: "x", Shape: ShapeError}},
		{"escapes", nil, `{"error":{"message":"caf\u00e9 \ud83d\ude00 line\nbreak \u001b[31mred\"q\" \/"}}`, Fields{Message: "café 😀 line break  [31mred\"q\" /", Shape: ShapeError}},
		{"raw controls", nil, "bad\x1b[2Kline\r\nall files done\x00\xff", Fields{Message: "bad [2Kline  all files done", Shape: ShapeText}},
		{"escaped key", nil, `{"\u0065rror":{"\u006dessage":"x"}}`, Fields{Message: "x", Shape: ShapeError}},
		{"message quoting a code", nil, `{"error":{"message":"not \"code\":\"insufficient_quota\"","code":"rate_limit_exceeded"}}`, Fields{Message: `not "code":"insufficient_quota"`, Code: "rate_limit_exceeded", Shape: ShapeError}},
		{"cut short", nil, openAIQuota[:len(openAIQuota)-10], Fields{Message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", Type: "insufficient_quota", Shape: ShapeError}},
		{"cut in the message", nil, `{"error":{"message":"You exceeded your cur`, Fields{Message: "You exceeded your cur", Shape: ShapeError}},
		{"nested values skipped", nil, `{"meta":{"a":[1,{"code":"x"}],"b":"}"},"error":{"message":"m","metadata":{"code":"y"},"code":"z"}}`, Fields{Message: "m", Code: "z", Shape: ShapeError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(400, tc.header, []byte(tc.body))
			if got != tc.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.body, got, tc.want)
			}
		})
	}
}

func TestParseBounds(t *testing.T) {
	long := strings.Repeat("é", MaxMessage) // two bytes each
	f := Parse(500, nil, []byte(`{"error":{"message":"`+long+`","code":"`+strings.Repeat("c", 1000)+`"}}`))
	if len(f.Message) > MaxMessage || len(f.Message) < MaxMessage-1 || !utf8.ValidString(f.Message) {
		t.Errorf("message of %d bytes, valid %v", len(f.Message), utf8.ValidString(f.Message))
	}
	if len(f.Code) != MaxToken {
		t.Errorf("code of %d bytes", len(f.Code))
	}
	f = Parse(500, nil, []byte(strings.Repeat("x", 3*MaxMessage)))
	if len(f.Message) != MaxMessage {
		t.Errorf("text message of %d bytes", len(f.Message))
	}
}

func TestIsQuota(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"openai", 429, openAIQuota, true},
		{"openai, code null", 429, openAIQuotaOld, true},
		{"openai in a 200", 200, openAIQuota, true},
		{"rate limit", 429, openAIRate, false},
		{"azure rate limit", 429, azureRate, false},
		{"azure quota", 429, azureQuota, true},
		{"azure quota, top level", 429, azureQuotaTop, true},
		{"top-level code", 429, `{"code":"insufficient_quota","message":"quota"}`, true},
		{"billing hard limit", 400, billingLimit, true},
		{"openrouter 402", 402, openRouter402, true},
		{"any 402", 402, `Payment Required`, true},
		{"code 402 in a 200", 200, openRouter402, true},
		{"gateway credits", 402, gatewayCredits, true},
		{"litellm budget", 429, liteLLMBudget, true},
		{"fastapi detail object", 429, fastAPIDetailObj, true},
		{"fastapi wrapped", 429, fastAPIWrapped, true},
		{"fastapi detail string", 429, `{"detail":"insufficient_quota"}`, true},
		{"proxied exception text", 500, proxiedQuota, true},
		{"message only", 429, messageOnlyQuota, true},
		{"plain text", 429, "insufficient_quota", true},
		{"rate limit quoting quota", 429, `{"error":{"message":"not insufficient_quota","type":"insufficient_quota","code":"rate_limit_exceeded"}}`, false},
		{"word inside another", 429, `{"error":{"message":"no_insufficient_quota_here"}}`, false},
		{"google exhausted", 429, googleArray, false},
		{"server error", 500, `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`, false},
		{"html 429", 429, badGateway, false},
		{"empty 429", 429, ``, false},
		{"tokens", 429, `{"error":{"message":"Rate limit reached on tokens per min (TPM)","type":"tokens","code":"rate_limit_exceeded"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Parse(tc.status, nil, []byte(tc.body))
			if got := IsQuota(tc.status, f); got != tc.want {
				t.Errorf("IsQuota(%d, %+v) = %v", tc.status, f, got)
			}
		})
	}
}

// Parse allocates no more than the body's size, whatever the body: deep
// nesting, many small objects, escapes that decode shorter, long lists.
func TestParseAllocations(t *testing.T) {
	bodies := map[string]string{
		"deep nesting":      `{"error":` + strings.Repeat("[", 50000) + strings.Repeat("]", 50000) + `}`,
		"deep objects":      strings.Repeat(`{"error":`, 20000),
		"many small":        `{"detail":[` + strings.Repeat(`{"msg":"a","type":"b","loc":["c"]},`, 5000) + `{}]}`,
		"many empty":        `{"detail":[` + strings.Repeat(`{},`, 20000) + `{}]}`,
		"escapes":           `{"error":{"message":"` + strings.Repeat(`\ud83d\ude00\n\u00e9`, 2000) + `"}}`,
		"long text":         strings.Repeat("Internal Server Error ", 10000),
		"html":              "<html>" + strings.Repeat("<p>x</p>", 10000),
		"openai":            openAIQuota,
		"fastapi list":      fastAPIList,
		"short":             `{"error":{"message":"m","type":"t","code":"c","param":"p"}}`,
		"numbers":           `{"error":{"code":12345678901234567890,"message":-1.5e10}}`,
		"unterminated keys": `{"error":{"` + strings.Repeat("a", 10000),
	}
	h := http.Header{"Content-Type": {"text/html"}}
	for name, body := range bodies {
		b := []byte(body)
		got := allocated(func() { sink = Parse(429, h, b) })
		if limit := allocLimit(len(b)); got > limit {
			t.Errorf("%s: %d bytes allocated for a body of %d (limit %d)", name, got, len(b), limit)
		}
	}
}

var sink Fields

// allocated returns the bytes f allocates, averaged over a few runs: the
// least of three measures, so that what other goroutines allocate at the
// same time (the fuzzing engine's) does not count.
func allocated(f func()) uint64 {
	const runs = 8
	f() // warm up pools and caches
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		least = min(least, (after.TotalAlloc-before.TotalAlloc)/runs)
	}
	return least
}

// allocLimit is the bytes Parse may allocate for a body of n bytes: the
// body's size, less the caps on its fields, plus what the allocator's size
// classes round up (an eighth) and a few words.
func allocLimit(n int) uint64 {
	n = min(n, MaxMessage+3*MaxToken)
	return uint64(n + n/8 + 64)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		openAIQuota, openAIQuotaOld, openAIRate, azureRate, azureQuota, azureQuotaTop, billingLimit,
		openRouter402, gatewayCredits, liteLLMBudget, proxiedQuota, messageOnlyQuota, fastAPIDetailObj,
		fastAPIWrapped, fastAPIList, vllmError, googleArray, badGateway,
		``, `{}`, `null`, `[]`, `"x"`, `{"error":"x"}`, `{"detail":"x"}`, `{"code":402}`, `[Errno 2] x`,
		`{"error":{"message":"\ud83d\ude00\u001b","code":"\u0069nsufficient_quota"}}`,
		`{"error":{"message":"cut`, `{"error":[`, `{"a":}`, `{"a"`, "\ufeff<!doctype html>", "\xff\xfe\x00",
	} {
		f.Add(429, "application/json", []byte(s))
	}
	f.Add(200, "text/html", []byte("Invalid request"))
	f.Add(402, "text/plain", []byte("Payment Required"))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		h := http.Header{"Content-Type": {contentType}}
		fields := Parse(status, h, body)
		total := 0
		for _, s := range []string{fields.Message, fields.Type, fields.Code, fields.Param} {
			total += len(s)
			if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) || s != strings.TrimSpace(s) {
				t.Fatalf("field %q is not clean", s)
			}
		}
		if total > len(body) || len(fields.Message) > MaxMessage || len(fields.Type) > MaxToken ||
			len(fields.Code) > MaxToken || len(fields.Param) > MaxToken {
			t.Fatalf("fields of %d bytes from a body of %d: %+v", total, len(body), fields)
		}
		if fields.Shape == ShapeHTML && total > 0 {
			t.Fatalf("an HTML page gave %+v", fields)
		}
		_ = IsQuota(status, fields)
		if got, limit := allocated(func() { sink = Parse(status, h, body) }), allocLimit(len(body)); got > limit {
			t.Fatalf("%d bytes allocated for a body of %d (limit %d)", got, len(body), limit)
		}
	})
}

// Bidirectional controls reorder what a terminal shows: they are cleaned
// like other control characters.
func TestParseCleansBidi(t *testing.T) {
	f := Parse(400, nil, []byte(`{"error":{"message":"ok \u202edone\u2028next","type":"x\u2066y"}}`))
	if f.Message != "ok  done next" || f.Type != "x y" {
		t.Fatalf("%q %q", f.Message, f.Type)
	}
}
