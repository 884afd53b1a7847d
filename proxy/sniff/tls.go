package sniff

import "encoding/binary"

// TLS wire constants (RFC 8446 sections 4, 4.2, 5.1; RFC 6066 section 3).
const (
	recordHeaderLen     = 5
	recordTypeHandshake = 22
	maxRecordLen        = 1 << 14 // TLSPlaintext.length never exceeds 2^14
	handshakeHeaderLen  = 4
	typeClientHello     = 1
	extServerName       = 0
	nameTypeHostName    = 0
)

// TLS returns the server_name a TLS ClientHello at the start of b asks for.
//
// The ClientHello may be fragmented across several handshake records (a large post-quantum
// key share can push it past one record); the fragments are joined. Its declared length
// decides needMore, so a caller that bounds how much it reads bounds the work too.
func TLS(b []byte) (host string, ok bool, needMore bool) {
	msg, complete, valid := handshakeMessage(b)
	if !valid {
		return "", false, false
	}
	if !complete {
		return "", false, true
	}
	host, ok = serverName(msg)
	return host, ok, false
}

// handshakeMessage joins the handshake records at the start of b until it holds the
// first handshake message (header included). complete reports whether all of it is
// there; valid is false as soon as b cannot start a ClientHello.
func handshakeMessage(b []byte) (msg []byte, complete, valid bool) {
	want := -1 // length of the whole message once its header is known
	for {
		if want >= 0 && len(msg) >= want {
			return msg[:want], true, true
		}
		if len(b) == 0 {
			return nil, false, true
		}
		// Check what we have of the record header byte by byte, so that a non-TLS
		// stream is rejected on its first byte rather than after five.
		if b[0] != recordTypeHandshake {
			return nil, false, false
		}
		if len(b) >= 2 && b[1] != 3 { // every TLS and SSL 3.0 record version is 3.x
			return nil, false, false
		}
		if len(b) < recordHeaderLen {
			return nil, false, true
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if n == 0 || n > maxRecordLen {
			return nil, false, false
		}
		fragment := b[recordHeaderLen:min(len(b), recordHeaderLen+n)]
		// Copy rather than alias: fragments of one message are not adjacent in b.
		msg = append(msg, fragment...)
		b = b[recordHeaderLen+len(fragment):]
		if want < 0 && len(msg) >= 1 && msg[0] != typeClientHello {
			return nil, false, false
		}
		if want < 0 && len(msg) >= handshakeHeaderLen {
			want = handshakeHeaderLen + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
		}
		if len(fragment) < n { // this record is still arriving
			if want >= 0 && len(msg) >= want {
				return msg[:want], true, true
			}
			return nil, false, true
		}
	}
}

// serverName parses a complete ClientHello message and returns its host_name.
func serverName(msg []byte) (string, bool) {
	r := reader(msg[handshakeHeaderLen:])
	if !r.skip(2 + 32) { // legacy_version, random
		return "", false
	}
	if _, ok := r.vector(1); !ok { // legacy_session_id
		return "", false
	}
	if _, ok := r.vector(2); !ok { // cipher_suites
		return "", false
	}
	if _, ok := r.vector(1); !ok { // legacy_compression_methods
		return "", false
	}
	if len(r) == 0 { // an SSL 3.0 style hello without extensions names no server
		return "", false
	}
	exts, ok := r.vector(2)
	if !ok || len(r) != 0 {
		return "", false
	}
	for len(exts) > 0 {
		typ, ok := exts.uint16()
		if !ok {
			return "", false
		}
		data, ok := exts.vector(2)
		if !ok {
			return "", false
		}
		if typ == extServerName {
			return hostName(data)
		}
	}
	return "", false
}

// hostName parses a ServerNameList and returns its host_name entry.
func hostName(data reader) (string, bool) {
	list, ok := data.vector(2)
	if !ok || len(data) != 0 {
		return "", false
	}
	for len(list) > 0 {
		nameType := list[0]
		list = list[1:]
		name, ok := list.vector(2)
		if !ok {
			return "", false
		}
		if nameType == nameTypeHostName {
			return cleanHost(string(name))
		}
	}
	return "", false
}

// reader consumes big-endian fields from a byte slice; every method reports false
// instead of reading past the end.
type reader []byte

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

func (r *reader) uint16() (uint16, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return v, true
}

// vector reads a variable-length vector whose length prefix is lenBytes (1 or 2) long.
func (r *reader) vector(lenBytes int) (reader, bool) {
	if len(*r) < lenBytes {
		return nil, false
	}
	n := int((*r)[0])
	if lenBytes == 2 {
		n = int(binary.BigEndian.Uint16(*r))
	}
	rest := (*r)[lenBytes:]
	if len(rest) < n {
		return nil, false
	}
	*r = rest[n:]
	return rest[:n], true
}
