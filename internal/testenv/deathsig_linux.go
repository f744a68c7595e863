package testenv

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the child killed when the test binary dies, so that a crashed run
// leaves no servers behind.
func setParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// asUser runs cmd as the user uid of group gid.
func asUser(cmd *exec.Cmd, uid, gid uint32) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	return cmd
}
