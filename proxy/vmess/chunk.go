package vmess

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

const (
	// maxChunkPayload keeps a sealed chunk inside one pooled read buffer (bufpool.Size),
	// so our own reader never needs a larger one.
	maxChunkPayload = 16 << 10
	maxPadding      = 64
	tagSize         = 16
	// maxChunkSize is what the 16-bit length field allows a peer to send, plus its own bytes.
	maxChunkSize = 0xffff + tagSize + 2 + tagSize
)

// bodySpec is what the request header says about both directions' bodies.
type bodySpec struct {
	security byte
	options  byte
	key, iv  [16]byte // the request body's
}

// check rejects combinations V2Ray also rejects.
func (s bodySpec) check() error {
	switch s.security {
	case secAES128GCM, secChacha20Poly1305, secNone:
	default:
		return fmt.Errorf("%w: body security %d", ErrUnsupported, s.security)
	}
	if s.options&optGlobalPadding != 0 && s.options&optChunkMasking == 0 {
		return fmt.Errorf("%w: global padding without chunk masking", ErrUnsupported)
	}
	return nil
}

// framer returns the chunk framing of one direction, keyed by that direction's key and
// IV, or nil when the body is a raw byte stream (security none without chunk stream).
func (s bodySpec) framer(key, iv [16]byte) *framer {
	aeadBody := s.security == secAES128GCM || s.security == secChacha20Poly1305
	if !aeadBody && s.options&optChunkStream == 0 {
		return nil
	}
	f := &framer{}
	f.nonce = chunkNonce(iv)
	if s.options&optChunkMasking != 0 {
		f.masked = true
		f.mask.reset(iv)
	}
	if !aeadBody {
		// V2Ray frames an unencrypted body as a bare chunk stream: no padding, no
		// authenticated length.
		return f
	}
	f.padding = s.options&optGlobalPadding != 0
	f.aead = s.newAEAD(key)
	if s.options&optAuthLength != 0 {
		// Both directions derive the length key from the request's key and IV.
		f.lenAEAD = s.newAEAD(chainAuthLen.derive16(s.key[:]))
		f.lenNonce = chunkNonce(s.iv)
	}
	return f
}

func (s bodySpec) newAEAD(key [16]byte) cipher.AEAD {
	if s.security == secAES128GCM {
		return newGCM(key[:])
	}
	aead, _ := chacha20poly1305.New(chachaKey(key))
	return aead
}

// framer seals and opens the chunks of one direction:
//
//	[size: 2, or 18 sealed][payload sealed with its tag][padding]
//
// size counts the sealed payload and the padding. The nonces are a big-endian 16-bit
// chunk counter followed by bytes 2..11 of the IV.
//
// The fields are ordered to pack: every idle connection holds two framers per VMess layer,
// and at 416 bytes a framer fills its allocation size class exactly.
type framer struct {
	aead     cipher.AEAD // nil: payload in clear
	lenAEAD  cipher.AEAD // authenticated length, or nil
	sealed   int         // chunks sealed so far
	nonce    [12]byte
	lenNonce [12]byte
	// The nonce and sealed length in use. They are fields because whatever goes to an
	// AEAD's methods escapes: locals would cost an allocation per chunk.
	scratch [12]byte
	sizeBuf [2]byte
	masked  bool // chunk masking: mask is in use
	padding bool
	// A value, not a pointer: one object per direction instead of three.
	mask maskStream
}

// maxSealedChunks is where the 16-bit nonce counter would wrap. V2Ray wraps and reuses
// nonces; our writer stops instead, keeping the last nonce for the end chunk.
const maxSealedChunks = 1 << 16

// ErrNonceExhausted is returned by a write that would reuse a body nonce: one VMess
// stream carries at most 65535 chunks each way: 1 GiB of 16 KiB chunks, or 65535 small
// writes.
var ErrNonceExhausted = errors.New("vmess: chunk counter exhausted; the stream cannot carry more")

func (f *framer) sizeLen() int {
	if f.lenAEAD != nil {
		return 2 + tagSize
	}
	return 2
}

func (f *framer) overhead() int {
	if f.aead != nil {
		return f.aead.Overhead()
	}
	return 0
}

// chunkNonce is the first chunk's nonce: counter 0, then bytes 2..11 of the IV.
func chunkNonce(iv [16]byte) [12]byte {
	n := [12]byte(iv[:12])
	n[0], n[1] = 0, 0
	return n
}

