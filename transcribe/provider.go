package transcribe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/steno-go/steno/internal/ratehdr"
	"github.com/steno-go/steno/multipart"
	"github.com/steno-go/steno/ratelimit"
)

// This file is the one place that knows each provider: its URL shape, its
// auth header, the signals it sends for rate limits and retries, its error
// bodies, its size limit and minimum billing, the response formats it
// returns and its default model. Each provider is one profile below; the
// rest of the package asks the client's provider and never names one.
//
// Error bodies of every provider are read by internal/apierr, which knows
// all their shapes (OpenAI's error object, Azure's string codes, Groq's
// object without "param", FastAPI's {"detail": …}, plain text); a
// provider's quota signal (insufficient_quota, Azure's InsufficientQuota,
// Groq's blocked_api_access) matches ErrQuotaExceeded there.

// Defaults of the providers.
const (
	// DefaultAzureAPIVersion is the api-version sent to Azure OpenAI when
	// neither Azure nor OPENAI_API_VERSION gives one: the latest GA
	// release of the data-plane inference API that serves
	// /openai/deployments/{deployment}/audio/transcriptions (Microsoft's
	// REST reference, "the 2024-10-21 GA release").
	DefaultAzureAPIVersion = "2024-10-21"
	// DefaultGroqBaseURL is Groq's OpenAI-compatible base URL.
	DefaultGroqBaseURL = "https://api.groq.com/openai/v1"
	// DefaultGroqModel is the model asked of Groq when Request.Model is
	// empty: the faster and cheaper of its two Whisper models.
	DefaultGroqModel = "whisper-large-v3-turbo"
)

// authScheme is how a provider takes the API key.
type authScheme uint8

const (
	authBearer authScheme = iota // Authorization: Bearer <key>
	authAPIKey                   // api-key: <key> (Azure)
)

// profile is what the package knows of one provider.
type profile struct {
	name     string
	auth     authScheme
	keyEnv   string // the environment variable holding its key; "": none is read
	needsKey bool   // NewClient fails without a key
	// maxBody is the largest request body, multipart framing included;
	// 0: no limit.
	maxBody int64
	// minBilled is the shortest audio a request is billed for, in seconds.
	minBilled float64
	// formats are the response formats the server returns itself; nil:
	// every format. Text, SRT and VTT missing from it are asked for as
	// JSON or verbose_json and rendered locally (see render.go).
	formats      []ResponseFormat
	defaultModel string
	// translateModel is the default model of translations, when not
	// defaultModel.
	translateModel string
	// maxPrompt is the longest prompt the server accepts, in characters
	// (0: any): a longer one is cut to its end, which is the part a
	// Whisper model reads.
	maxPrompt int
	// modelChecks: the model table (see models) describes this
	// provider's models, so a request one of them cannot serve is refused
	// before it is sent. Elsewhere a model of the same name may be another
	// (speaches serves its own under "whisper-1"), and the server judges;
	// the table's duration caps still cut the audio, which any server
	// takes.
	modelChecks bool
	// retryHeaders are read, in order, for the wait a 429 or 503 asks for
	// when retry-after-ms and retry-after are absent: milliseconds.
	retryHeaders []string
	// retryMessage finds the wait, in seconds, in an error's message when
	// no header gives it.
	retryMessage *regexp.Regexp
}

// openAIProfile: OpenAI's own API.
//
//   - URL: {base}/audio/transcriptions, base DefaultBaseURL.
//   - Auth: Authorization: Bearer (OPENAI_API_KEY), plus OpenAI-Organization
//     and OpenAI-Project when set.
//   - Rate limits: x-ratelimit-{limit,remaining,reset}-{requests,tokens}
//     on every answer; retry-after and retry-after-ms on 429s,
//     x-should-retry.
//   - Errors: {"error":{"message","type","param","code"}};
//     insufficient_quota (a 429) is the quota.
//   - 25 MiB bodies; whisper-1 is billed by the second, the gpt-4o models
//     by the token; every format (models refuse some: see ResponseFormat).
var openAIProfile = profile{
	name: "OpenAI", auth: authBearer, keyEnv: "OPENAI_API_KEY", needsKey: true,
	maxBody: MaxBodySize, defaultModel: DefaultModel, modelChecks: true,
}

// compatibleProfile: a server at a base URL the package does not know
// (WithBaseURL, OPENAI_BASE_URL): it is treated as OpenAI is, except that
// it may need no key.
var compatibleProfile = profile{
	name: "OpenAI-compatible server", auth: authBearer, keyEnv: "OPENAI_API_KEY",
	maxBody: MaxBodySize, defaultModel: DefaultModel,
}

