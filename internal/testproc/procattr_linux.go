package testproc

import "syscall"

// procAttr has the child get death when the thread that started it ends
// (Spawn's, which lives as long as the child).
func procAttr(death syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: death}
}
