package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

// config holds the knobs of every scenario; the command line sets some of
// them, the tests shrink them all.
type config struct {
	// bucket, sliding, fixed, quantised
	requests int           // requests to have answered 200
	budget   int           // requests per window the server allows
	window   time.Duration // the budget's window: a scaled minute
	inFlight int           // the most requests in flight, for every contender

	// highlimit
	hlUploads  int           // uploads to have answered 200
	hlBytes    int           // the size of each upload's WAV file
	hlLimit    int           // requests per real minute the server allows
	hlInFlight int           // the most uploads in flight
	hlLatency  time.Duration // the server's latency

	// audio
	audioClips    int           // clips to have transcribed
	audioClip     time.Duration // each clip's length
	audioBudget   int           // seconds of audio per audioHour
	audioHour     time.Duration // the audio budget's window, a scaled hour; a scaled minute is 1/60 of it
	audioRequests int           // requests per scaled minute
	audioInFlight int           // the most requests in flight

	// hostile
	maxPause time.Duration // steno's Config.MaxPause
	deadline time.Duration // the deadline of the caller that must fail at once
}

// defaultConfig returns the benchmark's configuration, for a window of
// the given length (the scaled minute of the budget scenarios, which the
// hostile server's times follow).
func defaultConfig(window time.Duration) config {
	return config{
		requests: 300, budget: 50, window: window, inFlight: 20,
		hlUploads: 200, hlBytes: 1 << 20, hlLimit: 10000, hlInFlight: 64, hlLatency: 100 * time.Millisecond,
		audioClips: 40, audioClip: 3 * time.Second, audioBudget: 72, audioHour: time.Minute, audioRequests: 20, audioInFlight: 64,
		maxPause: window / 3, deadline: window / 6,
	}
}

// The scenarios' names, in the order they run and print.
const (
	bucketName    = "bucket"
	slidingName   = "sliding"
	fixedName     = "fixed"
	quantisedName = "quantised"
	highlimitName = "highlimit"
	audioName     = "audio"
	hostileName   = "hostile"
)

// scenarioNames lists every scenario, hostile included.
var scenarioNames = []string{bucketName, slidingName, fixedName, quantisedName, highlimitName, audioName, hostileName}

// A scenario is a server, a batch of uploads and the contenders that send
// it (hostile aside, which has its own code).
type scenario struct {
	name  string
	about string // the conditions, printed above the table

	server   transcribetest.Config
	clip     []byte // the WAV file every request uploads
	requests int    // uploads to have answered 200
	inFlight int    // the most in flight, for every contender
	budget   int    // requests per window, for the contenders told it
	window   time.Duration

	chargeAudio bool    // steno charges each request's audio (audio scenario)
	clipSeconds float64 // the audio charged per request
	audioBudget ratelimit.Limit

	ideal      time.Duration // the time a client spending exactly the budget takes; 0: none
	ref        string        // the contender whose median time is the reference; "": the ideal
	target     target
	contenders []contender
	serial     bool          // the run loads the machine: run alone, one contender at a time
	timeout    time.Duration // a run not done by then has failed
	showWindow bool          // report the most requests the server saw in any window
	splitAudio bool          // report 429s for requests and for audio apart
}

// scaled returns d, a wait meant for a budget per minute, scaled to the
// scenario's window.
func (sc *scenario) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * float64(sc.window) / float64(time.Minute))
}

// target is what steno's contenders must achieve in a scenario.
type target struct {
	ratio  float64 // time ≤ ratio × the reference time
	max429 float64 // 429s ≤ max429
	// learnedAudio429 counts, for steno-learned, only the 429s for audio:
	// its first blind burst may draw 429s for a requests budget it does not
	// know yet, which are reported apart.
	learnedAudio429 bool
}

// met reports whether a run of c (or the medians of its runs) that took
// elapsed and drew limited 429s, limitedAudio of them for audio, meets t
// against the reference time ref.
func (t target) met(c contender, elapsed time.Duration, limited, limitedAudio float64, ref time.Duration) bool {
	if t.learnedAudio429 && c.name == stenoLearned {
		limited = limitedAudio
	}
	return ref > 0 && elapsed.Seconds() <= t.ratio*ref.Seconds()+1e-9 && limited <= t.max429
}

