package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/test/harness"
)

// A wire is what every layer of a chain speaks: one Shadowsocks method for its
// Shadowsocks hops, one VMess header for its VMess hops.
type wire struct {
	name       string
	ssMethod   string
	ssPassword string
	alterID    int // 64: the legacy header, as the seed; 0: VMess AEAD
}

var (
	seedWire = wire{"seed", "aes-256-cfb", "password", 64}
	aeadWire = wire{"aead", "aes-128-gcm", "password", 0}
	// SIP022 takes the base64 pre-shared key as the password: 16 bytes for AES-128.
	wire2022 = wire{"2022", "2022-blake3-aes-128-gcm", "pTwvGGaHTz2nXkb6S5Yd2A==", 0}
)

// A chainSpec is one of the seed's client configs and the servers it names, from the
// client outward.
type chainSpec struct {
	name    string
	fixture string // in testdata
	hops    []string
}

var (
	// The seed's basic config: VMess (DOUS's server, 1.1.1.1:8888) through one
	// Shadowsocks hop ("transit", AliHK's server, 2.2.2.2:1024).
	chainBasic = chainSpec{"basic", "seed-basic.loopback.json", []string{"AliHK", "DOUS"}}
	chainSeed  = chainSpec{"chain", "seed-chain.loopback.json", []string{"AliHK", "AliSG", "DOSG", "DOUS"}}
)

// exitIP is where the destination must see every connection come from: DOUS sends
// from its own address in both chains.
const exitIP = "127.0.0.14"

