//go:build !linux

package main

import "syscall"

// sysProcAttr puts a child in its own process group (killed as a whole).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
