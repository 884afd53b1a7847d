// Package dokodemo is the dokodemo-door inbound: every connection goes to one fixed
// destination, with no handshake at all. It is how a local port becomes the near end of
// a chain to a single service (V2Ray's "dokodemo-door" with a fixed address and port).
package dokodemo

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/proxychain/proxychain/proxy"
)

// Server is the dokodemo-door inbound.
type Server struct {
	destination string
}

var _ proxy.Inbound = (*Server)(nil)

// NewServer returns an inbound that sends every connection to destination (host:port).
// The destination is checked on each Handshake, so a bad one is an error per connection
// rather than a panic; config loading should call Check first.
func NewServer(destination string) *Server {
	return &Server{destination: destination}
}

// Check reports whether destination is a usable host:port.
func Check(destination string) error {
	host, port, err := net.SplitHostPort(destination)
	if err != nil {
		return fmt.Errorf("dokodemo: destination %q: %w", destination, err)
	}
	if host == "" {
		return fmt.Errorf("dokodemo: destination %q has no host", destination)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("dokodemo: destination %q has a bad port", destination)
	}
	return nil
}

// Destination returns the fixed destination.
func (s *Server) Destination() string { return s.destination }

// Handshake reads nothing: the connection's bytes are the payload.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	if err := Check(s.destination); err != nil {
		return nil, err
	}
	return &proxy.Request{Destination: s.destination, Conn: conn}, nil
}
