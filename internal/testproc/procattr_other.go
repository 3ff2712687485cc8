//go:build !linux

package testproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal does nothing where there is no parent-death signal: the
// child then ends with the test's cleanups only.
func setDeathSignal(*exec.Cmd, syscall.Signal) {}
