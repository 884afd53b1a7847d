package socks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Reply is a SOCKS5 reply code (RFC 1928 section 6).
type Reply byte

// SOCKS5 reply codes.
const (
	ReplySucceeded           Reply = 0x00
	ReplyGeneralFailure      Reply = 0x01
	ReplyNotAllowed          Reply = 0x02
	ReplyNetworkUnreachable  Reply = 0x03
	ReplyHostUnreachable     Reply = 0x04
	ReplyConnectionRefused   Reply = 0x05
	ReplyTTLExpired          Reply = 0x06
	ReplyCommandNotSupported Reply = 0x07
	ReplyAddressNotSupported Reply = 0x08
)

func (r Reply) String() string {
	switch r {
	case ReplySucceeded:
		return "succeeded"
	case ReplyGeneralFailure:
		return "general failure"
	case ReplyNotAllowed:
		return "connection not allowed by ruleset"
	case ReplyNetworkUnreachable:
		return "network unreachable"
	case ReplyHostUnreachable:
		return "host unreachable"
	case ReplyConnectionRefused:
		return "connection refused"
	case ReplyTTLExpired:
		return "TTL expired"
	case ReplyCommandNotSupported:
		return "command not supported"
	case ReplyAddressNotSupported:
		return "address type not supported"
	}
	return fmt.Sprintf("reply 0x%02x", byte(r))
}

// replyFor maps an upstream dial error to the reply that tells the client most.
func replyFor(err error) Reply {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case err == nil:
		return ReplySucceeded
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReplyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return ReplyNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.As(err, &dnsErr):
		return ReplyHostUnreachable
	// A dial that ran out of time never heard from the host.
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ReplyHostUnreachable
	}
	return ReplyGeneralFailure
}

// ReplyError is a SOCKS5 server's refusal of a CONNECT.
type ReplyError struct {
	Reply       Reply
	Server      string
	Destination string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("socks: CONNECT to %s refused: %s", e.Destination, e.Reply)
}

// Unwrap gives the errno a reply stands for, so a SOCKS inbound in front of this hop
// passes the same reply on to its own client.
func (e *ReplyError) Unwrap() error {
	switch e.Reply {
	case ReplyNetworkUnreachable:
		return syscall.ENETUNREACH
	case ReplyHostUnreachable:
		return syscall.EHOSTUNREACH
	case ReplyConnectionRefused:
		return syscall.ECONNREFUSED
	}
	return nil
}
