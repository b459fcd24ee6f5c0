package transcribetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Provider is the service a fake mimics ([Config].Provider): its URL
// shape, auth header, the headers it sends and omits, its error bodies,
// its size limit and the response formats it refuses. Transcripts, faults,
// latency and rate limits work alike for every provider; what a rate
// limit or an exhausted quota looks like is the provider's.
type Provider int

const (
	// OpenAI is OpenAI's own API, as the package doc describes it: the
	// default.
	OpenAI Provider = iota

	// Azure is Azure OpenAI, whose URL names a deployment:
	//
	//	POST /openai/deployments/{deployment}/audio/transcriptions?api-version=2024-10-21
	//
	// (and …/audio/translations). The fake's base, for a client, is its
	// endpoint (see [Server.Endpoint]).
	//
	//   - A URL of another shape, or without api-version, is 404
	//     {"error":{"code":"404","message":"Resource not found"}}.
	//   - The key goes in the api-key header; without it, or with a wrong
	//     one (Authorization is not read), the answer is 401
	//     {"error":{"code":"401","message":"Access denied due to invalid
	//     subscription key or wrong API endpoint. …"}}.
	//   - A deployment other than [Config].Deployment (when set) is 404
	//     {"error":{"code":"DeploymentNotFound","message":"The API
	//     deployment for this resource does not exist. …"}}. The
	//     deployment, not the model field, chooses the model: one named
	//     like a model the fake knows is that model, any other whisper-1.
	//   - x-ratelimit-remaining-requests and -tokens are sent, without
	//     their limit and reset headers.
	//   - A rate-limit 429 is {"error":{"code":"429","message":"Requests to
	//     the Audio_Transcriptions Operation under Azure OpenAI API version
	//     … have exceeded call rate limit of your current OpenAI S0 pricing
	//     tier. Please retry after N seconds. …"}}, with retry-after,
	//     retry-after-ms and x-ms-retry-after-ms.
	//   - An exhausted quota is a 429 {"error":{"code":"InsufficientQuota",
	//     "message":…}} (the code is Azure's; its wording here is assumed).
	//   - Other errors are OpenAI's, which Azure passes on.
	Azure

	// Groq is Groq's OpenAI-compatible API at /openai/v1/audio/….
	//
	//   - Models whisper-large-v3 and whisper-large-v3-turbo (the latter
	//     does not translate); any other is 404 model_not_found.
	//   - Formats json, verbose_json and text; any other is 400 "response_format
	//     must be one of [json text verbose_json]".
	//   - A prompt over 896 characters is 400 "prompt length must be 896
	//     characters or fewer, but provided prompt contains N characters".
	//   - A bad key is 401 "Invalid API Key", code invalid_api_key.
	//   - The x-ratelimit-*-requests headers count requests per day (the
	//     requests budget's window is a day unless RateLimit.Window is
	//     set), the -tokens headers tokens per minute; a 429 carries
	//     retry-after in seconds (not retry-after-ms) and Groq's message
	//     ("… on requests per day (RPD): Limit 2000, Used 2000, Requested
	//     1. Please try again in 43.2s. …").
	//   - An exhausted quota is Groq's spend limit: a 400 with code
	//     blocked_api_access (Groq's documented code; the message is
	//     assumed).
	//   - Error objects have no "param"; the body limit is 25 MB
	//     (25,000,000 bytes) unless MaxBodyBytes says otherwise.
	Groq

	// SelfHosted is a server the user runs, like speaches
	// (faster-whisper-server), at /v1/audio/….
	//
	//   - Any model; every format unless [Config].ResponseFormats narrows
	//     them (vLLM: json, text, verbose_json), the others being 400
	//     {"detail":"Currently only support response_format `text`, `json`
	//     or `verbose_json`"}-like.
	//   - Errors are FastAPI's {"detail": "…"}.
	//   - No key is needed unless [Config].APIKey is set; then a missing or
	//     wrong bearer key is 403 {"detail":"Invalid API key. The provided
	//     API key is incorrect."} (speaches' words).
	//   - No x-ratelimit-* headers; a configured RateLimit is enforced
	//     silently, its 429s carrying retry-after only.
	//   - No body limit unless MaxBodyBytes sets one.
	//   - An exhausted quota (a FastAPI proxy in front of a paid API) is
	//     a 429 whose detail is the upstream error's text, "Error code: 429
	//     - {'error': {… 'code': 'insufficient_quota'}}".
	SelfHosted
)

