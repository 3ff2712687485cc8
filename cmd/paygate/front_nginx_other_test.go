//go:build !linux

package main

import "syscall"

// nginxProcAttr: no parent-death signal outside Linux; nginx is ended by
// startNginx's cleanup only.
func nginxProcAttr() *syscall.SysProcAttr { return nil }
