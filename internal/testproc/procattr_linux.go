package testproc

import "syscall"

// procAttr has the child get SIGTERM when the thread that started it ends
// (Start's, which lives as long as the test binary).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
