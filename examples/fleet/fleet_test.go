package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/steno-go/steno/ratelimit/redisstore"
	"github.com/steno-go/steno/transcribe"
	"github.com/steno-go/steno/transcribe/transcribetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The tests that need Redis use the server STENO_TEST_REDIS_URL names
// (.ci/run starts one). Without it they skip, but under CI=true they fail.
func testRedisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("STENO_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and STENO_TEST_REDIS_URL is not set: .ci/run installs and starts redis-server")
		}
		t.Skip("STENO_TEST_REDIS_URL is not set: start a server (redis-server --port 6390 --save '' --appendonly no) and set STENO_TEST_REDIS_URL=redis://127.0.0.1:6390/0")
	}
	return u
}

// testRedis returns a client of the test server, closed at the end of t.
func testRedis(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("STENO_TEST_REDIS_URL: %v", err)
	}
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("the Redis of STENO_TEST_REDIS_URL does not answer: %v", err)
	}
	return rdb
}

func randomHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newTestQueue returns a queue name of its own for t, whose keys (and
// those of the account of apiKey's budget) are deleted at the end.
func newTestQueue(t *testing.T, rdb *redis.Client, apiKey string) string {
	name := "steno:fleet-test-" + randomHex()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		keys, _ := rdb.Keys(ctx, "{"+name+"}:*").Result()
		keys = append(keys, redisstore.New(rdb, redisstore.Account(apiKey)).Key())
		rdb.Del(ctx, keys...)
	})
	return name
}

// The program, built once, with the race detector when the tests have it.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func fleetBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "fleet-test-")
		if binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "fleet")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test
// reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is the program running as a process.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error
}

// cleanEnv is the environment without anything that chooses a provider,
// a key or a Redis.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OPENAI_") || strings.HasPrefix(k, "AZURE_OPENAI_") || k == "GROQ_API_KEY" || k == "STENO_REDIS_URL" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// start runs the program with args and env; it is killed at the end of t
// if still running.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(fleetBinary(t), args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns p's exit status, failing t if it has not ended within d.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not end within %v; its log:\n%s", p.name, d, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// workerKey holds, in a request's context, the worker that sent it.
type workerKey struct{}

// fleetAPI is the simulated API of the fleet test: the fake behind the
// program's own meter (requests answered 200, per file), reached by each
// worker under a prefix of its own (http://HOST/w1/v1 for w1), so that the
// test knows who sent what. Once the victim has had holdAfter files
// transcribed, its requests are held unanswered until its connection
// closes: it is then killed with requests in flight.
type fleetAPI struct {
	*meter
	victim    string
	holdAfter int
	release   chan struct{} // ends held requests (a safety: they end when the victim dies)

	mu          sync.Mutex
	inFlight    map[string]int      // requests being served, by worker
	held        map[string]int      // of which held, by worker
	heldFiles   []string            // the files of every request held
	transcribed map[string][]string // files transcribed, by worker
}

func newFleetAPI(cfg transcribetest.Config, victim string, holdAfter int) *fleetAPI {
	a := &fleetAPI{victim: victim, holdAfter: holdAfter, release: make(chan struct{}),
		inFlight: map[string]int{}, held: map[string]int{}, transcribed: map[string][]string{}}
	cfg.Transcriber = a.transcribe
	a.meter = newMeter(cfg)
	return a
}

func (a *fleetAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	r = r.Clone(context.WithValue(r.Context(), workerKey{}, who))
	r.URL.Path, r.URL.RawPath = "/"+rest, ""
	a.mu.Lock()
	a.inFlight[who]++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inFlight[who]--
		a.mu.Unlock()
	}()
	a.meter.ServeHTTP(w, r)
}

func (a *fleetAPI) transcribe(ctx context.Context, au *transcribetest.Audio) (*transcribetest.Transcript, error) {
	who, _ := ctx.Value(workerKey{}).(string)
	a.mu.Lock()
	if who == a.victim && len(a.transcribed[who]) >= a.holdAfter {
		a.held[who]++
		a.heldFiles = append(a.heldFiles, au.Filename)
		a.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-a.release:
		}
		a.mu.Lock()
		a.held[who]--
		a.mu.Unlock()
		return nil, fmt.Errorf("held until the client went away")
	}
	a.mu.Unlock()
	tr, err := transcribetest.DefaultTranscriber(ctx, au)
	if err == nil {
		a.mu.Lock()
		a.transcribed[who] = append(a.transcribed[who], au.Filename)
		a.mu.Unlock()
	}
	return tr, err
}

