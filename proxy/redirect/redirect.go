// Package redirect is the inbound for connections that iptables REDIRECT (or ip6tables)
// steered to a local listener: the sidecar's side of transparent capture.
//
// The kernel rewrote each captured connection's destination to the listener; conntrack
// remembers the original one, which Handshake reads with SO_ORIGINAL_DST (IPv4) or
// IP6T_SO_ORIGINAL_DST (IPv6). With sniffing on, Handshake also peeks at the client's
// first bytes and, when they are a TLS ClientHello with server_name or an HTTP/1.x request
// with a Host header, asks for the domain instead of the IP, so that the exit hop resolves
// the name the application meant.
package redirect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/sniff"
)

// Sniffing bounds: the longest prefix examined, and how long a client that has sent
// nothing is waited for. Protocols where the server speaks first (SSH, SMTP) send
// nothing, so the wait must be short; the destination is then the original IP.
const (
	MaxSniffBytes       = 16 << 10
	DefaultSniffTimeout = 300 * time.Millisecond
)

// ServerOptions configures the redirect inbound.
type ServerOptions struct {
	// Sniff lists the protocols whose host name replaces the original IP: "http", "tls"
	// (V2Ray's sniffing.destOverride). Other entries are ignored with a warning.
	Sniff        []string
	Logger       *slog.Logger
	SniffTimeout time.Duration // DefaultSniffTimeout if zero
}

// Server is the redirect inbound. It implements proxy.Inbound.
type Server struct {
	sniffers     []func([]byte) (string, bool, bool)
	sniffTimeout time.Duration
	log          *slog.Logger
	// originalDst is a field so tests can run Handshake on connections nobody redirected.
	originalDst func(*net.TCPConn) (netip.AddrPort, error)
}

var _ proxy.Inbound = (*Server)(nil)

// Errors returned by Handshake.
var (
	ErrNotTCP = errors.New("redirect: not a TCP connection")
	// ErrNotRedirected means the connection came to the listener directly; relaying it
	// would dial the listener again, a loop.
	ErrNotRedirected = errors.New("redirect: connection was not redirected")
)

// NewServer returns a redirect inbound.
func NewServer(opts ServerOptions) *Server {
	s := &Server{
		sniffTimeout: opts.SniffTimeout,
		log:          opts.Logger,
		originalDst:  originalDst,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.sniffTimeout <= 0 {
		s.sniffTimeout = DefaultSniffTimeout
	}
	seen := map[string]bool{}
	for _, p := range opts.Sniff {
		if seen[p] {
			continue
		}
		seen[p] = true
		switch p {
		case "tls":
			s.sniffers = append(s.sniffers, sniff.TLS)
		case "http":
			s.sniffers = append(s.sniffers, sniff.HTTP)
		default:
			s.log.Warn("redirect: sniffing protocol not implemented, ignored", "protocol", p)
		}
	}
	return s
}

// Handshake reads the connection's original destination and, if sniffing is on, the
// host its first bytes name. The returned Request.Conn replays whatever was peeked.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	tc, ok := proxy.TCPOf(conn)
	if !ok {
		return nil, ErrNotTCP
	}
	orig, err := s.originalDst(tc)
	if err != nil {
		return nil, err
	}
	if local, ok := tc.LocalAddr().(*net.TCPAddr); ok && unmap(local.AddrPort()) == unmap(orig) {
		return nil, fmt.Errorf("%w: original destination %s is the listener", ErrNotRedirected, orig)
	}
	req := &proxy.Request{Destination: orig.String(), Conn: conn}
	if len(s.sniffers) == 0 {
		return req, nil
	}
	peeked, host, err := s.peek(ctx, tc)
	if err != nil {
		return nil, err
	}
	if len(peeked) > 0 {
		req.Conn = &replayConn{Conn: conn, pending: peeked}
	}
	if host != "" {
		req.Destination = net.JoinHostPort(host, strconv.Itoa(int(orig.Port())))
	}
	s.log.Debug("redirected", "remote", tc.RemoteAddr(), "original", orig, "destination", req.Destination)
	return req, nil
}

// peek reads the client's first bytes until a sniffer decides, MaxSniffBytes arrive, or
// the sniff timeout passes. A timeout or an EOF is not an error: whatever arrived is
// replayed and the original IP is used.
func (s *Server) peek(ctx context.Context, conn *net.TCPConn) (peeked []byte, host string, err error) {
	deadline := time.Now().Add(s.sniffTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, "", fmt.Errorf("redirect: %w", err)
	}
	// The server loop set a handshake deadline before calling us and clears it when we
	// return, so clearing ours here leaves nothing behind.
	defer conn.SetReadDeadline(time.Time{})

	buf := make([]byte, 0, 2048)
	for len(buf) < MaxSniffBytes {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), MaxSniffBytes-len(buf)))...)[:len(buf)]
		}
		n, rerr := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			if host, decided := s.sniff(buf); decided {
				return buf, host, nil
			}
		}
		if rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				return buf, "", nil
			}
			if errors.Is(rerr, io.EOF) { // the client half-closed; relay what it sent
				return buf, "", nil
			}
			return nil, "", fmt.Errorf("redirect: reading first bytes: %w", rerr)
		}
	}
	return buf, "", nil
}

// sniff runs the enabled sniffers on b. decided is true once no sniffer wants more.
func (s *Server) sniff(b []byte) (host string, decided bool) {
	decided = true
	for _, f := range s.sniffers {
		h, ok, more := f(b)
		if ok {
			return h, true
		}
		if more {
			decided = false
		}
	}
	return "", decided
}

// unmap makes an IPv4 address seen through a dual-stack socket compare equal to itself.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
