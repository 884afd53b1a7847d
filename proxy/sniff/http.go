package sniff

import (
	"bytes"
	"net/netip"
	"strings"
)

// methods are the request methods a sniffed stream may start with (RFC 9110 section 9,
// RFC 5789). Knowing them lets a non-HTTP stream be rejected within its first bytes.
var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// HTTP returns the host named by the Host header of an HTTP/1.x request at the start of
// b, without its port. It answers as soon as the Host line is complete, without waiting
// for the end of the header block.
func HTTP(b []byte) (host string, ok bool, needMore bool) {
	if !startsWithMethod(b) {
		return "", false, false
	}
	line, rest, complete := cutLine(b)
	if !complete {
		return "", false, true
	}
	if !requestLine(line) {
		return "", false, false
	}
	for {
		line, rest, complete = cutLine(rest)
		if !complete {
			return "", false, true
		}
		if len(line) == 0 { // end of the header block: no Host
			return "", false, false
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return "", false, false
		}
		if strings.EqualFold(string(name), "host") {
			host, ok = hostHeader(string(bytes.Trim(value, " \t")))
			return host, ok, false
		}
	}
}

// startsWithMethod reports whether b starts with "METHOD " or could once more arrives.
func startsWithMethod(b []byte) bool {
	for _, m := range methods {
		prefix := m + " "
		if len(b) >= len(prefix) {
			if string(b[:len(prefix)]) == prefix {
				return true
			}
		} else if string(b) == prefix[:len(b)] {
			return true
		}
	}
	return false
}

// cutLine splits b at its first LF; a CR before it is dropped. Bare LF is accepted as
// a line end, as RFC 9112 section 2.2 allows recipients to.
func cutLine(b []byte) (line, rest []byte, complete bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:], true
}

// requestLine checks "method SP request-target SP HTTP/1.x".
func requestLine(line []byte) bool {
	fields := bytes.Split(line, []byte(" "))
	if len(fields) != 3 || len(fields[1]) == 0 {
		return false
	}
	v := fields[2]
	return len(v) == len("HTTP/1.1") && bytes.HasPrefix(v, []byte("HTTP/1.")) && v[7] >= '0' && v[7] <= '9'
}

// hostHeader strips the optional port from a Host value (uri-host [ ":" port ]).
func hostHeader(v string) (string, bool) {
	host, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return "", false
		}
		host, port = v[1:end], v[end+1:]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", false
		}
	} else if i := strings.IndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i:]
	}
	if port != "" {
		if port[0] != ':' || strings.Trim(port[1:], "0123456789") != "" || len(port) > 6 {
			return "", false
		}
	}
	return cleanHost(host)
}

// cleanHost accepts an IP literal or a DNS name (letters, digits, '-', '_' in labels of at
// most 63 bytes, 253 in all) and returns it in canonical, lower-case form. Anything else
// is refused, so a hostile name cannot smuggle a port or a second address into the dial.
func cleanHost(s string) (string, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return "", false
		}
		return ip.Unmap().String(), true
	}
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
			default:
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}
