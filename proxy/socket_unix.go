//go:build unix

package proxy

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

func (s *Socket) bind() {
	s.rd.fn = s.rd.read
	s.wr.fn = s.wr.write
}

// Read reads as TCPConn.Read does.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return s.TCPConn.Read(p) // reads nothing, but reports a closed conn
	}
	n, errno, err := s.rd.run(s.rc.Read, p)
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p as TCPConn.Write does, waiting while the socket is full.
func (s *Socket) Write(p []byte) (int, error) {
	n, errno, err := s.wr.run(s.rc.Write, p)
	switch {
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	case err != nil:
		return n, s.opError("write", err)
	case n < len(p):
		return n, s.opError("write", io.ErrUnexpectedEOF) // write(2) took nothing, as in TCPConn.Write
	}
	return n, nil
}

// run makes the call on p through wait (the RawConn's Read or Write, which calls c.fn
// until it reports done, waiting for readiness in between), and returns the bytes moved,
// the system call's error and wait's own (a close or a deadline).
func (c *socketCall) run(wait func(func(uintptr) bool) error, p []byte) (n int, errno syscall.Errno, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p = p
	err = wait(c.fn)
	n, errno = c.n, c.errno
	c.p, c.n, c.errno = nil, 0, 0
	return n, errno, err
}

func (c *socketCall) read(fd uintptr) bool {
	n, errno := rawRead(fd, c.p)
	if errno == syscall.EAGAIN {
		return false
	}
	c.n, c.errno = n, errno
	return true
}

func (c *socketCall) write(fd uintptr) bool {
	for c.n < len(c.p) {
		n, errno := rawWrite(fd, c.p[c.n:])
		switch {
		case errno == syscall.EAGAIN:
			return false
		case errno != 0:
			c.errno = errno
			return true
		case n == 0:
			return true
		}
		c.n += n
	}
	return true
}

// maxRawCall bounds the bytes of one raw read or write, and so how long it keeps the
// processor: the runtime cannot preempt a goroutine inside a system call it was not told
// of, but can between two. A saturated relay moves 66 KiB at a time; a caller's larger
// Write takes several calls.
const maxRawCall = 256 << 10

// rawRead is read(2) on a non-blocking descriptor, as a raw system call (see Socket).
// p must not be empty.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, errno := rawCall(syscall.SYS_READ, fd, p)
	if errno == 0 {
		raceAfterRead(p, n)
	}
	return n, errno
}

// rawWrite is write(2) on a non-blocking descriptor, as a raw system call (see Socket).
// p must not be empty.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	raceBeforeWrite()
	n, errno := rawCall(syscall.SYS_WRITE, fd, p)
	raceAfterWrite(p, n)
	return n, errno
}

func rawCall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	p = p[:min(len(p), maxRawCall)]
	for {
		n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return 0, errno
		}
		return int(n), 0
	}
}