// azureProfile: Azure OpenAI.
//
//   - URL: {endpoint}/openai/deployments/{deployment}/audio/transcriptions?api-version={version};
//     the deployment, not the model field, chooses the model.
//   - Auth: the api-key header (AZURE_OPENAI_API_KEY), never Authorization.
//   - Rate limits: x-ratelimit-remaining-{requests,tokens} only (no limit
//     or reset); 429s carry retry-after, retry-after-ms and
//     x-ms-retry-after-ms, and say "Please retry after 33 seconds".
//     Speech-to-text deployments default to 3 requests a minute.
//   - Errors: {"error":{"code":"429","message":…}}, code a string,
//     often no type; 404 DeploymentNotFound, 404 "Resource not found"
//     without api-version, 401 "Access denied due to invalid subscription
//     key…"; InsufficientQuota is the quota.
//   - 25 MB, as OpenAI; formats as the deployment's model.
var azureProfile = profile{
	name: "Azure OpenAI", auth: authAPIKey, keyEnv: "AZURE_OPENAI_API_KEY", needsKey: true,
	maxBody: MaxBodySize, defaultModel: DefaultModel, modelChecks: true,
	retryHeaders: []string{"X-Ms-Retry-After-Ms"},
	retryMessage: regexp.MustCompile(`(?i)\bretry after ([0-9]+(?:\.[0-9]+)?) seconds?\b`),
}

// groqProfile: Groq.
//
//   - URL: DefaultGroqBaseURL + /audio/transcriptions.
//   - Auth: Authorization: Bearer (GROQ_API_KEY).
//   - Rate limits: x-ratelimit-*-requests count requests per day,
//     x-ratelimit-*-tokens tokens per minute; audio seconds per hour and
//     day show only in 429 messages ("on seconds of audio per hour
//     (ASPH): Limit 7200, Used …, Requested …. Please try again in
//     1m2.5s."); retry-after (seconds) on 429s only.
//   - Errors: {"error":{"message","type","code"}}, without "param";
//     400 "prompt length must be 896 characters or fewer, …"; a 400 with
//     code blocked_api_access once the spend limit is reached (the quota).
//   - 25 MB uploads (100 MB on paid tiers, set with WithMaxBodyBytes);
//     at least 10 s of audio billed per request; json, verbose_json and
//     text only; whisper-large-v3 and whisper-large-v3-turbo, which does
//     not translate.
var groqProfile = profile{
	name: "Groq", auth: authBearer, keyEnv: "GROQ_API_KEY", needsKey: true,
	maxBody: 25_000_000, minBilled: 10,
	formats:      []ResponseFormat{JSON, VerboseJSON, Text},
	defaultModel: DefaultGroqModel, translateModel: "whisper-large-v3", maxPrompt: 896,
}

// selfHostedProfile: a server the user runs (speaches, whisper.cpp's
// server, vLLM, LocalAI), configured by SelfHosted.
//
//   - URL: {base}/audio/transcriptions.
//   - Auth: Authorization: Bearer when a key is given (WithAPIKey; none is
//     read from the environment); speaches answers 403 to a bad one.
//   - Rate limits: no headers; a 503 while a model loads may carry
//     retry-after (LocalAI).
//   - Errors: FastAPI's {"detail": …} (speaches, vLLM), plain text
//     (whisper.cpp), OpenAI's object (LocalAI); 415 for audio it cannot
//     decode.
//   - No size limit unless ServerLimits gives one; formats as
//     ServerLimits says, by default json and verbose_json, which every one
//     of them returns (the others are rendered locally).
var selfHostedProfile = profile{
	name: "self-hosted server", auth: authBearer,
	formats:      []ResponseFormat{JSON, VerboseJSON},
	defaultModel: DefaultModel,
}

