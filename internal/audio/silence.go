package audio

import (
	"io"
	"iter"
	"math"
	"time"
)

// Silence detection measures the level (RMS, in dB relative to full scale)
// of consecutive blocks of levelHop and calls a block silent when it is
// quieter than a threshold set from the audio's own levels: above its
// noise floor (the floorQuantile of its block levels) by silenceMargin, or
// by half the contrast between the floor and its loud blocks (the
// loudQuantile) if that is less, provided the contrast is at least
// minContrast; otherwise (steady noise, a tone, music without rests) only
// blocks under absSilence are. Blocks under absSilence are always silent,
// so digital silence is found in any audio. A pause is a run of silent
// blocks at least MinSilence long.
const (
	levelHop      = 20 * time.Millisecond
	floorQuantile = 0.10
	loudQuantile  = 0.90
	silenceMargin = 10  // dB
	minContrast   = 10  // dB
	absSilence    = -60 // dBFS
	minLevel      = -100
	maxLevel      = 10
)

// Silence is a pause in audio, from Start to End.
type Silence struct {
	Start, End time.Duration
}

// Silences reads d to its end and yields its pauses of at least
// minSilence, in order, then (if reading failed) the error. The noise
// floor is that of the audio read so far, taken anew every 30 seconds;
// memory does not depend on the audio's length. Silences does not close d.
func Silences(d Decoder, minSilence time.Duration) iter.Seq2[Silence, error] {
	return func(yield func(Silence, error) bool) {
		rate := d.SampleRate()
		if rate <= 0 {
			return
		}
		m := newMeter(rate)
		minRun := m.blocks(minSilence)
		const blockLevels = 30 * time.Second / levelHop
		var (
			h       histogram
			levels  = make([]float32, 0, blockLevels)
			first   int64 // index of levels[0]
			run     int64 = -1
			samples int64
			stop    bool
		)
		emit := func(from, to int64, end time.Duration) {
			if !stop && to-from >= minRun {
				stop = !yield(Silence{m.time(from), min(m.time(to), end)}, nil)
			}
		}
		flush := func() {
			thr := h.threshold()
			for k, l := range levels {
				i := first + int64(k)
				switch {
				case l < thr && run < 0:
					run = i
				case l >= thr && run >= 0:
					emit(run, i, math.MaxInt64)
					run = -1
				}
			}
			first += int64(len(levels))
			levels = levels[:0]
		}
		buf := make([]float32, 8192)
		for !stop {
			n, err := d.Read(buf)
			samples += int64(n)
			m.add(buf[:n], func(l float32) {
				h.add(l)
				if levels = append(levels, l); len(levels) == cap(levels) {
					flush()
				}
			})
			if err == io.EOF {
				break
			}
			if err != nil {
				if !stop {
					yield(Silence{}, err)
				}
				return
			}
		}
		flush()
		if run >= 0 {
			emit(run, first, samplesDuration(samples, rate))
		}
	}
}

// meter measures the level of consecutive blocks of n samples.
type meter struct {
	n, i int
	rate int
	sum  float64
}

func newMeter(rate int) meter {
	return meter{n: max(rate*int(levelHop/time.Millisecond)/1000, 1), rate: rate}
}

// add measures x, calling emit with the level of each block it completes.
func (m *meter) add(x []float32, emit func(float32)) {
	for len(x) > 0 {
		// A block's sum in a local: the loop stays in registers.
		k := min(m.n-m.i, len(x))
		sum := m.sum
		for _, v := range x[:k] {
			sum += float64(v) * float64(v)
		}
		x = x[k:]
		if m.i += k; m.i == m.n {
			emit(dB(sum / float64(m.n)))
			m.i, sum = 0, 0
		}
		m.sum = sum
	}
}

// time returns when block i starts.
func (m *meter) time(i int64) time.Duration { return samplesDuration(i*int64(m.n), m.rate) }

// blocks returns the number of blocks that last at least d.
func (m *meter) blocks(d time.Duration) int64 {
	per := samplesDuration(int64(m.n), m.rate)
	return max(int64((d+per-1)/per), 1)
}

// dB returns a mean square as a level in dBFS, clamped to [minLevel,
// maxLevel]; NaN and infinities (from float WAV files) count as loud.
func dB(ms float64) float32 {
	if !(ms <= 1e300) {
		return maxLevel
	}
	return float32(min(max(10*math.Log10(ms), minLevel), maxLevel))
}

// histogram counts levels in bins of half a decibel.
type histogram struct {
	bins [2 * (maxLevel - minLevel + 1)]int
	n    int
}

func (h *histogram) add(l float32) {
	h.bins[int(2*(l-minLevel))]++
	h.n++
}

// quantile returns the level below which a fraction q of the levels lie,
// to half a decibel.
func (h *histogram) quantile(q float64) float32 {
	want := int(q * float64(h.n))
	seen := 0
	for i, c := range h.bins {
		if seen += c; seen > want {
			return minLevel + float32(i)/2
		}
	}
	return maxLevel
}

// threshold returns the level under which a block is silent.
func (h *histogram) threshold() float32 {
	floor, loud := h.quantile(floorQuantile), h.quantile(loudQuantile)
	if loud-floor < minContrast {
		return absSilence
	}
	return max(absSilence, floor+min(silenceMargin, (loud-floor)/2))
}

// bestPause reads the audio of a search window from d (at most limit
// samples) and returns where to cut it, in samples from its start: in its
// best pause of at least minSilence, the longest (pauses of 1 s or more
// count as equally long), the latest of equals. The cut goes in the
// middle of a short pause, 240 ms before the end of a long one. ok is
// false when there is no pause. Memory is one level per 20 ms of window.
func bestPause(d Decoder, minSilence time.Duration) (cut int64, ok bool, err error) {
	m := newMeter(d.SampleRate())
	var h histogram
	var levels []float32
	buf := make([]float32, 8192)
	for {
		n, err := d.Read(buf)
		m.add(buf[:n], func(l float32) {
			h.add(l)
			levels = append(levels, l)
		})
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, false, err
		}
	}
	thr := h.threshold()
	minRun, capRun, keep := m.blocks(minSilence), m.blocks(time.Second), m.blocks(240*time.Millisecond)
	best, run := int64(-1), int64(-1)
	var bestScore int64
	for i := int64(0); i <= int64(len(levels)); i++ {
		if i < int64(len(levels)) && levels[i] < thr {
			if run < 0 {
				run = i
			}
			continue
		}
		if n := i - run; run >= 0 && n >= minRun {
			if score := min(n, capRun); score >= bestScore {
				best, bestScore = i-min(n/2, keep), score
			}
		}
		run = -1
	}
	if best < 0 {
		return 0, false, nil
	}
	return best * int64(m.n), true, nil
}
