package vmess

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

var epoch = time.Unix(1700000000, 0)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func decodeWire(s *Server, wire []byte) (session, error) {
	r := newChunkReader(bytes.NewReader(wire))
	defer r.release()
	return s.decode(r)
}

func TestAEADTimeWindow(t *testing.T) {
	for _, tc := range []struct {
		skew int64
		want error
	}{{0, nil}, {-120, nil}, {120, nil}, {-121, ErrExpired}, {121, ErrExpired}, {-100000, ErrExpired}} {
		srv, c := testPair(t, 0)
		srv.now = fixedClock(epoch)
		c.now = fixedClock(epoch.Add(time.Duration(tc.skew) * time.Second))
		_, wire, _ := c.newRequest("1.2.3.4:5")
		_, err := decodeWire(srv, wire)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("client %+d s: %v, want %v", tc.skew, err, tc.want)
		}
	}
}

func TestLegacyTimeWindow(t *testing.T) {
	srv, c := testPair(t, 8)
	srv.now = fixedClock(epoch)
	var plain [maxHeaderLen]byte
	for _, tc := range []struct {
		skew int64
		want error
	}{{0, nil}, {-120, nil}, {120, nil}, {-121, ErrAuth}, {121, ErrAuth}} {
		h, _, _ := c.newRequest("1.2.3.4:5")
		addr, _ := appendAddress(nil, "1.2.3.4:5")
		header := appendRequestHeader(plain[:0], h, addr, nil)
		wire := sealLegacyRequest(c.cmdKey, c.alterIDs[3], epoch.Unix()+tc.skew, header)
		_, err := decodeWire(srv, wire)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("client %+d s: %v, want %v", tc.skew, err, tc.want)
		}
	}
	// The primary ID is not a legacy credential: V2Ray clients always pick an alter ID.
	h, _, _ := c.newRequest("1.2.3.4:5")
	addr, _ := appendAddress(nil, "1.2.3.4:5")
	wire := sealLegacyRequest(c.cmdKey, c.user.ID, epoch.Unix(), appendRequestHeader(plain[:0], h, addr, nil))
	if _, err := decodeWire(srv, wire); !errors.Is(err, ErrAuth) {
		t.Errorf("primary id: %v", err)
	}
}

// TestLegacyIndexMoves: as the clock advances, the index follows it, stays the same size,
// and keeps finding fresh hashes.
func TestLegacyIndexMoves(t *testing.T) {
	srv, c := testPair(t, 2)
	now := epoch
	srv.now = func() time.Time { return now }
	for _, step := range []time.Duration{0, time.Second, 7 * time.Second, 200 * time.Second, 10000 * time.Second, -50 * time.Second} {
		now = now.Add(step)
		c.now = fixedClock(now)
		_, wire, _ := c.newRequest("1.2.3.4:5")
		if _, err := decodeWire(srv, wire); err != nil {
			t.Fatalf("after %v: %v", step, err)
		}
		for i, slot := range srv.legacy.slots {
			if len(slot.byHash) != 2 || slot.t < now.Unix()-authIDWindow || slot.t > now.Unix()+authIDWindow {
				t.Fatalf("after %v: slot %d for second %d holds %d hashes", step, i, slot.t, len(slot.byHash))
			}
		}
	}
}

func TestReplayRefused(t *testing.T) {
	for _, alterID := range []int{0, 64} {
		srv, c := testPair(t, alterID)
		_, wire, _ := c.newRequest("example.com:80")
		if _, err := decodeWire(srv, wire); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeWire(srv, wire); !errors.Is(err, ErrReplay) {
			t.Errorf("alterId %d: replay: %v, want ErrReplay", alterID, err)
		}
	}
	// A new auth ID in front of a known session key and IV is still a replay.
	srv, c := testPair(t, 0)
	h, wire, _ := c.newRequest("example.com:80")
	if _, err := decodeWire(srv, wire); err != nil {
		t.Fatal(err)
	}
	addr, _ := appendAddress(nil, "example.com:80")
	var plain [maxHeaderLen]byte
	if _, err := decodeWire(srv, c.sealAEAD(appendRequestHeader(plain[:0], h, addr, nil))); !errors.Is(err, ErrReplay) {
		t.Errorf("same session under a new auth id: %v", err)
	}
}

// TestSharedReplayFilter: a request one server accepted is refused by another given the
// same filter, even one with other users besides; a server with its own filter accepts it.
func TestSharedReplayFilter(t *testing.T) {
	id1, id2 := mustUUID(t, specUser1), mustUUID(t, specUser2)
	shared := new(ReplayFilter)
	first, err := NewServer([]User{{ID: id1}}, ServerOptions{Logger: quietLog, Replay: shared})
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewServer([]User{{ID: id2}, {ID: id1}}, ServerOptions{Logger: quietLog, Replay: shared})
	if err != nil {
		t.Fatal(err)
	}
	_, c := testPair(t, 0)
	_, wire, _ := c.newRequest("example.com:80")
	if _, err := decodeWire(first, wire); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeWire(second, wire); !errors.Is(err, ErrReplay) {
		t.Errorf("replay at a server sharing the filter: %v, want ErrReplay", err)
	}
	own, _ := testPair(t, 0)
	if _, err := decodeWire(own, wire); err != nil {
		t.Errorf("server with its own filter: %v", err)
	}
}