// modelSpec is what the package knows of one model: what it returns and
// takes, and how much audio one request may carry. The table below is the
// one place that holds it; a model missing from it (another provider's,
// a deployment's name, a self-hosted one) is sent as it is, with only the
// provider's limits (see profile).
type modelSpec struct {
	// formats are the response formats the model returns; nil: every
	// format. A format missing from it is refused before the request is
	// sent, unless it can be rendered from one the model returns (text
	// from json).
	formats []ResponseFormat
	// timestamps: segments and words with times (verbose_json and
	// timestamp_granularities[]); without them, srt, vtt and verbose_json
	// cannot be made.
	timestamps bool
	// maxDuration is the longest audio a request may carry, whatever its
	// size; longer files are cut to it. 0: no limit known.
	maxDuration time.Duration
	// maxBody is the largest request body, framing included; 0: the
	// provider's. It applies where the client's body limit is the
	// provider's own (not set with WithMaxBodyBytes).
	maxBody int64
	// prompt: the model reads Request.Prompt.
	prompt bool
	// logprobs: the model returns logprobs (include[]=logprobs, json only).
	logprobs bool
	// chunking: the model takes chunking_strategy.
	chunking bool
	// translates: the model serves /audio/translations.
	translates bool
}

// gpt4oMaxDuration is the longest audio gpt-4o-transcribe and
// gpt-4o-mini-transcribe take: about 1,500 s by OpenAI's word, but users
// report errors past about 1,400 s, and the diarize model's hard cap is
// 1,400 s ("audio duration 1830.53 seconds is longer than 1400 seconds
// which is the maximum for this model").
const gpt4oMaxDuration = 1400 * time.Second

// models is the model table: OpenAI's transcription models (API-NOTES,
// 2026). Other providers' models (Groq's 25 MB and its 10 s minimum) are
// to be added here as their limits are confirmed.
var models = map[string]modelSpec{
	"whisper-1": {
		formats: []ResponseFormat{JSON, Text, SRT, VTT, VerboseJSON}, timestamps: true, maxBody: MaxBodySize, prompt: true, translates: true,
	},
	"gpt-4o-transcribe": {
		formats: []ResponseFormat{JSON, Text}, maxDuration: gpt4oMaxDuration, maxBody: MaxBodySize,
		prompt: true, logprobs: true, chunking: true,
	},
	"gpt-4o-mini-transcribe": {
		formats: []ResponseFormat{JSON, Text}, maxDuration: gpt4oMaxDuration, maxBody: MaxBodySize,
		prompt: true, logprobs: true, chunking: true,
	},
	"gpt-4o-mini-transcribe-2025-12-15": {
		formats: []ResponseFormat{JSON, Text}, maxDuration: gpt4oMaxDuration, maxBody: MaxBodySize,
		prompt: true, logprobs: true, chunking: true,
	},
	"gpt-4o-transcribe-diarize": {
		formats: []ResponseFormat{JSON, Text, DiarizedJSON}, maxDuration: gpt4oMaxDuration, maxBody: MaxBodySize,
		chunking: true,
	},
	"gpt-transcribe": {
		formats: []ResponseFormat{JSON, Text}, maxBody: MaxBodySize, prompt: true,
	},
}

// lookupModel returns what the table knows of model; ok is false for a
// model it does not list.
func lookupModel(model string) (m modelSpec, ok bool) {
	m, ok = models[model]
	return m, ok
}

// modelName returns the model a request sends, for the table: Request.Model,
// else the provider's default.
func (p *provider) modelName(req Request, translate bool) string {
	if p.name == azureProfile.name && p.deployment != "" {
		return p.deployment // the deployment's model, whatever Model says
	}
	if req.Model != "" {
		return req.Model
	}
	if translate && p.translateModel != "" {
		return p.translateModel
	}
	return p.defaultModel
}

// check returns why model, as m describes it, cannot serve req (a
// translation when translate), saying what to change; nil if it can. f is
// the format asked of the server.
func (m modelSpec) check(model string, req Request, f ResponseFormat, translate bool) error {
	if !slices.Contains([]ResponseFormat{JSON, Text, SRT, VTT, VerboseJSON, DiarizedJSON}, f) {
		return nil // an unknown format: Request.fields says so
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("transcribe: model %s %s: %w", model, fmt.Sprintf(format, args...), ErrBadRequest)
	}
	switch {
	case translate && !m.translates:
		return bad("does not translate: use whisper-1 for translations")
	case m.formats != nil && !slices.Contains(m.formats, f) && !(f == Text && slices.Contains(m.formats, JSON)):
		what := "does not return " + string(f)
		if !m.timestamps && (f == SRT || f == VTT || f == VerboseJSON) {
			what += " (it gives no timestamps)"
		}
		return bad("%s: ask for %s, or use a model that returns it (whisper-1 returns %s)", what, formatList(m.formats), formatList([]ResponseFormat{JSON, Text, SRT, VTT, VerboseJSON}))
	case len(req.TimestampGranularities) > 0 && !m.timestamps:
		return bad("gives no timestamps: leave Request.TimestampGranularities empty, or use whisper-1")
	case req.Prompt != "" && !m.prompt:
		return bad("takes no prompt: leave Request.Prompt empty")
	case slices.Contains(req.Include, "logprobs") && !m.logprobs:
		return bad("returns no logprobs: remove \"logprobs\" from Request.Include, or use gpt-4o-transcribe or gpt-4o-mini-transcribe")
	case slices.Contains(req.Include, "logprobs") && f != JSON:
		return bad("returns logprobs with json only: ask for json, or remove \"logprobs\" from Request.Include")
	case req.ChunkingStrategy != nil && !m.chunking:
		return bad("takes no chunking strategy: leave Request.ChunkingStrategy nil")
	}
	return nil
}

