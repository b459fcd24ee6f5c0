package transcribe

import (
	"strings"

	"github.com/steno-go/steno/ratelimit"
)

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