// TestReplayFilterForgets: entries leave the filters once the window can no longer accept
// them, so memory follows the request rate, not the uptime.
func TestReplayFilterForgets(t *testing.T) {
	srv, c := testPair(t, 0)
	now := epoch
	srv.now = func() time.Time { return now }
	for i := 0; i < 50; i++ {
		c.now = fixedClock(now)
		_, wire, _ := c.newRequest("example.com:80")
		if _, err := decodeWire(srv, wire); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2*authIDWindow*time.Second + 2*time.Second)
	c.now = fixedClock(now)
	_, wire, _ := c.newRequest("example.com:80")
	if _, err := decodeWire(srv, wire); err != nil {
		t.Fatal(err)
	}
	if f := srv.replay; len(f.seenIDs.seen) != 1 || len(f.sessions.seen) != 1 {
		t.Errorf("filters hold %d auth ids and %d sessions, want 1 and 1", len(f.seenIDs.seen), len(f.sessions.seen))
	}
}

func TestManyUsers(t *testing.T) {
	var users []User
	for i := 0; i < 5; i++ {
		var id [16]byte
		rand.Read(id[:])
		users = append(users, User{ID: id, AlterID: i % 2 * 4, Email: fmt.Sprintf("user%d@example", i)})
	}
	srv, err := NewServer(users, ServerOptions{AllowLegacy: true, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if !srv.Insecure() {
		t.Error("Insecure() false with AllowLegacy")
	}
	for i, u := range users {
		c, err := NewClient("out", "127.0.0.1:1", u, "", &net.Dialer{})
		if err != nil {
			t.Fatal(err)
		}
		_, wire, _ := c.newRequest("example.com:80")
		sess, err := decodeWire(srv, wire)
		if err != nil || sess.user != i || sess.aead != (u.AlterID == 0) {
			t.Errorf("user %d: decoded user %d aead %v, %v", i, sess.user, sess.aead, err)
		}
	}
	// Without AllowLegacy the legacy users' requests are unknown.
	strict, _ := NewServer(users, ServerOptions{Logger: quietLog})
	c, _ := NewClient("out", "127.0.0.1:1", users[1], "", &net.Dialer{})
	_, wire, _ := c.newRequest("example.com:80")
	if _, err := decodeWire(strict, wire); !errors.Is(err, ErrAuth) {
		t.Errorf("legacy request to a strict server: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	id := mustUUID(t, specUser1)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"no users", func() error { _, err := NewServer(nil, ServerOptions{}); return err }()},
		{"duplicate", func() error {
			_, err := NewServer([]User{{ID: id}, {ID: id}}, ServerOptions{Logger: quietLog})
			return err
		}()},
		{"alterId", func() error { _, err := NewServer([]User{{ID: id, AlterID: -1}}, ServerOptions{}); return err }()},
		{"legacy table too big", func() error {
			_, err := NewServer([]User{{ID: id, AlterID: MaxAlterID}}, ServerOptions{AllowLegacy: true, Logger: quietLog})
			return err
		}()},
		{"security", func() error { _, err := NewClient("x", "a:1", User{ID: id}, "aes-128-cfb", &net.Dialer{}); return err }()},
		{"server address", func() error { _, err := NewClient("x", "nohost", User{ID: id}, "", &net.Dialer{}); return err }()},
		{"parent", func() error { _, err := NewClient("x", "a:1", User{ID: id}, "", nil); return err }()},
	} {
		if tc.err == nil || !bytes.HasPrefix([]byte(tc.err.Error()), []byte("vmess: ")) {
			t.Errorf("%s: %v, want a vmess: error", tc.name, tc.err)
		}
	}
}

func TestBodyOptions(t *testing.T) {
	// Every option set a V2Ray 4.34 or Xray client sends decodes both ways.
	for _, sec := range []byte{secAES128GCM, secChacha20Poly1305, secNone} {
		for opts := byte(0); opts < 0x20; opts++ {
			spec := bodySpec{security: sec, options: opts}
			rand.Read(spec.key[:])
			rand.Read(spec.iv[:])
			if opts&optGlobalPadding != 0 && opts&optChunkMasking == 0 {
				if err := spec.check(); !errors.Is(err, ErrUnsupported) {
					t.Errorf("padding without masking: %v", err)
				}
				continue
			}
			var wire bytes.Buffer
			w := chunkWriter{w: &wire, f: spec.framer(spec.key, spec.iv)}
			payload := bytes.Repeat([]byte("0123456789"), 5000)
			w.Write(payload)
			w.end()
			r := newChunkReader(&wire)
			r.startBody(spec.framer(spec.key, spec.iv))
			var got bytes.Buffer
			if _, err := r.WriteTo(&got); err != nil || !bytes.Equal(got.Bytes(), payload) {
				t.Errorf("security %d options %#x: %d bytes, %v", sec, opts, got.Len(), err)
			}
		}
	}
	if err := (bodySpec{security: secLegacyCFB}).check(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("legacy cfb body: %v", err)
	}
}

// probe sends data on a fresh connection to addr and checks the server neither answers
// nor closes within a moment; the caller closes the returned conn.
func probe(t *testing.T, addr string, data []byte) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	return c
}

func expectSilence(t *testing.T, conns map[string]net.Conn) {
	time.Sleep(300 * time.Millisecond)
	var wg sync.WaitGroup
	for name, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := c.Read(make([]byte, 1))
			var ne net.Error
			if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("%s: read %d bytes, %v; want silence and an open connection", name, n, err)
			}
			c.Close()
		})
	}
	wg.Wait()
}

