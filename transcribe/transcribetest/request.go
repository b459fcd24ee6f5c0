package transcribetest

import (
	"cmp"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/steno-go/steno/internal/audio"
)

// Limits on the text fields of a request.
const (
	maxFields     = 100
	maxFieldBytes = 64 << 10
)

// models lists the models the fake knows, each with the response formats it
// supports for transcriptions.
var models = map[string][]string{
	"whisper-1":                         {"json", "text", "srt", "verbose_json", "vtt"},
	"gpt-transcribe":                    {"json", "text"},
	"gpt-4o-transcribe":                 {"json", "text"},
	"gpt-4o-mini-transcribe":            {"json", "text"},
	"gpt-4o-mini-transcribe-2025-12-15": {"json", "text"},
	"gpt-4o-transcribe-diarize":         {"json", "text", "diarized_json"},
}

const diarize = "gpt-4o-transcribe-diarize"

// modelMaxSeconds is the longest audio a model takes in one request,
// whatever its size: OpenAI refuses more with a 400 invalid_value. The
// gpt-4o models are said to take about 1,500 s; users report errors past
// about 1,400 s, the diarize model's hard cap, and the fake enforces that.
var modelMaxSeconds = map[string]float64{
	"gpt-4o-transcribe":                 1400,
	"gpt-4o-mini-transcribe":            1400,
	"gpt-4o-mini-transcribe-2025-12-15": 1400,
	"gpt-4o-transcribe-diarize":         1400,
}

// checkDuration refuses a's audio if it is longer than its model takes,
// as OpenAI does: 400 invalid_value, "audio duration 1830.53 seconds is
// longer than 1400 seconds which is the maximum for this model". The
// duration is read from the file (WAV, FLAC, MP3 headers or frames);
// other formats are taken at 16000 bytes a second, as DefaultTranscriber
// does.
func checkDuration(a *Audio) *Error {
	limit, ok := modelMaxSeconds[a.Model]
	if !ok {
		return nil
	}
	seconds, ok := audioSeconds(a)
	if info, err := audio.Probe(a.File, a.Size); err == nil && info.Exact && info.Duration > 0 {
		seconds, ok = info.Duration.Seconds(), true
	}
	if !ok || seconds <= limit {
		return nil
	}
	return badRequest("file", "invalid_value", "audio duration %.2f seconds is longer than %d seconds which is the maximum for this model", seconds, int(limit))
}

// responseFormats is the AudioResponseFormat enum.
var responseFormats = []string{"json", "text", "srt", "verbose_json", "vtt", "diarized_json"}

// logprobsModels are the models that return logprobs.
var logprobsModels = []string{"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15"}

