// Package proxy holds the data plane's shared vocabulary: every hop of a chain is a
// Dialer that reaches its own server through a parent Dialer, and every inbound turns an
// accepted connection into a Request for a destination.
//
// Layering is net.Conn in, net.Conn out: a protocol's client dials its server through its
// parent, wraps the connection with its cipher, and writes the target address. A chain
//
//	client -> AliHK (ss) -> AliSG (ss) -> DOSG (vmess) -> DOUS (vmess) -> destination
//
// is DOUS dialing through DOSG, which dials through AliSG, which dials through AliHK, which
// dials TCP. No goroutine or pipe sits between layers.
package proxy