// TestProbes: random bytes of every length up to 221, a valid auth ID followed by
// garbage, and replays get no byte back, no upstream dial and no early close.
func TestProbes(t *testing.T) {
	for _, alterID := range []int{0, 64} {
		t.Run(fmt.Sprintf("alterId%d", alterID), func(t *testing.T) {
			srv, c := testPair(t, alterID)
			d := newRecordingDialer()
			addr := startServer(t, srv, d)
			conns := map[string]net.Conn{}
			for n := 0; n <= 221; n++ {
				data := make([]byte, n)
				rand.Read(data)
				conns[fmt.Sprintf("%d random bytes", n)] = probe(t, addr, data)
			}
			_, wire, _ := c.newRequest("127.0.0.1:9")
			garbage := bytes.Clone(wire)
			rand.Read(garbage[16:])
			conns["auth then garbage"] = probe(t, addr, garbage)

			// A real request is served (and dials); its replay is not.
			real := probe(t, addr, wire)
			if got := <-d.dials; got != "127.0.0.1:9" {
				t.Fatalf("dialed %q", got)
			}
			real.Close()
			conns["replay"] = probe(t, addr, wire)
			expectSilence(t, conns)
			if len(d.dials) != 0 {
				t.Errorf("%d dials after probes", len(d.dials))
			}
		})
	}
}

// TestBadDomainRefused: a domain name that the router or the next hop would read as
// another host, such as a zoned IPv6 literal that no IP rule matches, makes a bad header,
// refused like any other: no byte back, no dial, the connection held open.
func TestBadDomainRefused(t *testing.T) {
	srv, c := testPair(t, 0)
	d := newRecordingDialer()
	addr := startServer(t, srv, d)
	// withDomain seals a request whose destination is name, port 80, sent as a domain.
	withDomain := func(name string) []byte {
		h, _, _ := c.newRequest("example.com:80")
		dest := append([]byte{0, 80, addrDomain, byte(len(name))}, name...)
		var plain [maxHeaderLen]byte
		return c.sealAEAD(appendRequestHeader(plain[:0], h, dest, nil))
	}
	fresh, _ := testPair(t, 0)
	if sess, err := decodeWire(fresh, withDomain("example.com")); err != nil || sess.h.dest != "example.com:80" {
		t.Fatalf("a good domain: %q, %v", sess.h.dest, err)
	}
	conns := map[string]net.Conn{}
	for _, name := range []string{"::1%lo", "fe80::1%eth0", "127.0.0.1:22", "[::1]", "a b", "x/y", "host\x00"} {
		wire := withDomain(name)
		if _, err := decodeWire(fresh, wire); !errors.Is(err, ErrHeader) {
			t.Errorf("domain %q: %v, want ErrHeader", name, err)
		}
		conns[fmt.Sprintf("domain %q", name)] = probe(t, addr, wire)
	}
	expectSilence(t, conns)
	if len(d.dials) != 0 {
		t.Errorf("%d dials for bad domains, the first %q", len(d.dials), <-d.dials)
	}
}

// recordHandler counts log records by level.
type recordHandler struct {
	mu     sync.Mutex
	levels []slog.Level
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels = append(h.levels, r.Level)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// TestLegacyWarnsOnce: enabling legacy headers logs one warning, at construction; the
// default logs nothing.
func TestLegacyWarnsOnce(t *testing.T) {
	id := mustUUID(t, specUser1)
	for _, allow := range []bool{false, true} {
		h := &recordHandler{}
		srv, err := NewServer([]User{{ID: id, AlterID: 4}}, ServerOptions{AllowLegacy: allow, Logger: slog.New(h)})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := NewClient("out", "127.0.0.1:1", User{ID: id, AlterID: 4}, "none", &net.Dialer{})
		for i := 0; i < 3; i++ {
			_, wire, _ := c.newRequest("example.com:80")
			decodeWire(srv, wire)
		}
		warnings := 0
		for _, l := range h.levels {
			if l >= slog.LevelWarn {
				warnings++
			}
		}
		if want := map[bool]int{false: 0, true: 1}[allow]; warnings != want || srv.Insecure() != allow {
			t.Errorf("AllowLegacy %v: %d warnings, Insecure %v", allow, warnings, srv.Insecure())
		}
	}
}
