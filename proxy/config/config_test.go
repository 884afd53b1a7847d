package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// seeds are the two configs of the spec, copied byte for byte.
var seeds = []string{"testdata/seed-basic.json", "testdata/seed-chain.json"}

func TestSeedsLoadVerbatim(t *testing.T) {
	for _, path := range seeds {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, warnings, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if len(cfg.Outbounds) < 2 {
				t.Fatalf("got %d outbounds", len(cfg.Outbounds))
			}
		})
	}
	cfg, _, err := Load("testdata/seed-chain.json")
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, o := range cfg.Outbounds {
		tags = append(tags, o.Tag+"<-"+proxyTag(o)+"@"+strings.Join(o.ServerAddresses(), ","))
	}
	want := []string{"DOUS<-DOSG@1.1.1.1:8888", "AliHK<-@2.2.2.2:1024", "AliSG<-AliHK@3.3.3.3:3442", "DOSG<-AliSG@4.4.4.4:8462"}
	if !reflect.DeepEqual(tags, want) {
		t.Errorf("outbounds = %v, want %v", tags, want)
	}
	ss := cfg.Outbounds[1].Settings.(*ShadowsocksOutboundSettings).Servers[0]
	if ss.Method != "aes-256-cfb" || ss.Password != "password" || ss.OTA {
		t.Errorf("AliHK server = %+v", ss)
	}
	user := cfg.Outbounds[0].Settings.(*VMessOutboundSettings).Vnext[0].Users[0]
	if user.ID != "b12614c5-5ca4-4eba-a215-c61d642116ce" || user.AlterID != 64 {
		t.Errorf("DOUS user = %+v", user)
	}
}

func proxyTag(o OutboundConfig) string {
	if o.ProxySettings == nil {
		return ""
	}
	return o.ProxySettings.Tag
}

// specCopy is the spec as the repository carries it: docs/proxy-forwarding.md, byte for
// byte the seed's shared/seed/proxy-forwarding.md when it was added.
const specCopy = "../../docs/proxy-forwarding.md"

// seedSpecPaths are where the seed's own spec is, beside a checkout (as CI lays it out)
// or one level further up.
var seedSpecPaths = []string{"../../../shared/seed/proxy-forwarding.md", "../../../../shared/seed/proxy-forwarding.md"}

var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestSeedsMatchSpec re-extracts the JSON blocks from the spec and checks the testdata
// copies are byte-exact. It reads the repository's copy of the spec, so it runs in every
// checkout; the copy's blocks are in turn compared with the seed's spec when that is
// beside the checkout.
func TestSeedsMatchSpec(t *testing.T) {
	spec, err := os.ReadFile(specCopy)
	if err != nil {
		t.Fatal(err)
	}
	blocks := jsonBlock.FindAllSubmatch(spec, -1)
	if len(blocks) != len(seeds) {
		t.Fatalf("%s has %d json blocks, want %d", specCopy, len(blocks), len(seeds))
	}
	for i, path := range seeds {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, blocks[i][1]) {
			t.Errorf("%s differs from block %d of %s", path, i, specCopy)
		}
	}

	t.Run("copy matches the seed", func(t *testing.T) {
		var seed []byte
		for _, p := range seedSpecPaths {
			if b, err := os.ReadFile(p); err == nil {
				seed = b
				break
			}
		}
		if seed == nil {
			// Outside the repository, so a checkout may well not have it; the test above
			// compares the testdata with the repository's copy either way.
			t.Skipf("SEED SPEC MISSING: shared/seed/proxy-forwarding.md is not beside the checkout (%v); %s NOT compared with it",
				seedSpecPaths, specCopy)
		}
		seedBlocks := jsonBlock.FindAllSubmatch(seed, -1)
		if len(seedBlocks) != len(blocks) {
			t.Fatalf("the seed's spec has %d json blocks, %s has %d", len(seedBlocks), specCopy, len(blocks))
		}
		for i := range blocks {
			if !bytes.Equal(blocks[i][1], seedBlocks[i][1]) {
				t.Errorf("block %d of %s differs from the seed's spec", i, specCopy)
			}
		}
	})
}

func TestMarshalRoundTrip(t *testing.T) {
	inputs := append([]string{}, seeds...)
	inputs = append(inputs, "testdata/full.json")
	for _, path := range inputs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := first.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			second, warnings, err := Parse(out)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(first, second) {
				t.Errorf("round trip changed the config:\n%s", out)
			}
			if len(warnings) != 0 {
				t.Errorf("re-parse warnings: %v", warnings)
			}
		})
	}
}

