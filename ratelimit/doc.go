// Package ratelimit keeps many concurrent requests to a rate-limited API
// within its budgets, and spends exactly what the server grants.
//
// # The model
//
// A Limiter mirrors one account's budgets on the server: requests, tokens
// and audio seconds. Before each request, Acquire waits until the request
// may go: a free slot among MaxInFlight, every budget holding the request's
// cost, no shared pause in force, and its turn (callers are served in order
// of arrival). It returns a Permit; when the answer arrives, Permit.Done
// hands it back, and that is how the limiter learns. Most callers use
// Acquire and Done around each request, or wrap an HTTP client with
// Transport, which does it for them.
//
// What may be sent is what the server says remains, less what is on its
// way and may not have been counted yet. A budget the server says is whole
// is spent at once: 50 requests queued against a whole budget of 50 go
// together. Then the refill is spent as it comes back.
//
// # Where the numbers come from
//
// Configured limits (Config.Requests, say 50 per minute) are where the
// limiter starts: a full bucket of 50 that refills 50 a minute, as an
// x/time/rate limiter of burst 50. The server's headers then correct the
// size and the level. OpenAI-style servers send, for requests and for
// tokens, the budget's size, what is left, and the time until it is whole
// again (x-ratelimit-limit-requests: 50, -remaining-requests: 49,
// -reset-requests: 1.2s). Each answer is a statement: now, 49 may be
// spent, less what is in flight; by the reset, all of it.
//
// Answers overtake each other, so statements arrive out of order. The time
// a statement says the budget is whole again only moves later as the
// budget is spent, whatever its shape, so it orders them: a statement that
// says "whole" earlier than the one in force was made before it, and only
// tells that its own request was counted.
//
// Budgets that no header reports (Groq's audio seconds per hour and per
// day) are configured, or learned from a 429's message ("on audio seconds
// per hour (ASPH): Limit 7200, Used 7134, Requested 120. Please try again in
// 1m2.5s"): what was used, the size, the window, and when the refused
// request fits. Of the requests in flight when such a 429 comes, those
// granted before the refused one are taken as counted in its Used; a debt
// left by that guess ends with their answers, since the server never lets
// this budget go below zero. A request's cost (Cost: tokens, audio
// seconds) is given to
// Acquire as an estimate and corrected with Permit.Settle from the answer's
// usage.
//
// # How a budget comes back
//
// Servers count budgets differently, and the limiter learns which from how
// remaining and reset move between answers:
//
//   - A bucket refills continuously (OpenAI, Groq): reset is the time the
//     deficit takes to refill, reset = (limit − level) × window / limit.
//     Every answer then bounds the window, and the bounds of all answers
//     agree; once they pin it within 25 %, the limiter spends the refill as
//     it comes (at the middle of the bounds).
//   - A fixed window lets N through per window and is whole again at its
//     end; a sliding window lets N through in any window and is whole once
//     the newest request has left it (reset ≈ the window after any request).
//     Their resets hardly depend on what remains, so the answers' bounds
//     soon contradict each other: the limiter then spends what remains and
//     waits for the reset, when all of it is back.
//   - Until the answers tell, the budget is treated as a window.
//
// Whatever the guess, the limiter never waits longer than the server's own
// statement allows: the whole budget is back by the reset, so after
// spending it the worst case is waiting until the reset. A wrong guess
// costs at most that one window; a guess of a bucket where the truth is a
// window costs a 429, whose pause and headers correct it.
//
// Some servers enforce a budget in slices (OpenAI documents that 60,000 a
// minute may be enforced as 1,000 a second) while their headers describe
// the whole budget. A 429 whose own headers say the budget has room shows
// this: from then on the limiter paces requests evenly at the budget's
// rate, and says so in Stats.Spread. Config.Spread does so from the start;
// without it, the first burst against such a server draws 429s.
//
// # Pauses and bounded waits
//
// A 429 rate_limit_exceeded pauses every caller of the limiter, not just
// the one that got it, until the time the server gave (retry-after-ms,
// retry-after, else the reset), or else a backoff that grows with repeated
// 429s; 429s answering requests sent before the pause began extend it to
// the latest time asked for but do not add up. A 429 insufficient_quota is
// not a rate limit: Done with an error matching ErrQuotaExceeded changes
// nothing, and the caller should stop.
//
// No header makes a wait longer than MaxPause unless the caller configured
// that budget: a statement that one request a day is allowed costs a pause
// of MaxPause, then the next answer is another statement. A caller whose
// context has a deadline that its wait would pass fails at once with
// ErrWouldExceedDeadline, counting the callers ahead of it in the queue.
//
// Servers that send no x-ratelimit headers (self-hosted servers, many
// gateways) get an adaptive rate in the manner of the AWS SDK's adaptive
// retry mode: unrestricted until the first 429, then cut to 0.7 × the
// measured rate of successes and grown back along a cubic curve, never
// above twice that rate. A 503 is a server in trouble, not a rate: its
// retry-after pauses every caller, but it leaves the pace alone.
//
// # One budget for a fleet
//
// A budget belongs to the account, not the process. Limiters in several
// processes (web containers, batch workers) that are given the same Store
// (Config.Store; package redisstore keeps it in Redis) share one state:
// each reads it, grants or learns, and saves it in one atomic step, so the
// fleet spends what the server grants once, not once per process, and a
// 429 seen by one pauses all. What each limiter has in flight is held
// under a lease it renews while it holds permits; the permits of a
// limiter that stops renewing (a crashed process) stop counting after
// Config.LeaseTTL. A limiter with callers waiting reads the state again
// every 50 ms, to see what other limiters freed.
//
// Every call of the store is bounded by Config.StoreTimeout. While the
// store is unreachable, a limiter logs a warning and limits on its own at
// Config.FallbackShare of each budget (the server's reports scaled by it),
// or, with Config.FailClosed, fails Acquire with ErrStoreUnavailable; it
// tries the store again every second while in use, and rejoins. If the
// store comes back empty (a Redis restarted without persistence), what
// the limiter learned on its own starts it again.
//
// A fleet that has never heard from the server, and was told no requests
// budget, sends one request first and learns the budget from its answer:
// otherwise each process's first burst would go blind at once.
package ratelimit
