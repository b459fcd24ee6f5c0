#!/usr/bin/env bash
# Cutting one long file, measured. Two claims:
#
# 1. Memory: the CLI (examples/transcribe) transcribing a 60-minute 16 kHz
#    mono 16-bit WAV file (~115 MB, so cut into 24 MiB pieces at its
#    pauses, sent at once and stitched back) against the fake API
#    (bench/batch/fakeapi, another process on loopback, no rate limit)
#    peaks under MAX_RSS_MB of resident memory (GNU time's "Maximum
#    resident set size"). Checked too: the CLI succeeded, its verbose_json
#    transcript has text, and the fake answered more than one request (one
#    per piece).
# 2. Speed: planning the cuts (audio.Plan) of the same audio as a 64 kbps
#    MP3 (lame -b 64) is faster than ffmpeg's silencedetect over it, and
#    planning the WAV file is compared with reading it whole; medians of
#    RUNS interleaved rounds (see bench/split/main.go).
#
# The audio is speech-like: tone-burst words in sentences, pauses of 0.6 to
# 1.8 s between them, noise at -40 dBFS (written by bench/split -gen, with
# memory independent of its length).
#
#   bash bench/split/run.sh
#   MINUTES=10 RUNS=3 bash bench/split/run.sh
#
# Settings (environment): MINUTES (60), RUNS (5), SMALL (8388608: the
# second MaxBytes planned with), LATENCY of each answer of the fake (0s),
# MAX_RSS_MB (64), WORK (a temporary directory, removed after).
# Needs Go, lame, ffmpeg (for the comparison; skipped without it) and GNU
# time (/usr/bin/time; Debian: apt-get install time lame ffmpeg). It takes
# about a minute and 150 MB of disk per 60 minutes of audio.
# Exits 1 if the CLI failed, the transcript is empty or came in one piece,
# the peak RSS is MAX_RSS_MB or more, or a plan was slower than ffmpeg.
set -euo pipefail

MINUTES=${MINUTES:-60}
RUNS=${RUNS:-5}
SMALL=${SMALL:-8388608}
LATENCY=${LATENCY:-0s}
MAX_RSS_MB=${MAX_RSS_MB:-64}

cd "$(dirname "$0")/../.."
for tool in /usr/bin/time lame; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench: $tool is missing: apt-get install time lame ffmpeg" >&2
		exit 2
	fi
done

keep_work=${WORK:+1}
WORK=${WORK:-$(mktemp -d -t steno-bench-split-XXXXXX)}
fake_pid=
cleanup() {
	if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; fi
	if [[ -z $keep_work ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/bin"
go build -o "$WORK/bin/transcribe" ./examples/transcribe
# bench/ is a module of its own (github.com/steno-go/steno/bench).
(cd bench && go build -o "$WORK/bin/fakeapi" ./batch/fakeapi)
(cd bench && go build -o "$WORK/bin/split" ./split)

wav=$WORK/speech.wav
mp3=$WORK/speech.mp3
echo "generating $MINUTES minutes of speech-like audio in $WORK ..."
"$WORK/bin/split" -gen -minutes "$MINUTES" -wav "$wav"
lame --silent -b 64 "$wav" "$mp3"

# 1. Peak memory of the CLI cutting and sending the WAV file.
"$WORK/bin/fakeapi" -rpm 0 -latency "$LATENCY" >"$WORK/fakeapi.out" 2>"$WORK/fakeapi.err" &
fake_pid=$!
for _ in $(seq 100); do
	[[ -s $WORK/fakeapi.out ]] && break
	sleep 0.05
done
base_url=$(head -n1 "$WORK/fakeapi.out")
echo "fake API at $base_url: no rate limit, $LATENCY latency"
echo "running: transcribe -format verbose_json speech.wav"
status=0
OPENAI_BASE_URL=$base_url OPENAI_API_KEY=sk-bench \
	/usr/bin/time -v -o "$WORK/time.txt" \
	"$WORK/bin/transcribe" -format verbose_json "$wav" >"$WORK/transcript.json" 2>"$WORK/transcribe.log" || status=$?
kill -TERM "$fake_pid"
wait "$fake_pid" || true
fake_pid=
stats=$(sed -n 2p "$WORK/fakeapi.out")

# field NAME JSON: the number after "NAME": in a flat JSON object.
field() { grep -o "\"$1\": *[0-9.]*" <<<"$2" | head -n1 | sed 's/.*: *//'; }

transcript=$("$WORK/bin/split" -transcript "$WORK/transcript.json" 2>&1) || true
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$WORK/time.txt")
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): *//p' "$WORK/time.txt")
requests=$(field requests "$stats")
ok=$(grep -o '"200": *[0-9]*' <<<"$stats" | sed 's/.*: *//')
ok=${ok:-0}

# 2. Planning speed, in one process.
echo "timing plans: $RUNS rounds ..."
plan_status=0
"$WORK/bin/split" -wav "$wav" -mp3 "$mp3" -runs "$RUNS" -small "$SMALL" >"$WORK/plan.txt" 2>&1 || plan_status=$?

echo
echo "=== steno split benchmark ==="
mb() { awk -v n="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", n / 1e6 }'; }
echo "input:                  $MINUTES min, 16 kHz mono 16-bit: WAV $(mb "$wav"), MP3 64 kbps $(mb "$mp3")"
echo "transcribe exit status: $status"
echo "transcript:             $transcript"
echo "fake API received:      $requests requests ($ok answered 200, one per piece), $(field bytes_received "$stats") bytes, $(field max_in_flight "$stats") at once, $(field chunked "$stats") chunked"
echo "wall time:              $wall"
echo "peak RSS of transcribe: $((rss_kb / 1024)) MiB ($rss_kb kB; target < $MAX_RSS_MB MiB)"
echo
cat "$WORK/plan.txt"

fail=0
[[ $status -eq 0 ]] || { echo "FAIL: transcribe exited $status; its log:"; tail -n 20 "$WORK/transcribe.log"; fail=1; }
[[ $transcript == *"characters of text"* && $transcript != 0\ * ]] || { echo "FAIL: transcript"; fail=1; }
[[ $ok -gt 1 ]] || { echo "FAIL: the file was not cut (requests answered 200: $ok)"; fail=1; }
[[ $rss_kb -lt $((MAX_RSS_MB * 1024)) ]] || { echo "FAIL: peak RSS"; fail=1; }
[[ $plan_status -eq 0 ]] || { echo "FAIL: planning (exit status $plan_status)"; fail=1; }
if [[ $fail -eq 0 ]]; then echo "PASS"; fi
exit $fail
