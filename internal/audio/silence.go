package audio

import (
	"io"
	"iter"
	"math"
	"slices"
	"time"
)

// Silence detection measures the level (RMS, in dB relative to full scale)
// of consecutive blocks of levelHop and calls a block silent when it is
// near the recording's noise floor: at most nearFloor above it, and at
// least minDepth below its speech level. Both are judged from the levels
// of the recording's blocks (those louder than digitalSilence) measured so
// far, not from the stretch searched alone: judged on a stretch of
// continuous speech alone, the floor would be its quietest speech, and a
// consonant closure (-32 dBFS against a -58 dBFS floor) would pass for a
// pause. The floor is the lowest level about which the levels gather: the
// middle of the lowest band floorBand wide that holds floorPlateau's worth
// of them (floorShare of them, if that is more), so that a few pauses in a
// recording that is mostly speech tell it, and a fade (whose levels spread
// thin) does not lower it; without such a band, the floorShare quantile.
// The speech level is the loudQuantile. Where the speech is less than
// minDepth above the floor (steady noise, a tone, music without rests)
// no block is silent but those under digitalSilence, which always are,
// so that digital silence is found in any audio. A pause is a run of
// silent blocks at least MinSilence long.
const (
	levelHop       = 20 * time.Millisecond
	floorBand      = 3 // dB
	floorPlateau   = 300 * time.Millisecond
	floorShare     = 0.01
	loudQuantile   = 0.95
	nearFloor      = 12  // dB
	minDepth       = 20  // dB
	digitalSilence = -90 // dBFS
	minLevel       = -100
	maxLevel       = 10
)

// Silence is a pause in audio, from Start to End.
type Silence struct {
	Start, End time.Duration
}

// Silences reads d to its end and yields its pauses of at least
// minSilence, in order, then (if reading failed) the error. The noise
// floor and speech level are those of the audio read so far, taken anew
// every 30 seconds; memory does not depend on the audio's length.
// Silences does not close d.
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

// histogram counts levels in bins of half a decibel: the levels of a
// recording's blocks, from which its noise floor and speech level are
// judged.
type histogram struct {
	bins [2 * (maxLevel - minLevel + 1)]int
	n    int
}

func (h *histogram) add(l float32) {
	h.bins[int(2*(l-minLevel))]++
	h.n++
}

// digitalBins is the number of bins under digitalSilence.
const digitalBins = 2 * (digitalSilence - minLevel)

// sound returns the bins over digitalSilence and the number of levels in
// them.
func (h *histogram) sound() ([]int, int) {
	n := h.n
	for _, c := range h.bins[:digitalBins] {
		n -= c
	}
	return h.bins[digitalBins:], n
}

// quantile returns the level below which a fraction q of the levels over
// digitalSilence lie, to half a decibel; ok is false if there are none.
func (h *histogram) quantile(q float64) (l float32, ok bool) {
	bins, n := h.sound()
	if n == 0 {
		return 0, false
	}
	want, seen := int(q*float64(n)), 0
	for i, c := range bins {
		if seen += c; seen > want {
			return digitalSilence + float32(i)/2, true
		}
	}
	return maxLevel, true
}

// levels returns the noise floor and the speech level; ok is false when
// there is nothing but digital silence.
func (h *histogram) levels() (floor, speech float32, ok bool) {
	bins, n := h.sound()
	if n == 0 {
		return 0, 0, false
	}
	speech, _ = h.quantile(loudQuantile)
	need, band := max(int(floorPlateau/levelHop), int(floorShare*float64(n))), 2*floorBand
	sum := 0
	for i, c := range bins {
		if sum += c; i >= band {
			sum -= bins[i-band]
		}
		if sum >= need {
			return digitalSilence + float32(max(0, i+1-band))/2 + floorBand/2, speech, true
		}
	}
	floor, _ = h.quantile(floorShare)
	return floor, speech, true
}

// threshold returns the level under which a block is silent.
func (h *histogram) threshold() float32 {
	floor, speech, ok := h.levels()
	if !ok {
		return digitalSilence
	}
	return max(digitalSilence, min(floor+nearFloor, speech-minDepth))
}

// measure reads d to its end, adding the level of each block to h.
func measure(d Decoder, h *histogram) error {
	m := newMeter(d.SampleRate())
	buf := make([]float32, 8192)
	for {
		n, err := d.Read(buf)
		m.add(buf[:n], h.add)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// pause is where bestPause cuts a search window, and how it judged it.
type pause struct {
	at    int64   // samples from the decoder's start
	found bool    // at is in a pause (else there is none)
	level float32 // the loudest block of the pause, in dBFS
	// floor and speech are the recording's levels then (see histogram).
	floor, speech float32
}

// bestPause reads the audio of a search window from d (at most limit
// samples), the first skip samples of which (a lead-in) are only
// measured, and returns where to cut it, in samples from d's start: in its
// best pause of at least minSilence, the longest (pauses of 1 s or more
// count as equally long), the latest of equals. The cut goes in the middle
// of a short pause, 240 ms before the end of a long one. The levels of the
// window are added to h, and a block is silent by h's threshold: against
// the floor of all the recording measured so far. found is false when
// there is no pause. Memory is one level per 20 ms of window.
func bestPause(d Decoder, minSilence time.Duration, skip int64, h *histogram) (pause, error) {
	m := newMeter(d.SampleRate())
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
			return pause{}, err
		}
	}
	thr := h.threshold()
	p := pause{}
	p.floor, p.speech, _ = h.levels()
	minRun, capRun, keep := m.blocks(minSilence), m.blocks(time.Second), m.blocks(240*time.Millisecond)
	best, run := int64(-1), int64(-1)
	var bestScore int64
	first := (skip + int64(m.n) - 1) / int64(m.n)
	for i := first; i <= int64(len(levels)); i++ {
		if i < int64(len(levels)) && levels[i] < thr {
			if run < 0 {
				run = i
			}
			continue
		}
		if n := i - run; run >= 0 && n >= minRun {
			if score := min(n, capRun); score >= bestScore {
				best, bestScore = i-min(n/2, keep), score
				p.level = slices.Max(levels[run:i])
			}
		}
		run = -1
	}
	if best < 0 {
		return p, nil
	}
	p.at, p.found = best*int64(m.n), true
	return p, nil
}
