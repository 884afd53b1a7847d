//go:build !unix

package proxy

import "syscall"

// waitReadable returns at once where peeking is not available: the relay then holds its
// buffer while it waits, as a plain read would.
func waitReadable(syscall.RawConn) error { return nil }
