package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoadSampler records the machine's 1-minute load average (/proc/loadavg)
// at a fixed interval while a run goes, since other work on a shared
// machine moves the absolute figures.
type LoadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    context.CancelFunc
	done    chan struct{}
}

// StartLoadSampler samples now and then every interval until Stop.
func StartLoadSampler(ctx context.Context, interval time.Duration) *LoadSampler {
	ctx, cancel := context.WithCancel(ctx)
	l := &LoadSampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := readLoadAvg(); err == nil {
				l.mu.Lock()
				l.samples = append(l.samples, v)
				l.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return l
}

// Stop ends sampling and returns the samples.
func (l *LoadSampler) Stop() []float64 {
	l.stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples)
}

func readLoadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty /proc/loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}

// describeLoad renders samples as min / median / max.
func describeLoad(samples []float64) string {
	if len(samples) == 0 {
		return "unknown"
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return fmt.Sprintf("%.1f / %.1f / %.1f (min / median / max of %d samples, one every 30 s)", s[0], Median(s), s[len(s)-1], len(s))
}
