// Command demo runs proxychain's main job on loopback, as a user would: it starts one
// `proxychain run` server per hop of the seed's 4-hop chain, a client `proxychain run`
// loaded with the seed's own client config (addresses moved to loopback) plus a SOCKS
// inbound, and fetches a page from a local target through it with curl. It prints the
// path, the bytes and their hash, then tears everything down.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const payloadSize = 4 << 20

type hop struct {
	tag, protocol string
	inbound       map[string]any // settings of the hop's server inbound
}

// The seed's hops, with the seed's credentials.
var hops = []hop{
	{"AliHK", "shadowsocks", map[string]any{"method": "aes-256-cfb", "password": "password"}},
	{"AliSG", "shadowsocks", map[string]any{"method": "aes-256-cfb", "password": "password"}},
	{"DOSG", "vmess", map[string]any{"clients": []any{map[string]any{"id": "b27c24ab-2b5a-433e-902c-33f1168a7902", "alterId": 64}}, "disableInsecureEncryption": false}},
	{"DOUS", "vmess", map[string]any{"clients": []any{map[string]any{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce", "alterId": 64}}, "disableInsecureEncryption": false}},
}

// The seed's client config addresses, in the order the demo replaces them.
var seedAddresses = map[string]string{
	"AliHK": `"address": "2.2.2.2"`,
	"AliSG": `"address": "3.3.3.3"`,
	"DOSG":  `"address": "4.4.4.4"`,
	"DOUS":  `"address": "1.1.1.1"`,
}
var seedPorts = map[string]string{
	"AliHK": `"port": 1024`,
	"AliSG": `"port": 3442`,
	"DOSG":  `"port": 8462`,
	"DOUS":  `"port": 8888`,
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin", "proxychain")
	work, err := os.MkdirTemp("", "proxychain-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("starting a target web server on loopback")
	payload := make([]byte, payloadSize)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	targetAddr, remotes, closeTarget, err := startTarget(payload)
	if err != nil {
		return err
	}
	defer closeTarget()

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	start := func(name, config string) error {
		cmd := exec.CommandContext(ctx, bin, "run", "-c", config)
		logf, err := os.Create(filepath.Join(work, name+".log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
		return nil
	}

	clientConfig, err := os.ReadFile(filepath.Join(root, "proxy", "config", "testdata", "seed-chain.json"))
	if err != nil {
		return err
	}
	hopAddrs := map[string]string{}
	for i, h := range hops {
		// Each hop has its own loopback address and sends from it, so the target can tell
		// which hop a connection came from.
		ip := fmt.Sprintf("127.0.0.%d", 11+i)
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := net.JoinHostPort(ip, fmt.Sprint(port))
		hopAddrs[h.tag] = addr
		cfg := map[string]any{
			"log":       map[string]any{"loglevel": "warning"},
			"inbounds":  []any{map[string]any{"tag": h.tag, "protocol": h.protocol, "listen": ip, "port": port, "settings": h.inbound}},
			"outbounds": []any{map[string]any{"protocol": "freedom", "sendThrough": ip}},
		}
		path := filepath.Join(work, h.tag+".json")
		if err := writeJSON(path, cfg); err != nil {
			return err
		}
		step("starting hop %-5s (%s server) on %s", h.tag, h.protocol, addr)
		if err := start(h.tag, path); err != nil {
			return err
		}
		clientConfig = bytes.Replace(clientConfig, []byte(seedAddresses[h.tag]), []byte(`"address": "`+ip+`"`), 1)
		clientConfig = bytes.Replace(clientConfig, []byte(seedPorts[h.tag]), []byte(fmt.Sprintf(`"port": %d`, port)), 1)
	}
	for _, h := range hops {
		if err := waitListening(ctx, hopAddrs[h.tag]); err != nil {
			return fmt.Errorf("hop %s: %w (log: %s)", h.tag, err, filepath.Join(work, h.tag+".log"))
		}
	}

	clientPath := filepath.Join(work, "client.json")
	if err := os.WriteFile(clientPath, clientConfig, 0o600); err != nil {
		return err
	}
	socksPort, err := freePort()
	if err != nil {
		return err
	}
	inboundPath := filepath.Join(work, "inbound.json")
	if err := writeJSON(inboundPath, map[string]any{"inbounds": []any{map[string]any{
		"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": socksPort}}}); err != nil {
		return err
	}
	step("the client: the seed's 4-hop config (addresses moved to loopback) + a SOCKS inbound on 127.0.0.1:%d", socksPort)
	out, err := exec.CommandContext(ctx, bin, "chain", "-c", clientPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("proxychain chain: %w\n%s", err, out)
	}
	fmt.Printf("%s", indent(string(out)))
	cmd := exec.CommandContext(ctx, bin, "run", "-c", clientPath, "-c", inboundPath)
	logf, _ := os.Create(filepath.Join(work, "client.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	procs = append(procs, cmd)
	if err := waitListening(ctx, fmt.Sprintf("127.0.0.1:%d", socksPort)); err != nil {
		return fmt.Errorf("client: %w (log: %s)", err, filepath.Join(work, "client.log"))
	}

	url := "http://" + targetAddr + "/payload"
	step("curl --socks5-hostname 127.0.0.1:%d %s", socksPort, url)
	began := time.Now()
	curl := exec.CommandContext(ctx, "curl", "-sS", "--fail", "--max-time", "30",
		"--socks5-hostname", fmt.Sprintf("127.0.0.1:%d", socksPort), url)
	body, err := curl.Output()
	if err != nil {
		return fmt.Errorf("curl through the chain: %w", err)
	}
	elapsed := time.Since(began)
	got := sha256.Sum256(body)
	fmt.Printf("\n  path:    client -> AliHK -> AliSG -> DOSG -> DOUS -> target\n")
	fmt.Printf("  bytes:   %d in %v\n", len(body), elapsed.Round(time.Millisecond))
	fmt.Printf("  sha256:  %s\n", hex.EncodeToString(got[:]))
	if got != want {
		return fmt.Errorf("payload hash mismatch: want %s", hex.EncodeToString(want[:]))
	}
	fmt.Println("  payload hash matches what the target served")
	exitIP, _, _ := net.SplitHostPort(hopAddrs["DOUS"])
	for _, r := range remotes() {
		host, _, _ := net.SplitHostPort(r)
		if host != exitIP {
			return fmt.Errorf("the target saw a connection from %s, not from DOUS (%s)", r, exitIP)
		}
	}
	fmt.Printf("  the target saw the request come from %s: DOUS, the last hop, not the client\n", exitIP)
	step("tearing down")
	return nil
}

// startTarget serves payload over HTTP and remembers where each request came from.
func startTarget(payload []byte) (addr string, remotes func() []string, closeFn func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	var mu sync.Mutex
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RemoteAddr)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})}
	go srv.Serve(ln)
	remotes = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	return ln.Addr().String(), remotes, func() { srv.Close() }, nil
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// waitListening polls addr until it accepts a connection or 10 seconds pass.
func waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s is not listening: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
