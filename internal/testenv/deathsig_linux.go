package testenv

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the child killed when the test binary dies, so that a crashed run
// leaves no servers behind.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
