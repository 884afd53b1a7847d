package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMergesFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	inbound := filepath.Join(dir, "inbound.json")
	// The second file routes to an outbound only the first one defines.
	writeFile(t, inbound, `{
		"inbounds": [{"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": 1080}],
		"routing": {"rules": [{"type": "field", "domain": ["example.com"], "outboundTag": "AliHK"}]},
	}`)
	cfg, _, err := Load("testdata/seed-chain.json", inbound)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, o := range cfg.Outbounds {
		tags = append(tags, o.Tag)
	}
	if got, want := strings.Join(tags, ","), "DOUS,AliHK,AliSG,DOSG"; got != want {
		t.Errorf("outbounds %s, want %s (the seed's order, so DOUS stays the default)", got, want)
	}
	if len(cfg.Inbounds) != 1 || cfg.Inbounds[0].Tag != "socks-in" {
		t.Errorf("inbounds = %+v, want the second file's socks inbound", cfg.Inbounds)
	}
	if cfg.Routing == nil || len(cfg.Routing.Rules) != 1 || cfg.Routing.Rules[0].OutboundTag != "AliHK" {
		t.Errorf("routing = %+v, want the second file's rule", cfg.Routing)
	}
}

func TestLoadNamesTheFileThatFails(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [{"address": "127.0.0.1", "port": "x"}]}}]}`)
	_, _, err := Load("testdata/seed-basic.json", bad)
	if err == nil {
		t.Fatal("loaded a file with a bad port")
	}
	if msg := err.Error(); !strings.HasPrefix(msg, bad+": ") || !strings.Contains(msg, "outbounds[0].settings.servers[0].port: ") {
		t.Errorf("error %q, want the file name and the JSON path", msg)
	}
}

func TestLoadValidatesTheMergedConfig(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.json")
	writeFile(t, rules, `{"routing": {"rules": [{"type": "field", "port": "53", "outboundTag": "nowhere"}]}}`)
	_, _, err := Load("testdata/seed-basic.json", rules)
	if err == nil || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Errorf("error %v, want one naming the unknown outbound tag", err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
