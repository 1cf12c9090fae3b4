package bench

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// TreeCPUTime returns the CPU time (user + system) of a process and all
// its descendants: the live ones' own time plus, from cutime/cstime, that
// of the children that already exited and were waited for. For a server
// that forks a process per connection (PostgreSQL).
func TreeCPUTime(pid int) time.Duration {
	var total time.Duration
	for _, p := range descendants(pid) {
		total += procTicks(p)
	}
	return total
}

// TreePSS returns the proportional set size (Pss from smaps_rollup) of a
// process and its descendants in bytes: shared memory is divided among
// the processes that map it, so the sum does not count it twice.
func TreePSS(pid int) int64 {
	var total int64
	for _, p := range descendants(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/smaps_rollup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb * 1024
			}
		}
	}
	return total
}

// descendants returns pid and every live process below it.
func descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(out[i]) + "/task")
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(out[i]) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// procTicks returns utime+stime of pid plus cutime+cstime (its children
// that exited and were waited for).
func procTicks(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	// After the command: state is field 3; utime 14, stime 15, cutime 16,
	// cstime 17.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks
}
