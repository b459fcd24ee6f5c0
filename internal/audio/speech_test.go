package audio

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// speech is synthetic audio with known pauses: "sentences" of tone bursts
// ("words", 0.15–0.5 s, 50–150 ms apart) separated by pauses of 0.5–2 s,
// over white noise at noise dBFS (RMS).
type speech struct {
	rate   int
	n      int       // samples
	bursts [][2]int  // [start, end) samples of each word
	pauses [][2]int  // [start, end) samples of each pause between sentences
	noise  float64   // noise amplitude (uniform)
	tone   []float64 // frequency of each burst
}

func newSpeech(rate int, length time.Duration, noiseDB float64, seed uint64) *speech {
	rng := rand.New(rand.NewPCG(seed, 2))
	s := &speech{rate: rate, n: int(length.Seconds() * float64(rate)), noise: math.Pow(10, noiseDB/20) * math.Sqrt(3)}
	at := func(sec float64) int { return int(sec * float64(rate)) }
	pos := at(0.3)
	s.pauses = append(s.pauses, [2]int{0, pos})
	for pos < s.n {
		words := 3 + rng.IntN(8)
		for w := range words {
			if w > 0 {
				pos += at(0.05 + 0.1*rng.Float64())
			}
			end := min(pos+at(0.15+0.35*rng.Float64()), s.n)
			s.bursts = append(s.bursts, [2]int{pos, end})
			s.tone = append(s.tone, 200+600*rng.Float64())
			pos = end
		}
		gap := at(0.5 + 1.5*rng.Float64())
		s.pauses = append(s.pauses, [2]int{pos, min(pos+gap, s.n)})
		pos += gap
	}
	return s
}

// sample returns sample i: the burst it falls in, if any, plus noise.
func (s *speech) sample(i int) float64 {
	v := s.noise * (2*float64(splitmix(uint64(i))>>11)/(1<<53) - 1)
	b := s.burstAt(i)
	if b < 0 {
		return v
	}
	t := float64(i-s.bursts[b][0]) / float64(s.rate)
	left := float64(s.bursts[b][1]-i) / float64(s.rate)
	env := min(1, t/0.01, left/0.01) // 10 ms ramps
	return v + 0.5*env*math.Sin(2*math.Pi*s.tone[b]*t)
}

// burstAt returns the index of the burst holding sample i, or -1.
func (s *speech) burstAt(i int) int {
	lo, hi := 0, len(s.bursts)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case s.bursts[m][1] <= i:
			lo = m + 1
		case s.bursts[m][0] > i:
			hi = m
		default:
			return m
		}
	}
	return -1
}

// inPause reports whether time t lies in a pause, within slack.
func (s *speech) inPause(t, slack time.Duration) bool {
	i := int(t.Seconds() * float64(s.rate))
	d := int(slack.Seconds() * float64(s.rate))
	for _, p := range s.pauses {
		if i >= p[0]-d && i <= p[1]+d {
			return true
		}
	}
	return false
}

// firstBurstAfter returns when the first burst starting at or after t
// starts.
func (s *speech) firstBurstAfter(t time.Duration) time.Duration {
	i := int(t.Seconds() * float64(s.rate))
	for _, b := range s.bursts {
		if b[0] >= i {
			return time.Duration(b[0]) * time.Second / time.Duration(s.rate)
		}
	}
	return -1
}

// writeWAV writes s as a 16-bit mono WAV file at path.
func (s *speech) writeWAV(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := SynthWAV(f, s.rate, s.n, s.sample); err != nil {
		t.Fatal(err)
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// needTool skips the test if the program is not on PATH, unless CI=true,
// where it fails: CI installs lame and ffmpeg.
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI installs %s (.ci/run), but it is not on PATH", name)
		}
		t.Skipf("%s not on PATH", name)
	}
}

// lame encodes the WAV file in to an MP3 file next to it, with args.
func lame(t testing.TB, in, out string, args ...string) {
	t.Helper()
	needTool(t, "lame")
	args = append(append([]string{"--silent"}, args...), in, out)
	if msg, err := exec.Command("lame", args...).CombinedOutput(); err != nil {
		t.Fatalf("lame: %v\n%s", err, msg)
	}
}

// speechMP3 makes an MP3 file of s in dir with lame args.
func speechMP3(t testing.TB, s *speech, dir string, args ...string) string {
	in := filepath.Join(dir, "speech.wav")
	s.writeWAV(t, in)
	out := filepath.Join(dir, "speech.mp3")
	lame(t, in, out, args...)
	return out
}
