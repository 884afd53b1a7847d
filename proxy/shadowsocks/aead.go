package shadowsocks

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

// Chunk limits. Shadowsocks AEAD caps a payload chunk at 0x3FFF bytes (the top two bits of
// the length are reserved); SIP022 lifts the cap to 0xFFFF. We send at most 0x3FFF in both
// editions, so every record fits one pooled buffer, and accept what each edition allows.
const (
	maxPayload     = 0x3FFF
	maxPayload2022 = 0xFFFF
	tagLen         = 16
	nonceLen       = 12
	recordOverhead = 2 + 2*tagLen // a sealed length with its tag, and the payload's tag
)

// The largest SIP022 chunk with its tag fits a large pooled buffer.
const _ = uint(bufpool.LargeSize - (maxPayload2022 + tagLen))

// Errors a decoder returns. They are sticky: the stream cannot be resynchronised.
var (
	ErrAuth        = errors.New("shadowsocks: message authentication failed")
	ErrChunkLength = errors.New("shadowsocks: chunk length over the limit")
	ErrReplay      = errors.New("shadowsocks: replayed salt")
	ErrTimestamp   = errors.New("shadowsocks: timestamp outside the 30 s window")
	ErrHeader      = errors.New("shadowsocks: bad header")
	ErrBinding     = errors.New("shadowsocks: response is bound to another request")
)

// increment adds one to a little-endian nonce counter.
func increment(nonce *[nonceLen]byte) {
	for i := range nonce {
		nonce[i]++
		if nonce[i] != 0 {
			return
		}
	}
}

// sealer seals chunks with one session subkey and its running nonce.
type sealer struct {
	aead  cipher.AEAD
	nonce [nonceLen]byte
}

// seal appends p sealed under the next nonce to dst. p is either dst's spare capacity
// exactly (sealing in place) or shares no memory with it.
func (s *sealer) seal(dst, p []byte) []byte {
	dst = s.aead.Seal(dst, s.nonce[:], p, nil)
	increment(&s.nonce)
	return dst
}

// sealFrom encrypts dst[start:] in place and appends the tag.
func (s *sealer) sealFrom(dst []byte, start int) []byte { return s.seal(dst[:start], dst[start:]) }

// chunk appends a length chunk and a payload chunk carrying prefix||p. p must not share
// memory with dst's spare capacity.
func (s *sealer) chunk(dst, prefix, p []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(prefix)+len(p)))
	dst = s.sealFrom(dst, start)
	if len(prefix) == 0 {
		return s.seal(dst, p) // from where it lies: read once, not copied first
	}
	start = len(dst)
	dst = append(append(dst, prefix...), p...)
	return s.sealFrom(dst, start)
}

// newSealer draws a salt and derives the session AEAD for one sending direction.
func newSealer(c *Cipher) (sealer, []byte, error) {
	salt := make([]byte, c.saltLen)
	rand.Read(salt)
	aead, err := c.sessionAEAD(salt)
	if err != nil {
		return sealer{}, nil, err
	}
	return sealer{aead: aead}, salt, nil
}

// aeadEncoder writes a Shadowsocks AEAD (2017) stream: the salt, then chunks. A client's
// first chunk starts with the target address, followed by as much payload as fits.
type aeadEncoder struct {
	sealer
	salt    []byte
	header  []byte // the client's target address; nil on the server side
	started bool
}

func (e *aeadEncoder) headerPending() bool { return !e.started && e.header != nil }

func (e *aeadEncoder) encode(dst, p []byte) ([]byte, int) {
	if !e.started {
		e.started = true
		dst = append(dst, e.salt...)
		n := min(len(p), maxPayload-len(e.header))
		dst = e.chunk(dst, e.header, p[:n])
		e.salt, e.header = nil, nil
		return dst, n
	}
	n := min(len(p), maxPayload)
	return e.chunk(dst, nil, p[:n]), n
}

