package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/proxychain/proxychain/test/harness"
)

// A wiretap is a TCP relay that records what passes through it, both ways. Put in
// front of the hop after the first, it holds exactly what the first hop relays upstream
// and receives back: what the owner of that server could read. That holds only for
// connections that come from the first hop's address (from); a client that skipped the
// first hop would dial the tap itself, so every connection's source is kept too.
type wiretap struct {
	from netip.Addr

	mu        sync.Mutex
	recording bool
	records   []*tapRecord
	sources   []netip.Addr    // of every connection, recorded or not
	heads     []*harness.Head // the first bytes up of every connection, recording or not
}

// tapRecord is one connection's bytes, each direction kept apart so that a plaintext run
// cannot hide by being split across interleaved connections.
type tapRecord struct {
	from     netip.Addr   // the connection's source
	up, down bytes.Buffer // first hop to next hop, and back
	head     *harness.Head
}

// tapBudget bounds what a wiretap keeps per direction of a connection: the marker
// exchange runs first and fits; the bulk traffic after it is relayed unrecorded.
const tapBudget = 2 * markerLen

// startWiretap relays connections to listen on to backend. from is the address the hop
// in front of it sends from, the source every connection must have.
func startWiretap(t *testing.T, listen, backend string, from netip.Addr) *wiretap {
	t.Helper()
	w := &wiretap{from: from, recording: true}
	harness.StartRelayOn(t, listen, backend, w.observe)
	return w
}

// observe keeps a new connection's source and first bytes, and its record while the tap
// is recording; the relay shows it every read before passing it on, so whatever the far
// end has received is already in the record.
func (w *wiretap) observe(client net.Conn) func(up bool, p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := &tapRecord{from: client.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(), head: new(harness.Head)}
	w.sources = append(w.sources, rec.from)
	w.heads = append(w.heads, rec.head)
	if w.recording {
		w.records = append(w.records, rec)
	}
	return func(up bool, p []byte) {
		if up {
			rec.head.Keep(p)
		}
		w.record(rec, up, p)
	}
}

func (w *wiretap) record(rec *tapRecord, up bool, p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.recording {
		return
	}
	b := &rec.down
	if up {
		b = &rec.up
	}
	b.Write(p[:min(len(p), tapBudget-b.Len())])
}

// strangers returns the sources of the connections so far that did not come from w.from,
// and how many connections there were.
func (w *wiretap) strangers() (bad []netip.Addr, total int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.sources {
		if a != w.from {
			bad = append(bad, a)
		}
	}
	return bad, len(w.sources)
}

// checkTappedFrom asserts tap relayed at least n connections, every one from the hop in
// front of it. A client that dials the tapped hop itself, skipping the one before, gets
// the same bytes to the destination, and its own ciphertext in the tap.
func checkTappedFrom(t *testing.T, tap *wiretap, n int) {
	t.Helper()
	bad, total := tap.strangers()
	if len(bad) > 0 {
		slices.SortFunc(bad, netip.Addr.Compare)
		t.Errorf("%d of the %d connections the wiretap relayed came from %v, not from the hop in front of it (%s): that hop was skipped",
			len(bad), total, slices.Compact(bad), tap.from)
	}
	if total < n {
		t.Errorf("the wiretap relayed %d connections, want at least %d", total, n)
	}
}

// connHeads returns the first bytes sent up on every connection so far.
func (w *wiretap) connHeads() []*harness.Head {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*harness.Head(nil), w.heads...)
}

// take stops recording and returns what was recorded.
func (w *wiretap) take() []*tapRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recording = false
	recs := w.records
	w.records = nil
	return recs
}

// The marker exchange sends a known payload through a chain to a markerTarget, which
// checks it and sends it back. The payload is a distinctive marker string every
// markerEvery bytes with pseudo-random bytes between, so both a recognisable string and
// arbitrary runs of payload can be looked for in a recording.
const (
	plaintextMarker = "PROXYCHAIN-E2E-PLAINTEXT-MARKER/do-not-let-a-hop-read-this"
	markerLen       = 256 << 10
	markerEvery     = 16 << 10
	// A recording may not hold any run this long from anywhere in the payload.
	plaintextChunk = 48
)

var markerPayload = func() []byte {
	p := make([]byte, markerLen)
	rand.NewChaCha8([32]byte{'e', '2', 'e'}).Read(p)
	for off := 0; off+len(plaintextMarker) <= len(p); off += markerEvery {
		copy(p[off:], plaintextMarker)
	}
	return p
}()

// findPlaintext returns where the payload's plaintext shows in rec: the marker, or any
// plaintextChunk-byte run of the payload taken at every 1 KiB. It returns "" if none does.
func findPlaintext(rec []byte) string {
	if i := bytes.Index(rec, []byte(plaintextMarker)); i >= 0 {
		return fmt.Sprintf("the marker string at byte %d", i)
	}
	for off := 0; off+plaintextChunk <= len(markerPayload); off += 1 << 10 {
		if i := bytes.Index(rec, markerPayload[off:off+plaintextChunk]); i >= 0 {
			return fmt.Sprintf("payload bytes %d..%d at byte %d", off, off+plaintextChunk, i)
		}
	}
	return ""
}

