package config

import (
	"fmt"
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

// The cases V2Ray 4.34 was run on (v2ray -config a.json -config b.json): what it logs as
// prepended, appended and updated, and which rules are left.
func TestLoadMergesAsV2Ray(t *testing.T) {
	dir := t.TempDir()
	file := func(name, data string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, data)
		return path
	}
	base := file("base.json", `{
		"inbounds": [{"tag": "in", "protocol": "socks", "port": 1080}, {"tag": "http", "protocol": "http", "port": 8080}],
		"outbounds": [{"tag": "direct", "protocol": "freedom"}, {"tag": "block", "protocol": "blackhole"}],
		"routing": {"rules": [{"port": "25", "outboundTag": "block"}]}}`)
	one := file("one.json", `{"outbounds": [{"tag": "proxy", "protocol": "freedom"}]}`)
	tail := file("20-tail.json", `{"outbounds": [{"tag": "last", "protocol": "freedom"}]}`)
	same := file("same.json", `{"inbounds": [{"tag": "in", "protocol": "socks", "port": 1081}],
		"outbounds": [{"tag": "block", "protocol": "blackhole", "settings": {"response": {"type": "http"}}}]}`)
	several := file("several.json", `{"outbounds": [{"tag": "a", "protocol": "freedom"}, {"tag": "b", "protocol": "freedom"}],
		"routing": {"rules": [{"port": "53", "outboundTag": "a"}]}}`)
	newInbound := file("inbound.json", `{"inbounds": [{"tag": "extra", "protocol": "socks", "port": 1082}]}`)

	tags := func(cfg *Config) string {
		var out []string
		for _, o := range cfg.Outbounds {
			out = append(out, o.Tag)
		}
		for _, in := range cfg.Inbounds {
			out = append(out, fmt.Sprintf("%s:%d", in.Tag, in.Port))
		}
		for _, r := range cfg.Routing.Rules {
			out = append(out, string(r.Port)+"->"+r.OutboundTag)
		}
		return strings.Join(out, " ")
	}
	for _, tt := range []struct {
		files []string
		want  string
	}{
		{[]string{base, one}, "proxy direct block in:1080 http:8080 25->block"},
		{[]string{base, tail}, "direct block last in:1080 http:8080 25->block"},
		{[]string{base, same}, "direct block in:1081 http:8080 25->block"},
		{[]string{base, several}, "a b in:1080 http:8080 53->a"},
		{[]string{base, newInbound}, "direct block in:1080 http:8080 extra:1082 25->block"},
	} {
		cfg, _, err := Load(tt.files...)
		if err != nil {
			t.Fatal(err)
		}
		if got := tags(cfg); got != tt.want {
			t.Errorf("%s: got %q, want %q", filepath.Base(tt.files[1]), got, tt.want)
		}
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
	want := "testdata/seed-basic.json + " + rules + ` merged: config: routing.rules[0].outboundTag: no outbound tagged "nowhere"`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
