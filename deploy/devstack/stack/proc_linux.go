package stack

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send SIGTERM to the service if the stack
// process dies without stopping it (e.g. it is killed), so no orphaned
// service keeps a port.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