// provider is a client's provider: its profile and where it is.
type provider struct {
	profile
	source     string // what chose it: an option, or an environment variable
	deployment string // Azure: the deployment; "": each request's model names it
	apiVersion string // Azure
	// maxInFlight bounds the requests in flight of a client's own
	// limiter (ServerLimits.MaxInFlight); 0: the limiter's default.
	maxInFlight int
}

// Provider describes the server a Client sends to, as NewClient chose it
// from its options and the environment (see Client.Provider).
type Provider struct {
	// Name is "OpenAI", "Azure OpenAI", "Groq", "self-hosted server" or
	// "OpenAI-compatible server" (a base URL of a server the package does
	// not know, treated as OpenAI is).
	Name string
	// Source says what chose it: "option", "default", or the environment
	// variable that did ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT",
	// "OPENAI_API_KEY", "GROQ_API_KEY").
	Source string
	// BaseURL is where requests go, without user info or query: the base
	// URL up to /v1, or Azure's endpoint.
	BaseURL string
	// Deployment and APIVersion are Azure's. An empty Deployment means
	// that each request's Model names the deployment.
	Deployment string
	APIVersion string
	// AuthHeader is the header that carries the API key: "Authorization"
	// or "api-key"; empty when the client has no key.
	AuthHeader string
	// MaxBodyBytes is the largest request the server takes, multipart
	// framing included; larger files are cut. 0: no limit.
	MaxBodyBytes int64
	// MinBilledSeconds is the shortest audio a request is billed for.
	MinBilledSeconds float64
	// Formats are the response formats the server returns itself; nil:
	// all. Text, SRT and VTT missing from it are asked for as JSON or
	// verbose_json and rendered locally, in the same layout as OpenAI's.
	Formats []ResponseFormat
	// DefaultModel is the model sent when Request.Model is empty; for
	// Azure, the deployment (empty: Request.Model must name it).
	DefaultModel string
	// MaxPromptChars is the longest prompt the server takes (0: any); a
	// longer prompt is cut to its end, the part a Whisper model reads.
	MaxPromptChars int
}

// String describes p in one line, e.g. "Azure OpenAI at
// https://res.openai.azure.com (deployment whisper, api-version
// 2024-10-21; from AZURE_OPENAI_ENDPOINT)".
func (p Provider) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s", p.Name, p.BaseURL)
	var notes []string
	if p.Name == azureProfile.name {
		dep := "named by the model"
		if p.Deployment != "" {
			dep = p.Deployment
		}
		notes = append(notes, "deployment "+dep, "api-version "+p.APIVersion)
	}
	if p.Source != "" {
		notes = append(notes, "from "+p.Source)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
	}
	return b.String()
}

// Provider returns the server the client sends to, and what it knows of
// it.
func (c *Client) Provider() Provider {
	p := Provider{
		Name: c.prov.name, Source: c.prov.source, BaseURL: c.safeBaseURL(),
		Deployment: c.prov.deployment, APIVersion: c.prov.apiVersion,
		MaxBodyBytes: c.prov.maxBody, MinBilledSeconds: c.prov.minBilled,
		Formats: slices.Clone(c.prov.formats), DefaultModel: c.prov.defaultModel, MaxPromptChars: c.prov.maxPrompt,
	}
	if c.prov.name == azureProfile.name {
		p.DefaultModel = c.prov.deployment
	}
	if c.apiKey != "" {
		p.AuthHeader = "Authorization"
		if c.prov.auth == authAPIKey {
			p.AuthHeader = "api-key"
		}
	}
	return p
}