// nextNonce returns the nonce for the next chunk, valid until the next call, and advances
// n. The counter wraps at 65536 chunks, as in V2Ray; a peer expects exactly that.
func (f *framer) nextNonce(n *[12]byte) []byte {
	f.scratch = *n
	binary.BigEndian.PutUint16(n[:2], binary.BigEndian.Uint16(n[:2])+1)
	return f.scratch[:]
}

type framerState struct {
	count, lenCount uint16
	maskPos         int
	sealed          int
}

// save returns the state to restore if the next chunks (at most chunks of them) are
// not sent.
func (f *framer) save(chunks int) framerState {
	s := framerState{count: binary.BigEndian.Uint16(f.nonce[:]), lenCount: binary.BigEndian.Uint16(f.lenNonce[:]), sealed: f.sealed}
	if f.masked {
		f.mask.ensure(4 * chunks) // a chunk draws at most 4 bytes; keep them in one buffer
		s.maskPos = f.mask.pos
	}
	return s
}

func (f *framer) restore(s framerState) {
	binary.BigEndian.PutUint16(f.nonce[:], s.count)
	binary.BigEndian.PutUint16(f.lenNonce[:], s.lenCount)
	f.sealed = s.sealed
	if f.masked {
		f.mask.pos = s.maskPos
	}
}

// seal appends one chunk carrying p. An empty p makes the end-of-stream chunk.
func (f *framer) seal(dst, p []byte) []byte {
	pad := 0
	if f.padding {
		pad = int(f.mask.next() % maxPadding)
	}
	size := len(p) + f.overhead() + pad
	switch {
	case f.lenAEAD != nil:
		binary.BigEndian.PutUint16(f.sizeBuf[:], uint16(size-tagSize))
		dst = f.lenAEAD.Seal(dst, f.nextNonce(&f.lenNonce), f.sizeBuf[:], nil)
	case f.masked:
		dst = binary.BigEndian.AppendUint16(dst, uint16(size)^f.mask.next())
	default:
		dst = binary.BigEndian.AppendUint16(dst, uint16(size))
	}
	f.sealed++
	if f.aead != nil {
		dst = f.aead.Seal(dst, f.nextNonce(&f.nonce), p, nil)
	} else {
		dst = append(dst, p...)
	}
	if pad > 0 {
		// Padding goes out in clear, so it comes from the CSPRNG rather than anything
		// that could reveal generator state.
		dst = append(dst, zeroPadding[:pad]...)
		rand.Read(dst[len(dst)-pad:])
	}
	return dst
}

// openSize decodes a size field; it returns the chunk's length on the wire after the
// field and how much of that is padding.
func (f *framer) openSize(b []byte) (size, pad int, err error) {
	if f.padding {
		pad = int(f.mask.next() % maxPadding)
	}
	switch {
	case f.lenAEAD != nil:
		if _, err := f.lenAEAD.Open(f.sizeBuf[:0], f.nextNonce(&f.lenNonce), b, nil); err != nil {
			return 0, 0, fmt.Errorf("%w: length: %w", ErrChunk, err)
		}
		size = int(binary.BigEndian.Uint16(f.sizeBuf[:])) + tagSize
	case f.masked:
		size = int(binary.BigEndian.Uint16(b) ^ f.mask.next())
	default:
		size = int(binary.BigEndian.Uint16(b))
	}
	if size < f.overhead()+pad {
		return 0, 0, fmt.Errorf("%w: size %d below overhead and padding %d", ErrChunk, size, f.overhead()+pad)
	}
	return size, pad, nil
}

// open decrypts a chunk body (padding removed) in place.
func (f *framer) open(b []byte) ([]byte, error) {
	if f.aead == nil {
		return b, nil
	}
	p, err := f.aead.Open(b[:0], f.nextNonce(&f.nonce), b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChunk, err)
	}
	return p, nil
}

var zeroPadding [maxPadding]byte

// maskStream hands out SHAKE128(IV) two bytes at a time. It buffers the output so that a
// writer can take back the draws of a chunk it failed to send.
type maskStream struct {
	shake sha3.SHAKE
	buf   [64]byte
	pos   int
}

