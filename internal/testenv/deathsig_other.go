//go:build !linux

package testenv

import "os/exec"

// setParentDeathSignal does nothing where the system has no parent-death signal: a crashed run
// may leave its servers running.
func setParentDeathSignal(*exec.Cmd) {}
