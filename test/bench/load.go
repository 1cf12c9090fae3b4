package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation of a load test: a request and its response. seq
// numbers operations from 0 within a run, so that each can carry unique
// data. An Op must be safe for concurrent use.
type Op func(ctx context.Context, seq int64) error

// LoadResult is what one run of a load generator measured.
type LoadResult struct {
	// Latency holds one value per completed operation: from its start
	// (closed loop) or its scheduled time (open loop) to its completion.
	Latency *Histogram
	// Ops and Errors count completed operations; Ops includes Errors.
	Ops, Errors int64
	// FirstErr is the first error seen, for the report.
	FirstErr error
	// Elapsed is the measured wall time: the run's duration, plus, for an
	// open loop, the time the last operations took to complete.
	Elapsed time.Duration
	// Offered is the open loop's planned rate (operations per second); 0
	// for a closed loop.
	Offered float64
}

// Throughput returns the successful operations per second.
func (r LoadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops-r.Errors) / r.Elapsed.Seconds()
}

// errCollector counts errors and keeps the first.
type errCollector struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (c *errCollector) add(err error) {
	if c.n.Add(1) == 1 {
		c.mu.Lock()
		c.first = err
		c.mu.Unlock()
	}
}

func (c *errCollector) get() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n.Load(), c.first
}

// ClosedLoop runs op from clients goroutines, each starting its next
// operation as soon as the previous one completes, for duration d. Its
// latencies are service times (a closed loop cannot see queueing delay it
// does not generate); use it for throughput.
func ClosedLoop(ctx context.Context, clients int, d time.Duration, op Op) LoadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		h    Histogram
		seq  atomic.Int64
		errs errCollector
		wg   sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if err := op(ctx, seq.Add(1)-1); err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.add(err)
				}
				h.Record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	n, first := errs.get()
	return LoadResult{Latency: &h, Ops: int64(h.Count()), Errors: n, FirstErr: first, Elapsed: time.Since(start)}
}

// Clock is the open loop's time source; tests replace it.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// SleepUntil returns at t or later, or early when ctx is done.
	SleepUntil(ctx context.Context, t time.Time)
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t.
func (RealClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// Schedule returns the planned send times of an open loop at rate
// operations per second for duration d from start: start, start+1/rate,
// ..., all before start+d.
func Schedule(start time.Time, rate float64, d time.Duration) []time.Time {
	if rate <= 0 || d <= 0 {
		return nil
	}
	n := int(rate * d.Seconds())
	if float64(n)/rate < d.Seconds() {
		n++ // the fractional tail still starts before start+d
	}
	out := make([]time.Time, 0, n)
	for i := range n {
		t := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if !t.Before(start.Add(d)) {
			break
		}
		out = append(out, t)
	}
	return out
}

// OpenLoop is an open-loop load generator: operations start at planned
// times, whether or not earlier ones have completed, and each latency is
// measured from the planned time, so a stalled server is charged for every
// operation it delays (no coordinated omission).
type OpenLoop struct {
	// Rate is operations per second.
	Rate float64
	// Duration is how long operations are started for.
	Duration time.Duration
	// Workers bounds the operations in flight; when all are busy, later
	// operations wait, and their waiting counts in their latency.
	Workers int
	// Clock is the time source; RealClock when nil.
	Clock Clock
	// Started, if set, is called with the planned start before the first
	// operation, so the caller can relate its own observations (such as
	// arrivals elsewhere) to the plan.
	Started func(start time.Time, plan []time.Time)
}

// Run runs the open loop and waits for every operation to complete.
// Operation seq is planned at the plan's seq-th time (see Started).
func (l OpenLoop) Run(ctx context.Context, op Op) LoadResult {
	clock := l.Clock
	if clock == nil {
		clock = RealClock{}
	}
	workers := max(l.Workers, 1)
	start := clock.Now().Add(10 * time.Millisecond) // room to start the workers
	plan := Schedule(start, l.Rate, l.Duration)
	if l.Started != nil {
		l.Started(start, plan)
	}
	type job struct {
		seq  int64
		when time.Time
	}
	var (
		h    Histogram
		errs errCollector
		wg   sync.WaitGroup
	)
	jobs := make(chan job)
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if err := op(ctx, j.seq); err != nil {
					errs.add(err)
				}
				h.Record(clock.Now().Sub(j.when))
			}
		})
	}
	for i, t := range plan {
		clock.SleepUntil(ctx, t)
		if ctx.Err() != nil {
			break
		}
		jobs <- job{seq: int64(i), when: t}
	}
	close(jobs)
	wg.Wait()
	n, first := errs.get()
	return LoadResult{Latency: &h, Ops: int64(h.Count()), Errors: n, FirstErr: first,
		Elapsed: max(clock.Now().Sub(start), l.Duration), Offered: l.Rate}
}
