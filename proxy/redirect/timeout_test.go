package redirect

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/test/harness"
)

// TestReplayConnResumesAfterTimeouts: the sniffed bytes, then the rest read through
// timeouts at any byte and retried, arrive intact, through Read and the relay's copy.
func TestReplayConnResumesAfterTimeouts(t *testing.T) {
	sniffed, rest := bytes.Repeat([]byte("hello "), 100), bytes.Repeat([]byte("payload "), 4000)
	want := append(bytes.Clone(sniffed), rest...)
	for _, s := range harness.Stutters {
		for _, via := range []string{"Read", "Copy"} {
			src := harness.NewTimeoutReader(bytes.NewReader(rest), s)
			rc := &replayConn{Conn: &harness.StutterConn{In: src}, pending: bytes.Clone(sniffed)}
			var got []byte
			var err error
			if via == "Copy" {
				got, err = harness.WriteToRetrying(copier{rc}, src)
			} else {
				got, err = harness.ReadAllRetrying(rc, src, 7)
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s: read %d bytes, %v; want %d", s.Name, via, len(got), err, len(want))
			}
		}
	}
}

// copier drains a conn with proxy.Copy, as the relay does.
type copier struct{ c net.Conn }

func (c copier) WriteTo(w io.Writer) (int64, error) { return proxy.Copy(w, c.c) }

// TestReplayConnWaitReadable: pending bytes are ready at once, whatever the deadline;
// without them the wait is the TCP connection's, deadline included.
func TestReplayConnWaitReadable(t *testing.T) {
	server, client := tcpPair(t)
	server.SetReadDeadline(time.Now().Add(-time.Second))
	rc := &replayConn{Conn: server, pending: []byte("x")}
	if err := rc.WaitReadable(); err != nil {
		t.Fatalf("with replayed bytes pending: %v", err)
	}
	rc.Read(make([]byte, 1))
	if err := rc.WaitReadable(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle, deadline passed: %v, want a timeout", err)
	}
	server.SetReadDeadline(time.Time{})
	client.Write([]byte("y"))
	if err := rc.WaitReadable(); err != nil {
		t.Fatalf("with data waiting: %v", err)
	}
}

// TestIdleRelayThroughReplayConnHoldsNoBuffer: once the replayed bytes and a byte each
// way have passed, a relay reading through the wrapper waits without a pooled buffer.
func TestIdleRelayThroughReplayConnHoldsNoBuffer(t *testing.T) {
	const n = 10
	before := bufpool.Outstanding()
	var done []chan error
	var ends []net.Conn
	for range n {
		server, app := tcpPair(t)
		upstream, target := tcpPair(t)
		ch := make(chan error, 1)
		done = append(done, ch)
		go func() {
			_, err := proxy.Relay(&replayConn{Conn: server, pending: []byte("sniffed")}, upstream, proxy.Timeouts{})
			ch <- err
		}()
		app.Write([]byte("!"))
		got := make([]byte, len("sniffed!"))
		if _, err := io.ReadFull(target, got); err != nil || string(got) != "sniffed!" {
			t.Fatalf("target read %q, %v", got, err)
		}
		target.Write([]byte{1})
		if _, err := io.ReadFull(app, got[:1]); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, app, target)
	}
	held := bufpool.HeldSince(before)
	for _, c := range ends {
		c.Close()
	}
	for _, ch := range done {
		<-ch
	}
	if held != 0 {
		t.Errorf("%d idle relays hold %d pooled buffers, want 0", n, held)
	}
}
