package harness

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestExchangeDirect(t *testing.T) {
	tg := StartTarget(t)
	sizes := []struct{ up, down int64 }{
		{0, 0},
		{1, 0},
		{0, 1},
		{chunkLen - 1, chunkLen + 1},
		{3, 1 << 20},
		{1 << 20, 3},
		{1 << 20, 1 << 20},
	}
	for _, s := range sizes {
		if err := Exchange(dialTCP(t, tg.Addr()), s.up, s.down); err != nil {
			t.Errorf("up %d, down %d: %v", s.up, s.down, err)
		}
	}
	remotes := tg.Remotes()
	if len(remotes) != len(sizes) {
		t.Fatalf("target saw %d connections, want %d", len(remotes), len(sizes))
	}
	for _, r := range remotes {
		if ip := r.(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("remote %v is not loopback", r)
		}
	}
}

func TestExchangeMany(t *testing.T) {
	tg := StartTarget(t)
	dial := func() (net.Conn, error) { return net.Dial("tcp", tg.Addr()) }
	if err := ExchangeMany(8, dial, 256<<10, 256<<10); err != nil {
		t.Fatal(err)
	}
	if n := len(tg.Remotes()); n != 8 {
		t.Fatalf("target saw %d connections, want 8", n)
	}
}

func TestExchangeManyReportsDialError(t *testing.T) {
	errDial := errors.New("no route")
	dial := func() (net.Conn, error) { return nil, errDial }
	if err := ExchangeMany(3, dial, 1, 1); !errors.Is(err, errDial) {
		t.Fatalf("ExchangeMany error = %v, want %v", err, errDial)
	}
}

