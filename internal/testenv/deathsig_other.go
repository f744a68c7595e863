//go:build !linux

package testenv

import "os/exec"

// setParentDeathSignal does nothing where the system has no parent-death signal: a crashed run
// may leave its servers running.
func setParentDeathSignal(*exec.Cmd) {}

// asUser runs cmd as it is: only Linux tests run the replica as another user.
func asUser(cmd *exec.Cmd, _, _ uint32) *exec.Cmd { return cmd }
