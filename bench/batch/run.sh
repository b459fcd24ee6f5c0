#!/usr/bin/env bash
# The case steno must win, measured: 50 audio files of ~10 MB each sent at
# once by the batch CLI (examples/batch, -concurrency 50) to an API that
# allows 50 requests per window, whole at the start, refuses chunked
# uploads, and answers 429 when the budget is overspent. Three runs, each
# against a fresh API: the reference, a plain client that sends all 50 at
# once (bench/batch/plain, no limiter); the CLI not told the budget (it
# learns it from the x-ratelimit-* headers); the CLI told it (-requests
# RPM/WINDOW).
#
# Checks, for each CLI run: every transcript present and correct, no
# chunked request, no 429, at least 45 in flight at once at the server,
# wall time at most 1.1 x the plain client's, and the batch process's peak
# RSS under the target (the user story: a 512 MB container; steno's aim: a
# few MB above the Go runtime's own).
#
#   bash bench/batch/run.sh
#   WINDOW=1m bash bench/batch/run.sh   # OpenAI's real minute
#
# Settings (environment): FILES (50), BYTES per file (10000000), RPM (50
# requests per WINDOW), WINDOW (10s: a scaled-down minute), LATENCY of each
# answer (10s, so that all 50 are in flight at the end), CONCURRENCY (50),
# MAX_RSS_MB (40), WORK (a temporary directory, removed after).
# Needs Go and GNU time (/usr/bin/time; Debian: apt-get install time).
set -euo pipefail

FILES=${FILES:-50}
BYTES=${BYTES:-10000000}
RPM=${RPM:-50}
WINDOW=${WINDOW:-10s}
LATENCY=${LATENCY:-10s}
CONCURRENCY=${CONCURRENCY:-50}
MAX_RSS_MB=${MAX_RSS_MB:-40}

cd "$(dirname "$0")/../.."
if [[ ! -x /usr/bin/time ]]; then
	echo "bench: GNU time is missing: apt-get install time" >&2
	exit 2
fi

