package transcribetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steno-go/steno/internal/audio"
)

// Config sets up a fake. The zero value is a well-behaved, unlimited server
// that accepts any API key.
type Config struct {
	// APIKey, if non-empty, is the only key accepted
	// ("Authorization: Bearer <APIKey>"); otherwise any non-empty bearer
	// token is.
	APIKey string

	// RateLimit configures the rate limits; the zero value has none.
	RateLimit RateLimit

	// QuotaRequests, if positive, is how many requests are billed (answered
	// 200) before the quota runs out; every request after that gets the 429
	// insufficient_quota, which has no retry-after. A request takes its
	// share when it is admitted and gives it back if it fails, so no more
	// than QuotaRequests are ever billed.
	QuotaRequests int

	// Faults are applied in order to the first len(Faults) requests that
	// pass the key check; FaultNone lets one through.
	Faults []Fault

	// FaultRate is the probability that each later request fails, with a
	// kind drawn uniformly from FaultKinds (default: FaultServerError,
	// FaultBadGateway, FaultOverloaded, FaultDropConnection; add
	// FaultTruncatedBody and FaultStall to try a client's reading of
	// answers and its timeouts). The draws come
	// from a generator seeded with Seed, so a sequential run is repeatable.
	FaultRate  float64
	FaultKinds []Fault
	Seed       uint64

	// Latency is added before each response is written; a cancelled request
	// stops waiting.
	Latency time.Duration

	// StreamDelay is the pause before each event of a streamed answer
	// (stream=true with a model that streams; see stream.go), so that a
	// client sees the words arrive one by one; a cancelled request stops
	// the stream.
	StreamDelay time.Duration

	// Transcriber makes the transcripts; nil means DefaultTranscriber.
	Transcriber TranscribeFunc

	// MaxBodyBytes is the largest request body accepted, multipart framing
	// included; 0 means the provider's: OpenAI's and Azure's 26214400
	// (25 MiB), Groq's 25,000,000, none for SelfHosted.
	MaxBodyBytes int64

	// Provider is the service the fake mimics: OpenAI (the zero value),
	// Azure, Groq or SelfHosted (see Provider for their URLs, headers and
	// error bodies).
	Provider Provider
	// Deployment, for Azure, is the one deployment served (others are
	// 404 DeploymentNotFound); empty: any.
	Deployment string
	// ResponseFormats, if not nil, narrows the response formats served to
	// these (e.g. vLLM's "json", "text", "verbose_json"); the others are
	// refused with the provider's error.
	ResponseFormats []string
}

// Fault is a failure the fake can inject in place of a response.
// Faults happen before the quota and rate-limit checks: they spend no
// budget, and (except FaultBadGateway and FaultDropConnection, which never
// reach the API) carry the x-ratelimit-* headers of the budget as it is.
type Fault int

// The faults. Each but FaultNone and FaultDropConnection answers with the
// status and body that OpenAI (or the gateway in front of it) sends.
const (
	FaultNone           Fault = iota // no fault: the request is served
	FaultServerError                 // 500 server_error "The server had an error while processing your request. Sorry about that!"
	FaultBadGateway                  // 502 with an HTML body (text/html), as gateways send
	FaultOverloaded                  // 503 server_error, code server_is_overloaded
	FaultDropConnection              // read about half the body, then close the connection without a response
	FaultRateLimited                 // 429 rate_limit_exceeded, type requests, retry-after of at least 1 s, whatever the budget (the message says "Limit 50" without a RateLimit)
	FaultTruncatedBody               // the request is served, but its answer is cut halfway: the declared Content-Length, half the body, then the connection closes
	FaultStall                       // the request is read and served, then nothing is sent until the client gives up (or an hour passes)
)

// stallFor is how long a FaultStall holds its answer back when the client
// does not give up first.
const stallFor = time.Hour

