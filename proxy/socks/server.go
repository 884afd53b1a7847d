package socks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/socksaddr"
)

const (
	version4 = 4
	version5 = 5

	methodNone         = 0x00
	methodUserPass     = 0x02
	methodNoAcceptable = 0xFF

	userPassVersion = 1
	userPassOK      = 0
	userPassFailed  = 1

	cmdConnect = 1

	reply4Granted  = 90
	reply4Rejected = 91
)

// MaxHandshakeLen is the most bytes a SOCKS handshake can take before the server decides,
// so no input makes the server read or hold more. (SOCKS5: greeting, RFC 1929
// credentials, request; SOCKS4a: fixed head, user id and domain with terminators.)
const MaxHandshakeLen = (2 + 255) + (3 + 255 + 255) + (3 + socksaddr.MaxLen)

// Errors a handshake ends with. The server closes the connection after each.
var (
	ErrVersion            = errors.New("socks: unsupported version")
	ErrNoAcceptableMethod = errors.New("socks: no acceptable authentication method")
	ErrAuthVersion        = errors.New("socks: unsupported username/password version")
	ErrAuthFailed         = errors.New("socks: username/password rejected")
	ErrCommand            = errors.New("socks: unsupported command")
	ErrSOCKS4Auth         = errors.New("socks: SOCKS4 cannot authenticate and accounts are configured")
	ErrFieldTooLong       = errors.New("socks: SOCKS4 field longer than 255 bytes")
)

// ServerOptions configures a SOCKS inbound.
type ServerOptions struct {
	// Accounts maps user names to passwords. Empty means no authentication; non-empty
	// requires RFC 1929 username/password and refuses SOCKS4.
	Accounts map[string]string
	Logger   *slog.Logger
}

// Server is the SOCKS inbound.
type Server struct {
	accounts map[string][sha256.Size]byte
	log      *slog.Logger
}

var _ proxy.Inbound = (*Server)(nil)

// NewServer returns a SOCKS inbound.
func NewServer(opts ServerOptions) *Server {
	s := &Server{log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(opts.Accounts) > 0 {
		// Passwords are kept hashed so every comparison takes the same time whatever the
		// lengths.
		s.accounts = make(map[string][sha256.Size]byte, len(opts.Accounts))
		for user, pass := range opts.Accounts {
			s.accounts[user] = sha256.Sum256([]byte(pass))
		}
	}
	return s
}

// Handshake reads a SOCKS5 or SOCKS4(a) CONNECT request. The returned Request's Answer
// sends the reply once the upstream dial has finished.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	var ver [1]byte
	if _, err := io.ReadFull(conn, ver[:]); err != nil {
		return nil, fmt.Errorf("socks: read version: %w", err)
	}
	switch ver[0] {
	case version5:
		return s.handshake5(conn)
	case version4:
		return s.handshake4(conn)
	}
	return nil, fmt.Errorf("%w %d", ErrVersion, ver[0])
}

func (s *Server) handshake5(conn net.Conn) (*proxy.Request, error) {
	var buf [255]byte
	if _, err := io.ReadFull(conn, buf[:1]); err != nil {
		return nil, fmt.Errorf("socks: read methods: %w", unexpected(err))
	}
	methods := buf[:buf[0]]
	if _, err := io.ReadFull(conn, methods); err != nil {
		return nil, fmt.Errorf("socks: read methods: %w", unexpected(err))
	}
	want := byte(methodNone)
	if s.accounts != nil {
		want = methodUserPass
	}
	if bytes.IndexByte(methods, want) < 0 {
		conn.Write([]byte{version5, methodNoAcceptable})
		return nil, ErrNoAcceptableMethod
	}
	if _, err := conn.Write([]byte{version5, want}); err != nil {
		return nil, fmt.Errorf("socks: write method: %w", err)
	}
	if want == methodUserPass {
		if err := s.authenticate(conn); err != nil {
			return nil, err
		}
	}

	if _, err := io.ReadFull(conn, buf[:3]); err != nil {
		return nil, fmt.Errorf("socks: read request: %w", unexpected(err))
	}
	if buf[0] != version5 {
		return nil, fmt.Errorf("%w %d in request", ErrVersion, buf[0])
	}
	// The whole request is read before any refusal, so the reply is not lost to a reset
	// from closing over unread bytes.
	dest, err := socksaddr.Read(conn)
	if err != nil {
		switch {
		case errors.Is(err, socksaddr.ErrAddressType):
			reply5(conn, ReplyAddressNotSupported, "")
		case errors.Is(err, socksaddr.ErrDomain):
			reply5(conn, ReplyGeneralFailure, "")
		}
		return nil, fmt.Errorf("socks: read destination: %w", unexpected(err))
	}
	if cmd := buf[1]; cmd != cmdConnect {
		reply5(conn, ReplyCommandNotSupported, "")
		return nil, fmt.Errorf("%w %d", ErrCommand, cmd)
	}
	answer := func(dialErr error) error {
		bound := ""
		if dialErr == nil {
			bound = boundAddress(conn)
		}
		if err := reply5(conn, replyFor(dialErr), bound); err != nil {
			return fmt.Errorf("socks: write reply: %w", err)
		}
		return nil
	}
	return &proxy.Request{Destination: dest, Conn: conn, Answer: answer}, nil
}