// clientConfig returns the chain's client config for w: for the seed's wire the fixture
// file itself, otherwise the fixture with the method, password and alterId changed.
func (c chainSpec) clientConfig(t *testing.T, w wire) string {
	t.Helper()
	path := filepath.Join("testdata", c.fixture)
	if w == seedWire {
		return path
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{
		{`"method": "aes-256-cfb"`, `"method": "` + w.ssMethod + `"`},
		{`"password": "password"`, `"password": "` + w.ssPassword + `"`},
		{`"alterId": 64`, `"alterId": ` + strconv.Itoa(w.alterID)},
	} {
		if !bytes.Contains(b, []byte(r[0])) {
			t.Fatalf("%s has no %s to replace", c.fixture, r[0])
		}
		b = bytes.ReplaceAll(b, []byte(r[0]), []byte(r[1]))
	}
	out := filepath.Join(t.TempDir(), w.name+"-"+c.fixture)
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// peerClientConfig is the chain's client config for w as plain JSON, for v2ray and Xray
// (which take neither the seed's trailing comma nor, in v2ray's case, all of its
// comments): the fixture loaded by our config package and written back out, plus a
// SOCKS inbound.
func (c chainSpec) peerClientConfig(t *testing.T, w wire, socksPort int) string {
	t.Helper()
	cfg, _, err := config.Load(c.clientConfig(t, w))
	if err != nil {
		t.Fatal(err)
	}
	return harness.WriteConfig(t, map[string]any{
		"log":       map[string]any{"loglevel": "warning"},
		"inbounds":  []any{socksInbound(socksPort)},
		"outbounds": cfg.Outbounds,
	})
}

func socksInbound(port int) map[string]any {
	return map[string]any{
		"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": port,
		"settings": map[string]any{"auth": "noauth", "udp": false},
	}
}

// serverConfig is the shape of testdata/servers/*.json: one inbound, one freedom
// outbound sending from the hop's own address.
type serverConfig struct {
	Log       map[string]any   `json:"log"`
	Inbounds  []serverInbound  `json:"inbounds"`
	Outbounds []serverOutbound `json:"outbounds"`
}

type serverInbound struct {
	Tag      string          `json:"tag"`
	Listen   string          `json:"listen"`
	Port     int             `json:"port"`
	Protocol string          `json:"protocol"`
	Settings json.RawMessage `json:"settings"`
}

type serverOutbound struct {
	Protocol    string `json:"protocol"`
	SendThrough string `json:"sendThrough"`
}

type ssSettings struct {
	Method   string `json:"method"`
	Password string `json:"password"`
	Network  string `json:"network"`
}

type vmessSettings struct {
	Clients []vmessClient `json:"clients"`
	// Left out for VMess AEAD, so our server refuses legacy headers there and a chain
	// that passes proves AEAD was spoken.
	DisableInsecureEncryption *bool `json:"disableInsecureEncryption,omitempty"`
}

type vmessClient struct {
	ID      string `json:"id"`
	AlterID int    `json:"alterId,omitempty"`
}

// hopServer is one hop's server config, with a wire applied.
type hopServer struct {
	tag         string
	protocol    string
	listen      string
	port        int
	sendThrough string
	ss          ssSettings
	vmess       vmessSettings
}

func (h hopServer) addr() string { return hostPort(h.listen, h.port) }

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// loadHop reads testdata/servers/<name>.json and applies w.
func loadHop(t *testing.T, name string, w wire) hopServer {
	t.Helper()
	path := filepath.Join("testdata", "servers", name+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg serverConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(cfg.Inbounds) != 1 || len(cfg.Outbounds) != 1 || cfg.Outbounds[0].Protocol != "freedom" {
		t.Fatalf("%s: want one inbound and one freedom outbound", path)
	}
	in := cfg.Inbounds[0]
	h := hopServer{tag: in.Tag, protocol: in.Protocol, listen: in.Listen, port: in.Port, sendThrough: cfg.Outbounds[0].SendThrough}
	switch in.Protocol {
	case "shadowsocks":
		err = json.Unmarshal(in.Settings, &h.ss)
		h.ss.Method, h.ss.Password = w.ssMethod, w.ssPassword
	case "vmess":
		err = json.Unmarshal(in.Settings, &h.vmess)
		for i := range h.vmess.Clients {
			h.vmess.Clients[i].AlterID = w.alterID
		}
		if w.alterID == 0 {
			h.vmess.DisableInsecureEncryption = nil
		}
	default:
		t.Fatalf("%s: unexpected protocol %q", path, in.Protocol)
	}
	if err != nil || (h.protocol == "vmess" && len(h.vmess.Clients) == 0) {
		t.Fatalf("%s: bad settings: %v", path, err)
	}
	return h
}

// config is h as a V2Ray-format server config, which our binary, v2ray and Xray load.
func (h hopServer) config() map[string]any {
	var settings any = h.ss
	if h.protocol == "vmess" {
		settings = h.vmess
	}
	return map[string]any{
		"log": map[string]any{"loglevel": "warning"},
		"inbounds": []any{map[string]any{
			"tag": h.tag, "listen": h.listen, "port": h.port, "protocol": h.protocol, "settings": settings,
		}},
		"outbounds": []any{map[string]any{"protocol": "freedom", "sendThrough": h.sendThrough}},
	}
}

// Who serves the hops.
const (
	serveOurs  = "proxychain"
	servePeers = "peers" // ss-server for Shadowsocks, v2ray 4.34 for VMess: the seed's wire
	serveXray  = "xray"
)

// startHop runs h's server and waits until it listens.
func startHop(t *testing.T, h hopServer, impl string) {
	t.Helper()
	switch {
	case impl == serveOurs:
		startProxychain(t, harness.WriteConfig(t, h.config()))
	case impl == serveXray:
		start(t, harness.RequirePeer(t, "xray"), "run", "-c", harness.WriteConfig(t, h.config()))
	case impl == servePeers && h.protocol == "shadowsocks":
		// -b: ss-server's upstream connections leave from the hop's own address, as
		// sendThrough does for the others.
		start(t, harness.RequirePeer(t, "ss-server"), "-s", h.listen, "-p", strconv.Itoa(h.port),
			"-b", h.sendThrough, "-k", h.ss.Password, "-m", h.ss.Method)
	case impl == servePeers && h.protocol == "vmess":
		start(t, harness.RequirePeer(t, "v2ray"), "-config", harness.WriteConfig(t, h.config()))
	default:
		t.Fatalf("no %s server for %s", impl, h.protocol)
	}
	harness.WaitListening(t, h.addr())
}

// startChain runs every hop of c for w, served by impl. The hop after the first, and
// every VMess hop, listens on a free port behind a wiretap that takes the hop's address
// in the fixture. The one in front of hops[1] records exactly what the first hop relays
// upstream, and expects every connection from the first hop's own address (its
// sendThrough); those in front of VMess hops keep the first bytes of each connection,
// the VMess auth the client sent (checkVMessWire).
func startChain(t *testing.T, c chainSpec, w wire, impl string) ([]hopServer, *wiretap, map[string]*wiretap) {
	t.Helper()
	hops := make([]hopServer, len(c.hops))
	for i, name := range c.hops {
		hops[i] = loadHop(t, name, w)
	}
	taps := map[int]string{} // hop index -> the address its server really listens on
	for i, h := range hops {
		if i == 1 || h.protocol == "vmess" {
			h.port = harness.FreePort(t)
			taps[i] = h.addr()
		}
		startHop(t, h, impl)
	}
	var first *wiretap
	vmessTaps := map[string]*wiretap{}
	for i, backend := range taps {
		var from netip.Addr // where the hop in front sends from; none in front of the first
		if i > 0 {
			from = netip.MustParseAddr(hops[i-1].sendThrough)
		}
		tap := startWiretap(t, hops[i].addr(), backend, from)
		if i == 1 {
			first = tap
		}
		if hops[i].protocol == "vmess" {
			vmessTaps[hops[i].tag] = tap
		}
	}
	return hops, first, vmessTaps
}

// checkVMessWire asserts that every connection through each VMess hop opened with the
// auth of the header w names, the legacy one for alterId 64 and AEAD for 0, computed by
// the harness from the protocol. A server that takes either header (v2ray 4.34 does, for
// a user with alterId 64) would otherwise let a client speak the wrong one unseen. conns
// is how many connections the test made through the chain; with retries, at least that.
func checkVMessWire(t *testing.T, hops []hopServer, vmessTaps map[string]*wiretap, w wire, conns int, retries bool) {
	t.Helper()
	checked := 0
	for _, h := range hops {
		if h.protocol != "vmess" {
			continue
		}
		checked++
		// A connection that carried nothing is not a request: the joined client's
		// ss-tunnels open one through the chain when WaitListening probes them.
		var heads []*harness.Head
		for _, hd := range vmessTaps[h.tag].connHeads() {
			if b, _ := hd.Bytes(); len(b) > 0 {
				heads = append(heads, hd)
			}
		}
		if len(heads) < conns || (!retries && len(heads) != conns) {
			t.Errorf("VMess hop %s saw %d requests, want %d", h.tag, len(heads), conns)
		}
		if err := harness.CheckVMessHeads(heads, h.vmess.Clients[0].ID, w.alterID); err != nil {
			t.Errorf("VMess hop %s (alterId %d): %v", h.tag, w.alterID, err)
		}
	}
	if checked == 0 {
		t.Error("the chain has no VMess hop to check")
	}
}
