package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The seed's client config addresses and ports, which the standalone flow moves to the
// hops' loopback addresses.
var (
	seedAddresses = map[string]string{
		"AliHK": `"address": "2.2.2.2"`,
		"AliSG": `"address": "3.3.3.3"`,
		"DOSG":  `"address": "4.4.4.4"`,
		"DOUS":  `"address": "1.1.1.1"`,
	}
	seedPorts = map[string]string{
		"AliHK": `"port": 1024`,
		"AliSG": `"port": 3442`,
		"DOSG":  `"port": 8462`,
		"DOUS":  `"port": 8888`,
	}
)

// standalone runs the data plane alone: the seed's own client config, comments and
// trailing comma included, with a SOCKS inbound merged in, and curl through it.
func (d *demo) standalone() error {
	target, err := d.startTarget()
	if err != nil {
		return err
	}
	addrs, err := d.startHops()
	if err != nil {
		return err
	}
	clientConfig, err := os.ReadFile(filepath.Join(d.root, "proxy", "config", "testdata", "seed-chain.json"))
	if err != nil {
		return err
	}
	for _, h := range hops {
		a := addrs[h.tag]
		clientConfig = bytes.Replace(clientConfig, []byte(seedAddresses[h.tag]), []byte(fmt.Sprintf(`"address": "%s"`, a.IP)), 1)
		clientConfig = bytes.Replace(clientConfig, []byte(seedPorts[h.tag]), []byte(fmt.Sprintf(`"port": %d`, a.Port)), 1)
	}
	clientPath := filepath.Join(d.work, "client.json")
	if err := os.WriteFile(clientPath, clientConfig, 0o600); err != nil {
		return err
	}
	socksPort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	inboundPath := filepath.Join(d.work, "inbound.json")
	if err := writeJSON(inboundPath, map[string]any{"inbounds": []any{map[string]any{
		"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": socksPort}}}); err != nil {
		return err
	}
	d.step("the client: the seed's 4-hop config (addresses moved to loopback) + a SOCKS inbound on 127.0.0.1:%d", socksPort)
	out, err := exec.CommandContext(d.ctx, d.bin, "chain", "-c", clientPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("proxychain chain: %w\n%s", err, out)
	}
	fmt.Print(indent(string(out)))
	if err := d.start("client", nil, d.bin, "run", "-c", clientPath, "-c", inboundPath, "-metrics-addr", ""); err != nil {
		return err
	}
	if err := waitListening(d.ctx, fmt.Sprintf("127.0.0.1:%d", socksPort)); err != nil {
		return fmt.Errorf("client: %w", err)
	}

	d.step("curl --socks5-hostname 127.0.0.1:%d %s", socksPort, target.url)
	began := time.Now()
	curl := exec.CommandContext(d.ctx, "curl", "-sS", "--fail", "--max-time", "30",
		"--socks5-hostname", fmt.Sprintf("127.0.0.1:%d", socksPort), target.url)
	body, err := curl.Output()
	if err != nil {
		return fmt.Errorf("curl through the chain: %w", err)
	}
	return target.check("client -> AliHK -> AliSG -> DOSG -> DOUS -> target", body, time.Since(began), addrs[exitTag])
}
