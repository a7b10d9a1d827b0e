//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

// peekReadable reports readable at once where peeking is not available:
// the reader then waits inside the WebSocket library's read instead.
func peekReadable(uintptr) bool { return true }