// chunkReader decrypts a stream of [length chunk][payload chunk] pairs. Raw bytes are read
// into a pooled buffer and decrypted in place; the plaintext is handed out from there.
// The buffer is held only while it has bytes in it: with nothing left to deliver it goes
// back to the pool, and the next one is taken once the source has input
// (proxy.ReadFresh), so an idle connection holds none.
//
// Its state survives I/O errors: a read deadline may fire in the middle of a chunk and a
// later Read resumes where it stopped. Authentication and framing errors are sticky.
type chunkReader struct {
	src        io.Reader
	aead       cipher.AEAD
	salt       []byte // the peer's salt, which keys aead; kept only for the handshake
	nonce      [nonceLen]byte
	maxPayload int

	buf    *[]byte
	r, w   int  // buf[r:w] holds raw bytes not yet decrypted
	full   bool // the last read filled buf: more is waiting, so keep buf (grown) and read on
	plain  []byte
	next   int  // length of the coming payload chunk; -1 when a length chunk comes next
	opened bool // a chunk has been opened; before that, a salt alone is a truncated stream
	err    error

	// preamble reads what precedes the first chunk (the peer's salt, and SIP022's
	// response header). It runs until it succeeds, then is cleared.
	preamble func() error
}

func newChunkReader(src io.Reader, limit int) *chunkReader {
	return &chunkReader{src: src, maxPayload: limit, next: -1}
}

func (c *chunkReader) fail(err error) error {
	c.err = err
	return err
}

