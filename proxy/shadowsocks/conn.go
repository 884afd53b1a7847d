package shadowsocks

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

// decoder is the receiving half of a connection.
type decoder interface {
	io.Reader
	io.WriterTo
	// buffered reports whether a Read would return without reading the conn beneath:
	// it holds undelivered bytes or a sticky error. When it reports false it has let go
	// of its buffers, because its caller is about to wait for input without them.
	buffered() bool
	// release returns pooled buffers. It is called with the read lock held, after Close.
	release()
}

// encoder turns plaintext into records for the sending half.
type encoder interface {
	// encode appends to dst one record carrying p[:n] and returns it with n. The first
	// record also carries the salt or IV and any header. encode is called with an empty p
	// only while headerPending, to send the header on its own. A record never outgrows
	// a pooled buffer.
	encode(dst, p []byte) (record []byte, n int)
	// headerPending reports whether a client's request header still waits for the
	// first record. Server encoders have none.
	headerPending() bool
}

// conn is a Shadowsocks connection: Read decrypts, Write encrypts. It embeds the
// connection beneath, so Close, addresses and deadlines pass through.
//
// A client sends its header lazily, together with the first Write: the address and the
// first payload share one record (one AEAD chunk; for SIP022, the initial payload in the
// header instead of padding). If the application reads before it writes (the server
// speaks first), Read sends the header alone first, because the server dials nothing
// until it has the address.
//
// A Write cut short by a deadline has still committed the records it was writing: it
// reports their bytes as written, and the next Write (or CloseWrite) sends the rest of
// them first, so the stream stays decodable. A Write that finds its
// deadline already passed writes nothing.
//
// There is no ReadFrom: proxy.Relay hides the destination's ReadFrom behind its byte
// counter, so the sending side is always driven through Write.
type conn struct {
	net.Conn
	dec decoder
	enc encoder

	rmu sync.Mutex // held by Read and WriteTo

	wmu        sync.Mutex // held by Write and CloseWrite
	wbuf       *[]byte
	pending    []byte // unsent tail of the record whose write was cut short
	headerDone bool   // the record with the request header is all on the wire

	headerUnsent  atomic.Bool  // !headerDone, for readers
	writeDeadline atomic.Int64 // unix nanoseconds; 0 for none
	closed        atomic.Bool
}

func newConn(c net.Conn, dec decoder, enc encoder) *conn {
	sc := &conn{Conn: c, dec: dec, enc: enc, headerDone: !enc.headerPending()}
	sc.headerUnsent.Store(!sc.headerDone)
	return sc
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.sendHeader(); err != nil {
		return 0, err
	}
	c.rmu.Lock()
	defer c.unlockRead()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.dec.Read(p)
}

// WriteTo hands decrypted records straight to w: proxy.Relay copies through it.
func (c *conn) WriteTo(w io.Writer) (int64, error) {
	if err := c.sendHeader(); err != nil {
		return 0, err
	}
	c.rmu.Lock()
	defer c.unlockRead()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.dec.WriteTo(w)
}

// WaitReadable blocks until a Read would not block, holding no buffer while it waits:
// if the decoder has nothing undelivered it lets its buffer go and waits on the conn
// beneath (or returns at once if that conn cannot wait).
func (c *conn) WaitReadable() error {
	if err := c.sendHeader(); err != nil {
		return err
	}
	c.rmu.Lock()
	if c.closed.Load() {
		c.unlockRead()
		return net.ErrClosed
	}
	buffered := c.dec.buffered()
	c.unlockRead()
	if buffered {
		return nil
	}
	return proxy.WaitReadable(c.Conn)
}

// sendHeader sends a client's request header, which the server needs before it answers
// anything. If a Write holds the lock, that Write is sending the header itself.
//
// Only the header: flushing other data here could deadlock, with our reader blocked
// writing to a peer that is itself blocked writing to us. The header is safe, because
// until the server has it, it sends nothing.
func (c *conn) sendHeader() error {
	if !c.headerUnsent.Load() || !c.wmu.TryLock() {
		return nil
	}
	defer c.unlockWrite()
	return c.flushLocked()
}

