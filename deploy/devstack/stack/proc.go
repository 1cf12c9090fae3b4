package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// build compiles every service into binDir and returns their paths.
func build(ctx context.Context, root, binDir string) (map[string]string, error) {
	args := []string{"build", "-o", binDir + string(os.PathSeparator)}
	bins := make(map[string]string, len(Services))
	for _, name := range Services {
		args = append(args, "./services/"+name+"/cmd/"+name)
		bins[name] = filepath.Join(binDir, name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build services: %w\n%s", err, out)
	}
	return bins, nil
}

// proc is one running service process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	// how it was started, to start it again
	bin, dir, logDir string
	env              []string
	out              io.Writer
}

// outMu serialises prefixed lines from all processes onto one output.
var outMu sync.Mutex

func startProc(name, bin string, env []string, dir string, out io.Writer, logDir string) (*proc, error) {
	logFile, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	dieWithParent(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), bin: bin, dir: dir, logDir: logDir, env: env, out: out}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		prefix := fmt.Sprintf("%-8s| ", name)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logFile.Write(append(line, '\n'))
			outMu.Lock()
			_, _ = io.WriteString(out, prefix)
			_, _ = out.Write(append(line, '\n'))
			outMu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
		<-copied
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM and waits up to grace before killing.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
