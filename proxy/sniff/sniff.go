// Package sniff recovers the host name a client asked for from the first bytes it sent:
// the server_name of a TLS ClientHello (RFC 8446 section 4.1.2, RFC 6066 section 3) or the
// Host header of an HTTP/1.x request (RFC 9112 section 3.2).
//
// Every parser is pure and answers one of three ways on a prefix of the stream:
//
//	ok             the host was found
//	needMore       the bytes so far are a valid prefix; call again with more
//	neither        not this protocol, malformed, or it names no host
//
// A returned host is lower case, without a port, and is either a DNS name or an IP
// literal: it is safe to join with a port as a dial address.
package sniff

// Domain tries each parser on b: a TLS ClientHello first, then an HTTP/1.x request.
func Domain(b []byte) (host string, ok bool, needMore bool) {
	host, ok, moreTLS := TLS(b)
	if ok {
		return host, true, false
	}
	host, ok, moreHTTP := HTTP(b)
	if ok {
		return host, true, false
	}
	return "", false, moreTLS || moreHTTP
}
