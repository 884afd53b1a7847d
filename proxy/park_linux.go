package proxy

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Parking: relay directions whose sources have gone quiet wait in an epoll set of their
// own instead of on goroutines. The set's descriptor is itself watched by the runtime's
// poller, so one goroutine serves every parked direction, and none runs while nothing is
// parked.

// parkedRead is one relay direction's place in the parking set.
type parkedRead struct {
	rc     syscall.RawConn // the source's socket
	resume func()          // run on a new goroutine once the socket is readable
	id     uint64          // the current registration; 0 while not parked
	added  bool            // the socket is in the epoll set (armed or spent)
}

var parking struct {
	sync.Mutex
	opened  bool
	epfd    int
	file    *os.File        // epfd, for the runtime's poller; nil if epoll is unavailable
	rc      syscall.RawConn // file's, to wait on it
	waiting map[uint64]*parkedRead
	lastID  uint64 // the last registration's id, so also how many parks were tried
	running bool   // a goroutine runs parkLoop
}

// parkable returns the socket beneath c, found through NetConn, or nil if there is none.
func parkable(c net.Conn) syscall.RawConn {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
}

// openParking sets up the epoll set, once; p is locked.
func openParking() {
	if parking.opened {
		return
	}
	parking.opened = true
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return
	}
	f := os.NewFile(uintptr(fd), "relay-parking")
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil { // not pollable: the runtime cannot watch it
		f.Close()
		return
	}
	parking.epfd, parking.file, parking.rc = fd, f, rc
	parking.waiting = make(map[uint64]*parkedRead)
}

// park arms a one-shot wait for w's socket to turn readable. It reports false if the
// socket is closed or epoll is unavailable. A socket already readable fires at once.
func park(w *parkedRead) bool {
	p := &parking
	p.Lock()
	defer p.Unlock()
	openParking()
	if p.file == nil {
		return false
	}
	p.lastID++
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(p.lastID)),
		Pad:    int32(uint32(p.lastID >> 32)),
	}
	var ctlErr error
	err := w.rc.Control(func(fd uintptr) {
		// A spent one-shot registration stays in the set until re-armed or closed.
		op := syscall.EPOLL_CTL_ADD
		if w.added {
			op = syscall.EPOLL_CTL_MOD
		}
		ctlErr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil || ctlErr != nil {
		return false
	}
	w.added, w.id = true, p.lastID
	p.waiting[w.id] = w
	if !p.running {
		p.running = true
		go parkLoop()
	}
	return true
}

// unpark takes w off the parking set if it is parked there, and reports whether it was:
// if not, its resume has run or is about to. The registration itself is left to be
// dropped by the kernel when the socket closes, which the caller is about to do; should
// it fire first, its event finds no one.
func unpark(w *parkedRead) bool {
	p := &parking
	p.Lock()
	defer p.Unlock()
	if w.id == 0 {
		return false
	}
	delete(p.waiting, w.id)
	w.id = 0
	if len(p.waiting) == 0 {
		p.file.SetReadDeadline(time.Unix(1, 0)) // let parkLoop see it has nothing to wait for
	}
	return true
}

// parkLoop resumes parked directions as their sockets turn readable, and ends once none
// is parked.
func parkLoop() {
	p := &parking
	events := make([]syscall.EpollEvent, 64)
	var ready []*parkedRead
	for {
		p.rc.Read(func(uintptr) bool {
			n, err := syscall.EpollWait(p.epfd, events, 0)
			for err == syscall.EINTR {
				n, err = syscall.EpollWait(p.epfd, events, 0)
			}
			if n <= 0 {
				return false // wait until the set has events
			}
			p.Lock()
			for _, ev := range events[:n] {
				id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
				if w, ok := p.waiting[id]; ok {
					delete(p.waiting, id)
					w.id = 0
					ready = append(ready, w)
				}
			}
			p.Unlock()
			return true
		})
		for i, w := range ready {
			go w.resume()
			ready[i] = nil
		}
		ready = ready[:0]
		p.Lock()
		if len(p.waiting) == 0 {
			p.running = false
			p.Unlock()
			return
		}
		p.file.SetReadDeadline(time.Time{})
		p.Unlock()
	}
}
