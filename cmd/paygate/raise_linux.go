package main

import (
	"os"
	"runtime"
	"syscall"
)

// raise sends sig, its handler reset, to the calling thread, which takes
// it as the syscall returns: sent to the process, another thread could
// take it after the caller went on (dieOf's exit).
func raise(sig syscall.Signal) {
	runtime.LockOSThread()
	_ = syscall.Tgkill(os.Getpid(), syscall.Gettid(), sig)
}
