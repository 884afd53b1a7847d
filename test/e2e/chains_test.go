package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxychain/proxychain/test/harness"
)

// Traffic through every arrangement. The issue asks for "16 MiB each way, 50 concurrent
// connections"; we read that as one connection carrying 16 MiB each way, then 50
// connections at once carrying 256 KiB each way (12.5 MiB each way in total), all
// checked by sha256 both ways. Before them a marker exchange runs for the wiretap.
const (
	bigExchange     = 16 << 20
	concurrentConns = 50
	smallExchange   = 256 << 10

	// xrayClientAtOnce is how many of the concurrent connections run at once when Xray
	// is the client. Xray 26.3.27's VMess client, with 50 connections at once, now and
	// then ends a connection's request stream before sending any of its payload: the
	// server reads the request header and then a clean end of stream. It happens with
	// an Xray server as well (Xray client -> Xray VMess inbound, no other hop: one batch
	// of 50 in six failed), so it is Xray's; in batches of 10 it did not happen in 200
	// connections. Every other client runs all 50 at once. On a loaded machine it still
	// happens now and then, so an Xray client's exchange that got nothing back because
	// its request carried nothing is retried once (xrayDroppedRequest); every other
	// failure, and every other client, fails the test.
	xrayClientAtOnce = 10
)

// xrayDroppedRequest reports whether err is the Xray client's dropped request: the
// destination got the connection and a clean end of stream, so nothing came back.
func xrayDroppedRequest(err error) bool {
	return err != nil && strings.Contains(err.Error(), "down stream ended after 0 of") &&
		strings.HasSuffix(err.Error(), ": EOF")
}

// TestSeedWire runs the seed's configs on the seed's wire (Shadowsocks aes-256-cfb,
// VMess alterId 64) with each side played by us and by the peers:
//
//   - our client (the seed's config as written, plus a SOCKS inbound), every hop served
//     by the peers: ss-server for aes-256-cfb, v2ray 4.34 for VMess. v2ray 4.34 has no
//     Shadowsocks stream ciphers, so it cannot load the seed's config itself;
//   - the peers as the client, every hop served by our binary: v2ray for the VMess
//     layers, joined over loopback to ss-tunnel for the aes-256-cfb layers;
//   - our binary everywhere.
//
// v2ray 4.34, and our server, also take the AEAD header from a user with alterId 64, so
// passing traffic does not show the legacy header was spoken: checkVMessWire reads it
// off the wire in front of every VMess hop.
func TestSeedWire(t *testing.T) {
	skipShort(t)
	for _, c := range []chainSpec{chainBasic, chainSeed} {
		t.Run(c.name+"/our client, peer hops", func(t *testing.T) {
			hops, tap, vmessTaps := startChain(t, c, seedWire, servePeers)
			retries := proveChain(t, startOurClient(t, c, seedWire), tap, concurrentConns)
			checkVMessWire(t, hops, vmessTaps, seedWire, chainConns, retries > 0)
		})
		t.Run(c.name+"/peer client, our hops", func(t *testing.T) {
			hops, tap, vmessTaps := startChain(t, c, seedWire, serveOurs)
			retries := proveChain(t, startJoinedPeerClient(t, hops), tap, concurrentConns)
			checkVMessWire(t, hops, vmessTaps, seedWire, chainConns, retries > 0)
		})
		t.Run(c.name+"/ours everywhere", func(t *testing.T) {
			hops, tap, vmessTaps := startChain(t, c, seedWire, serveOurs)
			retries := proveChain(t, startOurClient(t, c, seedWire), tap, concurrentConns)
			checkVMessWire(t, hops, vmessTaps, seedWire, chainConns, retries > 0)
		})
	}
}

