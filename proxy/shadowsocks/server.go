package shadowsocks

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/proxy/socksaddr"
)

// ServerOptions tunes a Server.
type ServerOptions struct {
	Logger *slog.Logger
	// Replay is where the server records the salts (stream methods: IVs) it sees;
	// servers given the same filter refuse a request any of them accepted. It must have
	// been made for the server's method and key. Nil gives the server its own, of
	// DefaultReplayCapacity.
	Replay *ReplayFilter
}

// Server is a Shadowsocks inbound.
//
// A handshake that fails in a way a prober could learn from (a failed authentication, a
// replayed salt, a stale timestamp, a malformed header) gets no reply and causes no dial:
// the server reads and discards until the peer closes or the handshake deadline set by
// proxy.Server fires, and only then closes. The close therefore reveals neither how many
// bytes the server read nor why it refused. SIP022 section 3.1.3 offers draining as its
// second strategy (there after shutting down the write half); we delay even the FIN,
// which leaks strictly less.
type Server struct {
	cipher *Cipher
	log    *slog.Logger
	replay *ReplayFilter
	now    func() time.Time
}

var _ proxy.Inbound = (*Server)(nil)

// NewServer returns an inbound that decrypts with c. It panics if opts.Replay was made
// for another method or key.
func NewServer(c *Cipher, opts ServerOptions) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	replay := opts.Replay
	if replay == nil {
		replay = NewReplayFilter(c, 0)
	} else if replay.key != c.ReplayKey() {
		panic("shadowsocks: replay filter made for another method or key")
	}
	return &Server{
		cipher: c,
		log:    log,
		replay: replay,
		now:    time.Now,
	}
}

// Handshake reads the request header from raw and returns the target and the decrypted
// stream. The caller must have set a deadline on raw: a refused handshake drains until it.
func (s *Server) Handshake(ctx context.Context, raw net.Conn) (*proxy.Request, error) {
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var (
		dest string
		c    *conn
		err  error
	)
	switch s.cipher.family {
	case familyNone:
		dest, c, err = s.handshakeNone(raw)
	case familyStream:
		dest, c, err = s.handshakeStream(raw)
	case familyAEAD:
		dest, c, err = s.handshakeAEAD(raw)
	default:
		dest, c, err = s.handshake2022(raw)
	}
	if err != nil {
		return nil, s.reject(raw, err)
	}
	return &proxy.Request{Destination: dest, Conn: c}, nil
}

// reject drains raw so a prober learns nothing from when we close (see Server).
func (s *Server) reject(raw net.Conn, err error) error {
	if err == ErrReplay {
		s.log.Warn("shadowsocks: replayed handshake refused", "remote", raw.RemoteAddr(), "method", s.cipher.name)
	}
	io.Copy(io.Discard, raw)
	return err
}

func (s *Server) handshakeNone(raw net.Conn) (string, *conn, error) {
	dest, err := socksaddr.Read(raw)
	if err != nil {
		return "", nil, err
	}
	return dest, newConn(raw, plainReader{raw}, &plainEncoder{}), nil
}

func (s *Server) handshakeStream(raw net.Conn) (string, *conn, error) {
	ciph := s.cipher
	iv := make([]byte, ciph.saltLen)
	if _, err := io.ReadFull(raw, iv); err != nil {
		return "", nil, err
	}
	// An IV cannot be authenticated, so it is recorded at once.
	if !s.replay.salts.add(iv, time.Time{}) {
		return "", nil, ErrReplay
	}
	stream, err := ciph.stream(iv, true)
	if err != nil {
		return "", nil, err
	}
	dec := &streamReader{src: raw, stream: stream}
	dest, err := socksaddr.Read(dec)
	if err != nil {
		return "", nil, err
	}
	enc, err := s.streamEncoder()
	if err != nil {
		return "", nil, err
	}
	return dest, newConn(raw, dec, enc), nil
}

