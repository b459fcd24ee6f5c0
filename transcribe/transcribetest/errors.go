package transcribetest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is an API error as the fake sends it: the HTTP status and the body
// {"error":{"message","type","param","code"}}, where an empty Param or Code
// is sent as null. A [TranscribeFunc] returns one to make the fake answer
// with it.
type Error struct {
	Status  int    // HTTP status; 0 is sent as 500
	Type    string // e.g. "invalid_request_error"; empty: "server_error" for 5xx, else "invalid_request_error"
	Code    string // e.g. "invalid_api_key"; empty is sent as null
	Param   string // the offending field, e.g. "file"; empty is sent as null
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("transcribetest: %d %s: %s", e.status(), e.typ(), e.Message)
}

func (e *Error) status() int {
	if e.Status == 0 {
		return http.StatusInternalServerError
	}
	return e.Status
}

func (e *Error) typ() string {
	switch {
	case e.Type != "":
		return e.Type
	case e.status() >= 500:
		return "server_error"
	}
	return invalidRequest
}

// body returns the JSON error body, with a trailing newline.
func (e *Error) body() []byte {
	null := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	var v struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	v.Error.Message, v.Error.Type = e.Message, e.typ()
	v.Error.Param, v.Error.Code = null(e.Param), null(e.Code)
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

const invalidRequest = "invalid_request_error"

// badRequest returns a 400 invalid_request_error.
func badRequest(param, code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: invalidRequest, Param: param, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Bodies that OpenAI sends word for word.
var (
	errNoKey = &Error{Status: http.StatusUnauthorized, Type: invalidRequest, Message: "You didn't provide an API key. " +
		"You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), " +
		"or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. " +
		"You can obtain an API key from https://platform.openai.com/account/api-keys."}
	errServer = &Error{Status: http.StatusInternalServerError, Type: "server_error",
		Message: "The server had an error while processing your request. Sorry about that!"}
	errOverloaded = &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "server_is_overloaded",
		Message: "The engine is currently overloaded, please try again later."}
	errQuota = &Error{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "insufficient_quota",
		Message: "You exceeded your current quota, please check your plan and billing details. " +
			"For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."}
	errTooShort = badRequest("file", "audio_too_short", "Audio file is too short. Minimum audio length is 0.1 seconds.")
	// errFileFormat is what OpenAI answers both for an extension it does
	// not accept and for content it cannot decode; param and code are null.
	errFileFormat = badRequest("", "", "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']")
)

// badGatewayHTML is the body of a FaultBadGateway, as a gateway in front of
// the API sends it.
const badGatewayHTML = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"

// wrongKey returns the 401 for a key that does not match, showing the key
// masked as OpenAI does.
func wrongKey(key string) *Error {
	return &Error{Status: http.StatusUnauthorized, Type: invalidRequest, Code: "invalid_api_key",
		Message: "Incorrect API key provided: " + maskKey(key) + ". You can find your API key at https://platform.openai.com/account/api-keys."}
}

// maskKey keeps up to the first 6 and the last 4 characters of key, with
// stars in between, and never shows more than half of it.
func maskKey(key string) string {
	n := len(key)
	head, tail := min(6, n/4), 0
	if n >= 16 {
		tail = 4
	}
	b := []byte(key)
	for i := head; i < n-tail; i++ {
		b[i] = '*'
	}
	return string(b)
}