// TestModernWire runs the seed's chains with VMess AEAD (alterId 0) inside Shadowsocks
// AEAD (aes-128-gcm) and Shadowsocks 2022 (2022-blake3-aes-128-gcm), against Xray: our
// client through Xray's hops, and Xray as the client through ours.
func TestModernWire(t *testing.T) {
	skipShort(t)
	for _, w := range []wire{aeadWire, wire2022} {
		for _, c := range []chainSpec{chainBasic, chainSeed} {
			t.Run(w.name+"/"+c.name+"/our client, xray hops", func(t *testing.T) {
				hops, tap, vmessTaps := startChain(t, c, w, serveXray)
				retries := proveChain(t, startOurClient(t, c, w), tap, concurrentConns)
				checkVMessWire(t, hops, vmessTaps, w, chainConns, retries > 0)
			})
			t.Run(w.name+"/"+c.name+"/xray client, our hops", func(t *testing.T) {
				hops, tap, vmessTaps := startChain(t, c, w, serveOurs)
				retries := proveChain(t, startPeerClient(t, "xray", c, w), tap, xrayClientAtOnce)
				checkVMessWire(t, hops, vmessTaps, w, chainConns, retries > 0)
			})
		}
	}
}

// chainConns is how many connections proveChain makes through a chain, without retries:
// the marker exchange, the big one and the concurrent ones.
const chainConns = 2 + concurrentConns

