package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel send SIGTERM to a process the harness
// started if the harness dies without stopping it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
