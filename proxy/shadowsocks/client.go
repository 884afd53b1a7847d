package shadowsocks

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/socksaddr"
)

// Client is a Shadowsocks outbound: one hop of a chain.
type Client struct {
	tag    string
	server string
	cipher *Cipher
	parent proxy.Dialer

	now   func() time.Time
	salts *saltSet // SIP022: response salts seen in the last minute
}

var _ proxy.Outbound = (*Client)(nil)

// NewClient returns an outbound that reaches server (host:port) through parent. A nil
// parent dials directly.
func NewClient(tag, server string, c *Cipher, parent proxy.Dialer) *Client {
	if parent == nil {
		parent = &proxy.SocketDialer{}
	}
	return &Client{
		tag:    tag,
		server: server,
		cipher: c,
		parent: parent,
		now:    time.Now,
		salts:  newTimedSaltSet(saltTTL),
	}
}

// Tag names the outbound.
func (c *Client) Tag() string { return c.tag }

func (c *Client) hop() proxy.Hop {
	return proxy.Hop{Protocol: "shadowsocks", Tag: c.tag, Server: c.server}
}

// DialContext dials the server through the parent and returns a connection to address
// (host:port) over it. Nothing is written yet: the target address goes out with the
// first Write, or alone before the first Read (see conn).
func (c *Client) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := proxy.CheckNetwork(network); err != nil {
		return nil, err
	}
	addr, err := socksaddr.Append(nil, address)
	if err != nil {
		return nil, fmt.Errorf("shadowsocks: target %q: %w", address, err)
	}
	raw, err := c.parent.DialContext(ctx, "tcp", c.server)
	if err != nil {
		return nil, c.hop().WrapDial(err)
	}
	conn, err := c.wrap(raw, addr)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// wrap makes raw the client end of a Shadowsocks connection that will request addr.
func (c *Client) wrap(raw net.Conn, addr []byte) (*conn, error) {
	ciph := c.cipher
	switch ciph.family {
	case familyNone:
		return newConn(raw, plainReader{raw}, &plainEncoder{header: addr}), nil

	case familyStream:
		iv := make([]byte, ciph.saltLen)
		rand.Read(iv)
		stream, err := ciph.stream(iv, false)
		if err != nil {
			return nil, err
		}
		dec := &streamReader{src: raw, iv: make([]byte, ciph.saltLen), requestIV: iv, ciph: ciph}
		return newConn(raw, dec, &streamEncoder{stream: stream, iv: iv, header: addr}), nil

	case familyAEAD:
		s, salt, err := newSealer(ciph)
		if err != nil {
			return nil, err
		}
		dec := newChunkReader(raw, maxPayload)
		dec.preamble = func() error { return dec.readSalt(ciph, salt) }
		return newConn(raw, dec, &aeadEncoder{sealer: s, salt: salt, header: addr}), nil

	default: // family2022
		s, salt, err := newSealer(ciph)
		if err != nil {
			return nil, err
		}
		dec := newChunkReader(raw, maxPayload2022)
		dec.preamble = func() error { return dec.readResponse2022(ciph, salt, c.now, c.salts) }
		return newConn(raw, dec, &request2022Encoder{sealer: s, salt: salt, addr: addr, now: c.now}), nil
	}
}
