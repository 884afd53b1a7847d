package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/proxychain/proxychain/proxy/shadowsocks"
	"github.com/proxychain/proxychain/test/harness"
)

// TestCurlThroughShadowsocksHops is the standalone job as a user runs it: `proxychain run`
// with a SOCKS inbound and two Shadowsocks hops (a stream cipher, as the seed uses, inside
// an AEAD one), each hop itself `proxychain run`, and curl asking for a host by name. The
// name reaches the exit hop unresolved (--socks5-hostname), which resolves it. The exit
// hop listens behind a wiretap, which must see the connection come from the first hop,
// and whose recording, read with the exit's key, must ask for the name.
func TestCurlThroughShadowsocksHops(t *testing.T) {
	skipShort(t)
	curl := harness.RequirePeer(t, "curl")

	payload := make([]byte, 3<<20)
	rand.Read(payload)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(payload)
	})}
	go target.Serve(ln)
	t.Cleanup(func() { target.Close() })

	// hop runs a Shadowsocks hop on ip:port that sends from ip.
	hop := func(ip string, port int, method string) {
		cfg := map[string]any{
			"inbounds": []any{map[string]any{"protocol": "shadowsocks", "listen": ip, "port": port,
				"settings": map[string]any{"method": method, "password": "curl-test"}}},
			"outbounds": []any{map[string]any{"protocol": "freedom", "sendThrough": ip}},
		}
		startProxychain(t, harness.WriteConfig(t, cfg))
		harness.WaitListening(t, hostPort(ip, port))
	}
	firstIP, firstPort := "127.0.0.21", harness.FreePort(t)
	hop(firstIP, firstPort, "aes-256-gcm")
	// The client dials the exit's address; the wiretap there sees who does.
	exitIP, exitPort, behindTap := "127.0.0.22", harness.FreePort(t), harness.FreePort(t)
	hop(exitIP, behindTap, "aes-256-cfb")
	tap := startWiretap(t, hostPort(exitIP, exitPort), hostPort(exitIP, behindTap), netip.MustParseAddr(firstIP))

	socksPort := harness.FreePort(t)
	client := map[string]any{
		"inbounds": []any{socksInbound(socksPort)},
		"outbounds": []any{
			map[string]any{"tag": "exit", "protocol": "shadowsocks", "proxySettings": map[string]any{"tag": "first"},
				"settings": map[string]any{"servers": []any{map[string]any{
					"address": exitIP, "port": exitPort, "method": "aes-256-cfb", "password": "curl-test"}}}},
			map[string]any{"tag": "first", "protocol": "shadowsocks",
				"settings": map[string]any{"servers": []any{map[string]any{
					"address": firstIP, "port": firstPort, "method": "aes-256-gcm", "password": "curl-test"}}}},
		},
	}
	startProxychain(t, harness.WriteConfig(t, client))
	harness.WaitListening(t, harness.LoopbackAddr(socksPort))

	_, targetPort, _ := net.SplitHostPort(ln.Addr().String())
	url := "http://localhost:" + targetPort + "/payload"
	var stderr bytes.Buffer
	cmd := exec.Command(curl, "-sS", "--fail", "--max-time", "30",
		"--socks5-hostname", harness.LoopbackAddr(socksPort), url)
	cmd.Stderr = &stderr
	body, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, stderr.Bytes())
	}
	if got, want := sha256.Sum256(body), sha256.Sum256(payload); got != want {
		t.Fatalf("curl got %d bytes with sha256 %x, want %d bytes with %x", len(body), got, len(payload), want)
	}
	checkTappedFrom(t, tap, 1)

	// Every process here shares one /etc/hosts, so a client that resolved the name itself
	// would reach the same target: only what the exit was asked for tells. The exit's
	// layer is the innermost, the one the first hop relays as it is.
	recs := tap.take()
	if len(recs) != 1 {
		t.Fatalf("the wiretap recorded %d connections, want 1", len(recs))
	}
	exitCipher, err := shadowsocks.NewCipher("aes-256-cfb", "curl-test")
	if err != nil {
		t.Fatal(err)
	}
	exit := shadowsocks.NewServer(exitCipher, shadowsocks.ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	req, err := exit.Handshake(context.Background(), harness.NewScriptConn(recs[0].up.Bytes()))
	if err != nil {
		t.Fatalf("reading what the exit hop was sent with its key: %v", err)
	}
	if want := "localhost:" + targetPort; req.Destination != want {
		t.Errorf("the exit hop was asked for %q, want the name unresolved: %q", req.Destination, want)
	}
}
