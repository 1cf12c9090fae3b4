package stack

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Kill ends service name with SIGKILL, as a crash would (no shutdown, no
// acknowledgements flushed), and waits until it has exited.
func (s *Stack) Kill(name string) error {
	p := s.procByName(name)
	if p == nil {
		return fmt.Errorf("stack: no service %q", name)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return nil
}

// StopService stops service name as Stop does: SIGTERM, then SIGKILL if
// it has not exited after 10 s.
func (s *Stack) StopService(name string) error {
	p := s.procByName(name)
	if p == nil {
		return fmt.Errorf("stack: no service %q", name)
	}
	p.stop(10 * time.Second)
	return nil
}

// StartService starts service name again, after Kill or StopService, with
// the same binary, environment and log file, and waits until it is ready.
func (s *Stack) StartService(ctx context.Context, name string) error {
	i := -1
	for j, p := range s.procs {
		if p.name == name {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("stack: no service %q", name)
	}
	old := s.procs[i]
	select {
	case <-old.done:
	default:
		return fmt.Errorf("stack: %s is still running", name)
	}
	p, err := startProc(old.name, old.bin, old.env, old.dir, old.out, old.logDir)
	if err != nil {
		return err
	}
	s.procs[i] = p
	if err := waitReady(ctx, "http://"+s.Addrs[name]+"/readyz", p); err != nil {
		return fmt.Errorf("%s not ready: %w (see %s)", name, err, filepath.Join(s.LogDir, name+".log"))
	}
	return nil
}

// PID returns the process id of service name, or 0 when there is none.
func (s *Stack) PID(name string) int {
	if p := s.procByName(name); p != nil && p.cmd.Process != nil {
		return p.cmd.Process.Pid
	}
	return 0
}