func (m *maskStream) reset(iv [16]byte) {
	m.shake = *sha3.NewSHAKE128() // a zero SHAKE is SHAKE256
	m.shake.Write(iv[:])
	m.pos = len(m.buf)
}

func (m *maskStream) ensure(n int) {
	if len(m.buf)-m.pos >= n {
		return
	}
	k := copy(m.buf[:], m.buf[m.pos:])
	m.shake.Read(m.buf[k:])
	m.pos = 0
}

func (m *maskStream) next() uint16 {
	m.ensure(2)
	v := binary.BigEndian.Uint16(m.buf[m.pos:])
	m.pos += 2
	return v
}

// chunkReader buffers a connection's bytes. The handshake takes the header from it with
// take; afterwards Read and WriteTo deliver the body. It keeps partial input across calls,
// so a read that times out loses nothing and can be retried. A failed authentication is
// final.
//
// The input buffer is held only while it has bytes in it: with nothing left to deliver it
// goes back to the pool, and the next one is taken once the source has input
// (proxy.ReadFresh), so an idle connection holds none.
type chunkReader struct {
	r          io.Reader
	pooled     *[]byte // buf's pool entry, or nil
	buf        []byte
	start, end int  // unread input is buf[start:end]
	full       bool // the last read filled buf: more is waiting, so keep buf (grown) and read on
	closed     bool

	f       *framer // nil until the body starts; stays nil for a raw body
	body    bool
	size    int // decoded size of the chunk being read, or -1
	pad     int
	payload []byte // decrypted, not yet delivered
	err     error  // sticky: failed authentication or end of stream
}

// The largest chunk a peer may send fits a large pooled buffer.
const _ = uint(bufpool.LargeSize - maxChunkSize)

func newChunkReader(r io.Reader) *chunkReader {
	return &chunkReader{r: r, size: -1}
}

// startBody switches from header to body decoding with framing f (nil: raw bytes).
func (r *chunkReader) startBody(f *framer) {
	r.f = f
	r.body = true
}

// putBuf returns the input buffer to its pool.
func (r *chunkReader) putBuf() {
	if r.pooled != nil {
		bufpool.Put(r.pooled)
	}
	r.pooled, r.buf = nil, nil
	r.start, r.end = 0, 0
}

// buffered reports whether a Read would return without reading the conn beneath: it
// holds undelivered bytes or a sticky error. When it reports false it has let go of its
// buffer, because its caller is about to wait for input without it.
func (r *chunkReader) buffered() bool {
	if len(r.payload) > 0 || r.start < r.end || r.err != nil {
		return true
	}
	r.payload = nil
	r.putBuf()
	return false
}

func (r *chunkReader) release() {
	r.putBuf()
	r.payload = nil
	r.closed = true
	if r.err == nil {
		r.err = errReaderClosed
	}
}

var errReaderClosed = errors.New("vmess: reader closed")

// take returns the next n input bytes, valid until the next call.
func (r *chunkReader) take(n int) ([]byte, error) {
	for r.end-r.start < n {
		if err := r.fill(n); err != nil {
			return nil, err
		}
	}
	b := r.buf[r.start : r.start+n]
	r.start += n
	return b, nil
}

