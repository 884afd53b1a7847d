//go:build unix

package proxy

import (
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

// waitReadable blocks until rc has data, an EOF or an error to read, without reading
// the data: a one-byte MSG_PEEK tells, and the poller waits while it would block.
//
// A pending socket error (a reset) is consumed by the peek, so it is returned here: the
// read that follows would see only EOF.
func waitReadable(rc syscall.RawConn) error {
	var sockErr error
	err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			sockErr = err
			return true
		}
	})
	if err != nil {
		return err
	}
	return sockErr
}

// canReadRaw: on unix a TCP source is read with readSocketFresh.
const canReadRaw = true

// readSocketFresh reads what rc has into a pooled buffer, waiting in the poller without
// one while the socket is empty. One read(2) serves as both the test for input and the
// read itself, where a peek would take two.
func readSocketFresh(rc syscall.RawConn) (*[]byte, int, error) {
	r := socketReads.Get().(*socketRead)
	err := rc.Read(r.fn)
	buf, n, rerr := r.buf, r.n, r.err
	*r = socketRead{fn: r.fn}
	socketReads.Put(r)
	switch {
	case err != nil:
		return buf, 0, err
	case rerr != nil:
		return buf, 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return buf, 0, io.EOF
	}
	return buf, n, nil
}

// socketRead is one readSocketFresh in progress. They are pooled with their callback
// bound, so that a read allocates nothing.
type socketRead struct {
	buf *[]byte
	n   int
	err error
	fn  func(fd uintptr) bool // r.read
}

var socketReads = sync.Pool{New: func() any {
	r := new(socketRead)
	r.fn = r.read
	return r
}}

func (r *socketRead) read(fd uintptr) bool {
	if r.buf == nil {
		r.buf = bufpool.Get()
	}
	n, errno := rawRead(fd, *r.buf)
	if errno == syscall.EAGAIN {
		bufpool.Put(r.buf)
		r.buf = nil
		return false
	}
	r.n = n
	if errno != 0 {
		r.err = errno
	}
	return true
}