func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.unlockWrite()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if err := c.deadlinePassed(); err != nil {
		return 0, err
	}
	if err := c.writePending(); err != nil {
		return 0, err
	}
	return c.writeRecords(p)
}

// CloseWrite sends the header if it is still pending (the server must learn the
// address before it sees EOF) and any cut-short record, then half-closes the
// connection beneath. Neither Shadowsocks edition marks the end of a stream in-band.
func (c *conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.unlockWrite()
	if err := c.flushLocked(); err != nil {
		return err
	}
	return proxy.CloseWrite(c.Conn)
}

// NetConn returns the connection beneath, for proxy.Relay's reset propagation.
func (c *conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection beneath, which unblocks any Read or Write, and returns the
// buffers of whichever halves are idle; a half that is busy returns its own on the way out.
func (c *conn) Close() error {
	c.closed.Store(true)
	err := c.Conn.Close()
	if c.rmu.TryLock() {
		c.unlockRead()
	}
	if c.wmu.TryLock() {
		c.unlockWrite()
	}
	return err
}

func (c *conn) SetDeadline(t time.Time) error {
	c.storeWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.storeWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) storeWriteDeadline(t time.Time) {
	if t.IsZero() {
		c.writeDeadline.Store(0)
		return
	}
	c.writeDeadline.Store(t.UnixNano())
}

// deadlinePassed reports a passed write deadline before any record is committed.
func (c *conn) deadlinePassed() error {
	d := c.writeDeadline.Load()
	if d == 0 || time.Now().UnixNano() < d {
		return nil
	}
	return &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
}

func (c *conn) unlockRead() {
	if c.closed.Load() {
		c.dec.release()
	}
	c.rmu.Unlock()
}

func (c *conn) unlockWrite() {
	// The write buffer goes back to the pool after every write that left nothing
	// pending, so an idle connection does not hold one.
	if c.wbuf != nil && (c.closed.Load() || len(c.pending) == 0) {
		writePool.Put(c.wbuf)
		c.wbuf, c.pending = nil, nil
	}
	if !c.headerDone && !c.enc.headerPending() && len(c.pending) == 0 {
		c.headerDone = true
		c.headerUnsent.Store(false)
	}
	c.wmu.Unlock()
}

// flushLocked sends a cut-short record's tail and a pending header.
func (c *conn) flushLocked() error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if err := c.deadlinePassed(); err != nil {
		return err
	}
	if err := c.writePending(); err != nil {
		return err
	}
	if c.enc.headerPending() {
		_, err := c.writeRecords(nil)
		return err
	}
	return nil
}

func (c *conn) writePending() error {
	for len(c.pending) > 0 {
		n, err := c.Conn.Write(c.pending)
		c.pending = c.pending[n:]
		if err != nil {
			return err
		}
	}
	return nil
}

// writeRecords encodes p into records and sends them with one write per write buffer,
// so that a relay read, which with the framing of the layers inside is a little over a
// whole number of records, is one write(2) and not full records and a sliver. With an
// empty p it sends the pending header. Encoded records are committed: if the write is
// cut short they count as written and their unsent tail stays pending.
func (c *conn) writeRecords(p []byte) (int, error) {
	if c.wbuf == nil {
		c.wbuf = writePool.Get().(*[]byte)
	}
	written := 0
	for header := c.enc.headerPending(); len(p) > 0 || header; header = false {
		b := (*c.wbuf)[:0]
		// A record after the first carries at most maxPayload (a stream cipher's takes
		// what room is left), so it fits while its payload and framing are free.
		for first := true; first || len(p) > 0 && cap(b)-len(b) >= min(len(p), maxPayload)+recordOverhead; first = false {
			var n int
			b, n = c.enc.encode(b, p)
			p = p[n:]
			written += n
		}
		m, err := c.Conn.Write(b)
		if err != nil {
			c.pending = b[m:]
			return written, err
		}
	}
	return written, nil
}

// writePool holds write buffers with room for a saturated relay's read
// (bufpool.LargeSize), the framing of the layers inside it, and its own.
var writePool = sync.Pool{New: func() any { b := make([]byte, bufpool.LargeSize+8<<10); return &b }}
