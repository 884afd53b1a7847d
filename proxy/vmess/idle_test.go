package vmess

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

// hashSink hashes what it is given and reports on done once it has want bytes.
type hashSink struct {
	h    hash.Hash
	n    int
	want int
	done chan struct{}
}

func newHashSink(want int) *hashSink {
	return &hashSink{h: sha256.New(), want: want, done: make(chan struct{})}
}

func (s *hashSink) Write(p []byte) (int, error) {
	s.h.Write(p)
	if s.n < s.want && s.n+len(p) >= s.want {
		defer close(s.done)
	}
	s.n += len(p)
	return len(p), nil
}

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
			up, down := patterned(50000), patterned(30000)
			upSink, downSink := newHashSink(len(up)), newHashSink(len(down))
			var wg sync.WaitGroup
			wg.Go(func() { io.Copy(upSink, server) })
			wg.Go(func() { io.Copy(downSink, client) })
			defer wg.Wait()
			defer stop()

			if _, err := client.Write(up); err != nil {
				t.Fatal(err)
			}
			<-upSink.done
			if _, err := server.Write(down); err != nil {
				t.Fatal(err)
			}
			<-downSink.done
			if string(upSink.h.Sum(nil)) != string(sha256Sum(up)) {
				t.Fatal("up: hashes differ")
			}
			if string(downSink.h.Sum(nil)) != string(sha256Sum(down)) {
				t.Fatal("down: hashes differ")
			}
			if held := bufpool.HeldSince(before); held > 0 {
				t.Fatalf("an idle connection, both ends, holds %d pooled read buffers, want 0", held)
			}
		})
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
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
