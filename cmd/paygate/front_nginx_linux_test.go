package main

import "syscall"

// nginxProcAttr has nginx's master get SIGTERM when the thread that
// started it ends (startNginx's, which lives as long as the test binary).
func nginxProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
