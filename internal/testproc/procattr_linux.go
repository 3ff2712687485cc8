package testproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the child get death when the thread that started it
// ends (Spawn's, which lives as long as the child). The kernel clears it
// when the child changes its user (a server started as root that drops its
// privileges, as squid does): give such a one its user in
// cmd.SysProcAttr.Credential, which Go sets before the death signal.
func setDeathSignal(cmd *exec.Cmd, death syscall.Signal) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = death
}
