package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Config is what every scenario runner needs.
type Config struct {
	// Root is the repository root (holds go.work).
	Root string
	// TmpDir holds the runners' data (NATS stores, logs, binaries).
	TmpDir string
	// Smoke makes every run short: a check that the harness works.
	Smoke bool
	// Runs is how many measured runs each figure is the median of.
	Runs int
	// RunTime is the length of one measured run; WarmUp of the warm-up
	// run before each series.
	RunTime, WarmUp time.Duration
	// Progress receives one line per step; nil discards.
	Progress io.Writer
	// ListmonkBin is the path of a Listmonk build for scenario c's
	// ceiling, if any.
	ListmonkBin string
}

func (c Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// runTags hands out ids unique to this harness process, so that no two
// runs post the same appointment.
type runTags struct {
	session string
	n       atomic.Int64
}

func newRunTags() *runTags {
	return &runTags{session: strings.ToLower(rand.Text()[:6])}
}

// next returns a new tag of letters and digits.
func (t *runTags) next() string {
	return t.session + strconv.FormatInt(t.n.Add(1), 36)
}

// cpuMeter reads the CPU time of a set of processes (pid 0 is the harness).
type cpuMeter map[string]int

func (m cpuMeter) snapshot() map[string]time.Duration {
	out := make(map[string]time.Duration, len(m))
	for name, pid := range m {
		if d, err := CPUTime(pid); err == nil {
			out[name] = d
		}
	}
	return out
}

// per1k returns each process's CPU time between two snapshots per 1,000
// operations.
func per1k(before, after map[string]time.Duration, ops int64) map[string]time.Duration {
	if ops <= 0 {
		return nil
	}
	out := make(map[string]time.Duration, len(after))
	for name, a := range after {
		if b, ok := before[name]; ok {
			out[name] = (a - b) * 1000 / time.Duration(ops)
		}
	}
	return out
}

// medianCPU returns, per process, the median of the runs' CPU figures.
func medianCPU(runs []map[string]time.Duration) map[string]time.Duration {
	if len(runs) == 0 {
		return nil
	}
	vals := map[string][]time.Duration{}
	for _, r := range runs {
		for k, v := range r {
			vals[k] = append(vals[k], v)
		}
	}
	out := make(map[string]time.Duration, len(vals))
	for k, v := range vals {
		out[k] = Median(v)
	}
	return out
}

// series runs a measured load runs times after an optional warm-up and
// collects the results and CPU use per run. run gets the run's length.
type series struct {
	cfg   Config
	meter cpuMeter
	// before runs ahead of each run (e.g. purging a stream); an error
	// aborts the series.
	before func(ctx context.Context) error
}

func (s series) run(ctx context.Context, warm bool, run func(ctx context.Context, d time.Duration) LoadResult) ([]LoadResult, map[string]time.Duration, error) {
	if warm && s.cfg.WarmUp > 0 {
		if s.before != nil {
			if err := s.before(ctx); err != nil {
				return nil, nil, err
			}
		}
		_ = run(ctx, s.cfg.WarmUp)
	}
	var (
		results []LoadResult
		cpus    []map[string]time.Duration
	)
	for range s.cfg.Runs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if s.before != nil {
			if err := s.before(ctx); err != nil {
				return nil, nil, err
			}
		}
		b := s.meter.snapshot()
		r := run(ctx, s.cfg.RunTime)
		cpus = append(cpus, per1k(b, s.meter.snapshot(), r.Ops))
		results = append(results, r)
	}
	return results, medianCPU(cpus), nil
}