// The tampering relay proves Exchange can fail: each case breaks the traffic in one way
// and names the error Exchange must return. The clean case proves the relay itself is
// faithful, so the failures are the tampering's doing.
func TestExchangeDetectsTampering(t *testing.T) {
	const up, down = 200 << 10, 200 << 10
	payloadStart := int64(headerLen)
	cases := []struct {
		name      string
		upstream  tamper
		downbound tamper
		want      string // "|"-separated substrings, one of which the error must contain; "" means pass
	}{
		{"clean", tamper{}, tamper{}, ""},
		{"flip one upload byte", tamper{flipAt: payloadStart + 12345}, tamper{}, "target received other bytes than were sent"},
		{"flip last upload byte", tamper{flipAt: payloadStart + up - 1}, tamper{}, "target received other bytes than were sent"},
		{"flip one download byte", tamper{}, tamper{flipAt: 54321}, "down stream differs from the target's at byte 54321"},
		// The target hangs up; which direction notices first is up to the scheduler.
		{"flip a header byte", tamper{flipAt: 1}, tamper{}, "down stream ended after 0 of|up stream: "},
		{"truncate upload by one byte", tamper{cutAt: payloadStart + up - 1}, tamper{}, "target received other bytes than were sent"},
		{"truncate upload to the header", tamper{cutAt: payloadStart}, tamper{}, "target received other bytes than were sent"},
		{"truncate download", tamper{}, tamper{cutAt: down - 1}, "down stream ended after 204799 of 204800 bytes"},
		{"drop the upload hash", tamper{}, tamper{cutAt: down + 31}, "read the target's sha256 of the up stream"},
		{"append a byte after the hash", tamper{}, tamper{extra: []byte{0}}, "1 unexpected bytes after the target's report"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := StartTarget(t)
			relay := startTamperingRelay(t, tg.Addr(), c.upstream, c.downbound)
			err := Exchange(dialTCP(t, relay), up, down)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Exchange through a faithful relay: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("Exchange passed; want an error containing %q", c.want)
			case c.want != "" && !containsAny(err.Error(), strings.Split(c.want, "|")):
				t.Fatalf("Exchange error = %v; want it to contain %q", err, c.want)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A relay that reflects the client's bytes must not pass for a target.
func TestExchangeRejectsEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	defer ln.Close()
	wg.Go(func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		io.Copy(conn, conn)
	})
	if err := Exchange(dialTCP(t, ln.Addr().String()), 1000, 1000); err == nil {
		t.Fatal("Exchange against an echo server passed")
	}
}

type noHalfClose struct{ net.Conn }

func TestExchangeNeedsCloseWrite(t *testing.T) {
	tg := StartTarget(t)
	err := Exchange(noHalfClose{dialTCP(t, tg.Addr())}, 1, 1)
	if err == nil || !strings.Contains(err.Error(), "has no CloseWrite method") {
		t.Fatalf("Exchange error = %v, want a missing CloseWrite error", err)
	}
}

func TestExchangeRejectsBadSizes(t *testing.T) {
	tg := StartTarget(t)
	for _, s := range [][2]int64{{-1, 0}, {0, -1}, {maxStreamLen + 1, 0}} {
		if err := Exchange(dialTCP(t, tg.Addr()), s[0], s[1]); err == nil {
			t.Errorf("Exchange(up %d, down %d) passed", s[0], s[1])
		}
	}
}

func TestParseHeader(t *testing.T) {
	h := header{up: 5, down: 7, seed: 0xdeadbeef}
	got, err := parseHeader(h.marshal())
	if err != nil || got != h {
		t.Fatalf("parseHeader(marshal(%+v)) = %+v, %v", h, got, err)
	}
	bad := map[string][]byte{
		"wrong magic": append([]byte("XXXX"), h.marshal()[4:]...),
		"short":       h.marshal()[:headerLen-1],
		"huge down":   header{up: 1, down: maxStreamLen + 1}.marshal(),
	}
	for name, b := range bad {
		if _, err := parseHeader(b); !errors.Is(err, errHeader) {
			t.Errorf("%s: parseHeader error = %v, want %v", name, err, errHeader)
		}
	}
}

func TestStreamsDifferByDirectionAndSeed(t *testing.T) {
	read := func(seed uint64, dir byte) []byte {
		b := make([]byte, 64)
		stream(seed, dir).Read(b)
		return b
	}
	if !bytes.Equal(read(1, dirUp), read(1, dirUp)) {
		t.Fatal("stream is not deterministic")
	}
	if bytes.Equal(read(1, dirUp), read(1, dirDown)) {
		t.Fatal("up and down streams are equal")
	}
	if bytes.Equal(read(1, dirUp), read(2, dirUp)) {
		t.Fatal("streams of different seeds are equal")
	}
}

// tamper describes how a relay direction damages the bytes it forwards, by offset in
// that direction's byte stream. The zero value forwards faithfully.
type tamper struct {
	flipAt int64  // invert the byte at this offset, if > 0
	cutAt  int64  // forward only this many bytes, then half-close and drain, if > 0
	extra  []byte // bytes to add once the source ends
}

// startTamperingRelay relays each connection to target, applying the tampers to the
// client-to-target (up) and target-to-client (down) directions.
func startTamperingRelay(t *testing.T, target string, up, down tamper) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				t.Errorf("relay: %v", err)
				return
			}
			wg.Go(func() {
				var pair sync.WaitGroup
				pair.Go(func() { up.copy(server.(*net.TCPConn), client) })
				down.copy(client.(*net.TCPConn), server)
				pair.Wait()
				client.Close()
				server.Close()
			})
		}
	})
	return ln.Addr().String()
}

func (tp tamper) copy(dst *net.TCPConn, src net.Conn) {
	buf := make([]byte, 4096)
	var off int64
	cut := false
	for {
		n, err := src.Read(buf)
		p := buf[:n]
		if tp.flipAt > 0 && off <= tp.flipAt && tp.flipAt < off+int64(n) {
			p[tp.flipAt-off] ^= 0xff
		}
		if tp.cutAt > 0 && off+int64(n) > tp.cutAt {
			p = p[:max(tp.cutAt-off, 0)]
		}
		off += int64(n)
		if !cut && len(p) > 0 {
			if _, werr := dst.Write(p); werr != nil {
				return
			}
		}
		if tp.cutAt > 0 && off >= tp.cutAt && !cut {
			// Keep draining src so the sender is not blocked, but forward nothing more.
			cut = true
			dst.CloseWrite()
		}
		if err != nil {
			if !cut {
				dst.Write(tp.extra)
				dst.CloseWrite()
			}
			return
		}
	}
}
