//go:build !linux

package main

import "os/exec"

// asPID1: no PID namespaces here (signal_linux_test.go).
var asPID1 func(*exec.Cmd)