// parse checks the request's framing, streams its multipart body (the file
// part to a temporary file) and validates the fields. cleanup removes the
// temporary file; it is never nil.
func (h *Handler) parse(r *http.Request, task string) (a *Audio, cleanup func(), _ *Error) {
	cleanup = func() {}
	// OpenAI does not accept chunked uploads (users report it, see
	// API-NOTES.md); the message is the fake's own.
	if r.ContentLength < 0 || slices.Contains(r.TransferEncoding, "chunked") {
		return nil, cleanup, badRequest("", "", "Chunked transfer encoding is not supported; send a Content-Length.")
	}
	if limit := h.cfg.MaxBodyBytes; limit > 0 && r.ContentLength > limit {
		n, _ := io.CopyN(io.Discard, r.Body, limit+1)
		return nil, cleanup, &Error{Status: http.StatusRequestEntityTooLarge, Type: "server_error",
			Message: fmt.Sprintf("Maximum content size limit (%d) exceeded (%d bytes read)", limit, n)}
	}
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, cleanup, badRequest("", "", "Invalid Content-Type header %q: expected multipart/form-data with a boundary.", ct)
	}

	a = &Audio{Task: task, Fields: map[string][]string{}}
	var file *os.File
	cleanup = func() {
		if file != nil {
			file.Close()
			os.Remove(file.Name())
		}
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for nfields := 0; ; {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, cleanup, badRequest("", "", "Could not parse multipart form: %v", err)
		}
		name := p.FormName()
		if name == "file" {
			if file != nil {
				return nil, cleanup, badRequest("file", "", "Only one file may be sent.")
			}
			if file, err = os.CreateTemp("", "transcribetest-*"); err != nil {
				return nil, cleanup, errServer
			}
			a.Filename = p.FileName()
			if a.Size, err = io.Copy(file, p); err != nil {
				return nil, cleanup, badRequest("file", "", "Could not read the file part: %v", err)
			}
			continue
		}
		if nfields++; nfields > maxFields {
			return nil, cleanup, badRequest("", "", "Too many fields: at most %d are accepted.", maxFields)
		}
		limit := int64(maxFieldBytes)
		if name == refsField || name == "known_speaker_references" { // clips of audio, in base64
			limit = maxReferenceBytes
		}
		v, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, cleanup, badRequest("", "", "Could not parse multipart form: %v", err)
		}
		if int64(len(v)) > limit {
			return nil, cleanup, badRequest(name, "", "Field %q is longer than %d bytes.", name, limit)
		}
		a.Fields[name] = append(a.Fields[name], string(v))
	}

	field := func(name string) string {
		if v := a.Fields[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	a.Model, a.Language, a.Prompt = h.requestModel(r, field("model")), field("language"), field("prompt")
	a.ResponseFormat = cmp.Or(field("response_format"), "json")
	a.TimestampGranularities = slices.Concat(a.Fields["timestamp_granularities[]"], a.Fields["timestamp_granularities"])
	a.Include = slices.Concat(a.Fields["include[]"], a.Fields["include"])
	if file != nil {
		a.File = file
	}
	if e := h.validate(a, file != nil); e != nil {
		return nil, cleanup, e
	}
	return a, cleanup, nil
}

// validate applies OpenAI's rules (and the provider's, where they differ)
// to the fields, then looks at the file.
func (h *Handler) validate(a *Audio, haveFile bool) *Error {
	if a.Model == "" {
		return badRequest("model", "", "you must provide a model parameter")
	}
	if !haveFile {
		return badRequest("file", "missing_required_parameter", "Missing required parameter: 'file'.")
	}
	supported, e := h.modelFormats(a) // the provider's models
	if e != nil {
		return e
	}
	f := a.ResponseFormat
	if !slices.Contains(supported, f) {
		return h.formatRefused(a, supported)
	}
	if e := h.checkPrompt(a); e != nil {
		return e
	}
	for _, g := range a.TimestampGranularities {
		if g != "word" && g != "segment" {
			return badRequest("timestamp_granularities", "invalid_value", "Invalid value: '%s'. Supported values are: 'word' and 'segment'.", g)
		}
	}
	if len(a.TimestampGranularities) > 0 && f != "verbose_json" {
		return badRequest("timestamp_granularities", "unsupported_value", "timestamp_granularities requires response_format 'verbose_json'.")
	}
	if v, ok := a.Fields["temperature"]; ok {
		t, err := strconv.ParseFloat(strings.TrimSpace(v[0]), 64)
		switch {
		case err != nil:
			return badRequest("temperature", "invalid_type", "Invalid 'temperature': expected a decimal, but got a string instead.")
		case t > 1:
			return badRequest("temperature", "decimal_above_max_value", "Invalid 'temperature': decimal above maximum value. Expected a value <= 1, but got %s instead.", v[0])
		case !(t >= 0):
			return badRequest("temperature", "decimal_below_min_value", "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got %s instead.", v[0])
		}
		a.Temperature = t
	}
	for _, inc := range a.Include {
		if inc != "logprobs" {
			return badRequest("include", "invalid_value", "Invalid value: '%s'. Supported values are: 'logprobs'.", inc)
		}
		if f != "json" || !slices.Contains(logprobsModels, a.Model) {
			return badRequest("include", "unsupported_value", "logprobs are only returned with response_format 'json' and models %s.", quoteList(logprobsModels, "and"))
		}
	}
	if a.Model == diarize && a.Prompt != "" {
		return badRequest("prompt", "unsupported_value", "prompt is not supported with model '%s'.", a.Model)
	}

	if a.Size == 0 {
		return badRequest("file", "empty_file", "The audio file is empty.")
	}
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(a.Filename), "."))
	if !slices.Contains(audio.Extensions(), ext) {
		return errFileFormat
	}
	head := make([]byte, audio.SniffLen)
	n, _ := a.File.ReadAt(head, 0)
	if audio.Sniff(head[:n]) == audio.Unknown {
		return errFileFormat // the real API fails to decode it
	}
	return nil
}

// quoteList formats {"a", "b", "c"} as "'a', 'b' or 'c'" (with conj "or").
func quoteList(items []string, conj string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "'" + s + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}
