package transcribe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/steno-go/steno/ratelimit"
)

// Sentinel errors. Every error this package returns for a server's answer is
// an *APIError, and every error for bad input is an *InputError; both match
// these with errors.Is, so callers can branch without inspecting fields:
//
//	if errors.Is(err, transcribe.ErrQuotaExceeded) { stop everything }
var (
	// ErrRateLimited: a 429 that asks the client to slow down
	// (rate_limit_exceeded). Retried by the client; seen by callers only
	// when retries ran out or the server asked for too long a wait.
	ErrRateLimited = errors.New("rate limited")
	// ErrQuotaExceeded: a 429 with code or type insufficient_quota. The
	// account has no money left; it is never retried and a batch must stop.
	// It is ratelimit.ErrQuotaExceeded, which tells a shared limiter that
	// this 429 is not a rate limit.
	ErrQuotaExceeded = ratelimit.ErrQuotaExceeded
	// ErrUnauthorized: 401, a missing or invalid API key.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrPermissionDenied: 403, e.g. a project without access to the model.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotFound: 404, e.g. a model that does not exist or a wrong base URL.
	ErrNotFound = errors.New("not found")
	// ErrFileTooLarge: the request body is over the API's size limit, found
	// before sending (an *InputError) or by the server (413).
	ErrFileTooLarge = errors.New("file too large")
	// ErrInvalidAudio: content that is not audio in a supported format,
	// found by sniffing before sending (an *InputError) or by the server.
	ErrInvalidAudio = errors.New("invalid audio")
	// ErrEmptyFile: the input has no bytes.
	ErrEmptyFile = errors.New("empty file")
	// ErrBadRequest: any other 400 or 422; the request must change.
	ErrBadRequest = errors.New("bad request")
	// ErrServer: a 5xx; retried by the client.
	ErrServer = errors.New("server error")
)

// APIError is an error answer from the server: a non-2xx status and, when
// the server sent one, OpenAI's error object
// {"error":{"message","type","param","code"}}. Message never contains the
// API key.
type APIError struct {
	StatusCode int
	Type       string // e.g. "invalid_request_error", "insufficient_quota", "requests"
	Code       string // e.g. "rate_limit_exceeded", "insufficient_quota", "model_not_found"
	Param      string
	Message    string
	RequestID  string        // the x-request-id header
	RetryAfter time.Duration // from retry-after-ms or retry-after; 0 when absent

	shouldRetry *bool // the x-should-retry header, when sent
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transcribe: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	} else if e.Type != "" {
		fmt.Fprintf(&b, " (%s)", e.Type)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Is reports whether e belongs to the class of errors target names (one of
// the package's sentinels).
func (e *APIError) Is(target error) bool {
	quota := e.Code == "insufficient_quota" || e.Type == "insufficient_quota"
	switch target {
	case ErrQuotaExceeded:
		return e.StatusCode == http.StatusTooManyRequests && quota
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests && !quota
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrPermissionDenied:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrFileTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrInvalidAudio:
		return e.StatusCode == http.StatusUnsupportedMediaType ||
			e.StatusCode == http.StatusBadRequest && (e.Param == "file" ||
				strings.Contains(e.Message, "Invalid file format") || strings.Contains(e.Message, "too short"))
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// InputError is an input refused before anything was sent: a missing or
// unreadable file, an empty one, one that is not audio, one over the size
// limit. Err is the cause: a sentinel such as ErrEmptyFile, or an fs error
// (errors.Is(err, fs.ErrNotExist) works).
type InputError struct {
	Name string // the path, or the file name given for a reader
	Size int64  // bytes, when known
	Err  error
}

func (e *InputError) Error() string {
	name := e.Name
	if name == "" {
		name = "input"
	}
	return fmt.Sprintf("transcribe: %s: %v", name, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// Errors read from a server's answer are capped: a body past these sizes is
// an error, never a bigger allocation.
const (
	maxErrorBody    = 64 << 10
	maxErrorMessage = 1000
)

// newAPIError builds the error for resp, whose body (at most maxErrorBody
// bytes of it) is body. It understands OpenAI's error object, Azure's
// variant (code as a string such as "429"), FastAPI's {"detail": …} and
// plain-text or HTML bodies. key is scrubbed from the message.
func newAPIError(resp *http.Response, body []byte, retryAfter time.Duration, key string) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: retryAfter,
	}
	var wire struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Param   any    `json:"param"`
			Code    any    `json:"code"`
		} `json:"error"`
		Detail  any    `json:"detail"`
		Message string `json:"message"`
	}
	switch err := json.Unmarshal(body, &wire); {
	case err == nil && wire.Error != nil:
		e.Message, e.Type = wire.Error.Message, wire.Error.Type
		e.Param, e.Code = scalar(wire.Error.Param), scalar(wire.Error.Code)
	case err == nil && wire.Detail != nil:
		e.Message = scalar(wire.Detail)
		if e.Message == "" {
			b, _ := json.Marshal(wire.Detail)
			e.Message = string(b)
		}
	case err == nil && wire.Message != "":
		e.Message = wire.Message
	case strings.HasPrefix(strings.TrimSpace(strings.ToLower(string(body))), "<"):
		// An HTML page from a gateway says nothing useful.
	default:
		e.Message = strings.TrimSpace(string(body))
	}
	e.Message = redact(truncate(e.Message, maxErrorMessage), key)
	return e
}

// scalar renders a JSON string or number as text; null and objects as "".
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// openAIKey matches anything shaped like an OpenAI key, masked or not, as
// servers echo them ("Incorrect API key provided: sk-abc***wxyz").
var openAIKey = regexp.MustCompile(`sk-[A-Za-z0-9_\-*.…]+`)

// redact removes the API key, and anything shaped like one, from s.
func redact(s, key string) string {
	if key != "" {
		s = strings.ReplaceAll(s, key, "[redacted]")
	}
	return openAIKey.ReplaceAllString(s, "sk-[redacted]")
}
