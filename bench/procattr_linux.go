package main

import "syscall"

// sysProcAttr puts a child in its own process group (killed as a whole)
// and has the kernel kill it should this process die without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
