//go:build !linux

package testproc

import "syscall"

// procAttr is nil where there is no parent-death signal: the child then
// ends with the test's cleanups only.
func procAttr(syscall.Signal) *syscall.SysProcAttr { return nil }