// errTwoProviders is the error for a second provider option.
var errTwoProviders = errors.New("transcribe: more than one of Azure, Groq and SelfHosted given")

// choose makes p the client's provider, chosen by an option.
func (c *Client) choose(p provider) error {
	if c.chosen != nil {
		return errTwoProviders
	}
	p.source = "option"
	c.chosen = &p
	return nil
}

// Azure makes the client send to an Azure OpenAI resource: endpoint is
// the resource's URL ("https://NAME.openai.azure.com"; AZURE_OPENAI_ENDPOINT
// is read when the client is made with no provider option), deployment the
// deployment of a transcription model, and apiVersion the api-version
// sent with each request (empty: $OPENAI_API_VERSION, else
// DefaultAzureAPIVersion). Requests go to
// {endpoint}/openai/deployments/{deployment}/audio/transcriptions?api-version=…
// with the key in the api-key header ($AZURE_OPENAI_API_KEY, or
// WithAPIKey), never in Authorization.
//
// An empty deployment lets each request's Model name it, as the official
// SDKs do; Request.Model must then be set. WithBaseURL cannot be combined
// with Azure: the endpoint is the base.
func Azure(endpoint, deployment, apiVersion string) Option {
	return func(c *Client) error {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("transcribe: Azure endpoint %q is not an http(s) URL without a query, like https://NAME.openai.azure.com", sanitizeURL(endpoint))
		}
		if strings.ContainsAny(deployment, "/?#") {
			return fmt.Errorf("transcribe: Azure deployment %q: a deployment's name has no /, ? or #", deployment)
		}
		if err := c.choose(provider{profile: azureProfile, deployment: deployment, apiVersion: apiVersion}); err != nil {
			return err
		}
		c.endpoint = endpoint
		return nil
	}
}

// Groq makes the client send to Groq: DefaultGroqBaseURL (unless
// WithBaseURL gives another, such as a proxy's), with the key from
// $GROQ_API_KEY (or WithAPIKey). Requests without a Model ask for
// DefaultGroqModel. Groq returns json, verbose_json and text: srt and vtt
// are asked for as verbose_json and rendered locally. A prompt over
// Groq's 896 characters is cut to its end. Bodies over 25 MB are cut into
// pieces (WithMaxBodyBytes raises the limit for paid tiers' 100 MB).
func Groq() Option {
	return func(c *Client) error {
		return c.choose(provider{profile: groqProfile})
	}
}

// ServerLimits describes a self-hosted server for SelfHosted.
type ServerLimits struct {
	// MaxBodyBytes is the largest request body the server takes,
	// multipart framing included (LocalAI: 15 MB by default); larger files
	// are cut into pieces that fit. 0: no limit, so that a file is sent
	// whole unless SplitOptions asks for pieces.
	MaxBodyBytes int64
	// Formats are the response formats the server returns; nil means JSON
	// and VerboseJSON, which speaches, whisper.cpp, vLLM and LocalAI all
	// return. Text, SRT and VTT not listed are rendered locally from them.
	Formats []ResponseFormat
	// MaxInFlight bounds the requests sent at once (whisper.cpp's server
	// handles one at a time); 0: the limiter's default. It applies to the
	// client's own limiter, not to one given with WithLimiter.
	MaxInFlight int
}

// SelfHosted makes the client send to a server the user runs (speaches,
// whisper.cpp's server with --inference-path /v1/audio/transcriptions,
// vLLM, LocalAI) at baseURL, up to and including /v1. No key is needed or
// read from the environment; give one with WithAPIKey if the server checks
// it. limits says what the server takes (see ServerLimits).
func SelfHosted(baseURL string, limits ServerLimits) Option {
	return func(c *Client) error {
		if limits.MaxBodyBytes < 0 || limits.MaxInFlight < 0 {
			return errors.New("transcribe: negative server limit")
		}
		for _, f := range limits.Formats {
			if !slices.Contains([]ResponseFormat{JSON, Text, SRT, VTT, VerboseJSON, DiarizedJSON}, f) {
				return fmt.Errorf("transcribe: unknown response format %q", f)
			}
		}
		p := provider{profile: selfHostedProfile, maxInFlight: limits.MaxInFlight}
		p.maxBody = limits.MaxBodyBytes
		if limits.Formats != nil {
			p.formats = slices.Clone(limits.Formats)
		}
		if !slices.Contains(p.formats, JSON) && !slices.Contains(p.formats, VerboseJSON) {
			return errors.New("transcribe: a self-hosted server must return json or verbose_json")
		}
		if err := c.choose(p); err != nil {
			return err
		}
		c.endpoint = baseURL
		return nil
	}
}

