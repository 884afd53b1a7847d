package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/proxychain/proxychain/proxy"
)

// replayConn hands out the bytes a head parser buffered past the head before reading the
// connection again, so pipelined payload is not lost.
type replayConn struct {
	net.Conn
	buffered []byte
}

// withBuffered returns conn, preceded by whatever br holds beyond what it has handed out.
func withBuffered(conn net.Conn, br *bufio.Reader) net.Conn {
	n := br.Buffered()
	if n == 0 {
		return conn
	}
	b, _ := br.Peek(n)
	return &replayConn{Conn: conn, buffered: bytes.Clone(b)}
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buffered) > 0 {
		n := copy(p, c.buffered)
		c.buffered = c.buffered[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// WaitReadable returns at once while buffered bytes wait to be replayed, and otherwise
// waits on the connection beneath, so a relay reading through us holds no buffer while
// the peer is quiet.
func (c *replayConn) WaitReadable() error {
	if len(c.buffered) > 0 {
		return nil
	}
	return proxy.WaitReadable(c.Conn)
}

// CloseWrite passes the half-close to the connection beneath.
func (c *replayConn) CloseWrite() error { return proxy.CloseWrite(c.Conn) }

// NetConn returns the connection beneath.
func (c *replayConn) NetConn() net.Conn { return c.Conn }

// forwardConn is the client's side of one forwarded request as the relay reads it: the
// rewritten head, then the body in the framing the head announces, then nothing. Bytes
// the client sends after its request are read and dropped (see the package comment), so
// they never reach the origin; the client's EOF still passes through.
type forwardConn struct {
	net.Conn
	pending []byte        // rewritten head, then each encoded chunk
	body    io.Reader     // decoded body; nil once finished
	chunked bool          // re-encode the body as chunks
	rest    *bufio.Reader // the client's stream; the body is read through it too
	scratch []byte
}

// maxChunk bounds one re-encoded chunk of a chunked body.
const maxChunk = 16 << 10

func (c *forwardConn) Read(p []byte) (int, error) {
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.body == nil {
			// Past the request: drop what follows, pass on the end.
			if _, err := c.rest.Read(p); err != nil {
				return 0, err
			}
			continue
		}
		if !c.chunked {
			n, err := c.body.Read(p)
			if err == io.EOF {
				c.body, err = nil, nil
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if c.scratch == nil {
			c.scratch = make([]byte, maxChunk)
		}
		n, err := c.body.Read(c.scratch)
		// Bytes that came with an error go out first; a timeout is met again by a
		// later Read if it still holds, and a framing error is kept by the decoder.
		if n == 0 && err != nil && err != io.EOF {
			return 0, err
		}
		c.pending = c.pending[:0]
		if n > 0 {
			c.pending = strconv.AppendInt(c.pending, int64(n), 16)
			c.pending = append(c.pending, "\r\n"...)
			c.pending = append(c.pending, c.scratch[:n]...)
			c.pending = append(c.pending, "\r\n"...)
		}
		if err == io.EOF {
			// Trailers are not forwarded: the last chunk ends the body at once.
			c.pending = append(c.pending, "0\r\n\r\n"...)
			c.body = nil
		}
	}
}

// WaitReadable returns at once while part of the request waits in our buffers, and
// otherwise waits on the connection beneath, so a relay reading through us holds no
// buffer while the client is quiet.
func (c *forwardConn) WaitReadable() error {
	if len(c.pending) > 0 || c.rest.Buffered() > 0 {
		return nil
	}
	return proxy.WaitReadable(c.Conn)
}

// CloseWrite passes the half-close to the connection beneath.
func (c *forwardConn) CloseWrite() error { return proxy.CloseWrite(c.Conn) }

// NetConn returns the connection beneath.
func (c *forwardConn) NetConn() net.Conn { return c.Conn }

// errChunked ends a chunked body whose framing is broken.
var errChunked = errors.New("httpproxy: malformed chunked body")

// chunkedReader decodes a chunked request body (RFC 9112 section 7.1) from br. Unlike
// net/http's decoder, which keeps any error and may have consumed half a line, it
// survives a read deadline at any byte: a chunk-size line, or the line ending a chunk's
// data, is consumed only once it is whole in br's buffer, and only framing errors are
// kept. It ends at the last chunk; the trailer after it is left in br, and the forwarding
// drops it with the rest of the client's stream.
type chunkedReader struct {
	br       *bufio.Reader
	left     int64 // data bytes left in the current chunk
	dataDone bool  // a chunk's data is read; the line ending it comes next
	done     bool
	err      error // framing errors only
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for {
		switch {
		case c.err != nil:
			return 0, c.err
		case c.done:
			return 0, io.EOF
		case c.left > 0:
			n, err := c.br.Read(p[:min(int64(len(p)), c.left)])
			c.left -= int64(n)
			c.dataDone = c.left == 0
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		line, err := c.line()
		if err != nil {
			return 0, err
		}
		if c.dataDone {
			if len(line) != 0 {
				c.err = fmt.Errorf("%w: %d bytes after a chunk's data", errChunked, len(line))
			}
			c.dataDone = false
			continue
		}
		size, _, _ := bytes.Cut(line, []byte(";")) // extensions are not forwarded
		n, perr := strconv.ParseUint(string(bytes.TrimRight(size, " \t")), 16, 63)
		switch {
		case perr != nil:
			c.err = fmt.Errorf("%w: chunk size %q", errChunked, size)
		case n == 0:
			c.done = true
		default:
			c.left = int64(n)
		}
	}
}

// line returns the next line without its line ending, and consumes it, once it is whole
// in br's buffer; until then it consumes nothing, so a timeout loses no part of it.
func (c *chunkedReader) line() ([]byte, error) {
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := bytes.TrimRight(buf[:i], "\r")
			c.br.Discard(i + 1) // the line stays valid: Discard moves no bytes
			return line, nil
		}
		if len(buf) == c.br.Size() {
			c.err = fmt.Errorf("%w: line over %d bytes", errChunked, len(buf))
			return nil, c.err
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}
