// Package socksaddr encodes and decodes the SOCKS5 address form (RFC 1928 section 5)
// that Shadowsocks and SOCKS share:
//
//	[1][IPv4: 4 bytes][port: 2]
//	[3][length: 1][domain: length bytes][port: 2]
//	[4][IPv6: 16 bytes][port: 2]
//
// Ports are big-endian. Domains are carried as given, never resolved here.
package socksaddr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Address types.
const (
	TypeIPv4   = 1
	TypeDomain = 3
	TypeIPv6   = 4
)

// MaxLen is the longest encoded address: a 255-byte domain.
const MaxLen = 1 + 1 + 255 + 2

var (
	ErrShort       = errors.New("socksaddr: short address")
	ErrAddressType = errors.New("socksaddr: unknown address type")
	ErrDomain      = errors.New("socksaddr: bad domain name")
)

// Append appends the encoding of address (host:port) to b.
func Append(b []byte, address string) ([]byte, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return b, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return b, fmt.Errorf("socksaddr: bad port in %q", address)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Is4() {
			b = append(b, TypeIPv4)
		} else {
			b = append(b, TypeIPv6)
		}
		b = append(b, ip.AsSlice()...)
	} else {
		if len(host) > 255 || CheckDomain(host) != nil {
			return b, ErrDomain
		}
		b = append(b, TypeDomain, byte(len(host)))
		b = append(b, host...)
	}
	return binary.BigEndian.AppendUint16(b, uint16(port)), nil
}

// Parse decodes the address at the start of b, returning host:port and the number of
// bytes it took. It returns ErrShort when b ends inside the address.
func Parse(b []byte) (string, int, error) {
	if len(b) < 1 {
		return "", 0, ErrShort
	}
	var hostEnd int
	switch b[0] {
	case TypeIPv4:
		hostEnd = 1 + 4
	case TypeIPv6:
		hostEnd = 1 + 16
	case TypeDomain:
		if len(b) < 2 {
			return "", 0, ErrShort
		}
		hostEnd = 2 + int(b[1])
	default:
		return "", 0, ErrAddressType
	}
	if len(b) < hostEnd+2 {
		return "", 0, ErrShort
	}
	var host string
	switch b[0] {
	case TypeIPv4:
		host = netip.AddrFrom4([4]byte(b[1:5])).String()
	case TypeIPv6:
		// A v4-mapped address is an IPv4 destination; Append encodes it so too.
		host = netip.AddrFrom16([16]byte(b[1:17])).Unmap().String()
	default:
		host = string(b[2:hostEnd])
		if err := CheckDomain(host); err != nil {
			return "", 0, err
		}
		// An IP literal sent as a name reads as that IP, in its one canonical spelling.
		if c := host[0]; c >= '0' && c <= '9' || strings.Contains(host, ":") {
			if ip, err := netip.ParseAddr(host); err == nil {
				host = ip.Unmap().String()
			}
		}
	}
	port := binary.BigEndian.Uint16(b[hostEnd:])
	return net.JoinHostPort(host, strconv.Itoa(int(port))), hostEnd + 2, nil
}

// CheckDomain returns ErrDomain unless name can stand as the host of host:port further
// down the chain: an IP literal, or a non-empty name with no separator (brackets, colon,
// slash, space, backslash, @ ? # %) and no control byte. A name that fails this would be
// read back as a different host, or not at all, by the next hop.
func CheckDomain(name string) error {
	if name == "" {
		return ErrDomain
	}
	if strings.Contains(name, ":") { // only an IPv6 literal may hold a colon
		if ip, err := netip.ParseAddr(name); err == nil && ip.Zone() == "" {
			return nil
		}
		return ErrDomain
	}
	if strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune("[]:/\\@?#%", r)
	}) {
		return ErrDomain
	}
	return nil
}

// Read reads one encoded address from r, reading no byte past it.
func Read(r io.Reader) (string, error) {
	var buf [MaxLen]byte
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return "", err
	}
	var n int
	switch buf[0] {
	case TypeIPv4:
		n = 1 + 4 + 2
	case TypeIPv6:
		n = 1 + 16 + 2
	case TypeDomain:
		n = 2 + int(buf[1]) + 2
	default:
		return "", ErrAddressType
	}
	if _, err := io.ReadFull(r, buf[2:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	addr, _, err := Parse(buf[:n])
	return addr, err
}
