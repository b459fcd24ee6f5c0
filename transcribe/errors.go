package transcribe

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/steno-go/steno/internal/apierr"
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
	// ErrQuotaExceeded: the account has no money or credit left: code or
	// type insufficient_quota (usually a 429), Azure's InsufficientQuota,
	// billing_hard_limit_reached, a proxy's budget_exceeded, a 402, with
	// any status, a 200 included. It is never retried and a batch must
	// stop. It is ratelimit.ErrQuotaExceeded, which tells a shared limiter
	// that this 429 is not a rate limit.
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
	// ErrRedirect: a redirect the client refused to follow (a 301, 302 or
	// 303 answering an upload, or one to another origin): almost always a
	// wrong base URL. Never retried; it stops a batch.
	ErrRedirect = errors.New("redirect refused")
)

// APIError is an error answer from the server: a non-2xx status, or a 2xx
// whose body is an error object, and, when the server sent one, what its
// error object says ({"error":{"message","type","param","code"}} and the
// other shapes servers use). Message never contains the API key.
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
	quota := apierr.IsQuota(e.StatusCode, apierr.Fields{Message: e.Message, Type: e.Type, Code: e.Code, Param: e.Param})
	switch target {
	case ErrQuotaExceeded:
		return quota
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
	case ErrRedirect:
		return 300 <= e.StatusCode && e.StatusCode < 400
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

// PartialError is the error of a file that was cut into pieces some of
// which failed after their retries (a 400 for a damaged stretch, a
// server that kept failing), and whose transcript SplitOptions.AllowPartial
// did not accept in part. Missing lists the stretches without a
// transcript; Err is the first failure, seen through the PartialError by
// errors.Is and errors.As (errors.Is(err, ErrInvalidAudio) works). A
// failure that must stop everything (an exhausted quota, a refused key,
// see Fatal), a batch's abort or budget, and a cancelled context are
// returned as they are, never as a PartialError.
//
// In a batch with an Output, the pieces that were transcribed are kept:
// sending the file again sends only the missing ones.
type PartialError struct {
	Missing []TimeRange
	Pieces  int // the pieces the file was cut into
	Failed  int // of which have no transcript
	Err     error
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transcribe: %d of %d pieces not transcribed, missing", e.Failed, e.Pieces)
	for i, r := range e.Missing {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %.1f–%.1f s", r.Start, r.End)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "transcribe: "))
	}
	return b.String()
}

func (e *PartialError) Unwrap() error { return e.Err }

// Errors read from a server's answer are capped: a body past these sizes is
// an error, never a bigger allocation.
const (
	maxErrorBody    = 64 << 10
	maxErrorMessage = 1000
)

// newAPIError builds the error for resp, whose body (at most maxErrorBody
// bytes of it) is body, read by apierr.Parse: OpenAI's error object and its
// variants (Azure's string codes, numeric codes, a top-level code and
// message), FastAPI's {"detail": …}, plain text, HTML pages (no message).
// Control characters are gone from every field. key is scrubbed.
func newAPIError(resp *http.Response, body []byte, retryAfter time.Duration, key string) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: retryAfter,
	}
	f := apierr.Parse(resp.StatusCode, resp.Header, body)
	e.Message, e.Type, e.Code, e.Param = f.Message, f.Type, f.Code, f.Param
	e.Message = truncate(e.Message, maxErrorMessage)
	scrub(e, key)
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// redact removes the API key, in every form a server might echo it (see
// redactor), and any whole OpenAI-style key from s. OpenAI's own mask of a
// key ("sk-abc***wxyz") is kept: it is safe, and tells which key was used.
func redact(s, key string) string {
	return newRedactor(key).redact(s)
}