// readyToKill reports whether the victim has requests held and none other
// at the server, and every file it was answered for is written in out:
// killed now, it dies in the middle of requests, with nothing paid for
// and unwritten.
func (a *fleetAPI) readyToKill(out string) bool {
	a.mu.Lock()
	held, inFlight := a.held[a.victim], a.inFlight[a.victim]
	files := slices.Clone(a.transcribed[a.victim])
	a.mu.Unlock()
	if held == 0 || held != inFlight {
		return false
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(out, "clips", strings.TrimSuffix(f, ".wav")+".txt")); err != nil {
			return false
		}
	}
	return true
}

// makeClips writes n WAV files of different lengths into dir/clips and
// returns their names.
func makeClips(t *testing.T, dir string, n int) []string {
	t.Helper()
	clips := filepath.Join(dir, "clips")
	if err := os.MkdirAll(clips, 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range n {
		name := fmt.Sprintf("clip-%02d.wav", i)
		if err := os.WriteFile(filepath.Join(clips, name), transcribetest.WAV(time.Second+time.Duration(i)*20*time.Millisecond), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// The done-when: 3 worker processes, 60 files, one worker
// SIGKILLed in the middle of its requests: all 60 transcripts are written,
// where the batch CLI writes them, and no file is paid for twice: the
// fake answered exactly one request 200 for each file. Then the folder is
// enqueued again, and a worker acknowledges all 60 jobs without a request:
// the record decides.
func TestKilledWorkerNoFilePaidTwice(t *testing.T) {
	url := testRedisURL(t)
	rdb := testRedis(t, url)
	key := "sk-fleet-test-" + randomHex()
	queueName := newTestQueue(t, rdb, key)

	dir := t.TempDir()
	const files = 60
	names := makeClips(t, dir, files)
	out := filepath.Join(dir, "out")

	api := newFleetAPI(transcribetest.Config{
		APIKey:    key,
		RateLimit: transcribetest.RateLimit{Requests: 30, Window: 2 * time.Second},
		Latency:   50 * time.Millisecond,
	}, "w1", 8)
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer close(api.release)

	env := cleanEnv()
	common := []string{"-redis", url, "-queue", queueName}
	began := time.Now()
	prod := start(t, "produce", env, append([]string{"produce"}, append(common, filepath.Join(dir, "clips"))...)...)
	if code := prod.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("produce: exit %d\n%s", code, prod.stderr)
	}
	workerArgs := func(name string) []string {
		return append([]string{"work"}, append(common, "-name", name, "-out", out, "-concurrency", "3",
			"-requests", "30/2s", "-visibility", "2s", "-lease-ttl", "3s", "-until-empty")...)
	}
	workerEnv := func(name string) []string {
		return cleanEnv("OPENAI_BASE_URL="+srv.URL+"/"+name+"/v1", "OPENAI_API_KEY="+key)
	}
	workers := map[string]*proc{}
	for _, name := range []string{"w1", "w2", "w3"} {
		workers[name] = start(t, name, workerEnv(name), workerArgs(name)...)
	}

	// The victim dies while the server holds its requests.
	deadline := time.Now().Add(30 * time.Second)
	for !api.readyToKill(out) {
		if time.Now().After(deadline) {
			t.Fatalf("w1 never had requests held; its log:\n%s", workers["w1"].stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := workers["w1"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Since(began)
	<-workers["w1"].done
	api.mu.Lock()
	held := slices.Clone(api.heldFiles)
	paidByVictim := len(api.transcribed["w1"])
	api.mu.Unlock()

	for _, name := range []string{"w2", "w3"} {
		if code := workers[name].wait(t, 45*time.Second); code != 0 {
			t.Errorf("%s: exit %d; its log:\n%s", name, code, workers[name].stderr)
		}
	}
	elapsed := time.Since(began)

	// 60 transcripts and their records, where the batch CLI puts them.
	for _, n := range names {
		base := strings.TrimSuffix(n, ".wav") + ".txt"
		b, err := os.ReadFile(filepath.Join(out, "clips", base))
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("transcript of %s: %q, %v", n, b, err)
		}
		if _, err := os.Stat(filepath.Join(out, ".steno", "clips", base+".json")); err != nil {
			t.Errorf("record of %s: %v", n, err)
		}
	}
	// Each file answered 200 once, and nothing else answered 200.
	paid := api.Paid()
	total := 0
	for _, n := range names {
		if paid[n] != 1 {
			t.Errorf("%s was answered 200 %d times, want 1", n, paid[n])
		}
		total += paid[n]
	}
	st := api.h.Stats()
	if len(st.Billed) != total || len(paid) != files {
		t.Errorf("the fake answered 200 %d times, for %d files; want %d, for the %d files", len(st.Billed), len(paid), files, files)
	}
	// The victim died in the middle of requests; their jobs were taken
	// over by the others.
	if len(held) == 0 {
		t.Error("no request of w1 was in flight when it was killed")
	}
	takeovers := strings.Count(workers["w2"].stderr.String(), "taking over")
	takeovers += strings.Count(workers["w3"].stderr.String(), "taking over")
	if takeovers < len(held) {
		t.Errorf("%d jobs taken over, want at least the %d w1 held", takeovers, len(held))
	}
	// The queue is empty; nothing failed; the key appears in no output.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	q := newQueue(rdb, queueName)
	if s, err := q.status(ctx); err != nil || s.Left != 0 || s.Failed != 0 || s.Halted != "" {
		t.Errorf("queue after the run: %+v, %v", s, err)
	}
	for _, p := range []*proc{prod, workers["w1"], workers["w2"], workers["w3"]} {
		if strings.Contains(p.stderr.String()+p.stdout.String(), key) {
			t.Errorf("%s printed the API key", p.name)
		}
	}
	t.Logf("60 files, 3 workers: w1 killed at %v after %d files answered, with %d requests held (%s); all done in %v; the fake: %d requests, by status %v, at most %d in flight",
		killedAt.Round(time.Millisecond), paidByVictim, len(held), strings.Join(held, " "), elapsed.Round(time.Millisecond),
		st.Requests, st.ByStatus, st.MaxInFlight)

	// The same folder again: every job is acknowledged without a request.
	prod = start(t, "produce again", env, append([]string{"produce"}, append(common, filepath.Join(dir, "clips"))...)...)
	if code := prod.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("produce: exit %d\n%s", code, prod.stderr)
	}
	again := start(t, "w4", workerEnv("w4"), workerArgs("w4")...)
	if code := again.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("w4: exit %d\n%s", code, again.stderr)
	}
	if n := strings.Count(again.stderr.String(), "already transcribed: not sent again"); n != files {
		t.Errorf("w4 skipped %d jobs as recorded, want %d; its log:\n%s", n, files, again.stderr)
	}
	if got := api.h.Stats().Requests; got != st.Requests {
		t.Errorf("the fake received %d requests after the folder was enqueued again, want none", got-st.Requests)
	}
}

// The README's way: `fleet simulate` in a process of its own, shared by
// two workers; stopped, it reports every file paid for once.
func TestSimulateSharedByWorkers(t *testing.T) {
	url := testRedisURL(t)
	rdb := testRedis(t, url)
	queueName := newTestQueue(t, rdb, simulatedKey)
	dir := t.TempDir()
	makeClips(t, dir, 8)

	sim := start(t, "simulate", cleanEnv(), "simulate", "-requests", "20/1s", "-latency", "20ms")
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		line, _, _ := strings.Cut(sim.stdout.String(), "\n")
		if v, ok := strings.CutPrefix(line, "OPENAI_BASE_URL="); ok && strings.HasSuffix(sim.stdout.String(), "\n") {
			base = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulate printed no URL; stdout %q, stderr:\n%s", sim.stdout, sim.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	env := cleanEnv("OPENAI_BASE_URL="+base, "OPENAI_API_KEY="+simulatedKey, "STENO_REDIS_URL="+url)
	prod := start(t, "produce", env, "produce", "-queue", queueName, filepath.Join(dir, "clips"))
	if code := prod.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("produce: exit %d\n%s", code, prod.stderr)
	}
	var ws []*proc
	for _, name := range []string{"a", "b"} {
		ws = append(ws, start(t, name, env, "work", "-queue", queueName, "-name", name, "-out", filepath.Join(dir, "out"), "-until-empty"))
	}
	for _, w := range ws {
		if code := w.wait(t, 30*time.Second); code != 0 {
			t.Errorf("worker %s: exit %d\n%s", w.name, code, w.stderr)
		}
	}
	sim.cmd.Process.Signal(os.Interrupt)
	if code := sim.wait(t, 10*time.Second); code != 0 {
		t.Errorf("simulate: exit %d\n%s", code, sim.stderr)
	}
	report := sim.stdout.String()
	if !strings.Contains(report, "files paid for (answered 200): 8; paid for more than once: 0") {
		t.Errorf("simulate's report:\n%s", report)
	}
	sc := bufio.NewScanner(strings.NewReader(report))
	for sc.Scan() {
		t.Log(sc.Text())
	}
}

// An exhausted quota halts the fleet: no request is answered 200 past the
// quota, every worker stops with status 3, and the jobs not done stay in
// the queue (not failed) for after 'fleet resume'.
func TestQuotaHaltsTheFleet(t *testing.T) {
	url := testRedisURL(t)
	rdb := testRedis(t, url)
	key := "sk-fleet-test-" + randomHex()
	queueName := newTestQueue(t, rdb, key)
	dir := t.TempDir()
	const files, quota = 12, 3
	makeClips(t, dir, files)
	api := newFleetAPI(transcribetest.Config{QuotaRequests: quota, Latency: 20 * time.Millisecond}, "", 0)
	srv := httptest.NewServer(api)
	defer srv.Close()

	common := []string{"-redis", url, "-queue", queueName}
	prod := start(t, "produce", cleanEnv(), append([]string{"produce"}, append(common, filepath.Join(dir, "clips"))...)...)
	if code := prod.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("produce: exit %d\n%s", code, prod.stderr)
	}
	var ws []*proc
	for _, name := range []string{"q1", "q2"} {
		env := cleanEnv("OPENAI_BASE_URL="+srv.URL+"/"+name+"/v1", "OPENAI_API_KEY="+key)
		ws = append(ws, start(t, name, env, append([]string{"work"}, append(common, "-name", name, "-out", filepath.Join(dir, "out"),
			"-concurrency", "2", "-visibility", "2s", "-until-empty")...)...))
	}
	for _, w := range ws {
		if code := w.wait(t, 30*time.Second); code != exitHalted {
			t.Errorf("worker %s: exit %d, want %d\n%s", w.name, code, exitHalted, w.stderr)
		}
	}
	if got := len(api.h.Stats().Billed); got != quota {
		t.Errorf("%d requests answered 200, want the quota, %d", got, quota)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := newQueue(rdb, queueName).status(ctx)
	if err != nil || s.Left != files-quota || s.Failed != 0 || !strings.Contains(s.Halted, "quota") {
		t.Errorf("queue after the halt: %+v, %v; want %d jobs left, none failed, halted for the quota", s, err, files-quota)
	}
	res := start(t, "resume", cleanEnv(), append([]string{"resume"}, common...)...)
	if code := res.wait(t, 10*time.Second); code != 0 || !strings.Contains(res.stdout.String(), "halt lifted") {
		t.Errorf("resume: exit %d, %q", code, res.stdout)
	}
	if h, err := newQueue(rdb, queueName).halted(ctx); err != nil || h != "" {
		t.Errorf("after resume: halted %q, %v", h, err)
	}
}

// A worker that wrote a transcript and died before acknowledging its job:
// the job is taken over after the visibility timeout, and the record
// decides: it is acknowledged without a request.
func TestRedeliveredRecordedJobNotSentAgain(t *testing.T) {
	url := testRedisURL(t)
	rdb := testRedis(t, url)
	key := "sk-fleet-test-" + randomHex()
	queueName := newTestQueue(t, rdb, key)
	dir := t.TempDir()
	makeClips(t, dir, 2)
	out := filepath.Join(dir, "out")
	api := newFleetAPI(transcribetest.Config{}, "", 0)
	srv := httptest.NewServer(api)
	defer srv.Close()

	common := []string{"-redis", url, "-queue", queueName}
	prod := start(t, "produce", cleanEnv(), append([]string{"produce"}, append(common, filepath.Join(dir, "clips"))...)...)
	if code := prod.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("produce: exit %d\n%s", code, prod.stderr)
	}
	// The dead worker: it took clip-00, recorded its transcript as the
	// workers do, and never acknowledged it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := newQueue(rdb, queueName)
	d, err := q.read(ctx, "ghost", 100*time.Millisecond)
	if err != nil || d == nil || d.Job.ID != "clips/clip-00.wav" {
		t.Fatalf("ghost's read: %+v, %v", d, err)
	}
	st, err := os.Stat(d.Job.Path)
	if err != nil {
		t.Fatal(err)
	}
	in := transcribe.Input{ID: d.Job.ID, Path: d.Job.Path, Size: st.Size(), ModTime: st.ModTime()}
	req := transcribe.Request{Model: "whisper-1", ResponseFormat: transcribe.JSON}
	if _, first, err := newSharedOutput(out).write(ctx, in, req, &transcribe.Transcription{Text: "recorded", Format: transcribe.JSON}); err != nil || !first {
		t.Fatalf("recording: %v, %v", first, err)
	}

	env := cleanEnv("OPENAI_BASE_URL="+srv.URL+"/w/v1", "OPENAI_API_KEY="+key)
	w := start(t, "w", env, append([]string{"work"}, append(common, "-out", out, "-visibility", "1s", "-until-empty")...)...)
	if code := w.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("worker: exit %d\n%s", code, w.stderr)
	}
	log := w.stderr.String()
	if !strings.Contains(log, "taking over") || !strings.Contains(log, "already transcribed: not sent again") {
		t.Errorf("the worker did not take the job over and skip it; its log:\n%s", log)
	}
	if paid := api.Paid(); len(paid) != 1 || paid["clip-01.wav"] != 1 || api.h.Stats().Requests != 1 {
		t.Errorf("the fake answered %v in %d requests; want clip-01.wav alone, once", paid, api.h.Stats().Requests)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "clips", "clip-00.txt")); string(b) != "recorded\n" {
		t.Errorf("clip-00's transcript %q, want the recorded one", b)
	}
	if n, err := q.left(ctx); err != nil || n != 0 {
		t.Errorf("jobs left: %d, %v", n, err)
	}
}
