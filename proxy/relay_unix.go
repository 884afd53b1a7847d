//go:build unix

package proxy

import "syscall"

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
