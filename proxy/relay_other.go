//go:build !unix

package proxy

import "syscall"

// waitReadable returns at once where peeking is not available: readers then hold their
// buffers while they wait, as a plain read would.
func waitReadable(syscall.RawConn) error { return nil }

// canReadRaw: readSocketFresh is unix-only; elsewhere a TCP source is waited on and read
// as any other.
const canReadRaw = false

func readSocketFresh(syscall.RawConn) (*[]byte, int, error) { return nil, 0, syscall.EINVAL }
