// Package socks is the SOCKS inbound (SOCKS5, SOCKS4 and SOCKS4a CONNECT) and the SOCKS5
// outbound.
//
// SOCKS5 (RFC 1928), with username/password authentication (RFC 1929):
//
//	client: [5][nmethods][methods...]
//	server: [5][method]                          0 none, 2 username/password, 0xFF none acceptable
//	client: [1][ulen][user][plen][pass]          only when method 2 was chosen
//	server: [1][status]                          0 success; anything else, then close
//	client: [5][cmd][0][address]                 cmd 1 CONNECT; address as in package socksaddr
//	server: [5][reply][0][bound address]         sent once the upstream dial has finished
//
// SOCKS4 and SOCKS4a (CONNECT only, and only when no accounts are configured, since
// SOCKS4 carries a user id but no password):
//
//	client: [4][cmd][port: 2][IPv4: 4][user id][0]               SOCKS4
//	client: [4][cmd][port: 2][0.0.0.x][user id][0][domain][0]    SOCKS4a, x != 0
//	server: [0][90 granted | 91 rejected][port: 2][IPv4: 4]
//
// The server reads exactly the handshake's bytes, never past it, so payload a client sends
// ahead of the reply stays in the connection for the relay. Its reply maps the upstream
// dial error: refused -> 5, host unreachable, unknown host or timeout -> 4, network
// unreachable -> 3, anything else -> 1; the bound address is the one the client reached
// us on, since the upstream's own sits behind the chain. Domains are passed on
// unresolved; one that could not survive as the host of host:port (brackets, colons,
// spaces, slashes, control bytes: socksaddr.CheckDomain) is refused with 1.
//
// The client waits for each answer instead of pipelining greeting and request: a server
// that reads its greeting with one large read would drop what followed.
package socks
