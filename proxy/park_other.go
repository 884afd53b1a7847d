//go:build !linux

package proxy

import (
	"net"
	"syscall"
)

// Parking needs epoll; elsewhere a quiet relay direction keeps its goroutine.

type parkedRead struct {
	rc     syscall.RawConn
	resume func()
}

func parkable(net.Conn) syscall.RawConn { return nil }
func park(*parkedRead) bool             { return false }
func unpark(*parkedRead) bool           { return false }