// WithMaxBodyBytes sets the largest request body the server takes,
// multipart framing included, in place of the provider's (25 MiB for
// OpenAI, 25 MB for Groq: give 100 MB for its paid tiers); files over it
// are cut into pieces that fit. A limit above 25 MiB is honoured: a file
// that fits is sent whole. 0 means no limit.
func WithMaxBodyBytes(n int64) Option {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("transcribe: negative body limit %d", n)
		}
		c.maxBody = &n
		return nil
	}
}

// resolveProvider chooses the client's provider, base URL and key from
// its options and, where they leave them open, from the environment. The
// precedence, most specific first:
//
//  1. A provider option (Azure, Groq, SelfHosted): it decides, with its own
//     key variable (AZURE_OPENAI_API_KEY, GROQ_API_KEY; none for
//     SelfHosted).
//  2. WithBaseURL, then $OPENAI_BASE_URL: a base URL, whose host decides
//     (api.openai.com: OpenAI; api.groq.com: Groq; an Azure host is
//     refused, as it needs Azure; any other: an OpenAI-compatible server),
//     with $OPENAI_API_KEY as the key (for Groq, else $GROQ_API_KEY).
//  3. $AZURE_OPENAI_ENDPOINT: Azure, with $AZURE_OPENAI_API_KEY and
//     $OPENAI_API_VERSION; each request's Model names the deployment.
//  4. $OPENAI_API_KEY: OpenAI.
//  5. $GROQ_API_KEY: Groq.
//  6. Otherwise OpenAI, which needs a key.
//
// WithAPIKey always gives the key. A key is never taken from another
// provider's variable, so that no provider is sent another's key.
func (c *Client) resolveProvider(getenv func(string) string) error {
	fromURL := func(raw, source string) error {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("transcribe: base URL %q is not an http(s) URL", sanitizeURL(raw))
		}
		host := strings.ToLower(u.Hostname())
		switch {
		case host == "api.openai.com":
			c.prov = provider{profile: openAIProfile}
		case host == "api.groq.com":
			c.prov = provider{profile: groqProfile}
			c.prov.keyEnv = "OPENAI_API_KEY"
		case isAzureHost(host) && !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/openai/v1"):
			return fmt.Errorf("transcribe: %s is an Azure OpenAI resource: use transcribe.Azure(endpoint, deployment, apiVersion), or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY, not a base URL", sanitizeURL(raw))
		default:
			c.prov = provider{profile: compatibleProfile}
		}
		c.prov.source = source
		c.baseURL = raw
		return nil
	}
	switch {
	case c.chosen != nil:
		c.prov = *c.chosen
		switch c.prov.name {
		case azureProfile.name:
			if c.baseURL != "" {
				return errors.New("transcribe: Azure takes the endpoint: do not also give WithBaseURL")
			}
			c.baseURL = c.endpoint
			if c.prov.apiVersion == "" {
				c.prov.apiVersion = cmpOr(getenv("OPENAI_API_VERSION"), DefaultAzureAPIVersion)
			}
		case groqProfile.name:
			c.baseURL = cmpOr(c.baseURL, DefaultGroqBaseURL)
		case selfHostedProfile.name:
			if c.baseURL != "" {
				return errors.New("transcribe: SelfHosted takes the base URL: do not also give WithBaseURL")
			}
			c.baseURL = c.endpoint
		}
	case c.baseURL != "":
		if err := fromURL(c.baseURL, "option"); err != nil {
			return err
		}
	case getenv("OPENAI_BASE_URL") != "":
		if err := fromURL(getenv("OPENAI_BASE_URL"), "OPENAI_BASE_URL"); err != nil {
			return err
		}
	case getenv("AZURE_OPENAI_ENDPOINT") != "":
		if err := Azure(getenv("AZURE_OPENAI_ENDPOINT"), "", getenv("OPENAI_API_VERSION"))(c); err != nil {
			return err
		}
		c.prov, c.baseURL = *c.chosen, c.endpoint
		c.prov.source = "AZURE_OPENAI_ENDPOINT"
		c.prov.apiVersion = cmpOr(c.prov.apiVersion, DefaultAzureAPIVersion)
	case getenv("OPENAI_API_KEY") == "" && getenv("GROQ_API_KEY") != "":
		c.prov, c.baseURL = provider{profile: groqProfile, source: "GROQ_API_KEY"}, DefaultGroqBaseURL
	default:
		c.prov, c.baseURL = provider{profile: openAIProfile, source: "default"}, DefaultBaseURL
		if getenv("OPENAI_API_KEY") != "" {
			c.prov.source = "OPENAI_API_KEY"
		}
	}

	u, err := url.Parse(c.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("transcribe: base URL %q is not an http(s) URL", sanitizeURL(c.baseURL))
	}
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	if c.maxBody != nil {
		c.prov.maxBody = *c.maxBody
	}
	if !c.keySet {
		c.apiKey = getenv(c.prov.keyEnv)
		if c.apiKey == "" && c.prov.name == groqProfile.name && c.prov.keyEnv != "GROQ_API_KEY" {
			c.apiKey = getenv("GROQ_API_KEY") // a Groq base URL in OPENAI_BASE_URL
		}
	}
	if c.apiKey == "" && c.prov.needsKey {
		env := c.prov.keyEnv
		if c.prov.name == groqProfile.name {
			env = "GROQ_API_KEY"
		}
		return fmt.Errorf("transcribe: %w for %s: %s is not set", ErrNoAPIKey, c.prov.name, env)
	}
	return nil
}