// fill reads more input, making room for n bytes from start. It is called only once the
// payload is delivered, so an empty buffer can go back to the pool before the wait for
// input.
func (r *chunkReader) fill(n int) error {
	if r.closed {
		return r.err
	}
	if r.start == r.end && !r.full {
		r.payload = nil
		r.putBuf()
	}
	if r.buf == nil {
		pooled, m, err := proxy.ReadFresh(r.r)
		if pooled == nil {
			return err
		}
		r.pooled, r.buf = pooled, *pooled
		r.start, r.end, r.full = 0, m, m == len(r.buf)
		if m > 0 {
			return nil
		}
		if err != nil {
			r.putBuf()
			return err
		}
	}
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	switch {
	case n > len(r.buf) || r.full && len(r.buf) < bufpool.LargeSize:
		// A peer's chunk over the small buffer (the size field bounds n by
		// maxChunkSize), or a saturated stream (bufpool).
		nb := proxy.LargeBuffer(r.r)
		end := copy(*nb, r.buf[r.start:r.end])
		r.putBuf()
		r.pooled, r.buf, r.end = nb, *nb, end
	case r.start > 0 && (len(r.buf)-r.start < n || len(r.buf)-r.end < len(r.buf)/2):
		// Move the unread part to the front also when n would fit, so that reads stay
		// large: a read(2) costs more than copying the part of a chunk.
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	for tries := 0; tries < 100; tries++ {
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		r.full = r.end == len(r.buf)
		if m > 0 {
			return nil
		}
		if err != nil {
			if r.start == r.end {
				r.putBuf()
			}
			if err == io.EOF && r.end > r.start {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return io.ErrNoProgress
}

// next decodes chunks until one carries payload.
func (r *chunkReader) next() error {
	for len(r.payload) == 0 {
		if r.err != nil {
			return r.err
		}
		if n := r.need(); r.end-r.start < n {
			if err := r.fill(n); err != nil {
				if err == io.EOF {
					if r.size >= 0 {
						return io.ErrUnexpectedEOF
					}
					// The peer closed between chunks without an end chunk: V2Ray
					// treats that as the end too.
					r.err = io.EOF
				}
				return err
			}
			continue
		}
		r.step()
	}
	return nil
}

// gather decodes every further chunk whose bytes are all buffered, appending the
// payloads to r.payload. It does no I/O; an error stays in r.err for next to report once
// the payload before it is delivered.
func (r *chunkReader) gather() {
	for r.err == nil && r.end-r.start >= r.need() {
		r.step()
	}
}

// need is how many input bytes the next step decodes: a size field or a chunk's body.
func (r *chunkReader) need() int {
	if r.size < 0 {
		return r.f.sizeLen()
	}
	return r.size
}

// step decodes the size field or body at r.start, which must be buffered. A body is
// decrypted in place and its payload appended to r.payload: moved down behind the payload
// already there, which lies before it in the same buffer. Errors are sticky.
func (r *chunkReader) step() {
	b := r.buf[r.start : r.start+r.need()]
	r.start += len(b)
	if r.size < 0 {
		size, pad, err := r.f.openSize(b)
		switch {
		case err != nil:
			r.err = err
		case size == r.f.overhead()+pad:
			// The end chunk. Its tag and padding are not read, as in V2Ray.
			r.err = io.EOF
		default:
			r.size, r.pad = size, pad
		}
		return
	}
	p, err := r.f.open(b[:r.size-r.pad])
	r.size = -1
	if err != nil {
		r.err = err
		return
	}
	if len(r.payload) == 0 {
		r.payload = p
	} else {
		r.payload = append(r.payload, p...)
	}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.f == nil {
		return r.readRaw(p)
	}
	if err := r.next(); err != nil {
		return 0, err
	}
	// Fill p from every chunk already buffered, so that a layer reading through this
	// one gets a buffer's worth per read rather than a chunk's.
	n := 0
	for n < len(p) {
		if len(r.payload) == 0 {
			if r.err != nil || r.end-r.start < r.need() {
				break
			}
			r.step()
			continue
		}
		m := copy(p[n:], r.payload)
		r.payload = r.payload[m:]
		n += m
	}
	if len(r.payload) == 0 && r.start == r.end && !r.full {
		r.payload = nil
		r.putBuf()
	}
	return n, nil
}

func (r *chunkReader) readRaw(p []byte) (int, error) {
	if r.start < r.end {
		n := copy(p, r.buf[r.start:r.end])
		r.start += n
		return n, nil
	}
	if r.closed {
		return 0, r.err
	}
	r.putBuf() // nothing buffered: read straight into p
	return r.r.Read(p)
}

// WriteTo hands decrypted payload to w with one Write per fill of the input buffer: the
// chunks already buffered are decrypted in place and their payloads joined, so a peer's
// small chunks (V2Ray 4.34's are about 2 KiB) cost one write(2) per read(2), not one each.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if r.f == nil {
		if r.start < r.end {
			n, err := w.Write(r.buf[r.start:r.end])
			r.start += n
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
		if r.closed {
			return total, r.err
		}
		r.putBuf()
		n, err := proxy.Copy(w, r.r)
		return total + n, err
	}
	for {
		if err := r.next(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		r.gather()
		n, err := w.Write(r.payload)
		r.payload = r.payload[n:]
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// chunkWriter frames writes into chunks. prefix (the server's response header) goes out
// in front of the first bytes written.
//
// The chunks of one Write go out in one write to the connection beneath (up to
// maxBatchPayload), so a relay read costs one write(2) at every layer of a chain
// rather than one per chunk, and an inner layer's 16 KiB chunk plus its framing does not
// cost the outer layer a second, tiny write.
//
// A write that a deadline interrupts loses nothing: if no byte went out, the framing
// state is rolled back and the write reports 0 bytes; if part of it went out, the payload
// of every chunk in it counts as written and the rest goes out first on the next write or
// CloseWrite.
type chunkWriter struct {
	w       io.Writer
	f       *framer // nil: raw body
	prefix  []byte
	pending []byte // the unsent tail of a write
	spare   []byte // pending's storage, kept for reuse
	chunks  int    // chunks committed to the stream
	endSent bool   // the end chunk is committed, if perhaps still pending
	ended   bool
}

const (
	// maxChunkOverhead is a chunk's framing at most: a sealed length, a tag and padding.
	maxChunkOverhead = 2 + tagSize + tagSize + maxPadding
	// maxBatchPayload is how much payload one write to the connection beneath carries:
	// a saturated relay's read (bufpool.LargeSize) with room to spare for the framing of
	// the layers inside.
	maxBatchPayload = bufpool.LargeSize + 4<<10
	maxBatchChunks  = (maxBatchPayload + maxChunkPayload - 1) / maxChunkPayload
	// writeBufSize holds a batch with its framing and a response header in front.
	writeBufSize = maxBatchPayload + maxBatchChunks*maxChunkOverhead + 512
)

// writePool holds the buffers a batch is sealed into, for the time of one write.
var writePool = sync.Pool{New: func() any { b := make([]byte, writeBufSize); return &b }}

var errWriteAfterEnd = errors.New("vmess: write after CloseWrite")

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.ended {
		return 0, errWriteAfterEnd
	}
	if w.f == nil && w.prefix == nil && w.pending == nil {
		return w.w.Write(p)
	}
	var written int
	for len(p) > 0 {
		n, err := w.writeChunks(p)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (w *chunkWriter) flushPending() error {
	for len(w.pending) > 0 {
		n, err := w.w.Write(w.pending)
		w.pending = w.pending[n:]
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
	}
	w.pending = nil
	return nil
}

// writeChunks seals up to maxBatchPayload bytes of p into chunks, sends them in one
// write and reports how much of p the stream has taken. An empty p makes the end chunk.
func (w *chunkWriter) writeChunks(p []byte) (int, error) {
	if err := w.flushPending(); err != nil {
		return 0, err
	}
	buf := writePool.Get().(*[]byte)
	defer writePool.Put(buf)
	b := append((*buf)[:0], w.prefix...)
	var saved framerState
	if w.f != nil {
		saved = w.f.save(maxBatchChunks)
	}
	taken, chunks := 0, 0
	for {
		c := p[taken:min(len(p), taken+maxChunkPayload, maxBatchPayload)]
		if w.f != nil {
			// Data chunks leave the last nonce to the end chunk.
			if limit := maxSealedChunks - 1; w.f.aead != nil && (w.f.sealed >= maxSealedChunks || len(c) > 0 && w.f.sealed >= limit) {
				if chunks == 0 {
					return 0, ErrNonceExhausted
				}
				break // send what is sealed; the next write reports the error
			}
			b = w.f.seal(b, c)
		} else {
			b = append(b, c...)
		}
		taken += len(c)
		chunks++
		if taken == len(p) || taken == maxBatchPayload {
			break
		}
	}
	n, err := w.w.Write(b)
	if n == 0 && err != nil {
		if w.f != nil {
			w.f.restore(saved)
		}
		return 0, err
	}
	w.prefix = nil
	w.chunks += chunks
	if n < len(b) {
		w.spare = append(w.spare[:0], b[n:]...)
		w.pending = w.spare
		if err == nil {
			err = io.ErrShortWrite
		}
	}
	return taken, err
}

// end sends the end-of-stream chunk (and anything pending); later writes fail.
func (w *chunkWriter) end() error {
	if w.ended {
		return nil
	}
	if !w.endSent && (w.f != nil || w.prefix != nil) {
		before := w.chunks
		_, err := w.writeChunks(nil)
		w.endSent = w.chunks > before
		if err != nil {
			return err
		}
	}
	if err := w.flushPending(); err != nil {
		return err
	}
	w.ended = true
	return nil
}
