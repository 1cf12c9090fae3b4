package redisproc

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill redis-server when the process that
// started it dies, so a test binary killed by its timeout (or SIGKILL) leaves
// no redis-server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
