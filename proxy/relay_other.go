//go:build !unix

package proxy

import "syscall"

// waitReadable returns at once where peeking is not available: readers then hold their
// buffers while they wait, as a plain read would.
func waitReadable(syscall.RawConn) error { return nil }
