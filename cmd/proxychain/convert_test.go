package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden files of internal/convert are what the command prints.
const convertTestdata = "../../internal/convert/testdata"

func TestConvertSeedChain(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(),
		"convert", "-f", "../../proxy/config/testdata/seed-chain.json", "--name", "us-exit")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(convertTestdata, "seed-chain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestConvertReportsWhatIsLeftOut checks that notes and warnings go to stderr, after the
// config loader's own, and that stdout holds only the YAML.
func TestConvertReportsWhatIsLeftOut(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(),
		"convert", "-f", filepath.Join(convertTestdata, "full.json"), "-name", "full", "-namespace", "ns")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(convertTestdata, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	wantErr := `warning: ignoring fields proxychain does not implement: outbounds[0].mux, outbounds[3].streamSettings
note: inbounds: left out (socks-in, inbounds[1]): the sidecar listens on its own inbounds
note: log: left out: the sidecar's log settings come from the operator
note: outbounds[4].tag: none given; tagged "outbound-4", since a ProxyChain names every outbound
note: routing.rules[1].ip[0]: geoip:private written as the 11 ranges it stands for
warning: outbounds[0].mux: left out: proxychain does not multiplex, each connection has its own stream
warning: outbounds[0].proxySettings.transportLayer: left out: it has no effect, the parent carries the stream as plain TCP either way
warning: outbounds[3].streamSettings: left out: a ProxyChain dials plain TCP with default socket options
warning: routing.rules[3]: left out: its network condition excludes TCP, the only traffic a ProxyChain routes
`
	if stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, wantErr)
	}
}

// Several -f merge as run's -c do: the outbounds of the first file come first.
func TestConvertMergesFiles(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "outbounds.json")
	second := filepath.Join(dir, "routing.json")
	os.WriteFile(first, []byte(`{"outbounds": [{"tag": "proxy", "protocol": "socks", "settings": {"servers": [{"address": "p", "port": 1080}]}}]}`), 0o600)
	os.WriteFile(second, []byte(`{"outbounds": [{"tag": "direct", "protocol": "freedom"}],
	  "routing": {"rules": [{"domain": ["domain:local"], "outboundTag": "direct"}]}}`), 0o600)
	code, stdout, stderr := runMain(t, context.Background(), "convert", "-f", first, "-f", second, "--name", "merged")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	// As in V2Ray, the second file's one outbound goes in front and becomes the default.
	want := `apiVersion: "proxychain.io/v1alpha1"
kind: "ProxyChain"
metadata:
  name: "merged"
spec:
  outbounds:
  - tag: "direct"
    protocol: "freedom"
  - tag: "proxy"
    protocol: "socks"
    settings:
      servers:
      - address: "p"
        port: 1080
  defaultOutbound: "direct"
  routing:
    rules:
    - domain:
      - "domain:local"
      outboundTag: "direct"
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.json")
	os.WriteFile(plain, []byte(`{"outbounds": [{"tag": "h", "protocol": "http",
	  "settings": {"servers": [{"address": "h", "port": 8080, "users": [{"user": "u", "pass": "p"}]}]}}]}`), 0o600)
	tls := filepath.Join(dir, "tls.json")
	os.WriteFile(tls, []byte(`{"outbounds": [{"tag": "h", "protocol": "http",
	  "settings": {"servers": [{"address": "h", "port": 443, "users": [{"user": "u", "pass": "p"}]}]},
	  "streamSettings": {"security": "tls"}}]}`), 0o600)
	tests := []struct {
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{[]string{"convert", "--name", "a"}, 2, "-f v2ray.json is required", ""},
		{[]string{"convert", "-f", plain}, 2, "--name is required", ""},
		{[]string{"convert", "-f", plain, "--name", "a", "extra"}, 2, `unexpected argument "extra"`, ""},
		{[]string{"convert", "-f", "/nonexistent/v2ray.json", "--name", "a"}, 1, "no such file or directory", ""},
		{[]string{"convert", "-f", tls, "--name", "a"}, 1,
			`proxychain convert: config: outbounds[0].streamSettings.security: "tls" is not implemented: proxychain dials its server without TLS`, ""},
		{[]string{"convert", "-f", plain, "--name", "Bad_Name"}, 1, `convert: --name: "Bad_Name": want a lower case DNS name`, ""},
		{[]string{"help", "convert"}, 0, "", "kubectl apply -f -"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runMain(t, context.Background(), tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.inStderr) || !strings.Contains(stdout, tt.inStdout) {
			t.Errorf("%q: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)",
				tt.args, code, tt.code, stdout, tt.inStdout, stderr, tt.inStderr)
		}
		if tt.code != 0 && stdout != "" {
			t.Errorf("%q: failed but printed %q", tt.args, stdout)
		}
	}
}
