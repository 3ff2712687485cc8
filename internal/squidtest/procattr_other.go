//go:build !linux

package squidtest

import "syscall"

// procAttr is nil where there is no parent-death signal: squid then ends
// with the test's cleanups only.
func procAttr() *syscall.SysProcAttr { return nil }