// proveChain drives traffic through the SOCKS inbound of a client whose chain ends at
// DOUS, and checks that it arrived intact, that every connection went through the first
// hop and that it relayed only ciphertext (by tap), and that the destination saw every
// connection come from DOUS. The concurrent connections run atOnce at a time. It returns
// how many connections it made again.
func proveChain(t *testing.T, socks string, tap *wiretap, atOnce int) (retries int) {
	t.Helper()
	began := time.Now()
	harness.WaitListening(t, socks)

	mt := startMarkerTarget(t)
	conn, err := harness.DialSOCKS5(socks, mt.addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := markerExchange(conn); err != nil {
		t.Fatal(err)
	}
	checkCiphertextOnly(t, tap)

	tg := harness.StartTarget(t)
	dial := func() (net.Conn, error) { return harness.DialSOCKS5(socks, tg.Addr()) }
	if conn, err = dial(); err != nil {
		t.Fatal(err)
	}
	if err := harness.Exchange(conn, bigExchange, bigExchange); err != nil {
		t.Fatalf("one connection, %d MiB each way: %v", bigExchange>>20, err)
	}
	for range concurrentConns / atOnce {
		err := harness.ExchangeMany(atOnce, dial, smallExchange, smallExchange)
		if atOnce == xrayClientAtOnce && xrayDroppedRequest(err) {
			t.Logf("Xray client dropped a request (its known fault, see xrayClientAtOnce); retrying the batch: %v", err)
			retries += atOnce
			err = harness.ExchangeMany(atOnce, dial, smallExchange, smallExchange)
		}
		if err != nil {
			t.Fatalf("%d connections at once, %d KiB each way: %v", atOnce, smallExchange>>10, err)
		}
	}

	remotes := append(mt.remoteAddrs(), tg.Remotes()...)
	// A retried batch's connections reached the destination twice at most.
	if want := chainConns; len(remotes) < want || len(remotes) > want+retries {
		t.Errorf("the destinations saw %d connections, want %d (+ up to %d retried)", len(remotes), want, retries)
	}
	for _, r := range remotes {
		if host, _, _ := net.SplitHostPort(r.String()); host != exitIP {
			t.Errorf("a destination saw a connection from %s, want DOUS (%s)", r, exitIP)
		}
	}
	// The exit alone cannot tell: a client that skipped the first hop still gets there.
	checkTappedFrom(t, tap, len(remotes))
	t.Logf("traffic took %v", time.Since(began).Round(time.Millisecond))
	return retries
}

// startOurClient runs our binary on the chain's client config for w plus a SOCKS
// inbound, and returns the SOCKS address.
func startOurClient(t *testing.T, c chainSpec, w wire) string {
	t.Helper()
	port := harness.FreePort(t)
	inbound := harness.WriteConfig(t, map[string]any{"inbounds": []any{socksInbound(port)}})
	startProxychain(t, c.clientConfig(t, w), inbound)
	return harness.LoopbackAddr(port)
}

// startPeerClient runs v2ray or Xray on the chain's client config for w, and returns
// its SOCKS address.
func startPeerClient(t *testing.T, peer string, c chainSpec, w wire) string {
	t.Helper()
	bin := harness.RequirePeer(t, peer)
	port := harness.FreePort(t)
	config := c.peerClientConfig(t, w, port)
	switch peer {
	case "xray":
		start(t, bin, "run", "-c", config)
	case "v2ray":
		start(t, bin, "-config", config) // v2ray 4.x; 5.x would want "run -c"
	default:
		t.Fatalf("no client %q", peer)
	}
	return harness.LoopbackAddr(port)
}

// startJoinedPeerClient is the peers' client for the seed's wire, which no single peer
// speaks: one ss-tunnel per Shadowsocks hop, each dialing its server through the
// previous tunnel and forwarding to the next hop, and v2ray 4.34 for the VMess hops, the
// first dialing its server through the last tunnel. For the 4-hop chain:
//
//	v2ray (SOCKS in; DOUS through DOSG) -> ss-tunnel#2 (AliSG, to DOSG) -> ss-tunnel#1 (AliHK, to AliSG)
//
// hops must be Shadowsocks hops followed by VMess hops, as in both seed configs. It
// returns v2ray's SOCKS address.
func startJoinedPeerClient(t *testing.T, hops []hopServer) string {
	t.Helper()
	tunnel := harness.RequirePeer(t, "ss-tunnel")
	v2ray := harness.RequirePeer(t, "v2ray")
	server := hops[0].addr() // what the next layer's tunnel dials
	i := 0
	for ; i < len(hops) && hops[i].protocol == "shadowsocks"; i++ {
		h := hops[i]
		host, port, _ := net.SplitHostPort(server)
		local := harness.FreePort(t)
		start(t, tunnel, "-s", host, "-p", port, "-b", "127.0.0.1", "-l", strconv.Itoa(local),
			"-L", hops[i+1].addr(), "-k", h.ss.Password, "-m", h.ss.Method)
		server = harness.LoopbackAddr(local)
		harness.WaitListening(t, server)
	}
	vmessHops := hops[i:]
	if i == 0 || len(vmessHops) == 0 {
		t.Fatal("the joined client needs Shadowsocks hops followed by VMess hops")
	}
	// Exit-most first: V2Ray's default outbound is the first.
	var outbounds []any
	for j := len(vmessHops) - 1; j >= 0; j-- {
		h := vmessHops[j]
		if h.protocol != "vmess" {
			t.Fatalf("hop %s follows a VMess hop; the joined client cannot serve it", h.tag)
		}
		host, portStr := h.listen, strconv.Itoa(h.port)
		if j == 0 {
			host, portStr, _ = net.SplitHostPort(server)
		}
		port, _ := strconv.Atoi(portStr)
		ob := map[string]any{
			"tag": h.tag, "protocol": "vmess",
			"settings": map[string]any{"vnext": []any{map[string]any{
				"address": host, "port": port,
				"users": []any{map[string]any{"id": h.vmess.Clients[0].ID, "alterId": h.vmess.Clients[0].AlterID}},
			}}},
		}
		if j > 0 {
			ob["proxySettings"] = map[string]any{"tag": vmessHops[j-1].tag}
		}
		outbounds = append(outbounds, ob)
	}
	socks := harness.FreePort(t)
	start(t, v2ray, "-config", harness.WriteConfig(t, map[string]any{
		"log":       map[string]any{"loglevel": "warning"},
		"inbounds":  []any{socksInbound(socks)},
		"outbounds": outbounds,
	}))
	return harness.LoopbackAddr(socks)
}
