package main

import (
	"os"
	"os/exec"
	"syscall"
)

// asPID1 starts cmd in a PID namespace of its own, where it is PID 1 (a
// container's ENTRYPOINT), inside a user namespace, so that no privilege is
// needed. Nil on an OS without PID namespaces.
var asPID1 = func(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}}
}
