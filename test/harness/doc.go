// Package harness runs real protocol peers (shadowsocks-libev, v2ray, xray) and checks
// traffic through them end to end, for the interop suites under test/.
//
// A Target is a loopback TCP server; Exchange drives one connection to it through any
// chain of proxies and verifies every byte in both directions by sha256. The wire format
// between them is
//
//	client -> target: "PCX1" | up (uint64 BE) | down (uint64 BE) | seed (uint64 BE) | up bytes
//	target -> client: down bytes | sha256 of the up bytes it received
//
// Both byte streams are ChaCha8 keyed by the seed and a direction byte, so each end can
// regenerate what the other should have sent. The upload length travels in the header
// rather than being marked by a half-close: shadowsocks-libev closes both directions
// when one side ends, and v2ray does not pass a FIN on, so neither end can wait for EOF.
//
// For the tests of protocol packages, which carry raw bytes rather than an Exchange
// header, BytesTarget and StartHTTPTarget check payloads by sha256, and RecordingDialer,
// OneByteDialer and ScriptConn stand in for the network, TimeoutReader cuts a stream with
// read timeouts that a decoder must survive, LayerReader stands for a protocol layer
// read through, and ServeTCP runs a loopback server for a test; subpackage proxytest
// runs an inbound under proxychain's server. HeadDialer keeps the first bytes a client
// sends on each connection, and CheckVMessAuth tells from them which VMess header (legacy
// or AEAD) was spoken, computed from the protocol rather than by proxychain's code. A
// Relay in front of a server counts the connections and bytes that went through it.
//
// The package imports nothing from Kubernetes or from proxychain itself, so it judges the
// data plane from outside.
package harness
