//go:build !linux

package redisproc

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; Stop (and test
// cleanups) end the server there.
func dieWithParent(*exec.Cmd) {}