// checkCiphertextOnly asserts tap recorded at least one whole marker exchange each way,
// from the hop in front of it, and no plaintext of it.
func checkCiphertextOnly(t *testing.T, tap *wiretap) {
	t.Helper()
	recs := tap.take()
	var up, down int
	for i, r := range recs {
		if r.from != tap.from {
			// Then the recording is not what that hop relayed: it was skipped.
			t.Errorf("connection %d came from %s, not from the hop in front of the wiretap (%s)", i, r.from, tap.from)
			continue
		}
		up, down = max(up, r.up.Len()), max(down, r.down.Len())
		if where := findPlaintext(r.up.Bytes()); where != "" {
			t.Errorf("the first hop relayed plaintext upstream on connection %d: %s", i, where)
		}
		if where := findPlaintext(r.down.Bytes()); where != "" {
			t.Errorf("the first hop received plaintext from upstream on connection %d: %s", i, where)
		}
	}
	// Without this the check would pass on a wiretap nothing went through.
	if up < markerLen || down < markerLen {
		t.Errorf("the wiretap recorded at most %d bytes up and %d down on one connection; the marker exchange alone is %d each way",
			up, down, markerLen)
	}
}

// markerTarget is the far end of the marker exchange.
type markerTarget struct {
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	remotes []net.Addr
}

func startMarkerTarget(t *testing.T) *markerTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mt := &markerTarget{ln: ln}
	mt.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mt.mu.Lock()
			mt.remotes = append(mt.remotes, conn.RemoteAddr())
			mt.mu.Unlock()
			mt.wg.Go(func() { answerMarker(conn) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mt.wg.Wait()
	})
	return mt
}

func (mt *markerTarget) addr() string { return mt.ln.Addr().String() }

func (mt *markerTarget) remoteAddrs() []net.Addr {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return append([]net.Addr(nil), mt.remotes...)
}

// answerMarker echoes the payload only if it arrived intact; otherwise the client sees
// the connection close early.
func answerMarker(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	got := make([]byte, markerLen)
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, markerPayload) {
		return
	}
	conn.Write(markerPayload)
}

// markerExchange sends the marker payload over conn and checks it comes back intact.
// It closes conn.
func markerExchange(conn net.Conn) error {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(markerPayload); err != nil {
		return fmt.Errorf("marker exchange: send: %w", err)
	}
	got := make([]byte, markerLen)
	if n, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("marker exchange: got %d of %d bytes back: %w", n, markerLen, err)
	}
	if !bytes.Equal(got, markerPayload) {
		return errors.New("marker exchange: the payload came back changed")
	}
	return nil
}

// The ciphertext check must be able to fail: with nothing but the wiretap between
// client and target, the marker exchange is all plaintext, and it must be found.
func TestWiretapFindsPlaintext(t *testing.T) {
	mt := startMarkerTarget(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	tap := startWiretap(t, listen, mt.addr(), netip.MustParseAddr("127.0.0.1"))
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	if err := markerExchange(conn); err != nil {
		t.Fatal(err)
	}
	recs := tap.take()
	if len(recs) != 1 {
		t.Fatalf("wiretap recorded %d connections, want 1", len(recs))
	}
	if recs[0].up.Len() != markerLen || recs[0].down.Len() != markerLen {
		t.Fatalf("wiretap recorded %d bytes up and %d down, want %d each", recs[0].up.Len(), recs[0].down.Len(), markerLen)
	}
	for _, b := range [][]byte{recs[0].up.Bytes(), recs[0].down.Bytes()} {
		if findPlaintext(b) == "" {
			t.Error("findPlaintext missed the plaintext marker exchange")
		}
		// Without the marker strings, the payload runs alone must still be found.
		scrubbed := bytes.ReplaceAll(bytes.Clone(b), []byte(plaintextMarker), bytes.Repeat([]byte{0}, len(plaintextMarker)))
		if where := findPlaintext(scrubbed); where == "" {
			t.Error("findPlaintext missed payload runs once the markers were scrubbed")
		}
	}
	if bad, total := tap.strangers(); len(bad) != 0 || total != 1 {
		t.Errorf("the wiretap counted %d connections, %v of them from a stranger; want 1 from 127.0.0.1", total, bad)
	}
	// A connection from elsewhere is a stranger: the check of sources can fail.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if conn, err = d.Dial("tcp", listen); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		bad, total := tap.strangers()
		if total == 2 {
			if len(bad) != 1 || bad[0] != netip.MustParseAddr("127.0.0.2") {
				t.Errorf("strangers = %v, want [127.0.0.2]", bad)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wiretap counted %d connections, want 2", total)
		}
	}

	// Random bytes are not plaintext.
	noise := make([]byte, markerLen)
	rand.NewChaCha8([32]byte{'n'}).Read(noise)
	if where := findPlaintext(noise); where != "" {
		t.Errorf("findPlaintext found %s in noise", where)
	}
}