// String returns the provider's name, such as "Azure".
func (p Provider) String() string {
	names := []string{"OpenAI", "Azure", "Groq", "SelfHosted"}
	if p >= 0 && int(p) < len(names) {
		return names[p]
	}
	return "Provider(" + strconv.Itoa(int(p)) + ")"
}

// Endpoint returns what to give a client of the provider the server
// mimics: [Server.BaseURL] for OpenAI and SelfHosted, the URL and
// "/openai/v1" for Groq, and for Azure the endpoint (the server's URL),
// under which the deployments are.
func (s *Server) Endpoint() string {
	switch s.cfg.Provider {
	case Azure:
		return s.URL
	case Groq:
		return s.URL + "/openai/v1"
	}
	return s.BaseURL()
}

// Groq's models and formats, and the longest prompt it takes.
var (
	groqModels     = []string{"whisper-large-v3", "whisper-large-v3-turbo"}
	groqFormats    = []string{"json", "text", "verbose_json"}
	groqTranslates = "whisper-large-v3"
)

const groqMaxPrompt = 896

// groqMaxBodyBytes is Groq's limit on a request body on its free tier.
const groqMaxBodyBytes = 25_000_000

// Azure's words.
const (
	azureUnauthorized = "Access denied due to invalid subscription key or wrong API endpoint. " +
		"Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
	azureNoDeployment = "The API deployment for this resource does not exist. " +
		"If you created the deployment within the last 5 minutes, please wait a moment and try again."
	azureNotFound = "Resource not found"
	azureQuota    = "The quota of this Azure OpenAI resource is exhausted: this operation requires more quota than is available."
)

// azureCodes are the codes of the errors Azure itself sends, in its own
// shape {"error":{"code","message"}}; other errors are OpenAI's.
var azureCodes = []string{"401", "404", "429", "DeploymentNotFound", "InsufficientQuota"}

// azurePath matches a deployment's URL.
var azurePath = regexp.MustCompile(`^/openai/deployments/([^/]+)/audio/(transcriptions|translations)$`)

// route returns the task of r's URL, or the provider's 404.
func (h *Handler) route(r *http.Request) (string, *Error) {
	switch h.cfg.Provider {
	case Azure:
		m := azurePath.FindStringSubmatch(r.URL.Path)
		if m == nil || r.URL.Query().Get("api-version") == "" {
			return "", &Error{Status: http.StatusNotFound, Code: "404", Message: azureNotFound}
		}
		return map[string]string{"transcriptions": "transcribe", "translations": "translate"}[m[2]], nil
	case Groq:
		if task, ok := tasks[strings.TrimPrefix(r.URL.Path, "/openai")]; ok && strings.HasPrefix(r.URL.Path, "/openai/") {
			return task, nil
		}
	default:
		if task, ok := tasks[r.URL.Path]; ok {
			return task, nil
		}
	}
	return "", &Error{Status: http.StatusNotFound, Type: invalidRequest, Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)}
}

// authorizeProvider checks the key as the provider does (and, for Azure,
// the deployment).
func (h *Handler) authorizeProvider(r *http.Request) *Error {
	bearer := func() string {
		auth := r.Header.Get("Authorization")
		if len(auth) >= 7 && strings.EqualFold(auth[:7], "Bearer ") {
			return auth[7:]
		}
		return ""
	}
	switch h.cfg.Provider {
	case Azure:
		if k := r.Header.Get("api-key"); k == "" || h.cfg.APIKey != "" && k != h.cfg.APIKey {
			return &Error{Status: http.StatusUnauthorized, Code: "401", Message: azureUnauthorized}
		}
		if d := azurePath.FindStringSubmatch(r.URL.Path)[1]; h.cfg.Deployment != "" && d != h.cfg.Deployment {
			return &Error{Status: http.StatusNotFound, Code: "DeploymentNotFound", Message: azureNoDeployment}
		}
	case Groq:
		if k := bearer(); k == "" || h.cfg.APIKey != "" && k != h.cfg.APIKey {
			return &Error{Status: http.StatusUnauthorized, Type: invalidRequest, Code: "invalid_api_key", Message: "Invalid API Key"}
		}
	case SelfHosted:
		switch k := bearer(); {
		case h.cfg.APIKey == "":
		case k == "":
			return &Error{Status: http.StatusForbidden, Message: "API key required. Please provide an API key using the Authorization header with Bearer scheme."}
		case k != h.cfg.APIKey:
			return &Error{Status: http.StatusForbidden, Message: "Invalid API key. The provided API key is incorrect."}
		}
	}
	return nil
}

