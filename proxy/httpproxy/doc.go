// Package httpproxy is the HTTP proxy inbound and the HTTP CONNECT outbound.
//
// The inbound takes two kinds of request:
//
//	CONNECT host:port HTTP/1.1       a tunnel: answered "200 Connection established" once the
//	                                 upstream dial succeeds (502 when it fails), then raw bytes
//	GET http://host/path HTTP/1.1    forwarding: the request goes upstream in origin-form
//	                                 (GET /path), hop-by-hop headers removed, body included
//
// Forwarding is one request per connection: the upstream request carries
// "Connection: close", so the origin closes after its response and the client sees the
// end of the stream. Keeping the client's connection for a further request would need a
// new upstream dial per origin, which an Inbound (one Request per connection) cannot ask
// for; a client that sends a second request on the connection has it discarded, never
// forwarded, and reopens a connection when it sees the close. Upgrade (WebSocket) over a
// forwarded request is not offered; clients tunnel it with CONNECT.
//
// The request head must fit in ServerOptions.MaxHeaderBytes (DefaultMaxHeaderBytes,
// 16 KiB) and hold at most MaxHeaderCount fields; otherwise the answer is 431. With
// accounts configured, a request without valid Basic credentials in Proxy-Authorization
// is answered 407 with a Proxy-Authenticate challenge.
//
// Bytes a client sends after the head (pipelined tunnel payload, a request body) are never
// lost: the inbound hands them to the relay before any further read of the connection.
package httpproxy
