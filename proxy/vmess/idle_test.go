package vmess

import (
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/test/harness"
)

// TestIdleHoldsNoReadBuffer: a VMess connection over loopback TCP, both ends copying out
// with WriteTo as the relay does. Once the bytes of both directions are delivered,
// neither end holds a pooled read buffer while it waits for more. Before, the reader
// took a 20 KiB buffer when it was made and kept it until Close.
//
// The cases run one at a time, for they count buffers taken from a global pool.
func TestIdleHoldsNoReadBuffer(t *testing.T) {
	for _, c := range []struct {
		sec     string
		alterID int
	}{{"aes-128-gcm", 0}, {"chacha20-poly1305", 0}, {"none", 0}, {"aes-128-gcm", 64}} {
		t.Run(fmt.Sprintf("%s/alterId%d", c.sec, c.alterID), func(t *testing.T) {
			before := bufpool.Outstanding()
			client, server, stop, err := pipe(c.sec, c.alterID)()
			if err != nil {
				t.Fatal(err)
			}
			wait := harness.ExchangeCopyingOut(t, client, server, patterned(50000), patterned(30000))
			defer wait()
			defer stop()
			if held := bufpool.HeldSince(before); held > 0 {
				t.Fatalf("an idle connection, both ends, holds %d pooled read buffers, want 0", held)
			}
		})
	}
}

// patterned returns n bytes that are not all alike.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestWaitReadable: WaitReadable honours the read deadline and reports a waiting chunk
// without taking it; with payload buffered it does not wait at all.
func TestWaitReadable(t *testing.T) {
	client, server, stop, err := pipe("aes-128-gcm", 0)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
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
		t.Fatalf("WaitReadable with a chunk waiting: %v", err)
	}
	p := make([]byte, 3)
	if _, err := io.ReadFull(client, p); err != nil || string(p) != "hel" {
		t.Fatalf("Read: %q %v", p, err)
	}
	client.SetReadDeadline(time.Now().Add(-time.Second))
	if err := w.WaitReadable(); err != nil {
		t.Fatalf("WaitReadable with payload buffered: %v", err)
	}
	client.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(client, p[:2]); err != nil || string(p[:2]) != "lo" {
		t.Fatalf("Read: %q %v", p[:2], err)
	}
}