// requestModel is the model a request asks for: its model field, or for
// Azure its deployment's.
func (h *Handler) requestModel(r *http.Request, field string) string {
	if h.cfg.Provider != Azure {
		return field
	}
	m := azurePath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return field
	}
	if _, known := models[m[1]]; known {
		return m[1]
	}
	return "whisper-1"
}

// modelFormats returns the response formats a model supports for
// transcriptions, narrowed by Config.ResponseFormats, or the provider's
// error for a model it does not have.
func (h *Handler) modelFormats(a *Audio) ([]string, *Error) {
	var supported []string
	switch h.cfg.Provider {
	case Groq:
		if !slices.Contains(groqModels, a.Model) {
			return nil, &Error{Status: http.StatusNotFound, Type: invalidRequest, Code: "model_not_found",
				Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", a.Model)}
		}
		if a.Task == "translate" && a.Model != groqTranslates {
			return nil, badRequest("model", "", "model `%s` does not support translations, use `%s` instead", a.Model, groqTranslates)
		}
		supported = groqFormats
	case SelfHosted:
		supported = []string{"json", "text", "srt", "verbose_json", "vtt"}
	default:
		var ok bool
		if supported, ok = models[a.Model]; !ok {
			return nil, &Error{Status: http.StatusNotFound, Type: invalidRequest, Code: "model_not_found",
				Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", a.Model)}
		}
		if a.Task == "translate" && a.Model != "whisper-1" {
			return nil, badRequest("model", "unsupported_value", "Model '%s' does not support translations. Use 'whisper-1' instead.", a.Model)
		}
	}
	if h.cfg.ResponseFormats != nil {
		supported = slices.DeleteFunc(slices.Clone(supported), func(f string) bool { return !slices.Contains(h.cfg.ResponseFormats, f) })
	}
	return supported, nil
}

// formatRefused is the provider's error for a response format the model or
// server does not return.
func (h *Handler) formatRefused(a *Audio, supported []string) *Error {
	f := a.ResponseFormat
	switch h.cfg.Provider {
	case Groq:
		return badRequest("", "", "response_format must be one of [%s]", strings.Join(supported, " "))
	case SelfHosted:
		q := make([]string, len(supported))
		for i, s := range supported {
			q[i] = "`" + s + "`"
		}
		return badRequest("", "", "Currently only support response_format: %s", strings.Join(q, ", "))
	}
	if !slices.Contains(responseFormats, f) {
		return badRequest("response_format", "invalid_value", "Invalid value: '%s'. Supported values are: %s.", f, quoteList(responseFormats, "and"))
	}
	return badRequest("response_format", "unsupported_value", "response_format '%s' is not compatible with model '%s'. Use %s instead.", f, a.Model, quoteList(supported, "or"))
}

// checkPrompt applies Groq's limit on the prompt's length.
func (h *Handler) checkPrompt(a *Audio) *Error {
	if n := utf8.RuneCountInString(a.Prompt); h.cfg.Provider == Groq && n > groqMaxPrompt {
		return badRequest("", "", "prompt length must be %d characters or fewer, but provided prompt contains %d characters", groqMaxPrompt, n)
	}
	return nil
}

// rateLimited returns the provider's 429 for a spent budget of kind
// ("requests" or "tokens"), after setting retry-after and retry-after-ms.
func (h *Handler) rateLimited(r *http.Request, kind string, limit, used, requested int, wait time.Duration) *Error {
	switch h.cfg.Provider {
	case Azure:
		op := "Audio_Transcriptions"
		if strings.HasSuffix(r.URL.Path, "/translations") {
			op = "Audio_Translations"
		}
		return &Error{Status: http.StatusTooManyRequests, Code: "429", Message: fmt.Sprintf(
			"Requests to the %s Operation under Azure OpenAI API version %s have exceeded call rate limit of your current OpenAI S0 pricing tier. "+
				"Please retry after %d seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
			op, r.URL.Query().Get("api-version"), max(1, int64((wait+time.Second-1)/time.Second)))}
	case Groq:
		unit := "tokens per minute (TPM)"
		if kind == "requests" {
			unit = "requests per minute (RPM)"
			if h.requests != nil && h.requests.window == 24*time.Hour {
				unit = "requests per day (RPD)"
			}
		}
		return &Error{Status: http.StatusTooManyRequests, Type: kind, Code: "rate_limit_exceeded", Message: fmt.Sprintf(
			"Rate limit reached for model `%s` in organization `%s` service tier `on_demand` on %s: Limit %d, Used %d, Requested %d. Please try again in %s. %s",
			groqModels[1], groqOrganization, unit, limit, used, requested, groqDuration(wait), groqUpgrade)}
	case SelfHosted:
		return &Error{Status: http.StatusTooManyRequests, Message: "Too Many Requests: try again in " + formatReset(wait)}
	}
	return rateLimited(kind, limit, used, requested, wait)
}

// quotaError returns the provider's answer to a request past the quota.
func (h *Handler) quotaError() *Error {
	switch h.cfg.Provider {
	case Azure:
		return &Error{Status: http.StatusTooManyRequests, Code: "InsufficientQuota", Message: azureQuota}
	case Groq:
		return &Error{Status: http.StatusBadRequest, Type: invalidRequest, Code: "blocked_api_access",
			Message: "API access has been blocked for this organization: its monthly spend limit is reached. Raise the limit at https://console.groq.com/settings/billing"}
	case SelfHosted:
		return &Error{Status: http.StatusTooManyRequests, Message: "Error code: 429 - {'error': {'message': '" + errQuota.Message +
			"', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}"}
	}
	return errQuota
}

// defaultMaxBody is the provider's body limit; 0: none.
func (p Provider) defaultMaxBody() int64 {
	switch p {
	case Groq:
		return groqMaxBodyBytes
	case SelfHosted:
		return 0
	}
	return DefaultMaxBodyBytes
}

// dress gives a response the provider's shape: its error bodies and the
// headers it sends or omits. res was made as OpenAI's.
func (h *Handler) dress(res result, hdr http.Header) result {
	p := h.cfg.Provider
	switch p {
	case Azure:
		for _, kind := range []string{"requests", "tokens"} {
			hdr.Del("x-ratelimit-limit-" + kind)
			hdr.Del("x-ratelimit-reset-" + kind)
		}
		if v := hdr.Get("retry-after-ms"); v != "" {
			hdr.Set("x-ms-retry-after-ms", v)
		}
	case Groq:
		hdr.Del("retry-after-ms")
	case SelfHosted:
		for name := range hdr {
			if strings.HasPrefix(strings.ToLower(name), "x-ratelimit-") {
				hdr.Del(name)
			}
		}
		hdr.Del("retry-after-ms")
	}
	if res.status < 400 || res.contentType != "application/json" || p == OpenAI {
		return res
	}
	var v struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(res.body, &v) != nil || v.Error == nil {
		return res
	}
	e, code := v.Error, ""
	if e.Code != nil {
		code = *e.Code
	}
	var body any
	switch p {
	case Azure:
		if !slices.Contains(azureCodes, code) {
			return res
		}
		body = map[string]any{"error": struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}{code, e.Message}}
	case Groq:
		body = map[string]any{"error": struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code,omitempty"`
		}{e.Message, e.Type, code}}
	case SelfHosted:
		body = map[string]string{"detail": e.Message}
	}
	b, _ := json.Marshal(body)
	res.body = append(b, '\n')
	return res
}