func (f Fault) String() string {
	names := []string{"FaultNone", "FaultServerError", "FaultBadGateway", "FaultOverloaded", "FaultDropConnection", "FaultRateLimited",
		"FaultTruncatedBody", "FaultStall"}
	if f >= 0 && int(f) < len(names) {
		return names[f]
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// DefaultMaxBodyBytes is OpenAI's limit on a request body: 25 MiB, multipart
// framing included.
const DefaultMaxBodyBytes = 26214400

// Stats is what a fake has received so far.
type Stats struct {
	Requests      int         // every request received
	ByStatus      map[int]int // responses by status; dropped connections count under 0
	MaxInFlight   int         // the most requests being handled at once
	BytesReceived int64       // request body bytes read
	Billed        []time.Time // arrival time of every request answered 200, in order
	Sent          []time.Time // arrival time of every request that reached the rate limiter (past the key check, faults and quota), in order

	// Audio lists the audio admitted past the audio-seconds check, in
	// order: one entry for every request whose upload was parsed and whose
	// duration could be read, whether or not RateLimit.AudioSeconds is set,
	// and none for those it refused. These are the charges to AudioSeconds;
	// a request that fails afterwards (in the Transcriber) keeps its entry.
	Audio []AudioCharge
}

// AudioCharge is the audio of one request, as charged to
// RateLimit.AudioSeconds.
type AudioCharge struct {
	At      time.Time // when it was charged: after the upload, before transcription
	Seconds float64   // the audio's duration, rounded up to whole seconds
}

// MaxAudioInWindow returns the most seconds of audio charged in any
// half-open window [t, t+d): for example the most audio the fake took in
// any hour, to check a client kept to an audio-seconds budget.
func (s Stats) MaxAudioInWindow(d time.Duration) float64 {
	charges := slices.SortedFunc(slices.Values(s.Audio), func(a, b AudioCharge) int { return a.At.Compare(b.At) })
	most, sum, i := 0.0, 0.0, 0
	for _, c := range charges {
		sum += c.Seconds
		for c.At.Sub(charges[i].At) >= d {
			sum -= charges[i].Seconds
			i++
		}
		most = max(most, sum)
	}
	return most
}

// MaxInWindow returns the largest number of times that fall in any
// half-open window [t, t+d): for example the most requests the fake saw in
// any minute, to check a client kept to its rate.
func (s Stats) MaxInWindow(times []time.Time, d time.Duration) int {
	if !slices.IsSortedFunc(times, time.Time.Compare) {
		times = slices.SortedFunc(slices.Values(times), time.Time.Compare)
	}
	most, i := 0, 0
	for j, t := range times {
		for t.Sub(times[i]) >= d {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// Handler is the fake API as an http.Handler; make one with NewHandler. Its
// methods are safe for concurrent use.
type Handler struct {
	cfg        Config
	faultKinds []Fault
	transcribe TranscribeFunc
	received   atomic.Int64 // body bytes read

	mu        sync.Mutex
	stats     Stats // BytesReceived unused: see received
	inFlight  int
	passed    int // requests past the key check, to index cfg.Faults
	quotaUsed int // requests admitted and not failed: billed, or on their way to it
	rng       *mathrand.Rand
	origin    time.Time // when the first request reached the rate limiter: fixed windows follow each other from it
	requests  *budget   // nil: not enforced
	tokens    *budget   // nil: not enforced
	audio     *budget   // nil: not enforced
}

// NewHandler returns a fake configured by cfg.
func NewHandler(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = cfg.Provider.defaultMaxBody()
	}
	requestsWindow := cfg.RateLimit.Window // Groq counts requests per day
	if cfg.RateLimit.Window <= 0 {
		cfg.RateLimit.Window = time.Minute
		requestsWindow = time.Minute
		if cfg.Provider == Groq {
			requestsWindow = 24 * time.Hour
		}
	}
	if cfg.RateLimit.AudioWindow <= 0 {
		cfg.RateLimit.AudioWindow = time.Hour
	}
	cfg.Faults, cfg.FaultKinds = slices.Clone(cfg.Faults), slices.Clone(cfg.FaultKinds)
	h := &Handler{
		cfg:        cfg,
		faultKinds: cfg.FaultKinds,
		transcribe: cfg.Transcriber,
		stats:      Stats{ByStatus: map[int]int{}},
		rng:        mathrand.New(mathrand.NewPCG(cfg.Seed, 0)),
	}
	if len(h.faultKinds) == 0 {
		h.faultKinds = []Fault{FaultServerError, FaultBadGateway, FaultOverloaded, FaultDropConnection}
	}
	if h.transcribe == nil {
		h.transcribe = DefaultTranscriber
	}
	rl := cfg.RateLimit
	if rl.Requests > 0 {
		h.requests = newBudget(rl.Shape, rl.Requests, requestsWindow, rl.Slices)
	}
	if rl.Tokens > 0 {
		h.tokens = newBudget(rl.Shape, rl.Tokens, rl.Window, rl.Slices)
	}
	if rl.AudioSeconds > 0 {
		h.audio = newBudget(rl.Shape, rl.AudioSeconds, rl.AudioWindow, 0)
	}
	return h
}

// Stats returns a copy of the statistics so far.
func (h *Handler) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.ByStatus = maps.Clone(s.ByStatus)
	s.Billed = slices.SortedFunc(slices.Values(s.Billed), time.Time.Compare)
	s.Sent = slices.SortedFunc(slices.Values(s.Sent), time.Time.Compare)
	s.Audio = slices.Clone(s.Audio)
	s.BytesReceived = h.received.Load()
	return s
}

// result is a response to write.
type result struct {
	status      int
	contentType string
	body        []byte
	admitted    bool // past the quota and rate limits
}

func errorResult(e *Error) result {
	return result{e.status(), "application/json", e.body(), false}
}

// ServeHTTP answers one request as the API would.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now()
	h.mu.Lock()
	h.stats.Requests++
	h.inFlight++
	h.stats.MaxInFlight = max(h.stats.MaxInFlight, h.inFlight)
	h.mu.Unlock()
	recorded := false
	defer func() {
		if !recorded { // a dropped connection (or a panicking Transcriber)
			h.record(0, arrival, false)
		}
	}()

	w.Header().Set("x-request-id", requestID())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.Body = countingBody{r.Body, &h.received}
	res, fault := h.serve(w, r, arrival)
	res = h.dress(res, w.Header()) // the provider's error bodies and headers
	if h.cfg.Latency > 0 {
		sleep(r.Context(), h.cfg.Latency)
	}
	if fault == FaultStall {
		sleep(r.Context(), stallFor)
		if r.Context().Err() != nil {
			return // the client gave up: recorded as a dropped connection
		}
	}
	hdr := w.Header()
	if res.status != http.StatusBadGateway && (h.cfg.Provider == OpenAI || h.cfg.Provider == Azure) {
		hdr.Set("openai-version", "2020-10-01")
		hdr.Set("openai-processing-ms", strconv.FormatInt(time.Since(arrival).Milliseconds(), 10))
	}
	if res.contentType == eventStream {
		recorded = true // by writeEvents
		h.writeEvents(w, r, res, arrival, fault == FaultTruncatedBody)
		return
	}
	hdr.Set("Content-Type", res.contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(res.body)))
	// Counted before the response goes out, so that a client that sends
	// its next request on receiving this one never sees both in flight.
	if fault == FaultTruncatedBody {
		// The client paid for a transcript it will not get whole: the
		// request counts as dropped.
		h.record(0, arrival, res.admitted)
		recorded = true
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body[:len(res.body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	h.record(res.status, arrival, res.admitted)
	recorded = true
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// record counts a finished request; an admitted one that failed gives its
// share of the quota back.
func (h *Handler) record(status int, arrival time.Time, admitted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlight--
	h.stats.ByStatus[status]++
	if admitted && status != http.StatusOK {
		h.quotaUsed--
	}
	if status == http.StatusOK {
		h.stats.Billed = append(h.stats.Billed, arrival)
	}
}

// tasks maps the routes to the task they perform.
var tasks = map[string]string{
	"/v1/audio/transcriptions": "transcribe",
	"/v1/audio/translations":   "translate",
}

// serve runs the checks in order and returns the response; headers other
// than the body's go on w.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, arrival time.Time) (result, Fault) {
	task, e := h.route(r) // the provider's URL shape
	if e != nil {
		return errorResult(e), FaultNone
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return errorResult(&Error{Status: http.StatusMethodNotAllowed, Type: invalidRequest,
			Message: fmt.Sprintf("Invalid method for URL (%s %s)", r.Method, r.URL.Path)}), FaultNone
	}
	if e := h.authorize(r); e != nil {
		return errorResult(e), FaultNone
	}
	fault := h.nextFault()
	switch fault {
	case FaultBadGateway:
		return result{http.StatusBadGateway, "text/html", []byte(badGatewayHTML), false}, FaultNone
	case FaultDropConnection:
		_, _ = io.CopyN(io.Discard, r.Body, max(1, r.ContentLength/2))
		panic(http.ErrAbortHandler) // net/http closes the connection; Transport reports an error
	default:
		if e := h.admit(w.Header(), r, arrival, fault); e != nil {
			return errorResult(e), FaultNone
		}
	}
	a, cleanup, e := h.parse(r, task)
	defer cleanup()
	var res result
	if e == nil {
		e = checkDuration(a)
	}
	var known map[int]string // the voices of known speakers, by name
	if e == nil {
		known, e = checkDiarize(r.Context(), a)
	}
	if e != nil {
		res = errorResult(e)
	} else if refused, ok := h.chargeAudio(w.Header(), a); !ok {
		res = refused
	} else {
		res = h.transcribeAndRender(r.Context(), a, known)
	}
	res.admitted = true
	if fault == FaultTruncatedBody || fault == FaultStall {
		return res, fault // applied once the answer is ready
	}
	return res, FaultNone
}

// authorize checks the bearer token, or the provider's key.
func (h *Handler) authorize(r *http.Request) *Error {
	if h.cfg.Provider != OpenAI {
		return h.authorizeProvider(r)
	}
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	key := ""
	if len(auth) >= len(prefix) && strings.EqualFold(auth[:len(prefix)], prefix) {
		key = auth[len(prefix):]
	}
	switch {
	case key == "":
		return errNoKey
	case h.cfg.APIKey != "" && key != h.cfg.APIKey:
		return wrongKey(key)
	}
	return nil
}

// nextFault returns the fault for a request that passed the key check.
func (h *Handler) nextFault() Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := h.passed
	h.passed++
	if i < len(h.cfg.Faults) {
		return h.cfg.Faults[i]
	}
	if h.cfg.FaultRate > 0 && h.rng.Float64() < h.cfg.FaultRate {
		return h.faultKinds[h.rng.IntN(len(h.faultKinds))]
	}
	return FaultNone
}

// admit applies a fault answered in JSON, the quota and the rate limits, in
// that order, and sets the x-ratelimit-* headers. A nil result admits the
// request, spending its budget.
func (h *Handler) admit(hdr http.Header, r *http.Request, arrival time.Time, fault Fault) *Error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.origin.IsZero() {
		h.origin = now
	}
	for _, b := range []*budget{h.requests, h.tokens} {
		if b != nil {
			b.advance(h.origin, now)
		}
	}
	defer func() { // the headers show the budget after this request
		if h.cfg.RateLimit.Silent {
			return
		}
		if h.requests != nil {
			h.requests.setHeaders(hdr, "requests", now)
		}
		if h.tokens != nil {
			h.tokens.setHeaders(hdr, "tokens", now)
		}
	}()

	switch fault {
	case FaultServerError:
		return errServer
	case FaultOverloaded:
		return errOverloaded
	case FaultRateLimited:
		wait, limit := time.Second, 50
		if b := h.requests; b != nil {
			wait, limit = max(wait, b.wait(now, 1)), int(b.limit)
		}
		setRetryAfter(hdr, wait)
		return h.rateLimited(r, "requests", limit, limit, 1, wait)
	}
	if q := h.cfg.QuotaRequests; q > 0 && h.quotaUsed >= q {
		return h.quotaError()
	}
	h.stats.Sent = append(h.stats.Sent, arrival)
	if b := h.requests; b != nil {
		if wait := b.wait(now, 1); wait > 0 {
			setRetryAfter(hdr, wait)
			return h.rateLimited(r, "requests", int(b.limit), int(b.limit)-b.remaining(), 1, wait)
		}
	}
	cost := float64(max(0, (r.ContentLength+999)/1000))
	if b := h.tokens; b != nil {
		if cost > b.limit {
			return tooLarge(int(b.limit), int(cost))
		}
		if wait := b.wait(now, cost); wait > 0 {
			setRetryAfter(hdr, wait)
			return h.rateLimited(r, "tokens", int(b.limit), int(b.limit)-b.remaining(), int(cost), wait)
		}
		b.spend(now, cost)
	}
	if b := h.requests; b != nil {
		b.spend(now, 1)
	}
	// Only an admitted request takes a share of the quota (given back if
	// it fails): one refused here never reaches the API's billing.
	h.quotaUsed++
	return nil
}

// chargeAudio charges a parsed request's audio to the audio-seconds budget
// and records it in Stats.Audio. If the audio does not fit, it returns
// Groq's 429 (or 413 for audio longer than the whole budget) and false;
// the request keeps what it spent of its request and token budgets.
func (h *Handler) chargeAudio(hdr http.Header, a *Audio) (result, bool) {
	seconds, ok := audioSeconds(a)
	if !ok {
		return result{}, true // the Transcriber will judge the file
	}
	seconds = math.Ceil(seconds)
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if b := h.audio; b != nil {
		if h.origin.IsZero() {
			h.origin = now
		}
		b.advance(h.origin, now)
		window := h.cfg.RateLimit.AudioWindow
		if seconds > b.limit {
			return audioTooLarge(a.Model, window, int(b.limit), int(seconds)), false
		}
		if wait := b.wait(now, seconds); wait > 0 {
			setRetryAfter(hdr, wait)
			return audioLimited(a.Model, window, int(b.limit), int(b.limit)-b.remaining(), int(seconds), wait), false
		}
		b.spend(now, seconds)
	}
	h.stats.Audio = append(h.stats.Audio, AudioCharge{At: now, Seconds: seconds})
	return result{}, true
}

// audioSeconds returns the duration of a request's audio as
// DefaultTranscriber measures it: from a WAV file's header, else at 128
// kbps (16000 bytes a second). ok is false for a WAV file whose header
// cannot be read.
func audioSeconds(a *Audio) (seconds float64, ok bool) {
	head := make([]byte, audio.SniffLen)
	n, _ := a.File.ReadAt(head, 0)
	if audio.Sniff(head[:n]) != audio.WAV {
		return float64(a.Size) / 16000, true
	}
	info, err := audio.ReadWAVInfo(a.File, a.Size)
	if err != nil {
		return 0, false
	}
	return info.Seconds(), true
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// requestID returns an x-request-id like OpenAI's: "req_" and 32 hex digits.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
