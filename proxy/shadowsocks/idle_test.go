package shadowsocks

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/test/harness"
)

// TestIdleHoldsNoWriteBuffer: once a write is on the wire, the connection gives its
// record buffer back, so thousands of idle connections do not hold 20 KiB each.
func TestIdleHoldsNoWriteBuffer(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		raw := newMemConn(nil)
		c, err := NewClient("t", "unused:1", ciph, nil).wrap(raw, addrBytes(t, "example.com:443"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, p := range [][]byte{[]byte("first"), pattern(50000, 1)} {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
			c.wmu.Lock()
			held := c.wbuf != nil
			c.wmu.Unlock()
			if held {
				t.Fatalf("after writing %d bytes the connection still holds its write buffer", len(p))
			}
		}
	})
}

// TestIdleHoldsNoReadBuffer: Shadowsocks in Shadowsocks over loopback TCP, both ends
// copying out with WriteTo as the relay does. Once the bytes of both directions are
// delivered, no layer holds a pooled read buffer while it waits for more: each decoder
// lets go of its buffer and waits on the layer beneath without one (WaitReadable).
// Before, each AEAD decoder kept a 20 KiB buffer for the life of the connection.
//
// The subtests run one at a time, for they count buffers taken from a global pool.
func TestIdleHoldsNoReadBuffer(t *testing.T) {
	for _, m := range Methods() {
		t.Run(m, func(t *testing.T) { testIdleHoldsNoReadBuffer(t, mustCipher(t, m)) })
	}
}

func testIdleHoldsNoReadBuffer(t *testing.T, ciph *Cipher) {
	before := bufpool.Outstanding()
	a, b, err := tcpPair()
	if err != nil {
		t.Fatal(err)
	}
	innerClient, innerServer, err := wrapPair(t, ciph, a, b)
	if err != nil {
		t.Fatal(err)
	}
	client, server, err := wrapPair(t, ciph, innerClient, innerServer)
	if err != nil {
		t.Fatal(err)
	}
	wait := harness.ExchangeCopyingOut(t, client, server, pattern(50000, 3), pattern(30000, 4))
	defer wait()
	defer client.Close()
	defer server.Close()
	if held := bufpool.HeldSince(before); held > 0 {
		t.Fatalf("two idle layers, both ends, hold %d pooled read buffers, want 0", held)
	}
}

// TestWaitReadable: WaitReadable honours the read deadline, reports data without taking
// it, and sends a client's pending header first (the server answers nothing without it).
func TestWaitReadable(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		a, b, err := tcpPair()
		if err != nil {
			t.Fatal(err)
		}
		client, server, err := wrapPair(t, ciph, a, b)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		defer server.Close()
		w := client.(proxy.ReadWaiter)

		client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if err := w.WaitReadable(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WaitReadable past the deadline: %v, want a timeout", err)
		}
		client.SetReadDeadline(time.Time{})

		if _, err := server.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitReadable(); err != nil {
			t.Fatalf("WaitReadable with a record waiting: %v", err)
		}
		p := make([]byte, 3)
		if _, err := io.ReadFull(client, p); err != nil || string(p) != "hel" {
			t.Fatalf("Read: %q %v", p, err)
		}
		// Two bytes are still buffered: no wait.
		client.SetReadDeadline(time.Now().Add(-time.Second))
		if err := w.WaitReadable(); ciph.family == familyAEAD || ciph.family == family2022 {
			if err != nil {
				t.Fatalf("WaitReadable with bytes buffered: %v", err)
			}
			client.SetReadDeadline(time.Time{})
			if _, err := io.ReadFull(client, p[:2]); err != nil || string(p[:2]) != "lo" {
				t.Fatalf("Read: %q %v", p[:2], err)
			}
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WaitReadable of an unbuffered decoder past the deadline: %v, want a timeout", err)
		}
	})
}