// describe says t in words, against the reference named ref.
func (t target) describe(ref string) string {
	s := fmt.Sprintf("≤ %g × %s", t.ratio, ref)
	if !math.IsInf(t.max429, 1) {
		s += fmt.Sprintf(", ≤ %g × 429", t.max429)
	}
	if t.learnedAudio429 {
		s += " (for steno-learned, the 429s for audio)"
	}
	return s
}

// refName names the scenario's reference.
func (sc *scenario) refName() string { return cmpOr(sc.ref, "ideal") }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// budgetContenders returns the contenders of the budget scenarios: steno
// learned and configured (and told to spread, when spread), xrate, the
// cookbook, the forum, openai-go with its defaults and the naive client.
func budgetContenders(spread bool) []contender {
	cs := []contender{
		steno(stenoLearned, func(sc *scenario) ratelimit.Config {
			return ratelimit.Config{MaxInFlight: sc.inFlight}
		}),
		steno(stenoConfigured, func(sc *scenario) ratelimit.Config {
			return ratelimit.Config{MaxInFlight: sc.inFlight, Requests: ratelimit.Limit{N: float64(sc.budget), Per: sc.window}}
		}),
	}
	if spread {
		cs = append(cs, steno(stenoSpread, func(sc *scenario) ratelimit.Config {
			return ratelimit.Config{MaxInFlight: sc.inFlight, Requests: ratelimit.Limit{N: float64(sc.budget), Per: sc.window}, Spread: true}
		}))
	}
	return append(cs,
		contender{name: xrateName, run: runXrate},
		contender{name: cookbookName, run: runCookbook},
		contender{name: forumName, run: runForum},
		contender{name: openaiGoName, run: runOpenAIGo},
		contender{name: allAtOnceName, run: runAllAtOnce},
	)
}

