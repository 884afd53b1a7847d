package httpproxy

import (
	"bufio"
	"bytes"
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
	pending []byte    // rewritten head, then each encoded chunk
	body    io.Reader // decoded body; nil once finished
	chunked bool      // re-encode the body as chunks
	rest    io.Reader // the client's stream after the body
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
		if err != nil && err != io.EOF {
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

// CloseWrite passes the half-close to the connection beneath.
func (c *forwardConn) CloseWrite() error { return proxy.CloseWrite(c.Conn) }

// NetConn returns the connection beneath.
func (c *forwardConn) NetConn() net.Conn { return c.Conn }