// streamEncoder draws the response IV and records it, so that the response cannot be
// reflected back at us as a request.
func (s *Server) streamEncoder() (*streamEncoder, error) {
	ciph := s.cipher
	iv := make([]byte, ciph.saltLen)
	rand.Read(iv)
	s.replay.salts.add(iv, time.Time{})
	stream, err := ciph.stream(iv, false)
	if err != nil {
		return nil, err
	}
	return &streamEncoder{stream: stream, iv: iv}, nil
}

func (s *Server) handshakeAEAD(raw net.Conn) (dest string, c *conn, err error) {
	ciph := s.cipher
	dec := newChunkReader(raw, maxPayload)
	defer func() {
		if err != nil {
			dec.release()
		}
	}()
	if err := dec.readSalt(ciph, nil); err != nil {
		return "", nil, err
	}
	// The first chunk authenticates the salt; only then is it worth remembering, so
	// that garbage cannot push genuine salts out of the filter.
	if err := dec.readChunk(); err != nil {
		return "", nil, err
	}
	if !s.replay.salts.add(dec.salt, time.Time{}) {
		return "", nil, ErrReplay
	}
	dec.salt = nil
	dest, err = socksaddr.Read(dec)
	if err != nil {
		return "", nil, err
	}
	sl, salt, err := newSealer(ciph)
	if err != nil {
		return "", nil, err
	}
	s.replay.salts.add(salt, time.Time{}) // no reflecting our response back at us
	return dest, newConn(raw, dec, &aeadEncoder{sealer: sl, salt: salt}), nil
}

func (s *Server) handshake2022(raw net.Conn) (dest string, c *conn, err error) {
	ciph := s.cipher
	dec := newChunkReader(raw, maxPayload2022)
	defer func() {
		if err != nil {
			dec.release()
		}
	}()
	// SIP022 3.1.3: the salt and fixed header are processed from exactly one read, so a
	// prober trickling bytes meets the same behaviour whatever it sends. The wait takes
	// nothing, so a silent peer does not hold a buffer.
	if err := proxy.WaitReadable(raw); err != nil {
		return "", nil, err
	}
	dec.buf = bufpool.Get()
	n, err := raw.Read(*dec.buf)
	dec.w = n
	dec.full = n == len(*dec.buf)
	if need := ciph.saltLen + fixedHeaderLen + tagLen; n < need {
		if err == nil {
			err = fmt.Errorf("%w: first read has %d bytes, want %d", ErrHeader, n, need)
		}
		return "", nil, err
	}
	if err := dec.readSalt(ciph, nil); err != nil {
		return "", nil, err
	}
	h, err := dec.open(fixedHeaderLen, nil)
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	if h[0] != typeRequest {
		return "", nil, fmt.Errorf("%w: type %d, want %d", ErrHeader, h[0], typeRequest)
	}
	if err := checkTimestamp(binary.BigEndian.Uint64(h[timestampOffset:]), now); err != nil {
		return "", nil, err
	}
	varLen := int(binary.BigEndian.Uint16(h[9:]))
	if !s.replay.salts.add(dec.salt, now) {
		return "", nil, ErrReplay
	}
	vh, err := dec.open(varLen, nil)
	if err != nil {
		return "", nil, err
	}
	dest, n, err = socksaddr.Parse(vh)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	vh = vh[n:]
	if len(vh) < 2 {
		return "", nil, fmt.Errorf("%w: no padding length", ErrHeader)
	}
	padding := int(binary.BigEndian.Uint16(vh))
	vh = vh[2:]
	switch {
	case padding > maxPadding:
		return "", nil, fmt.Errorf("%w: padding %d over %d", ErrHeader, padding, maxPadding)
	case padding > len(vh):
		return "", nil, fmt.Errorf("%w: padding runs past the header", ErrHeader)
	case padding == 0 && len(vh) == 0:
		return "", nil, fmt.Errorf("%w: neither payload nor padding", ErrHeader)
	}
	dec.plain = vh[padding:]

	sl, salt, err := newSealer(ciph)
	if err != nil {
		return "", nil, err
	}
	enc := &response2022Encoder{sealer: sl, salt: salt, requestSalt: dec.salt, now: s.now}
	dec.salt = nil
	return dest, newConn(raw, dec, enc), nil
}
