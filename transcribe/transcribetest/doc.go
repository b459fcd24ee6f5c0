// Package transcribetest is an in-process fake of OpenAI's
// /v1/audio/transcriptions and /v1/audio/translations endpoints, for tests
// and for offline demos.
//
// The fake speaks the real wire format: it parses the multipart/form-data
// request as the API does (streaming, the file part spooled to a temporary
// file, never held in memory), validates the fields with OpenAI's rules and
// error bodies ({"error":{"message","type","param","code"}}), and answers in
// every response_format (json, text, srt, vtt, verbose_json, diarized_json)
// each model returns, refusing audio longer than a model takes (1,400 s for
// the gpt-4o models: 400 invalid_value, as OpenAI answers), with the headers a client learns from: x-request-id,
// openai-processing-ms, x-ratelimit-* and retry-after/retry-after-ms.
//
// Around that it simulates what makes a real batch hard, each driven by
// [Config]:
//
//   - rate limits ([RateLimit]): budgets of requests and tokens per window,
//     and of seconds of audio per hour or day as Groq has, each counted as
//     a token bucket that refills continuously (OpenAI's; the default), a
//     fixed window or a sliding window ([Shape]), optionally enforced in
//     slices of the window as OpenAI says it may; x-ratelimit-* headers
//     describe the requests and tokens budgets in the shape's terms (the
//     audio budget shows only in its 429s, as Groq's does), and a spent
//     budget answers 429 rate_limit_exceeded with retry-after;
//   - quota exhaustion: after a number of billed requests, every request gets
//     the 429 insufficient_quota that must never be retried;
//   - faults: scripted or random (seeded, so deterministic) 500, 502, 503,
//     429 and dropped connections;
//   - latency, and statistics ([Stats]) of what the fake received: requests
//     by status, the most in flight at once, arrival times of billed and
//     rate-limited requests, and the seconds of audio admitted.
//
// Transcripts come from a [TranscribeFunc]; [DefaultTranscriber] makes
// deterministic English text whose length follows the audio's duration.
//
// For diarized_json, the fake diarizes as the diarize model does: speakers
// are told apart by a tone each one's audio carries ([Voice]), labelled
// "A", "B", … per request, and named by known_speaker_names where the
// request's known_speaker_references (data URLs of 2 to 10 s, up to 4)
// carry their voice; it requires chunking_strategy for audio over 30 s.
//
// Use [NewServer] for a real loopback HTTP server (point a client's base URL
// at [Server.BaseURL]), or [NewHandler] and [Handler.Transport] for an
// in-memory http.RoundTripper with no sockets, which also works inside
// testing/synctest bubbles, where rate-limit windows pass in virtual time:
//
//	h := transcribetest.NewHandler(transcribetest.Config{
//		RateLimit: transcribetest.RateLimit{Requests: 5, Window: time.Second},
//	})
//	client := &http.Client{Transport: h.Transport()}
//	// POST multipart requests to http://fake/v1/audio/transcriptions
//
// The order of checks for each request is: route and method, API key,
// faults, quota, rate limit, request framing (Content-Length, size,
// multipart), fields, file, the model's duration cap, the diarize
// model's rules (chunking, known speakers), audio seconds, transcription.
package transcribetest