// authenticate runs the RFC 1929 subnegotiation.
func (s *Server) authenticate(conn net.Conn) error {
	var user, pass [255]byte
	var head [2]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return fmt.Errorf("socks: read credentials: %w", unexpected(err))
	}
	if head[0] != userPassVersion {
		conn.Write([]byte{userPassVersion, userPassFailed})
		return fmt.Errorf("%w %d", ErrAuthVersion, head[0])
	}
	u := user[:head[1]]
	if _, err := io.ReadFull(conn, u); err != nil {
		return fmt.Errorf("socks: read credentials: %w", unexpected(err))
	}
	if _, err := io.ReadFull(conn, head[:1]); err != nil {
		return fmt.Errorf("socks: read credentials: %w", unexpected(err))
	}
	p := pass[:head[0]]
	if _, err := io.ReadFull(conn, p); err != nil {
		return fmt.Errorf("socks: read credentials: %w", unexpected(err))
	}
	if !s.valid(u, p) {
		s.log.Info("socks: authentication failed", "user", string(u), "remote", conn.RemoteAddr())
		conn.Write([]byte{userPassVersion, userPassFailed})
		return fmt.Errorf("%w for user %q", ErrAuthFailed, u)
	}
	if _, err := conn.Write([]byte{userPassVersion, userPassOK}); err != nil {
		return fmt.Errorf("socks: write auth status: %w", err)
	}
	return nil
}

func (s *Server) valid(user, pass []byte) bool {
	want, known := s.accounts[string(user)]
	got := sha256.Sum256(pass)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1 && known
}

// reply5 writes a SOCKS5 reply; bound "" means the all-zero IPv4 address.
func reply5(conn net.Conn, rep Reply, bound string) error {
	b := make([]byte, 0, 3+socksaddr.MaxLen)
	b = append(b, version5, byte(rep), 0)
	var err error
	if bound != "" {
		b, err = socksaddr.Append(b, bound)
	}
	if bound == "" || err != nil {
		b = append(b[:3], socksaddr.TypeIPv4, 0, 0, 0, 0, 0, 0)
	}
	_, err = conn.Write(b)
	return err
}

// boundAddress is the address the client reached us on. The upstream's own local
// address would sit behind the chain and mean nothing to the client.
func boundAddress(conn net.Conn) string {
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		return a.AddrPort().String()
	}
	return ""
}

func (s *Server) handshake4(conn net.Conn) (*proxy.Request, error) {
	// [cmd][port: 2][IPv4: 4]
	var head [7]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return nil, fmt.Errorf("socks: read SOCKS4 request: %w", unexpected(err))
	}
	if s.accounts != nil {
		reply4(conn, reply4Rejected)
		return nil, ErrSOCKS4Auth
	}
	if cmd := head[0]; cmd != cmdConnect {
		reply4(conn, reply4Rejected)
		return nil, fmt.Errorf("%w %d (SOCKS4)", ErrCommand, cmd)
	}
	port := binary.BigEndian.Uint16(head[1:3])
	ip := netip.AddrFrom4([4]byte(head[3:7]))
	if err := skipCString(conn); err != nil { // the user id, which we do not use
		return nil, err
	}
	host := ip.String()
	// SOCKS4a: 0.0.0.x with x != 0 means a domain name follows the user id.
	if head[3] == 0 && head[4] == 0 && head[5] == 0 && head[6] != 0 {
		domain, err := readCString(conn)
		if err != nil {
			return nil, err
		}
		host = domain
	}
	if err := socksaddr.CheckDomain(host); err != nil {
		reply4(conn, reply4Rejected)
		return nil, fmt.Errorf("socks: SOCKS4a domain %q: %w", host, err)
	}
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
	answer := func(dialErr error) error {
		code := byte(reply4Granted)
		if dialErr != nil {
			code = reply4Rejected
		}
		if err := reply4(conn, code); err != nil {
			return fmt.Errorf("socks: write SOCKS4 reply: %w", err)
		}
		return nil
	}
	return &proxy.Request{Destination: dest, Conn: conn, Answer: answer}, nil
}

// reply4 writes a SOCKS4 reply. Its port and address fields are ignored by clients of a
// CONNECT, so they are left zero.
func reply4(conn net.Conn, code byte) error {
	_, err := conn.Write([]byte{0, code, 0, 0, 0, 0, 0, 0})
	return err
}

// readCString reads a NUL-terminated field of at most 255 bytes one byte at a time, so
// nothing past the terminator leaves the connection.
func readCString(r io.Reader) (string, error) {
	var buf [256]byte
	for i := range buf {
		if _, err := io.ReadFull(r, buf[i:i+1]); err != nil {
			return "", fmt.Errorf("socks: read SOCKS4 field: %w", unexpected(err))
		}
		if buf[i] == 0 {
			return string(buf[:i]), nil
		}
	}
	return "", ErrFieldTooLong
}

func skipCString(r io.Reader) error {
	_, err := readCString(r)
	return err
}

// unexpected turns a clean EOF in the middle of a handshake into ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
