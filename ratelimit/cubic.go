package ratelimit

import (
	"math"
	"time"
)

// The adaptive rate for servers that send no x-ratelimit headers follows
// the AWS SDKs' adaptive retry mode (CUBIC congestion control applied to a
// request rate): cut to beta × the rate on a throttle, then grow back along
// C·(t−K)³ + max, which is steep at first, flat near the rate that last
// throttled, and probing beyond it.
const (
	cubicBeta    = 0.7
	cubicScale   = 0.4
	minRate      = 0.5 // requests per second: the floor of a cut
	meterBucket  = 500 * time.Millisecond
	meterSmooth  = 0.8
	maxOverShoot = 2 // never more than twice the measured rate
)

// cubic is the state of the adaptive rate.
type cubic struct {
	rate         float64   // requests per second, now
	lastMax      float64   // the rate when the last throttle came
	lastThrottle time.Time // when it came
}

// throttle cuts the rate after a throttle at now, given the measured rate
// of answers.
func (c *cubic) throttle(now time.Time, measured float64) {
	r := measured
	if !math.IsInf(c.rate, 1) {
		r = min(measured, c.rate)
	}
	c.lastMax, c.lastThrottle = r, now
	c.rate = max(minRate, r*cubicBeta)
}

// success grows the rate back after a success at now.
func (c *cubic) success(now time.Time, measured float64) {
	k := math.Cbrt(c.lastMax * (1 - cubicBeta) / cubicScale)
	t := now.Sub(c.lastThrottle).Seconds() - k
	r := cubicScale*t*t*t + c.lastMax
	c.rate = max(minRate, min(r, maxOverShoot*measured))
}

// meter measures the rate of successful answers (what the server lets
// through), smoothed over half-second buckets.
type meter struct {
	start  time.Time // of the first bucket
	bucket time.Time // start of the current bucket
	count  int       // successes in the current bucket
	rate   float64   // per second, over the buckets completed so far
	done   bool      // a bucket has completed
}

func (m *meter) record(now time.Time) {
	b := now.Truncate(meterBucket)
	if m.bucket.IsZero() {
		m.start, m.bucket = now, b
	}
	if b.After(m.bucket) {
		current := float64(m.count) / b.Sub(m.bucket).Seconds()
		if m.done {
			current = current*meterSmooth + m.rate*(1-meterSmooth)
		}
		m.rate, m.done, m.count, m.bucket = current, true, 0, b
	}
	m.count++
}

// estimate returns the measured rate; before a bucket has completed, the
// count so far over at least one bucket's time.
func (m *meter) estimate(now time.Time) float64 {
	if m.done || m.bucket.IsZero() {
		return m.rate
	}
	return float64(m.count) / max(now.Sub(m.start), meterBucket).Seconds()
}
