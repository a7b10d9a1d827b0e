//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package server

import "syscall"

// peekReadable is a syscall.RawConn.Read callback that reports whether
// the socket has data (or an error or end) to read, without consuming it;
// RawConn.Read waits for readability while it reports false.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
}