// fill makes n raw bytes available at buf[r:] and returns them without consuming them.
// The returned slice is valid until the next fill. It is called only once c.plain is
// delivered, so an empty buffer can go back to the pool before the wait for input.
func (c *chunkReader) fill(n int) ([]byte, error) {
	for c.w-c.r < n {
		if c.r == c.w {
			c.r, c.w = 0, 0
			if !c.full {
				c.putBuf()
			}
		}
		if c.buf == nil {
			buf, m, err := proxy.ReadFresh(c.src)
			if buf == nil {
				return nil, err
			}
			c.buf, c.w, c.full = buf, m, m == len(*buf)
			if err != nil && c.w < n {
				if c.w == 0 {
					c.putBuf()
				}
				if err == io.EOF && c.w > 0 {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			continue
		}
		b := *c.buf
		switch {
		case n > len(b) || c.full && !bufpool.IsLarge(c.buf):
			// A chunk over the small buffer, or a saturated stream (bufpool).
			c.grow()
			b = *c.buf
		case c.r > 0 && (len(b)-c.r < n || len(b)-c.w < len(b)/2):
			// Move the unread part to the front also when n would fit, so that reads
			// stay large: a read(2) costs more than copying the part of a chunk.
			c.w = copy(b, b[c.r:c.w])
			c.r = 0
		}
		m, err := c.src.Read(b[c.w:])
		c.w += m
		c.full = c.w == len(b)
		if err != nil && c.w-c.r < n {
			if c.r == c.w {
				c.putBuf()
			}
			if err == io.EOF && c.w > c.r {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return (*c.buf)[c.r : c.r+n], nil
}

// grow moves the unread bytes into a large buffer.
func (c *chunkReader) grow() {
	nb := proxy.LargeBuffer(c.src)
	c.w = copy(*nb, (*c.buf)[c.r:c.w])
	c.r = 0
	c.putBuf()
	c.buf = nb
}

func (c *chunkReader) putBuf() {
	if c.buf == nil {
		return
	}
	bufpool.Put(c.buf)
	c.buf = nil
}

// open authenticates and decrypts the next chunk, whose plaintext is n bytes: into dst
// if it is not nil (it must have room), else in place.
func (c *chunkReader) open(n int, dst []byte) ([]byte, error) {
	b, err := c.fill(n + tagLen)
	if err != nil {
		if err == io.EOF && !c.opened {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if dst == nil {
		dst = b
	}
	pt, err := c.aead.Open(dst[:0], c.nonce[:], b, nil)
	if err != nil {
		return nil, c.fail(ErrAuth)
	}
	c.opened = true
	increment(&c.nonce)
	c.r += len(b)
	return pt, nil
}

// readChunk decrypts the next payload chunk into c.plain. It returns io.EOF only when
// the stream ends cleanly between chunks.
func (c *chunkReader) readChunk() error {
	if c.err != nil {
		return c.err
	}
	if c.preamble != nil {
		if err := c.preamble(); err != nil {
			return err
		}
		c.preamble, c.salt = nil, nil
	}
	if c.next < 0 {
		b, err := c.open(2, nil)
		if err != nil {
			return err
		}
		if err := c.setNext(b); err != nil {
			return err
		}
	}
	b, err := c.open(c.next, nil)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	c.next = -1
	c.plain = b
	return nil
}

// setNext takes the payload length from an opened length chunk.
func (c *chunkReader) setNext(b []byte) error {
	n := int(binary.BigEndian.Uint16(b))
	if n > c.maxPayload {
		return c.fail(fmt.Errorf("%w: %d bytes, limit %d", ErrChunkLength, n, c.maxPayload))
	}
	c.next = n
	return nil
}

// openBuffered decrypts the next payload chunk if all of its bytes are buffered, and
// reports whether it did: into dst if the payload fits (the result is then
// dst[:len(result)]), else in place. It does no I/O; an error stays in c.err for
// readChunk to report once the payload before it is delivered.
func (c *chunkReader) openBuffered(dst []byte) ([]byte, bool) {
	if c.preamble != nil || c.aead == nil {
		return nil, false
	}
	for c.err == nil {
		n := 2
		if c.next >= 0 {
			n = c.next
		}
		if c.w-c.r < n+tagLen {
			return nil, false
		}
		var into []byte
		if c.next >= 0 && n <= len(dst) {
			into = dst
		}
		b, err := c.open(n, into)
		if err != nil {
			return nil, false
		}
		if c.next < 0 {
			c.setNext(b)
			continue
		}
		c.next = -1
		return b, true
	}
	return nil, false
}

// gather appends the payload of every further chunk already buffered to c.plain, moving
// each down behind the one before it in the same buffer, so that WriteTo makes one Write
// for them all.
func (c *chunkReader) gather() {
	for {
		b, ok := c.openBuffered(nil)
		if !ok {
			return
		}
		if len(c.plain) == 0 {
			c.plain = b
		} else {
			c.plain = append(c.plain, b...)
		}
	}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		if err := c.readChunk(); err != nil {
			return 0, err
		}
	}
	// Fill p from every chunk already buffered, so that a layer reading through this
	// one gets a buffer's worth per read rather than a record's. A chunk that fits is
	// decrypted straight into p, saving a copy.
	n := 0
	for n < len(p) {
		if len(c.plain) == 0 {
			b, ok := c.openBuffered(p[n:])
			if !ok {
				break
			}
			if len(b) <= len(p)-n {
				n += len(b) // decrypted into p
			} else {
				c.plain = b
			}
			continue
		}
		m := copy(p[n:], c.plain)
		c.plain = c.plain[m:]
		n += m
	}
	if len(c.plain) == 0 && c.r == c.w && !c.full {
		c.putBuf()
	}
	return n, nil
}

// WriteTo hands decrypted payload to w with one Write per fill of the input buffer: the
// chunks already buffered are decrypted in place and their payloads joined, so a peer's
// small records cost one write(2) per read(2), not one each.
func (c *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		c.gather()
		for len(c.plain) > 0 {
			n, err := w.Write(c.plain)
			total += int64(n)
			c.plain = c.plain[n:]
			if err != nil {
				return total, err
			}
		}
		if err := c.readChunk(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
	}
}

func (c *chunkReader) buffered() bool {
	if len(c.plain) > 0 || c.r < c.w || c.err != nil {
		return true
	}
	c.r, c.w = 0, 0
	c.putBuf()
	return false
}

func (c *chunkReader) release() {
	c.plain = nil
	c.putBuf()
}

// readSalt reads the salt that keys the peer's stream. A client passes its request salt,
// which is refused: echoed back, the request would open under it as an authentic
// response. (A server refuses reflection through its salt filter.)
func (c *chunkReader) readSalt(ciph *Cipher, requestSalt []byte) error {
	b, err := c.fill(ciph.saltLen)
	if err != nil {
		return err
	}
	if bytes.Equal(b, requestSalt) {
		return c.fail(fmt.Errorf("%w: the response salt is our request's, reflected", ErrReplay))
	}
	c.salt = bytes.Clone(b)
	aead, err := ciph.sessionAEAD(c.salt)
	if err != nil {
		return c.fail(err)
	}
	c.aead = aead
	c.r += len(c.salt)
	return nil
}
