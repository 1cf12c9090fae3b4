package bench

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is known to within
// 1/2^subBits (0.8%) of itself, HdrHistogram's "two significant digits".
const subBits = 7

const (
	subCount   = 1 << subBits      // buckets per power of two above the exact range
	exactLimit = 2 * subCount      // values below this have a bucket each
	numBuckets = 64*subCount + 256 // enough for every int64
)

// Histogram counts durations in log-linear buckets, as HdrHistogram does:
// values below 256ns are exact, larger ones fall into one of 128 buckets
// per power of two. It is safe for concurrent use. The zero value is an
// empty histogram.
type Histogram struct {
	mu       sync.Mutex
	counts   []uint64 // allocated on first Record
	total    uint64
	sum      float64 // in nanoseconds, for the mean
	min, max int64
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < exactLimit {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (subBits + 1) // >= 1
	return e*subCount + int(v>>e)
}

// bucketBounds returns the smallest and largest value bucket i holds.
func bucketBounds(i int) (lo, hi int64) {
	if i < exactLimit {
		return int64(i), int64(i)
	}
	e := i/subCount - 1
	m := int64(i - e*subCount)
	lo = m << e
	return lo, lo + (int64(1) << e) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	if h.total == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts := append([]uint64(nil), o.counts...)
	total, sum, omin, omax := o.total, o.sum, o.min, o.max
	o.mu.Unlock()
	if total == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range counts {
		h.counts[i] += c
	}
	if h.total == 0 || omin < h.min {
		h.min = omin
	}
	h.max = max(h.max, omax)
	h.total += total
	h.sum += sum
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// Max returns the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.max)
}

// Mean returns the mean of the values recorded.
func (h *Histogram) Mean() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// recorded values lie: the largest value of the bucket holding the value of
// rank ceil(q*count), capped at the largest value recorded. Like
// HdrHistogram it errs high, by at most one bucket width. An empty
// histogram gives 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			return time.Duration(min(hi, h.max))
		}
	}
	return time.Duration(h.max)
}

// Bucket is one range of a histogram's display form.
type Bucket struct {
	// Lo and Hi are the smallest and largest value the range holds.
	Lo, Hi time.Duration
	// Count is how many recorded values fell in it.
	Count uint64
}

// Buckets returns the non-empty buckets, coarsened to perOctave ranges per
// power of two (a power of two, at most 128) so that the list stays short
// enough to read; values below 256ns keep exact buckets.
func (h *Histogram) Buckets(perOctave int) []Bucket {
	h.mu.Lock()
	defer h.mu.Unlock()
	shift := 0
	for subCount>>shift > perOctave && shift < subBits {
		shift++
	}
	var out []Bucket
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		lo, hi := bucketBounds(i)
		if i >= exactLimit && shift > 0 {
			e := i/subCount - 1
			width := int64(1) << (e + shift)
			lo = lo / width * width
			hi = lo + width - 1
		}
		if n := len(out); n > 0 && out[n-1].Lo == time.Duration(lo) {
			out[n-1].Count += c
			continue
		}
		out = append(out, Bucket{Lo: time.Duration(lo), Hi: time.Duration(hi), Count: c})
	}
	return out
}

// String renders the count and the usual percentiles on one line.
func (h *Histogram) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "n=%d", h.Count())
	for _, q := range []float64{0.5, 0.99, 0.999} {
		fmt.Fprintf(&b, " p%s=%s", quantileName(q), fmtDur(h.Quantile(q)))
	}
	fmt.Fprintf(&b, " max=%s", fmtDur(h.Max()))
	return b.String()
}

// quantileName formats 0.999 as "99.9".
func quantileName(q float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", q*100), "0"), ".")
}
