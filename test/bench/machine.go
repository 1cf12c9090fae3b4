package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Machine describes where a benchmark ran.
type Machine struct {
	// CPU is the processor's model name from /proc/cpuinfo.
	CPU string
	// Cores is the number of logical CPUs the harness can use.
	Cores int
	// Kernel is the Linux kernel release.
	Kernel string
	// Go is the Go toolchain the harness (and the services) were built with.
	Go string
	// NATSServer and NATSClient are the nats-server (embedded) and nats.go
	// versions.
	NATSServer, NATSClient string
	// Redis is redis-server's version, when it is on PATH.
	Redis string
	// Commit is the checked-out git commit, "+dirty" when the tree has
	// changes.
	Commit string
}

// DescribeMachine gathers the Machine description; what it cannot find
// is left as "unknown".
func DescribeMachine(ctx context.Context, root string) Machine {
	m := Machine{
		CPU: "unknown", Cores: runtime.NumCPU(), Kernel: "unknown", Go: runtime.Version(),
		NATSServer: server.VERSION, NATSClient: nats.Version, Redis: "unknown", Commit: "unknown",
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := command(ctx, root, "redis-server", "--version"); err == nil {
		for _, f := range strings.Fields(out) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				m.Redis = v
			}
		}
	}
	if out, err := command(ctx, root, "git", "rev-parse", "--short", "HEAD"); err == nil {
		m.Commit = strings.TrimSpace(out)
		if st, err := command(ctx, root, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && strings.TrimSpace(st) != "" {
			m.Commit += "+dirty"
		}
	}
	return m
}

func command(ctx context.Context, dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return string(out), err
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPUTime returns the user plus system CPU time process pid has used
// (0 for the harness itself), from /proc/<pid>/stat, to 10ms.
func CPUTime(pid int) (time.Duration, error) {
	p := "/proc/self/stat"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, os.ErrInvalid
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, os.ErrInvalid
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, os.ErrInvalid
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// Children returns the harness's child processes by command name (as in
// /proc/<pid>/comm), e.g. the services a stack started.
func Children() map[string]int {
	out := map[string]int{}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if comm, err := os.ReadFile("/proc/" + f + "/comm"); err == nil {
				out[strings.TrimSpace(string(comm))] = pid
			}
		}
	}
	return out
}
