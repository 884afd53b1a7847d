package shadowsocks

import (
	"bytes"
	"crypto/cipher"
	"fmt"
	"io"

	"github.com/proxychain/proxychain/proxy"
)

// streamEncoder writes a stream-cipher stream: the IV, then every byte XORed with the
// keystream. A client's first bytes are the target address.
type streamEncoder struct {
	stream  cipher.Stream
	iv      []byte
	header  []byte // the client's target address; nil on the server side
	started bool
}

func (e *streamEncoder) headerPending() bool { return !e.started && e.header != nil }

func (e *streamEncoder) encode(dst, p []byte) ([]byte, int) {
	if !e.started {
		e.started = true
		dst = append(dst, e.iv...)
		e.iv = nil
	}
	start := len(dst)
	dst = append(dst, e.header...)
	e.header = nil
	n := min(len(p), cap(dst)-len(dst))
	dst = append(dst, p[:n]...)
	e.stream.XORKeyStream(dst[start:], dst[start:])
	return dst, n
}

// streamReader decrypts a stream-cipher stream. Bytes are decrypted where they land, in
// the caller's buffer, so Read needs no buffer of its own.
type streamReader struct {
	src    io.Reader
	stream cipher.Stream
	// The client side collects the server's IV in iv before the first byte, then keys
	// stream from it with ciph. The server side is given its stream.
	iv     []byte
	ivRead int
	ciph   *Cipher
	err    error
	// requestIV is the client's own: a response IV equal to it is the request reflected,
	// which would decrypt to the request's plaintext.
	requestIV []byte
}

// start reads the peer's IV. Like chunkReader.fill it resumes after a timeout.
func (s *streamReader) start() error {
	if s.err != nil {
		return s.err
	}
	for s.ivRead < len(s.iv) {
		n, err := s.src.Read(s.iv[s.ivRead:])
		s.ivRead += n
		if err != nil && s.ivRead < len(s.iv) {
			if err == io.EOF && s.ivRead > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if bytes.Equal(s.iv, s.requestIV) {
		s.err = fmt.Errorf("%w: the response IV is our request's, reflected", ErrReplay)
		return s.err
	}
	stream, err := s.ciph.stream(s.iv, true)
	if err != nil {
		s.err = err
		return err
	}
	s.stream, s.iv = stream, nil
	return nil
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.stream == nil {
		if err := s.start(); err != nil {
			return 0, err
		}
	}
	n, err := s.src.Read(p)
	s.stream.XORKeyStream(p[:n], p[:n])
	return n, err
}

// WriteTo copies through a pooled buffer taken only while input is waiting.
func (s *streamReader) WriteTo(w io.Writer) (int64, error) {
	return proxy.Copy(w, waitingStream{s})
}

func (s *streamReader) buffered() bool { return s.err != nil }

func (s *streamReader) release() {}

// waitingStream is a streamReader without its WriteTo, for proxy.Copy.
type waitingStream struct{ s *streamReader }

func (w waitingStream) Read(p []byte) (int, error) { return w.s.Read(p) }

func (w waitingStream) WaitReadable() error {
	if w.s.buffered() {
		return nil
	}
	return proxy.WaitReadable(w.s.src)
}

// plainEncoder is the "none" method: the client's address, then the payload as is.
type plainEncoder struct {
	header []byte
}

func (e *plainEncoder) headerPending() bool { return e.header != nil }

func (e *plainEncoder) encode(dst, p []byte) ([]byte, int) {
	dst = append(dst, e.header...)
	e.header = nil
	n := min(len(p), cap(dst)-len(dst))
	return append(dst, p[:n]...), n
}

// plainReader is the "none" method's decoder: the bytes as they come.
type plainReader struct {
	src io.Reader
}

func (r plainReader) Read(p []byte) (int, error) { return r.src.Read(p) }

func (r plainReader) WriteTo(w io.Writer) (int64, error) { return proxy.Copy(w, r.src) }

func (plainReader) buffered() bool { return false }

func (plainReader) release() {}
