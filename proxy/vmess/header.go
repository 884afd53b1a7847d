package vmess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"

	"github.com/proxychain/proxychain/proxy/socksaddr"
)

// Body securities as they travel in the header's low nibble.
const (
	secLegacyCFB        = 1 // AES-128-CFB body; not supported
	secAuto             = 2 // never on the wire: resolved by the client
	secAES128GCM        = 3
	secChacha20Poly1305 = 4
	secNone             = 5
	secZero             = 6 // config name only: travels as secNone without chunk stream
)

// Request options (the header's Opt byte).
const (
	optChunkStream   = 0x01
	optConnReuse     = 0x02 // deprecated; ignored
	optChunkMasking  = 0x04
	optGlobalPadding = 0x08
	optAuthLength    = 0x10
)

// Commands.
const (
	cmdTCP = 1
	cmdUDP = 2
	cmdMux = 3
)

// Address types: VMess numbers them differently from SOCKS.
const (
	addrIPv4   = 1
	addrDomain = 2
	addrIPv6   = 3
)

const (
	headerVersion = 1
	// headerFixedLen covers version, body IV and key, response auth, options,
	// padding/security, reserved, command, port and address type.
	headerFixedLen = 1 + 16 + 16 + 1 + 1 + 1 + 1 + 1 + 2 + 1
	// maxHeaderLen adds the longest address, the longest padding and the checksum.
	maxHeaderLen = headerFixedLen + 1 + 255 + 15 + 4
)

// Errors returned by the codecs. Handshake failures wrap ErrAuth, ErrExpired, ErrReplay,
// ErrHeader or ErrUnsupported.
var (
	ErrAuth        = errors.New("vmess: authentication failed")
	ErrExpired     = errors.New("vmess: timestamp outside the accepted window")
	ErrReplay      = errors.New("vmess: replayed request")
	ErrHeader      = errors.New("vmess: bad request header")
	ErrUnsupported = errors.New("vmess: unsupported request")
	ErrChunk       = errors.New("vmess: bad chunk")
	ErrResponse    = errors.New("vmess: bad response header")
)

// requestHeader is the decrypted command section of a request.
type requestHeader struct {
	bodyIV, bodyKey [16]byte
	respAuth        byte
	options         byte
	security        byte
	command         byte
	dest            string // host:port
}

// appendRequestHeader appends the plaintext command section, padding and FNV-1a checksum.
// addr is the encoded destination (see appendAddress); padding is 0..15 random bytes.
func appendRequestHeader(b []byte, h *requestHeader, addr, padding []byte) []byte {
	start := len(b)
	b = append(b, headerVersion)
	b = append(b, h.bodyIV[:]...)
	b = append(b, h.bodyKey[:]...)
	b = append(b, h.respAuth, h.options, byte(len(padding))<<4|h.security, 0, h.command)
	b = append(b, addr...)
	b = append(b, padding...)
	f := fnv.New32a()
	f.Write(b[start:])
	return f.Sum(b)
}

// parseRequestHeader decodes a complete plaintext command section, checksum included.
func parseRequestHeader(b []byte) (requestHeader, error) {
	var h requestHeader
	if len(b) < headerFixedLen+4 {
		return h, fmt.Errorf("%w: %d bytes", ErrHeader, len(b))
	}
	f := fnv.New32a()
	f.Write(b[:len(b)-4])
	if f.Sum32() != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return h, fmt.Errorf("%w: checksum mismatch", ErrHeader)
	}
	if b[0] != headerVersion {
		return h, fmt.Errorf("%w: version %d", ErrHeader, b[0])
	}
	copy(h.bodyIV[:], b[1:17])
	copy(h.bodyKey[:], b[17:33])
	h.respAuth, h.options = b[33], b[34]
	padding := int(b[35] >> 4)
	h.security = b[35] & 0x0f
	h.command = b[37]
	if h.command != cmdTCP {
		return h, fmt.Errorf("%w: command %d (only tcp)", ErrUnsupported, h.command)
	}
	dest, n, err := parseAddress(b[38 : len(b)-4])
	if err != nil {
		return h, err
	}
	if 38+n+padding+4 != len(b) {
		return h, fmt.Errorf("%w: length %d does not match its fields", ErrHeader, len(b))
	}
	h.dest = dest
	return h, nil
}

// appendAddress appends address (host:port) the VMess way: port first, then type and host.
func appendAddress(b []byte, address string) ([]byte, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return b, fmt.Errorf("vmess: bad address %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return b, fmt.Errorf("vmess: bad port in %q", address)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		ip = ip.Unmap()
		if ip.Is4() {
			b = append(b, addrIPv4)
		} else {
			b = append(b, addrIPv6)
		}
		return append(b, ip.AsSlice()...), nil
	}
	// What a server refuses (parseAddress) is not sent: a zone would be dropped from an IP,
	// and a name the next hop would read as another host would be refused there anyway.
	if len(host) > 255 || socksaddr.CheckDomain(host) != nil {
		return b, fmt.Errorf("vmess: bad host in %q: want an IP or a domain name of at most 255 bytes", address)
	}
	b = append(b, addrDomain, byte(len(host)))
	return append(b, host...), nil
}

// parseAddress decodes a port-first address at the start of b and reports its length.
func parseAddress(b []byte) (string, int, error) {
	if len(b) < 3 {
		return "", 0, fmt.Errorf("%w: short address", ErrHeader)
	}
	port := strconv.Itoa(int(binary.BigEndian.Uint16(b)))
	switch b[2] {
	case addrIPv4:
		if len(b) < 3+4 {
			return "", 0, fmt.Errorf("%w: short address", ErrHeader)
		}
		return net.JoinHostPort(netip.AddrFrom4([4]byte(b[3:7])).String(), port), 3 + 4, nil
	case addrIPv6:
		if len(b) < 3+16 {
			return "", 0, fmt.Errorf("%w: short address", ErrHeader)
		}
		return net.JoinHostPort(netip.AddrFrom16([16]byte(b[3:19])).String(), port), 3 + 16, nil
	case addrDomain:
		if len(b) < 4 || b[3] == 0 || len(b) < 4+int(b[3]) {
			return "", 0, fmt.Errorf("%w: bad domain", ErrHeader)
		}
		host := string(b[4 : 4+int(b[3])])
		// Refused as the SOCKS and Shadowsocks inbounds refuse it: a name the router or
		// the next hop would read as another host (a zoned IPv6 literal matches no IP rule).
		if err := socksaddr.CheckDomain(host); err != nil {
			return "", 0, fmt.Errorf("%w: domain %q: %w", ErrHeader, host, err)
		}
		return net.JoinHostPort(host, port), 4 + int(b[3]), nil
	}
	return "", 0, fmt.Errorf("%w: address type %d", ErrHeader, b[2])
}
