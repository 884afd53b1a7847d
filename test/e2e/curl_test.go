package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
)

// TestCurlThroughShadowsocksHops is the standalone job as a user runs it: `proxychain run`
// with a SOCKS inbound and two Shadowsocks hops (a stream cipher, as the seed uses, inside
// an AEAD one), each hop itself `proxychain run`, and curl asking for a host by name. The
// name reaches the exit hop unresolved (--socks5-hostname), which resolves it.
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

	hop := func(ip, method string) (string, int) {
		port := harness.FreePort(t)
		cfg := map[string]any{
			"inbounds": []any{map[string]any{"protocol": "shadowsocks", "listen": ip, "port": port,
				"settings": map[string]any{"method": method, "password": "curl-test"}}},
			"outbounds": []any{map[string]any{"protocol": "freedom"}},
		}
		startProxychain(t, harness.WriteConfig(t, cfg))
		harness.WaitListening(t, net.JoinHostPort(ip, strconv.Itoa(port)))
		return ip, port
	}
	firstIP, firstPort := hop("127.0.0.21", "aes-256-gcm")
	exitIP, exitPort := hop("127.0.0.22", "aes-256-cfb")

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
}
