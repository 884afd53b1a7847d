// Package e2e runs the spec's two chains end to end on loopback, with real processes:
// our binary, v2ray 4.34, shadowsocks-libev and Xray, in every arrangement the spec's
// wire allows (see chains_test.go). The package has no code of its own outside tests.
//
// The client configs are the seed's, with only addresses and ports moved to loopback
// (testdata/seed-*.loopback.json); each hop listens on its own address so the
// destination can tell which hop a connection came from:
//
//	AliHK (transit)  127.0.0.11:21024  shadowsocks aes-256-cfb
//	AliSG            127.0.0.12:23442  shadowsocks aes-256-cfb
//	DOSG             127.0.0.13:28462  vmess alterId 64
//	DOUS             127.0.0.14:28888  vmess alterId 64
//
// The ports are the seed's plus 20000 and are fixed, so the configs run as written; a
// file lock keeps two runs of the suite on one machine from meeting on them.
package e2e
