package socks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/socksaddr"
)

// Errors the client returns for a server's answers.
var (
	ErrServerVersion   = errors.New("socks: server answered with a version other than 5")
	ErrServerMethod    = errors.New("socks: server chose a method that was not offered")
	ErrCredentialsLong = errors.New("socks: user name or password longer than 255 bytes")
)

// Client is the SOCKS5 outbound: it dials its server through parent and asks it to
// CONNECT to the destination.
type Client struct {
	tag, server, user, pass string
	parent                  proxy.Dialer
}

var _ proxy.Outbound = (*Client)(nil)

// NewClient returns a SOCKS5 outbound for the server at host:port. An empty user means no
// authentication.
func NewClient(tag, server, user, pass string, parent proxy.Dialer) *Client {
	return &Client{tag: tag, server: server, user: user, pass: pass, parent: parent}
}

// Tag names the outbound.
func (c *Client) Tag() string { return c.tag }

func (c *Client) hop() proxy.Hop { return proxy.Hop{Protocol: "socks", Tag: c.tag, Server: c.server} }

// DialContext connects to address through the SOCKS5 server. The handshake is bounded by
// ctx. The returned connection is the parent's: the handshake reads no byte past the reply.
func (c *Client) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := proxy.CheckNetwork(network); err != nil {
		return nil, err
	}
	if len(c.user) > 255 || len(c.pass) > 255 {
		return nil, ErrCredentialsLong
	}
	request, err := socksaddr.Append([]byte{version5, cmdConnect, 0}, address)
	if err != nil {
		return nil, fmt.Errorf("socks: destination %q: %w", address, err)
	}
	conn, err := c.parent.DialContext(ctx, "tcp", c.server)
	if err != nil {
		return nil, c.hop().WrapDial(err)
	}
	err = proxy.Handshake(ctx, conn, c.hop(), func() error { return c.handshake(conn, request, address) })
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (c *Client) handshake(conn net.Conn, request []byte, address string) error {
	greeting := []byte{version5, 1, methodNone}
	if c.user != "" {
		greeting = []byte{version5, 2, methodNone, methodUserPass}
	}
	if _, err := conn.Write(greeting); err != nil {
		return fmt.Errorf("write greeting: %w", err)
	}
	var buf [3]byte
	if _, err := io.ReadFull(conn, buf[:2]); err != nil {
		return fmt.Errorf("read method: %w", unexpected(err))
	}
	if buf[0] != version5 {
		return fmt.Errorf("%w (it sent %d)", ErrServerVersion, buf[0])
	}
	switch buf[1] {
	case methodNone:
	case methodUserPass:
		if c.user == "" {
			return fmt.Errorf("%w (it chose username/password)", ErrServerMethod)
		}
		if err := c.authenticate(conn); err != nil {
			return err
		}
	case methodNoAcceptable:
		return ErrNoAcceptableMethod
	default:
		return fmt.Errorf("%w (it chose 0x%02x)", ErrServerMethod, buf[1])
	}

	if _, err := conn.Write(request); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	if _, err := io.ReadFull(conn, buf[:3]); err != nil {
		return fmt.Errorf("read reply: %w", unexpected(err))
	}
	if buf[0] != version5 {
		return fmt.Errorf("%w (it sent %d)", ErrServerVersion, buf[0])
	}
	if rep := Reply(buf[1]); rep != ReplySucceeded {
		return &ReplyError{Reply: rep, Server: c.server, Destination: address}
	}
	// The bound address means nothing through a chain, but it must leave the stream.
	if _, err := socksaddr.Read(conn); err != nil {
		return fmt.Errorf("read bound address: %w", unexpected(err))
	}
	return nil
}

func (c *Client) authenticate(conn net.Conn) error {
	msg := make([]byte, 0, 3+len(c.user)+len(c.pass))
	msg = append(msg, userPassVersion, byte(len(c.user)))
	msg = append(msg, c.user...)
	msg = append(msg, byte(len(c.pass)))
	msg = append(msg, c.pass...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	var status [2]byte
	if _, err := io.ReadFull(conn, status[:]); err != nil {
		return fmt.Errorf("read auth status: %w", unexpected(err))
	}
	if status[1] != userPassOK {
		return ErrAuthFailed
	}
	return nil
}
