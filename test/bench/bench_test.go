package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBucketBoundsHoldTheirValues(t *testing.T) {
	tests := []struct {
		name string
		give int64
	}{
		{name: "zero", give: 0},
		{name: "last exact", give: 255},
		{name: "first log bucket", give: 256},
		{name: "odd in first log range", give: 257},
		{name: "power of two", give: 1 << 20},
		{name: "one ms", give: 1_000_000},
		{name: "one minute", give: int64(time.Minute)},
		{name: "largest", give: 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := bucketBounds(bucketOf(tt.give))
			if tt.give < lo || tt.give > hi {
				t.Errorf("value %d in bucket [%d, %d]", tt.give, lo, hi)
			}
			if width := hi - lo + 1; width > 1 && float64(width)/float64(lo) > 1.0/subCount {
				t.Errorf("bucket [%d, %d] is wider than 1/%d of its start", lo, hi, subCount)
			}
		})
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	_, prevHi := bucketBounds(0)
	for i := 1; i < bucketOf(1<<40); i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		prevHi = hi
	}
}

func TestHistogramQuantiles(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		give     []time.Duration
		want     map[float64]time.Duration
		wantMean time.Duration
	}{
		{
			name: "empty",
			want: map[float64]time.Duration{0.5: 0, 0.99: 0},
		},
		{
			name:     "one value, exact range",
			give:     []time.Duration{100},
			want:     map[float64]time.Duration{0: 100, 0.5: 100, 1: 100},
			wantMean: 100,
		},
		{
			name:     "1..100 ms",
			give:     seq(1, 100, ms),
			want:     map[float64]time.Duration{0.5: bucketTop(50 * ms), 0.99: bucketTop(99 * ms), 0.999: 100 * ms, 1: 100 * ms},
			wantMean: 50*ms + 500*time.Microsecond,
		},
		{
			name:     "tail of one slow value in a thousand",
			give:     append(repeat(999, ms), 2*time.Second),
			want:     map[float64]time.Duration{0.5: bucketTop(ms), 0.999: bucketTop(ms), 0.9999: 2 * time.Second},
			wantMean: (999*ms + 2*time.Second) / 1000,
		},
		{
			name:     "negative counts as zero",
			give:     []time.Duration{-5, 10},
			want:     map[float64]time.Duration{0.5: 0, 1: 10},
			wantMean: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.give {
				h.Record(d)
			}
			got := map[float64]time.Duration{}
			for q := range tt.want {
				got[q] = h.Quantile(q)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("quantiles (-want +got):\n%s", diff)
			}
			if h.Count() != uint64(len(tt.give)) || h.Mean() != tt.wantMean {
				t.Errorf("count, mean = %d, %v; want %d, %v", h.Count(), h.Mean(), len(tt.give), tt.wantMean)
			}
		})
	}
}