func TestDecodeErrorsNamePaths(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			"number wanted",
			`{"outbounds": [{"protocol": "freedom"}, {"protocol": "freedom"}, {"protocol": "shadowsocks", "settings": {"servers": [{"port": "x"}]}}]}`,
			`config: outbounds[2].settings.servers[0].port: want a number, got "x"`,
		},
		{
			"string wanted",
			`{"outbounds": [{"protocol": "freedom", "tag": 5}]}`,
			`config: outbounds[0].tag: want a string, got 5`,
		},
		{
			"array wanted",
			`{"outbounds": {"protocol": "freedom"}}`,
			`config: outbounds: want an array, got an object`,
		},
		{
			"object wanted",
			`{"outbounds": [{"protocol": "freedom", "proxySettings": "AliHK"}]}`,
			`config: outbounds[0].proxySettings: want an object, got "AliHK"`,
		},
		{
			"bool wanted",
			`{"outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [{"ota": "no"}]}}]}`,
			`config: outbounds[0].settings.servers[0].ota: want true or false, got "no"`,
		},
		{
			"whole number wanted",
			`{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"port": 1.5}]}}]}`,
			`config: outbounds[0].settings.vnext[0].port: want a whole number that fits in 64 bits, got 1.5`,
		},
		{
			"inbound port",
			`{"inbounds": [{"protocol": "socks", "port": "10-20"}], "outbounds": [{"protocol": "freedom"}]}`,
			`config: inbounds[0].port: want a single port number, got "10-20" (port ranges are not supported)`,
		},
		{
			"unknown protocol",
			`{"outbounds": [{"protocol": "freedom"}, {"protocol": "vless", "settings": {}}]}`,
			`config: outbounds[1].protocol: unknown protocol "vless"`,
		},
		{
			"missing protocol",
			`{"inbounds": [{"port": 1080}], "outbounds": [{"protocol": "freedom"}]}`,
			`config: inbounds[0].protocol: required`,
		},
		{
			"top level not an object",
			`[]`,
			`config: want an object, got an array`,
		},
		{
			"long value is shortened",
			`{"outbounds": [{"protocol": "freedom", "tag": ["a"], "sendThrough": 1}], "log": {"loglevel": 1234567890123456789012345678901234567890123}}`,
			`config: outbounds[0].tag: want a string, got an array`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Errorf("error is not a *PathError")
			}
		})
	}
}

func TestUnknownFieldsAreOneWarning(t *testing.T) {
	in := `{
  "log": {"loglevel": "info", "access": "/var/log/a.log"},
  "dns": {"servers": ["1.1.1.1"]},
  "outbounds": [
    {"protocol": "freedom", "mux": {"enabled": true}, "tag": "direct", "settingz": {}},
    {"protocol": "blackhole", "tag": "block", "mux": {"enabled": false},
     "streamSettings": {"network": "tcp", "security": "none"}},
    {"protocol": "vmess", "tag": "ws", "settings": {"vnext": [{"address": "a", "port": 1,
      "users": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce", "level": 0, "testsEnabled": "x"}]}]},
     "streamSettings": {"network": "tcp", "sockopt": {"mark": 255}}}
  ],
  "policy": {"levels": {"0": {"connIdle": 60, "statsUserUplink": true, "bufferSize": 4},
                        "1": {"connIdle": 5}},
             "system": {"statsInboundUplink": true}}
}`
	_, warnings, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Warning{{Message: "ignoring fields proxychain does not implement: " +
		"dns, log.access, outbounds[0].mux, outbounds[0].settingz, " +
		"outbounds[2].settings.vnext[0].users[0].testsEnabled, outbounds[2].streamSettings, " +
		"policy.levels.0.bufferSize, policy.levels.0.statsUserUplink, policy.levels.1, policy.system"}}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings:\n got %v\nwant %v", warnings, want)
	}
}