// isAzureHost reports whether host is an Azure OpenAI (or Azure AI
// Foundry) resource's.
func isAzureHost(host string) bool {
	for _, suffix := range []string{".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// wireRequest returns req, a transcription or (translate) a translation,
// as it is sent to the provider: Model defaulted to the provider's, a
// response format the server lacks replaced by the JSON one it is
// rendered from, and a prompt over the server's limit cut to its end (at
// a word boundary, as the model reads the end anyway).
func (p *provider) wireRequest(req Request, translate bool) (Request, error) {
	if req.Model == "" {
		if p.name == azureProfile.name && p.deployment == "" {
			return req, errors.New("transcribe: Azure OpenAI without a deployment: set Request.Model to the deployment's name, or give one to Azure")
		}
		req.Model = p.defaultModel
		if translate && p.translateModel != "" {
			req.Model = p.translateModel
		}
	}
	if name := p.modelName(req, translate); p.modelChecks && name != "" {
		if m, ok := lookupModel(name); ok {
			if err := m.check(name, req, req.format(), translate); err != nil {
				return req, err
			}
			if f := req.format(); f == Text && m.formats != nil && !slices.Contains(m.formats, f) {
				req.ResponseFormat = JSON // text, rendered from it (see check)
			}
		}
	}
	if f := req.format(); p.formats != nil && !slices.Contains(p.formats, f) {
		var from ResponseFormat
		switch {
		case f == Text && slices.Contains(p.formats, JSON):
			from = JSON
		case f == Text || f == SRT || f == VTT || f == JSON:
			from = VerboseJSON
		}
		if from == "" || !slices.Contains(p.formats, from) {
			return req, fmt.Errorf("transcribe: %s does not return %s, and it cannot be rendered from what it returns (%s): %w",
				p.name, f, formatList(p.formats), ErrBadRequest)
		}
		req.ResponseFormat = from
	}
	if p.maxPrompt > 0 && len([]rune(req.Prompt)) > p.maxPrompt {
		req.Prompt = promptEnd(req.Prompt, p.maxPrompt)
	}
	return req, nil
}

// promptEnd returns the end of s, at most max characters long, from the
// start of a word when s has one there.
func promptEnd(s string, max int) string {
	r := []rune(s)
	cut := len(r) - max
	if unicode.IsSpace(r[cut-1]) {
		return string(r[cut:])
	}
	tail := string(r[cut:])
	if i := strings.IndexFunc(tail, unicode.IsSpace); i >= 0 {
		if rest := strings.TrimLeftFunc(tail[i:], unicode.IsSpace); rest != "" {
			return rest
		}
	}
	return tail
}

func formatList(fs []ResponseFormat) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// requestURL is the URL of a request to endpoint ("/audio/transcriptions")
// carrying form, at base (the client's base URL; Azure's endpoint).
func (p *provider) requestURL(base, endpoint string, form *multipart.Form) (string, error) {
	if p.name != azureProfile.name {
		return base + endpoint, nil
	}
	dep := p.deployment
	if dep == "" {
		model, err := formModel(form)
		if err != nil {
			return "", err
		}
		dep = model
	}
	return base + "/openai/deployments/" + url.PathEscape(dep) + endpoint + "?api-version=" + url.QueryEscape(p.apiVersion), nil
}

// maxModelField bounds the model field formModel reads.
const maxModelField = 1 << 10

// formModel returns the value of form's model field, its first part (see
// Request.fields), read from the form's framing, never from its file: for
// an Azure deployment named by each request's model, as the official SDKs
// read it from the body they send.
func formModel(form *multipart.Form) (string, error) {
	body, err := form.NewBody()
	if err != nil {
		return "", fmt.Errorf("transcribe: %w", err)
	}
	defer body.Close()
	prefix := "--" + form.Boundary() + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	end := []byte("\r\n--" + form.Boundary())
	buf := make([]byte, 0, 512)
	chunk := make([]byte, 512)
	for len(buf) < len(prefix)+maxModelField+len(end) {
		n, err := body.Read(chunk[:min(len(chunk), len(prefix)+maxModelField+len(end)-len(buf))])
		buf = append(buf, chunk[:n]...)
		if len(buf) >= len(prefix) {
			if !strings.HasPrefix(string(buf), prefix) {
				break
			}
			if i := bytes.Index(buf[len(prefix):], end); i >= 0 {
				return string(buf[len(prefix) : len(prefix)+i]), nil
			}
		}
		if err != nil {
			if err == io.EOF {
				break
			}
			return "", fmt.Errorf("transcribe: %w", err)
		}
	}
	return "", errors.New("transcribe: the request has no model field to name the Azure deployment")
}

// overLimit reports whether a request body of size bytes is over the
// provider's limit.
func (c *Client) overLimit(size int64) bool {
	return c.prov.maxBody > 0 && size > c.prov.maxBody
}

// retrySignal completes what h says of the wait before a retry, for an
// error whose message is msg: when neither retry-after-ms nor retry-after
// gives it, the provider's own headers (Azure's x-ms-retry-after-ms) or
// message ("Please retry after 33 seconds") may. A wait found there is set
// on h as retry-after-ms, which every reader of the answer understands:
// the limiter then pauses every request for it, as for a standard header.
func (p *provider) retrySignal(h http.Header, msg string, now time.Time) (time.Duration, bool) {
	if wait, ok := ratehdr.RetryAfter(h, now); ok {
		return wait, true
	}
	ms := -1.0
	for _, name := range p.retryHeaders {
		if v, err := strconv.ParseFloat(strings.TrimSpace(h.Get(name)), 64); err == nil && v >= 0 && !math.IsInf(v, 0) {
			ms = v
			break
		}
	}
	if ms < 0 && p.retryMessage != nil {
		if m := p.retryMessage.FindStringSubmatch(msg); m != nil {
			if s, err := strconv.ParseFloat(m[1], 64); err == nil {
				ms = s * 1000
			}
		}
	}
	if ms < 0 {
		return 0, false
	}
	h.Set(ratehdr.HeaderRetryAfterMs, strconv.FormatFloat(ms, 'f', -1, 64))
	return ratehdr.RetryAfter(h, now)
}

// Token estimates for models that count audio in tokens (gpt-4o-transcribe
// and its kin), charged to the limiter's tokens budget before a request
// and corrected from the answer's usage. From OpenAI's prices ($6 per
// million audio tokens, about $0.006 a minute all told) a minute of audio
// is about 600 input tokens; speech makes about 3 text tokens a second.
const (
	audioTokensPerSecond  = 10
	outputTokensPerSecond = 3
)

// countsTokens reports whether model's rate limit counts tokens rather
// than requests alone: OpenAI's gpt-4o transcription models and their
// successors do, whisper does not.
func countsTokens(model string) bool {
	return strings.HasPrefix(model, "gpt-")
}

// cost estimates what a request for seconds of audio (0: unknown) costs the
// account's budgets with model.
func cost(model string, seconds float64) ratelimit.Cost {
	c := ratelimit.Cost{AudioSeconds: seconds}
	if countsTokens(model) {
		c.Tokens = seconds * (audioTokensPerSecond + outputTokensPerSecond)
	}
	return c
}

// actualCost corrects an estimate with the usage an answer reports.
func actualCost(est ratelimit.Cost, u *Usage) ratelimit.Cost {
	switch {
	case u == nil:
	case u.Type == "duration" && u.Seconds > 0:
		est.AudioSeconds = u.Seconds
	case u.Type == "tokens" && u.TotalTokens > 0:
		est.Tokens = float64(u.TotalTokens)
	}
	return est
}
