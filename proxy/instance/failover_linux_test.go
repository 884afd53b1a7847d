package instance

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// unanswered returns a loopback address whose connects are never answered: a listener
// that accepts nothing, with its queue of one taken, so Linux drops every further SYN.
func unanswered(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}

// TestServersFailOverUnanswered: a server whose address never answers the connect gets
// its share of the dial's time, and the rest goes to the next server.
func TestServersFailOverUnanswered(t *testing.T) {
	m, port, _ := hops(t)
	echo := startEcho(t)
	exit := twoServers(t, unanswered(t), fmt.Sprintf("127.0.0.1:%d", port))
	// Each of the two gets 3 s; this is a bound, not a measurement.
	if err := echoWithin(exit, echo, 6*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := m.Inbound("hop1").Value(); got != 1 {
		t.Errorf("the answering server accepted %d connections, want 1", got)
	}
}