keep_work=${WORK:+1}
WORK=${WORK:-$(mktemp -d -t steno-bench-batch-XXXXXX)}
fake_pid=
cleanup() {
	if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; fi
	if [[ -z $keep_work ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/bin"
go build -o "$WORK/bin/batch" ./examples/batch
# bench/ is a module of its own (github.com/steno-go/steno/bench).
(cd bench && go build -o "$WORK/bin/fakeapi" ./batch/fakeapi)
(cd bench && go build -o "$WORK/bin/wavgen" ./batch/wavgen)
(cd bench && go build -o "$WORK/bin/plain" ./batch/plain)

echo "generating $FILES WAV files of $BYTES bytes in $WORK/audio ..."
"$WORK/bin/wavgen" -dir "$WORK/audio" -n "$FILES" -bytes "$BYTES"
on_disk_kb=$(du -sk "$WORK/audio" | cut -f1)

# start_fake starts a fresh fake API (a whole budget) and sets base_url.
start_fake() {
	"$WORK/bin/fakeapi" -rpm "$RPM" -window "$WINDOW" -latency "$LATENCY" >"$WORK/fakeapi.out" 2>"$WORK/fakeapi.err" &
	fake_pid=$!
	for _ in $(seq 100); do
		[[ -s $WORK/fakeapi.out ]] && break
		sleep 0.05
	done
	base_url=$(head -n1 "$WORK/fakeapi.out")
}

# stop_fake stops it and sets stats to what it received.
stop_fake() {
	kill -TERM "$fake_pid"
	wait "$fake_pid" || true
	fake_pid=
	stats=$(sed -n 2p "$WORK/fakeapi.out")
}

# field NAME JSON: the number after "NAME": in a flat JSON object.
field() { grep -o "\"$1\": *[0-9.]*" <<<"$2" | head -n1 | sed 's/.*: *//'; }

echo "fake API: $RPM requests per $WINDOW, whole at the start, $LATENCY latency"
start_fake
plain_out=$("$WORK/bin/plain" -dir "$WORK/audio" -url "$base_url") || { echo "FAIL: the plain client: $plain_out"; exit 1; }
stop_fake
plain_s=$(sed 's/.* in \([0-9.]*\)s.*/\1/' <<<"$plain_out")
echo "$plain_out; the server saw $(field max_in_flight "$stats") in flight at most"

fail=0
# run_batch NAME FLAGS...: one run of the CLI against a fresh fake, checked.
run_batch() {
	local name=$1
	shift
	rm -rf "$WORK/out"
	start_fake
	local status=0
	OPENAI_BASE_URL=$base_url OPENAI_API_KEY=sk-bench \
		/usr/bin/time -v -o "$WORK/time.txt" \
		"$WORK/bin/batch" -concurrency "$CONCURRENCY" "$@" -json -out "$WORK/out" "$WORK/audio" \
		>"$WORK/summary.json" 2>"$WORK/batch.log" || status=$?
	stop_fake

	local verify rss_kb summary secs in_flight too_many chunked ratio
	verify=$("$WORK/bin/wavgen" -verify -dir "$WORK/audio" -out "$WORK/out/audio" | tail -n1) || true
	rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$WORK/time.txt")
	summary=$(tr -d '\n' <"$WORK/summary.json")
	secs=$(field elapsed_seconds "$summary")
	in_flight=$(field max_in_flight "$stats")
	too_many=$(field rate_limited_429 "$stats")
	chunked=$(field chunked "$stats")
	ratio=$(awk -v a="$secs" -v b="$plain_s" 'BEGIN { printf "%.2f", a / b }')

	echo
	echo "=== steno batch, $name: batch $* ==="
	echo "batch exit status:      $status"
	echo "batch summary:          done $(field done "$summary"), failed $(field failed "$summary"), requests $(field requests "$summary"), retries $(field retries "$summary"), 429s seen $(field rate_limited "$summary")"
	echo "transcripts:            $verify"
	echo "fake API received:      $(field requests "$stats") requests, by status $(grep -o '"by_status": *{[^}]*}' <<<"$stats" | sed 's/"by_status": *//'), $(field bytes_received "$stats") bytes"
	echo "chunked requests:       $chunked"
	echo "429 responses:          $too_many"
	echo "most in flight at once: $in_flight (target >= 45)"
	printf "%-24s%s\n" "most in any $WINDOW:" "$(field max_sent_in_window "$stats") sent (budget $RPM)"
	echo "time:                   ${secs}s, ${ratio} x the plain client's ${plain_s}s (target <= 1.1)"
	echo "peak RSS of batch:      $((rss_kb / 1024)) MiB ($rss_kb kB; target < $MAX_RSS_MB MiB)"

	[[ $status -eq 0 ]] || { echo "FAIL: batch exited $status; its log:"; tail -n 20 "$WORK/batch.log"; fail=1; }
	[[ $verify == "$FILES/$FILES transcripts present and correct" ]] || { echo "FAIL: transcripts"; fail=1; }
	[[ $chunked -eq 0 ]] || { echo "FAIL: chunked requests"; fail=1; }
	[[ $too_many -eq 0 ]] || { echo "FAIL: 429s"; fail=1; }
	[[ $in_flight -ge $((FILES * 9 / 10)) ]] || { echo "FAIL: only $in_flight in flight at once"; fail=1; }
	awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }' || { echo "FAIL: ${ratio} x the plain client's time"; fail=1; }
	[[ $rss_kb -lt $((MAX_RSS_MB * 1024)) ]] || { echo "FAIL: peak RSS"; fail=1; }
}

run_batch learned
run_batch configured -requests "$RPM/$WINDOW"
echo
if [[ $fail -eq 0 ]]; then echo "PASS"; fi
exit $fail
