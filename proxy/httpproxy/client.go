package httpproxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/proxychain/proxychain/proxy"
)

// maxResponseHead bounds the head of a proxy's answer to CONNECT.
const maxResponseHead = 16 << 10

// ErrMalformedResponse is returned when a proxy's answer to CONNECT is not HTTP/1.x.
var ErrMalformedResponse = errors.New("httpproxy: malformed response to CONNECT")

// StatusError is a proxy's refusal of a CONNECT.
type StatusError struct {
	Code        int
	Status      string // as the proxy sent it, e.g. "407 Proxy Authentication Required"
	Server      string
	Destination string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("httpproxy: CONNECT to %s refused: %s", e.Destination, e.Status)
}

// Client is the HTTP CONNECT outbound: it dials its server through parent and asks it
// for a tunnel to the destination.
type Client struct {
	tag, server string
	auth        string // "Basic ..." or ""
	parent      proxy.Dialer
}

var _ proxy.Outbound = (*Client)(nil)

// NewClient returns an HTTP CONNECT outbound for the proxy at host:port. An empty user
// means no authentication.
func NewClient(tag, server, user, pass string, parent proxy.Dialer) *Client {
	c := &Client{tag: tag, server: server, parent: parent}
	if user != "" {
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	return c
}

// Tag names the outbound.
func (c *Client) Tag() string { return c.tag }

func (c *Client) hop() proxy.Hop { return proxy.Hop{Protocol: "http", Tag: c.tag, Server: c.server} }

// DialContext opens a tunnel to address through the proxy. The handshake is bounded by
// ctx. Bytes the proxy sent after its answer's head are the first the returned
// connection reads.
func (c *Client) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := proxy.CheckNetwork(network); err != nil {
		return nil, err
	}
	if err := checkAuthority(address); err != nil || strings.ContainsAny(address, "\r\n\t ") {
		return nil, fmt.Errorf("httpproxy: destination %q is not host:port", address)
	}
	conn, err := c.parent.DialContext(ctx, "tcp", c.server)
	if err != nil {
		return nil, c.hop().WrapDial(err)
	}
	var tunnel net.Conn
	err = proxy.Handshake(ctx, conn, c.hop(), func() error {
		var err error
		tunnel, err = c.connect(conn, address)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return tunnel, nil
}

func (c *Client) connect(conn net.Conn, address string) (net.Conn, error) {
	head := "CONNECT " + address + " HTTP/1.1\r\nHost: " + address + "\r\n"
	if c.auth != "" {
		head += "Proxy-Authorization: " + c.auth + "\r\n"
	}
	head += "\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		return nil, fmt.Errorf("write CONNECT: %w", err)
	}

	limited := &io.LimitedReader{R: conn, N: maxResponseHead}
	br := bufio.NewReader(limited)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err == nil {
		_, err = tp.ReadMIMEHeader()
	}
	if err != nil {
		if limited.N == 0 {
			return nil, fmt.Errorf("%w: head over %d bytes", ErrMalformedResponse, maxResponseHead)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read CONNECT answer: %w", err)
	}
	code, status, ok := parseStatusLine(line)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrMalformedResponse, line)
	}
	if code/100 != 2 {
		return nil, &StatusError{Code: code, Status: status, Server: c.server, Destination: address}
	}
	return withBuffered(conn, br), nil
}

// parseStatusLine splits "HTTP/1.1 200 Connection established" into 200 and
// "200 Connection established".
func parseStatusLine(line string) (int, string, bool) {
	proto, status, ok := strings.Cut(line, " ")
	if !ok || (proto != "HTTP/1.1" && proto != "HTTP/1.0") || len(status) < 3 {
		return 0, "", false
	}
	if len(status) > 3 && status[3] != ' ' {
		return 0, "", false
	}
	code, err := strconv.Atoi(status[:3])
	if err != nil || code < 100 {
		return 0, "", false
	}
	return code, status, true
}