func TestHistogramMergeEqualsRecordingTogether(t *testing.T) {
	var a, b, all Histogram
	for i, d := range seq(1, 500, 37*time.Microsecond) {
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	if diff := cmp.Diff(all.Buckets(128), merged.Buckets(128)); diff != "" {
		t.Errorf("merged buckets (-want +got):\n%s", diff)
	}
	if merged.Max() != all.Max() || merged.Count() != all.Count() || merged.Quantile(0.99) != all.Quantile(0.99) {
		t.Errorf("merged = %s, want %s", &merged, &all)
	}
}

func TestBucketsCoarsenWithoutLosingCounts(t *testing.T) {
	var h Histogram
	for _, d := range seq(1, 1000, 13*time.Microsecond) {
		h.Record(d)
	}
	var n uint64
	prevHi := time.Duration(-1)
	for _, b := range h.Buckets(8) {
		if b.Lo <= prevHi || b.Hi < b.Lo {
			t.Fatalf("bucket [%v, %v] overlaps or is empty after %v", b.Lo, b.Hi, prevHi)
		}
		prevHi = b.Hi
		n += b.Count
	}
	if n != 1000 {
		t.Errorf("coarse buckets hold %d values, want 1000", n)
	}
}

func TestSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rate float64
		d    time.Duration
		want []time.Duration // offsets from start
	}{
		{name: "4 per second for 1s", rate: 4, d: time.Second, want: []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}},
		{name: "fractional tail", rate: 2, d: 1200 * time.Millisecond, want: []time.Duration{0, 500 * time.Millisecond, time.Second}},
		{name: "slower than the duration", rate: 0.5, d: time.Second, want: []time.Duration{0}},
		{name: "zero rate", rate: 0, d: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			for _, at := range Schedule(start, tt.rate, tt.d) {
				got = append(got, at.Sub(start))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Schedule (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeClock moves only when the scheduler sleeps (or a test advances it).
// Before moving it waits until every operation dispatched so far has
// called done, so that an operation sees the clock at its planned time.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	sleeps int // SleepUntil calls, one per dispatched operation
	dones  int // operations that called done
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.dones < c.sleeps {
		c.cond.Wait()
	}
	c.sleeps++
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dones++
	c.cond.Broadcast()
}

func TestOpenLoopSendsAtPlannedTimes(t *testing.T) {
	clock := newFakeClock()
	var (
		mu   sync.Mutex
		sent = map[int64]time.Time{}
		plan []time.Time
	)
	loop := OpenLoop{Rate: 100, Duration: 100 * time.Millisecond, Workers: 1, Clock: clock,
		Started: func(_ time.Time, p []time.Time) { plan = p }}
	res := loop.Run(t.Context(), func(_ context.Context, seq int64) error {
		defer clock.done()
		mu.Lock()
		sent[seq] = clock.Now()
		mu.Unlock()
		if seq == 3 {
			return errors.New("refused")
		}
		return nil
	})
	if len(plan) != 10 {
		t.Fatalf("planned %d sends, want 10", len(plan))
	}
	want := map[int64]time.Time{}
	for i, at := range plan {
		want[int64(i)] = at
	}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("send times (-planned +actual):\n%s", diff)
	}
	if res.Ops != 10 || res.Errors != 1 || res.FirstErr == nil {
		t.Errorf("result = %d ops, %d errors (%v); want 10 and 1", res.Ops, res.Errors, res.FirstErr)
	}
}

func TestOpenLoopChargesDelayFromThePlannedTime(t *testing.T) {
	// One worker and a service time of 30ms at 100/s: each operation
	// starts later than planned, and the latency must include the wait.
	clock := newFakeClock()
	loop := OpenLoop{Rate: 100, Duration: 50 * time.Millisecond, Workers: 1, Clock: clock}
	res := loop.Run(t.Context(), func(context.Context, int64) error {
		defer clock.done()
		clock.advance(30 * time.Millisecond)
		return nil
	})
	// Planned at 0, 10, 20, 30, 40ms; with one worker they complete at
	// 30, 60, 90, 120, 150ms: latencies 30, 50, 70, 90, 110ms.
	want := []time.Duration{30, 50, 70, 90, 110}
	var got []time.Duration
	for _, b := range res.Latency.Buckets(128) {
		for range b.Count {
			got = append(got, (b.Lo+time.Millisecond/2)/time.Millisecond)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("latencies in ms (-want +got):\n%s", diff)
	}
}

func TestClosedLoopCountsOpsAndErrors(t *testing.T) {
	var n int
	var mu sync.Mutex
	res := ClosedLoop(t.Context(), 4, 20*time.Millisecond, func(_ context.Context, seq int64) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if seq%2 == 1 {
			return errors.New("odd")
		}
		return nil
	})
	if int64(n) != res.Ops || res.Ops == 0 || res.Errors != res.Ops/2 {
		t.Errorf("ran %d, result %d ops and %d errors; want every op counted and every second one an error", n, res.Ops, res.Errors)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		give []float64
		want float64
	}{
		{name: "none", want: 0},
		{name: "odd", give: []float64{3, 1, 2}, want: 2},
		{name: "even", give: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Median(tt.give); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{name: "flat", xs: []float64{1, 2, 3}, ys: []float64{5, 5, 5}, want: 0},
		{name: "growing", xs: []float64{0, 1, 2, 3}, ys: []float64{1, 3, 5, 7}, want: 2},
		{name: "one point", xs: []float64{1}, ys: []float64{9}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slope(tt.xs, tt.ys); got != tt.want {
				t.Errorf("slope = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMarkdownListsEveryScenario(t *testing.T) {
	var h Histogram
	h.Record(time.Millisecond)
	rep := &Report{Runs: 1, Scenarios: []*Scenario{
		{ID: "a", Title: "measured", Ceiling: Figure{Value: 200, Unit: "x/s"}, System: Figure{Value: 50, Unit: "y/s"},
			Rows: []Row{{Leg: "system", Load: "closed, 1 client", Ops: 1, Hist: &h}}},
		{ID: "d", Title: "later", Status: "not measurable yet: no MLLP"},
	}}
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| a: measured | 200 x/s | 50.0 y/s | **0.25** |", "| d: later |", "not measurable yet: no MLLP", "<details>", "1.00ms"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}

func seq(from, to int, unit time.Duration) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i)*unit)
	}
	return out
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// bucketTop is what Quantile reports for a value: its bucket's top.
func bucketTop(d time.Duration) time.Duration {
	_, hi := bucketBounds(bucketOf(int64(d)))
	return time.Duration(hi)
}

func TestStripTimerEventDropsWhatJourneyDrops(t *testing.T) {
	str := func(num uint64, s string) []byte {
		b := binary.AppendUvarint(nil, num<<3|2)
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	varint := func(num, v uint64) []byte {
		return binary.AppendUvarint(binary.AppendUvarint(nil, num<<3), v)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	patient := func(withIDs bool) string {
		p := cat(str(1, "p1"), str(3, "Ann"), str(4, "Lee"))
		if withIDs {
			p = cat(str(1, "p1"), str(2, string(cat(str(1, "urn:mrn"), str(2, "123")))), str(3, "Ann"), str(4, "Lee"))
		}
		return string(p)
	}
	give := cat(str(1, "ev1"), str(2, "demo"), varint(5, 7), str(8, patient(true)), str(9, "Appointment/1"),
		str(11, `{"resourceType":"Appointment"}`), str(12, "application/fhir+json"))
	want := cat(str(1, "ev1"), str(2, "demo"), varint(5, 7), str(8, patient(false)), str(9, "Appointment/1"))
	got, err := stripTimerEvent(give)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("stripTimerEvent:\n got %x\nwant %x", got, want)
	}
	if _, err := stripTimerEvent(give[:len(give)-3]); err == nil {
		t.Error("stripTimerEvent of a truncated message: no error")
	}
}

func TestReadRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	if got := readRSS(); got <= 0 {
		t.Errorf("readRSS() = %d, want > 0", got)
	}
}