// scenarios returns every scenario but hostile, configured by c.
func scenarios(c config) []*scenario {
	clip := transcribetest.WAV(200 * time.Millisecond)
	ideal := time.Duration(float64(c.requests) / float64(c.budget) * float64(c.window))
	budgetScenario := func(name, shape string, rl transcribetest.RateLimit, t target, ref string, spread bool) *scenario {
		rl.Requests, rl.Window = c.budget, c.window
		return &scenario{
			name: name,
			about: fmt.Sprintf("%d requests; %s, %d per %v, whole at the start; server latency %v; at most %d in flight",
				c.requests, shape, c.budget, c.window, fmtDur(c.window/30), c.inFlight),
			server:   transcribetest.Config{APIKey: apiKey, RateLimit: rl, Latency: c.window / 30},
			clip:     clip,
			requests: c.requests, inFlight: c.inFlight, budget: c.budget, window: c.window,
			ideal: ideal, ref: ref, target: t,
			contenders: budgetContenders(spread),
			timeout:    4*ideal + 30*time.Second,
			showWindow: true,
		}
	}
	percent2 := math.Floor(0.02 * float64(c.requests))

	hlClip := wavOf(c.hlBytes)
	highlimit := &scenario{
		name: highlimitName,
		about: fmt.Sprintf("%d uploads of a %.1f MiB WAV; a bucket of %d requests per minute (a real one); server latency %v; at most %d in flight",
			c.hlUploads, float64(len(hlClip))/(1<<20), c.hlLimit, c.hlLatency, c.hlInFlight),
		server:   transcribetest.Config{APIKey: apiKey, RateLimit: transcribetest.RateLimit{Requests: c.hlLimit, Window: time.Minute}, Latency: c.hlLatency},
		clip:     hlClip,
		requests: c.hlUploads, inFlight: c.hlInFlight, budget: c.hlLimit, window: time.Minute,
		ref: plainName, target: target{ratio: 1.1, max429: math.Inf(1)},
		contenders: []contender{
			steno(stenoLearned, func(sc *scenario) ratelimit.Config { return ratelimit.Config{MaxInFlight: sc.inFlight} }),
			{name: plainName, run: runPlain},
		},
		serial:  true,
		timeout: 2 * time.Minute,
	}

	minute := c.audioHour / 60
	audioClip := transcribetest.WAV(c.audioClip)
	clipSeconds := math.Ceil(wavSeconds(audioClip)) // as the fake charges it
	total := float64(c.audioClips) * clipSeconds
	audioIdeal := max(
		time.Duration(max(0, total-float64(c.audioBudget))/float64(c.audioBudget)*float64(c.audioHour)),
		time.Duration(max(0, float64(c.audioClips-c.audioRequests))/float64(c.audioRequests)*float64(minute)),
		minute/30)
	audio := &scenario{
		name: audioName,
		about: fmt.Sprintf("%d clips of %v (charged %g s each: %g s); Groq-like: a bucket of %d requests per %v (a scaled minute; in headers) "+
			"and of %d s of audio per %v (a scaled hour; only in 429 messages), whole at the start; server latency %v; at most %d in flight",
			c.audioClips, c.audioClip, clipSeconds, total, c.audioRequests, fmtDur(minute), c.audioBudget, c.audioHour, fmtDur(minute/30), c.audioInFlight),
		server: transcribetest.Config{APIKey: apiKey, Latency: minute / 30, RateLimit: transcribetest.RateLimit{
			Requests: c.audioRequests, Window: minute, AudioSeconds: c.audioBudget, AudioWindow: c.audioHour,
		}},
		clip:     audioClip,
		requests: c.audioClips, inFlight: c.audioInFlight, budget: c.audioRequests, window: minute,
		chargeAudio: true, clipSeconds: clipSeconds,
		audioBudget: ratelimit.Limit{N: float64(c.audioBudget), Per: c.audioHour},
		ideal:       audioIdeal,
		target:      target{ratio: 1.1, max429: 2, learnedAudio429: true},
		contenders: []contender{
			steno(stenoLearned, func(sc *scenario) ratelimit.Config { return ratelimit.Config{MaxInFlight: sc.inFlight} }),
			steno(stenoConfigured, func(sc *scenario) ratelimit.Config {
				return ratelimit.Config{
					MaxInFlight:  sc.inFlight,
					Requests:     ratelimit.Limit{N: float64(sc.budget), Per: sc.window},
					AudioSeconds: sc.audioBudget,
				}
			}),
			{name: xrateName, run: runXrate},
			{name: openaiGoName, run: runOpenAIGo},
		},
		timeout:    4*audioIdeal + 30*time.Second,
		splitAudio: true,
	}

	return []*scenario{
		budgetScenario(bucketName, "a bucket", transcribetest.RateLimit{Shape: transcribetest.Bucket},
			target{ratio: 1.02, max429: 1}, xrateName, false),
		budgetScenario(slidingName, "a sliding window", transcribetest.RateLimit{Shape: transcribetest.SlidingWindow},
			target{ratio: 1.15, max429: percent2}, "", false),
		budgetScenario(fixedName, "a fixed window", transcribetest.RateLimit{Shape: transcribetest.FixedWindow},
			target{ratio: 1.15, max429: percent2}, "", false),
		budgetScenario(quantisedName, fmt.Sprintf("a bucket enforced in 5 slices of %d per %v", max(1, c.budget/5), fmtDur(c.window/5)),
			transcribetest.RateLimit{Shape: transcribetest.Bucket, Slices: 5}, target{ratio: 1.1, max429: 3}, "", true),
		highlimit,
		audio,
	}
}

// pick returns the scenarios named in list (comma-separated; empty: all)
// in their order, and whether hostile is among them; an unknown name is an
// error.
func pick(all []*scenario, list string) (chosen []*scenario, hostile bool, err error) {
	if list == "" {
		return all, true, nil
	}
	want := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		found := name == hostileName
		for _, sc := range all {
			found = found || sc.name == name
		}
		if !found {
			return nil, false, fmt.Errorf("no scenario %q: choose among %s", name, strings.Join(scenarioNames, ", "))
		}
		want[name] = true
	}
	for _, sc := range all {
		if want[sc.name] {
			chosen = append(chosen, sc)
		}
	}
	return chosen, want[hostileName], nil
}

// fmtDur formats d rounded to a millisecond (10 ms from a second up).
func fmtDur(d time.Duration) string {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
