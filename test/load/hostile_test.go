package load

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/vmess"
	"github.com/proxychain/proxychain/test/harness"
)

// hostileCases are the Shadowsocks and VMess inbounds with a genuine client's handshake.
func hostileCases(t *testing.T) []inboundCase {
	var cases []inboundCase
	for _, c := range inboundCases(t, "127.0.0.1:9") {
		if c.name != "socks" && c.name != "http" {
			cases = append(cases, c)
		}
	}
	// Legacy VMess, enabled: its failures must drain the same way.
	id, _ := vmess.ParseUUID(testUUID)
	user := vmess.User{ID: id, AlterID: 64}
	srv, err := vmess.NewServer([]vmess.User{user}, vmess.ServerOptions{AllowLegacy: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := clientHandshake(t, func(p proxy.Dialer) proxy.Dialer {
		c, err := vmess.NewClient("out", "127.0.0.1:1", user, "aes-128-gcm", p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, "127.0.0.1:9", []byte("hello"))
	return append(cases, inboundCase{"vmess/legacy-enabled", srv, hs})
}

// TestHostileCloseTiming: random probes (0-221 bytes, and 49/50/51), truncated genuine
// handshakes and bit-flipped ones get zero bytes back, cause no dial, and see the close
// only at the handshake deadline, whatever their length. That is asserted by outcome:
// every probe's connection is still open at half the deadline after the moment before
// its dial (which precedes the server's accept, so no correct server can have closed it
// by then, however loaded the machine), and is then closed cleanly by the server, not
// left open. When the closes came is a figure, not a pass/fail bound: their spread is
// the scheduler's, not the probe's.
func TestHostileCloseTiming(t *testing.T) {
	const deadline = time.Second
	for _, tc := range hostileCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialer := &countingDialer{refuse: true}
			addr, _ := startServer(t, tc.inbound, dialer, proxy.ServerOptions{HandshakeTimeout: deadline})
			probes := map[string][]byte{}
			for _, n := range []int{0, 1, 15, 16, 17, 32, 33, 49, 50, 51, 58, 60, 100, 150, 221} {
				b := make([]byte, n)
				rand.Read(b)
				probes[fmt.Sprintf("random %d", n)] = b
			}
			// Cuts and flips stay in the first quarter, inside VMess's authenticated
			// header: past it a VMess request is genuine (the server dials), and only a
			// replay could send it, which TestProbes in proxy/vmess covers.
			for _, cut := range []int{1, 16, 17, len(tc.handshake) / 4} {
				probes[fmt.Sprintf("truncated to %d of %d", cut, len(tc.handshake))] = tc.handshake[:cut]
			}
			for _, bit := range []int{0, 8*16 + 3, 8*(len(tc.handshake)/4) - 1} {
				b := bytes.Clone(tc.handshake)
				b[bit/8] ^= 1 << (bit % 8)
				probes[fmt.Sprintf("bit %d flipped", bit)] = b
			}
			var (
				mu     sync.Mutex
				closes []time.Duration
				wg     sync.WaitGroup
			)
			for name, p := range probes {
				wg.Go(func() {
					beforeDial := time.Now()
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					c.Write(p)
					held, err := harness.HeldOpen(c, beforeDial.Add(deadline/2))
					if err != nil {
						t.Errorf("%s: within %v of the dial, before the %v deadline, the server %v", name, deadline/2, deadline, err)
					}
					n, closedAt, err := readUntilClosed(c, 5*deadline)
					if err != io.EOF {
						t.Errorf("%s: the connection ended with %v, want the server's clean close", name, err)
					}
					if n += held; n != 0 {
						t.Errorf("%s: %d bytes back", name, n)
					}
					after := closedAt.Sub(beforeDial)
					mu.Lock()
					closes = append(closes, after)
					mu.Unlock()
				})
			}
			wg.Wait()
			slices.Sort(closes)
			figure(t, "%s: %d probes (random, truncated, bit-flipped): 0 bytes back, %d dials, closed after %v..%v (spread %v, deadline %v)",
				tc.name, len(closes), dialer.dials.Load(), closes[0].Round(time.Millisecond), closes[len(closes)-1].Round(time.Millisecond),
				(closes[len(closes)-1] - closes[0]).Round(time.Millisecond), deadline)
			if d := dialer.dials.Load(); d != 0 {
				t.Errorf("%d dials", d)
			}
		})
	}
}
