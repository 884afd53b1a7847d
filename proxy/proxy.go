package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Dialer is the standard dialer signature, so *net.Dialer and any Outbound can be a parent.
// The address is host:port; the host may be a domain name, which passes through
// unresolved so that the exit hop resolves it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Outbound is a named Dialer: one hop of a chain, or a direct or blackhole exit.
type Outbound interface {
	Dialer
	Tag() string
}

// Inbound decodes one protocol's handshake on an accepted connection.
//
// A server loop (see Server) owns deadlines, limits and relaying; an Inbound only turns
// bytes into a Request. An Inbound that rejects a handshake in a way a prober could learn
// from (wrong key, replay) deals with the connection itself before returning the error:
// it drains or resets as its protocol's spec asks, so the close reveals nothing.
type Inbound interface {
	Handshake(ctx context.Context, conn net.Conn) (*Request, error)
}

// Request is what a client asked an inbound for.
type Request struct {
	// Destination is host:port; host may be a domain name.
	Destination string
	// Conn carries the client's payload once the protocol's framing is removed.
	Conn net.Conn
	// Answer tells the client how the upstream dial went before any payload is relayed.
	// It is nil for protocols that report nothing (Shadowsocks, VMess, transparent capture).
	Answer func(dialErr error) error
}

// Hop names one hop of a chain in the errors of its client.
type Hop struct {
	Protocol string // as configured: vmess, shadowsocks, socks, http
	Tag      string // the outbound's
	Server   string // host:port
}

// HopError is a failure at one hop. A hop that its parent failed to take to its server
// wraps the parent's HopError in its own, so the innermost one in a chain's error names
// the hop that failed.
type HopError struct {
	Hop
	Err error
	// Dial is set when the hop's server was not reached: the dial through the parent
	// failed. Another server of the same outbound may still be reachable.
	Dial bool
}

func (e *HopError) Error() string {
	return fmt.Sprintf("%s %q (%s): %v", e.Protocol, e.Tag, e.Server, e.Err)
}

func (e *HopError) Unwrap() error { return e.Err }

// Timeout reports whether the failure is a timeout. With Temporary it makes a HopError a
// net.Error, so a conn that names its hop in a read error still reports a passed
// deadline as net.Conn asks.
func (e *HopError) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Temporary is Timeout: net.Error asks for it and deprecates it.
func (e *HopError) Temporary() bool { return e.Timeout() }

// Wrap names h in err. nil and io.EOF pass unchanged: a clean end of stream is no
// failure, and readers compare it with ==.
func (h Hop) Wrap(err error) error { return h.wrap(err, false) }

// WrapDial is Wrap for a failure to reach h's server through the parent.
func (h Hop) WrapDial(err error) error { return h.wrap(err, true) }

func (h Hop) wrap(err error, dial bool) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &HopError{Hop: h, Err: err, Dial: dial}
}

// DialInTurn dials with dial(ctx, i) for i = 0, 1, ... n-1 in turn until one succeeds,
// as net.Dialer dials a host's addresses: each attempt has its share of the time left,
// an even share among the attempts left (this one included) but at least 2 s, so one
// that never answers leaves time for the rest. After a failure it moves on while ctx
// lasts, if moveOn, told the error and whether the attempt used up its share, agrees;
// a nil moveOn always does. The error joins the attempts' errors.
func DialInTurn(ctx context.Context, n int, dial func(ctx context.Context, i int) (net.Conn, error),
	moveOn func(err error, outOfTime bool) bool) (net.Conn, error) {
	var errs []error
	for i := range n {
		attempt, cancel := attemptContext(ctx, n-i)
		conn, err := dial(attempt, i)
		outOfTime := expired(attempt)
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if expired(ctx) || moveOn != nil && !moveOn(err, outOfTime) {
			break
		}
	}
	switch len(errs) {
	case 0:
		return nil, errors.New("proxy: nothing to dial")
	case 1:
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// minAttempt is the least time an attempt of DialInTurn gets, as net.Dialer gives each
// of a host's addresses.
const minAttempt = 2 * time.Second

// attemptContext bounds an attempt to its share of ctx's time left, with left attempts
// to go, this one included. Without a deadline in ctx, the attempt has none.
func attemptContext(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok || left <= 1 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, max(time.Until(d)/time.Duration(left), minAttempt))
}

// expired reports whether ctx is done or its deadline has passed: a conn's deadline set
// from ctx's can fire before ctx's own timer does.
func expired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(d)
}

// ErrNetwork is returned by dialers asked for a network other than TCP.
var ErrNetwork = errors.New("proxy: only tcp is supported")

// CheckNetwork returns ErrNetwork unless network is a TCP network.
func CheckNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return ErrNetwork
}

// CloseWrite half-closes c if it can, so the peer sees EOF while the other direction keeps
// flowing. Protocol wrappers implement CloseWrite by finishing their framing and passing
// the call to the connection beneath.
func CloseWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Handshake runs exchange, a client's request and the server's answer on conn, bounded by
// ctx: ctx's deadline becomes conn's, and cancelling ctx expires it at once, so a hop that
// accepts and never answers cannot hold a dial past its deadline. On success the deadline
// is cleared for the relay. If ctx ended first, its cause is returned, whatever the
// exchange saw. Errors name hop, the hop whose exchange this is: conn's peer address is
// the first hop's server, whatever layers conn carries.
func Handshake(ctx context.Context, conn net.Conn, hop Hop, exchange func() error) error {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := exchange()
	if !stop() {
		return hop.Wrap(fmt.Errorf("handshake: %w", context.Cause(ctx)))
	}
	if err != nil {
		return hop.Wrap(err)
	}
	conn.SetDeadline(time.Time{})
	return nil
}