func TestFieldNamesAreCaseInsensitive(t *testing.T) {
	cfg, warnings, err := Parse([]byte(`{"Outbounds": [{"Protocol": "freedom", "TAG": "x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 || cfg.Outbounds[0].Tag != "x" {
		t.Errorf("got %+v, warnings %v", cfg.Outbounds, warnings)
	}
}

// V2Ray reads protocol, method-like and level names in any case; so do we, and an
// unknown log level falls back to warning as in V2Ray.
func TestNamesInAnyCase(t *testing.T) {
	cfg, warnings, err := Parse([]byte(`{"log": {"loglevel": "Warnning"},
	  "inbounds": [{"protocol": "VMess", "port": 1, "settings": {"clients": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce", "security": "Auto"}]}}],
	  "outbounds": [
	    {"protocol": "Freedom", "tag": "d", "settings": {"domainStrategy": "useipv4"}},
	    {"protocol": "BLACKHOLE", "settings": {"response": {"type": "HTTP"}}},
	    {"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce", "security": "AES-128-GCM"}]}]}}],
	  "routing": {"domainStrategy": "asis", "rules": [{"type": "Field", "port": "53", "outboundTag": "d"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Warning{{Path: "log.loglevel", Message: `unknown level "Warnning": using "warning", as V2Ray does`}}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %v, want %v", warnings, want)
	}
	got := []string{cfg.Log.Loglevel, cfg.Inbounds[0].Protocol, cfg.Inbounds[0].Settings.(*VMessInboundSettings).Clients[0].Security,
		cfg.Outbounds[0].Protocol, cfg.Outbounds[0].Settings.(*FreedomSettings).DomainStrategy,
		cfg.Outbounds[1].Protocol, cfg.Outbounds[1].Settings.(*BlackholeSettings).Response.Type,
		cfg.Outbounds[2].Settings.(*VMessOutboundSettings).Vnext[0].Users[0].Security, cfg.Routing.Rules[0].Type}
	if w := []string{"warning", "vmess", "auto", "freedom", "UseIPv4", "blackhole", "http", "aes-128-gcm", "field"}; !reflect.DeepEqual(got, w) {
		t.Errorf("got %q, want %q", got, w)
	}
}

func TestValidateErrors(t *testing.T) {
	const ss = `{"protocol": "shadowsocks", "settings": {"servers": [{"address": "2.2.2.2", "port": 1024, "method": "aes-256-gcm", "password": "p"}]}}`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			"ota is refused",
			`{"outbounds": [{"protocol": "freedom"}, {"protocol": "shadowsocks", "settings": {"servers": [{"address": "2.2.2.2", "port": 1024, "method": "aes-256-gcm", "password": "p", "ota": true}]}}]}`,
			[]string{`config: outbounds[1].settings.servers[0].ota: one-time auth was removed from Shadowsocks (SIP004 AEAD replaced it); set "ota": false`},
		},
		{
			"no outbounds",
			`{"inbounds": []}`,
			[]string{"config: outbounds: at least one outbound is required"},
		},
		{
			"server fields",
			`{"outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [{"port": 70000}]}}]}`,
			[]string{
				"config: outbounds[0].settings.servers[0].address: required",
				"config: outbounds[0].settings.servers[0].port: want a port from 1 to 65535, got 70000",
				"config: outbounds[0].settings.servers[0].method: required",
				`config: outbounds[0].settings.servers[0].password: required (or "passwordFile")`,
			},
		},
		{
			"password and file",
			`{"outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [{"address": "a", "port": 1, "method": "m", "password": "p", "passwordFile": "f"}]}}]}`,
			[]string{`config: outbounds[0].settings.servers[0].password: set only one of "password" and "passwordFile"`},
		},
		{
			"vmess id and idFile",
			`{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "x", "idFile": "y", "security": "rc4"}]}]}}]}`,
			[]string{
				`config: outbounds[0].settings.vnext[0].users[0].id: set only one of "id" and "idFile"`,
				`config: outbounds[0].settings.vnext[0].users[0].security: want one of "auto", "aes-128-gcm", "chacha20-poly1305", "none", "zero", got "rc4"`,
			},
		},
		{
			"vmess without users or servers",
			`{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1}]}}, {"protocol": "vmess"}]}`,
			[]string{
				"config: outbounds[0].settings.vnext[0].users: at least one user is required",
				"config: outbounds[1].settings.vnext: at least one server is required",
			},
		},
		{
			"socks accounts",
			`{"outbounds": [{"protocol": "socks", "settings": {"servers": [{"address": "a", "port": 1, "users": [{"pass": "p", "passFile": "f"}]}]}}]}`,
			[]string{
				"config: outbounds[0].settings.servers[0].users[0].user: required",
				`config: outbounds[0].settings.servers[0].users[0].pass: set only one of "pass" and "passFile"`,
			},
		},
		{
			"freedom and blackhole",
			`{"outbounds": [{"protocol": "freedom", "settings": {"domainStrategy": "UseDNS", "redirect": "nope"}}, {"protocol": "blackhole", "settings": {"response": {"type": "html"}}}, {"protocol": "freedom", "sendThrough": "eth0"},
			  {"protocol": "freedom", "settings": {"redirect": "1.2.3.4:+80"}}]}`,
			[]string{
				`config: outbounds[0].settings.domainStrategy: want one of "AsIs", "UseIP", "UseIPv4", "UseIPv6", got "UseDNS"`,
				"config: outbounds[0].settings.redirect: address nope: missing port in address",
				`config: outbounds[1].settings.response.type: want "none" or "http", got "html"`,
				`config: outbounds[2].sendThrough: want an IP address, got "eth0"`,
				// Atoi takes a sign; the freedom outbound never did.
				`config: outbounds[3].settings.redirect: want host:port with a port from 0 to 65535, got "1.2.3.4:+80"`,
			},
		},
		{
			"streamSettings that change the wire",
			`{"inbounds": [{"protocol": "socks", "port": 1080, "streamSettings": {"security": "tls"}}],
			  "outbounds": [
			    {"protocol": "http", "tag": "h", "settings": {"servers": [{"address": "a", "port": 443, "users": [{"user": "u", "pass": "p"}]}]},
			     "streamSettings": {"network": "ws", "security": "TLS"}},
			    {"protocol": "socks", "settings": {"servers": [{"address": "a", "port": 1}]}, "proxySettings": {"tag": "h"},
			     "streamSettings": {"security": "tls"}},
			    {"protocol": "socks", "settings": {"servers": [{"address": "a", "port": 1}]}, "proxySettings": {"tag": "h", "transportLayer": true},
			     "streamSettings": {"tcpSettings": {"header": {"type": "http"}}}},
			    {"protocol": "freedom", "streamSettings": {"network": "Raw", "security": "none", "sockopt": {"mark": 1}}}]}`,
			[]string{
				`config: outbounds[0].streamSettings.network: "ws" is not implemented: proxychain dials its server over plain TCP; remove it if the peer also takes plain TCP`,
				`config: outbounds[0].streamSettings.security: "TLS" is not implemented: proxychain dials its server without TLS, so what it should protect would go in the clear; remove it if the peer also takes plain TCP`,
				`config: outbounds[2].streamSettings.tcpSettings.header.type: "http" is not implemented: proxychain dials its server with no obfuscation header; remove it if the peer takes none`,
				`config: inbounds[0].streamSettings.security: "tls" is not implemented: proxychain serves without TLS, so what it should protect would go in the clear; remove it if the peer also takes plain TCP`,
			},
		},
		{
			"socks credentials over 255 bytes",
			`{"inbounds": [{"protocol": "socks", "port": 1080, "settings": {"auth": "password", "accounts": [{"user": "u", "pass": "` + strings.Repeat("p", 256) + `"}]}}],
			  "outbounds": [{"protocol": "socks", "settings": {"servers": [{"address": "a", "port": 1, "users": [{"user": "` + strings.Repeat("é", 128) + `", "pass": "p"}]}]}}]}`,
			[]string{
				"config: outbounds[0].settings.servers[0].users[0].user: 256 bytes, over the 255 SOCKS5 carries",
				"config: inbounds[0].settings.accounts[0].pass: 256 bytes, over the 255 SOCKS5 carries",
			},
		},
		{
			"inbounds",
			`{"inbounds": [
			  {"protocol": "socks", "tag": "in", "port": 0, "listen": "localhost", "settings": {"auth": "password"}},
			  {"protocol": "socks", "tag": "in", "port": 1080, "settings": {"auth": "gssapi"}},
			  {"protocol": "shadowsocks", "port": 8388, "settings": {"password": "p", "ota": true}},
			  {"protocol": "vmess", "port": 10086, "settings": {}},
			  {"protocol": "dokodemo-door", "port": 53, "settings": {"address": "1.1.1.1"}},
			  {"protocol": "redirect", "port": 15001},
			  {"protocol": "dokodemo-door", "port": 15002, "settings": {"followRedirect": true}}
			], "outbounds": [` + ss + `]}`,
			[]string{
				"config: inbounds[0].port: want a port from 1 to 65535, got 0",
				`config: inbounds[0].listen: want an IP address, got "localhost"`,
				`config: inbounds[0].settings.accounts: at least one account is required with "auth": "password"`,
				`config: inbounds[1].tag: duplicate tag "in" (also inbounds[0])`,
				`config: inbounds[1].settings.auth: want "noauth" or "password", got "gssapi"`,
				"config: inbounds[2].settings.method: required",
				`config: inbounds[2].settings.ota: one-time auth was removed from Shadowsocks (SIP004 AEAD replaced it); set "ota": false`,
				"config: inbounds[3].settings.clients: at least one client is required",
				"config: inbounds[4].settings.port: want a port from 1 to 65535, got 0",
			},
		},
		{
			"routing",
			`{"outbounds": [` + ss + `, {"protocol": "freedom", "tag": "direct"}], "routing": {"rules": [
			  {"type": "field", "ip": ["10.0.0.0/8"], "outboundTag": "direct"},
			  {"type": "chinaip", "port": "53", "outboundTag": "dns"},
			  {"domain": ["example.com"], "balancerTag": "b"},
			  {"outboundTag": "direct"}
			]}}`,
			[]string{
				`config: routing.rules[1].type: want "field", got "chinaip"`,
				`config: routing.rules[1].outboundTag: no outbound tagged "dns"`,
				"config: routing.rules[2].outboundTag: required (balancers are not implemented)",
				"config: routing.rules[3]: a rule needs at least one of domain, ip, port, network or inboundTag",
			},
		},
		{
			"rule conditions",
			`{"outbounds": [` + ss + `, {"protocol": "freedom", "tag": "direct"}], "routing": {"rules": [
			  {"domain": ["geosite:cn", ""], "ip": ["geoip:cn", "10.0.0.0/33"], "port": "80;443", "outboundTag": "direct"},
			  {"network": "tcp,quic", "outboundTag": "direct"},
			  {"source": ["10.1.2.3"], "sourcePort": "1024-65535", "user": ["a@b"], "protocol": ["http"], "attrs": "x", "port": "80", "outboundTag": "direct"},
			  {"source": null, "network": "udp", "port": 443, "outboundTag": "direct"}
			]}}`,
			[]string{
				`config: routing.rules[0].domain[0]: "geosite:cn": geosite lists are not supported; list the domains instead`,
				"config: routing.rules[0].domain[1]: empty domain pattern",
				`config: routing.rules[0].ip[0]: "geoip:cn": geoip lists are not supported (only geoip:private); list the CIDRs instead`,
				`config: routing.rules[0].ip[1]: want an IP address or CIDR, got "10.0.0.0/33"`,
				`config: routing.rules[0].port: want ports like "53", "1000-2000" or "80,443", got "80;443"`,
				`config: routing.rules[1].network: want "tcp" or "udp", got "quic"`,
				"config: routing.rules[2].source: not implemented, and ignoring it would widen the rule; remove the condition or the rule",
				"config: routing.rules[2].sourcePort: not implemented, and ignoring it would widen the rule; remove the condition or the rule",
				"config: routing.rules[2].user: not implemented, and ignoring it would widen the rule; remove the condition or the rule",
				"config: routing.rules[2].protocol: not implemented, and ignoring it would widen the rule; remove the condition or the rule",
				"config: routing.rules[2].attrs: not implemented, and ignoring it would widen the rule; remove the condition or the rule",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadResolvesSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	abs := filepath.Join(dir, "abs-id")
	write("abs-id", "b12614c5-5ca4-4eba-a215-c61d642116ce")
	write("secrets/ss", "  s3cret\n")
	write("secrets/socks", "pw\n")
	write("secrets/in", "inbound-pw")
	cfgJSON := `{
	  "inbounds": [{"protocol": "shadowsocks", "port": 8388, "settings": {"method": "aes-128-gcm", "passwordFile": "secrets/in"}}],
	  "outbounds": [
	    {"protocol": "shadowsocks", "settings": {"servers": [{"address": "a", "port": 1, "method": "aes-128-gcm", "passwordFile": "secrets/ss"}]}},
	    {"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"idFile": "` + abs + `"}]}]}},
	    {"protocol": "socks", "settings": {"servers": [{"address": "a", "port": 1, "users": [{"user": "u", "passFile": "secrets/socks"}]}]}}
	  ]}`
	write("conf/../config.json", cfgJSON)
	cfg, _, err := Load(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	ssPass, err := cfg.Outbounds[0].Settings.(*ShadowsocksOutboundSettings).Servers[0].ResolvedPassword()
	if err != nil || ssPass != "s3cret" {
		t.Errorf("shadowsocks password = %q, %v", ssPass, err)
	}
	id, err := cfg.Outbounds[1].Settings.(*VMessOutboundSettings).Vnext[0].Users[0].ResolvedID()
	if err != nil || id != "b12614c5-5ca4-4eba-a215-c61d642116ce" {
		t.Errorf("vmess id = %q, %v", id, err)
	}
	pass, err := cfg.Outbounds[2].Settings.(*SocksOutboundSettings).Servers[0].Users[0].ResolvedPass()
	if err != nil || pass != "pw" {
		t.Errorf("socks pass = %q, %v", pass, err)
	}
	inPass, err := cfg.Inbounds[0].Settings.(*ShadowsocksInboundSettings).ResolvedPassword()
	if err != nil || inPass != "inbound-pw" {
		t.Errorf("inbound password = %q, %v", inPass, err)
	}

	// Secrets read from files never reach the rendered JSON.
	out, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret", "inbound-pw", `"pw"`} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("marshalled config contains secret %s", secret)
		}
	}

	// Parse reads no files, so the accessors say so.
	parsed, _, err := Parse([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Outbounds[0].Settings.(*ShadowsocksOutboundSettings).Servers[0].ResolvedPassword(); !errors.Is(err, ErrUnresolved) {
		t.Errorf("unresolved password error = %v, want ErrUnresolved", err)
	}
}

func TestLoadSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgJSON := `{"outbounds": [
	  {"protocol": "shadowsocks", "settings": {"servers": [{"address": "a", "port": 1, "method": "m", "passwordFile": "missing"}]}},
	  {"protocol": "shadowsocks", "settings": {"servers": [{"address": "a", "port": 1, "method": "m", "passwordFile": "empty"}]}}
	]}`
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(cfgJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(path)
	want := []string{
		"config: outbounds[0].settings.servers[0].passwordFile: open " + filepath.Join(dir, "missing") + ": no such file or directory",
		"config: outbounds[1].settings.servers[0].passwordFile: file " + filepath.Join(dir, "empty") + " is empty",
	}
	if err == nil || !reflect.DeepEqual(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("got  %v\nwant %q", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want not exist", err)
	}
}

// TestPolicy: level 0's timeouts load as V2Ray writes them (seconds, 0 allowed where
// V2Ray allows it), a later file's policy replaces an earlier one's, and a zero
// handshake or idle timeout is refused by name.
func TestPolicy(t *testing.T) {
	cfg, _, err := Parse([]byte(`{
  "outbounds": [{"protocol": "freedom"}],
  "policy": {"levels": {"0": {"handshake": 4, "connIdle": 300, "uplinkOnly": 0, "downlinkOnly": 5}}}
}`))
	if err != nil {
		t.Fatal(err)
	}
	lp := cfg.Policy.Level0()
	got := []any{*lp.Handshake, *lp.ConnIdle, *lp.UplinkOnly, *lp.DownlinkOnly}
	if want := []any{uint32(4), uint32(300), uint32(0), uint32(5)}; !reflect.DeepEqual(got, want) {
		t.Errorf("level 0: %v, want %v", got, want)
	}
	if lp := (*PolicyConfig)(nil).Level0(); lp.ConnIdle != nil {
		t.Errorf("no policy: %+v, want no fields", lp)
	}

	dir := t.TempDir()
	first := filepath.Join(dir, "a.json")
	second := filepath.Join(dir, "b.json")
	os.WriteFile(first, []byte(`{"outbounds": [{"protocol": "freedom"}], "policy": {"levels": {"0": {"connIdle": 10}}}}`), 0o600)
	os.WriteFile(second, []byte(`{"policy": {"levels": {"0": {"connIdle": 20}}}}`), 0o600)
	merged, _, err := Load(first, second)
	if err != nil {
		t.Fatal(err)
	}
	if got := *merged.Policy.Level0().ConnIdle; got != 20 {
		t.Errorf("merged connIdle %d, want the later file's 20", got)
	}

	for _, field := range []string{"handshake", "connIdle"} {
		_, _, err := Parse([]byte(`{"outbounds": [{"protocol": "freedom"}], "policy": {"levels": {"0": {"` + field + `": 0}}}}`))
		want := "config: policy.levels.0." + field + ": must be at least 1 (seconds)"
		if err == nil || err.Error() != want {
			t.Errorf("%s 0: %v, want %q", field, err, want)
		}
	}
}
