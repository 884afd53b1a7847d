package render_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render"
	"github.com/proxychain/proxychain/internal/render/rendertest"
	"github.com/proxychain/proxychain/proxy/config"
)

// TestSeedChainLoadsAsSeed renders the seed's chain, writes it out as the sidecar's
// projected volume would, and loads it with the data plane's loader: the outbounds, with
// secrets resolved, must equal the seed's JSON loaded the same way.
func TestSeedChainLoadsAsSeed(t *testing.T) {
	spec := rendertest.SeedSpec()
	res, err := render.Render(&spec, rendertest.SeedSecrets())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, render.ConfigKey), res.ConfigJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, value := range res.Credentials {
		if err := os.WriteFile(filepath.Join(dir, name), value, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := loadResolved(t, filepath.Join(dir, render.ConfigKey))
	want := loadResolved(t, filepath.Join("..", "..", "proxy", "config", "testdata", "seed-chain.json"))
	if len(want) != 4 {
		t.Fatalf("seed has %d outbounds, want 4", len(want))
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("rendered outbounds differ from the seed's\ngot:  %s\nwant: %s", gj, wj)
	}

	wantChains := map[string]string{
		"DOUS":  rendertest.SeedPath,
		"AliHK": "AliHK",
		"AliSG": "AliHK -> AliSG",
		"DOSG":  "AliHK -> AliSG -> DOSG",
	}
	if len(res.Chains) != len(wantChains) {
		t.Fatalf("got %d chains, want %d", len(res.Chains), len(wantChains))
	}
	for _, c := range res.Chains {
		if c.String() != wantChains[c.Tag] {
			t.Errorf("chain of %s = %q, want %q", c.Tag, c, wantChains[c.Tag])
		}
	}
}

func loadResolved(t *testing.T, path string) []rendertest.Outbound {
	t.Helper()
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	out, err := rendertest.ResolvedOutbounds(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConfigHoldsNoCredential(t *testing.T) {
	spec := rendertest.SeedSpec()
	res, err := render.Render(&spec, rendertest.SeedSecrets())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{rendertest.DOUSID, rendertest.DOSGID, `"password"`, `"id"`} {
		if bytes.Contains(res.ConfigJSON, []byte(secret)) {
			t.Errorf("config.json contains %s:\n%s", secret, res.ConfigJSON)
		}
	}
	want := map[string][]byte{
		"DOUS-0-0-id":      []byte(rendertest.DOUSID),
		"DOSG-0-0-id":      []byte(rendertest.DOSGID), // trailing newline trimmed
		"AliHK-0-password": []byte(rendertest.SeedPassword),
		"AliSG-0-password": []byte(rendertest.SeedPassword),
	}
	if !reflect.DeepEqual(res.Credentials, want) {
		t.Errorf("credentials = %q, want %q", res.Credentials, want)
	}
}

// TestInbounds checks every chain gets every sidecar inbound, so a pod may choose its
// own egress mode, and that the redirect inbound sniffs names for the exit hop.
func TestInbounds(t *testing.T) {
	all := []string{"redirect-in:redirect:15001", "redirect-in6:redirect:15001", "socks-in:socks:15080", "http-in:http:15081"}
	tests := []struct {
		mode string
		want []string // tag:protocol:port
	}{
		{"", all},
		{v1alpha1.EgressTransparent, all},
		{v1alpha1.EgressExplicit, all},
	}
	for _, tt := range tests {
		spec := rendertest.SeedSpec()
		spec.Egress.Mode = tt.mode
		res, err := render.Render(&spec, rendertest.SeedSecrets())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range res.Config.Inbounds {
			if want := map[bool]string{false: render.ListenAddress, true: render.ListenAddress6}[in.Tag == render.RedirectInbound6Tag]; in.Listen != want {
				t.Errorf("mode %q: inbound %s listens on %q", tt.mode, in.Tag, in.Listen)
			}
			got = append(got, strings.Join([]string{in.Tag, in.Protocol, itoa(int(in.Port))}, ":"))
			if in.Protocol == "redirect" && (in.Sniffing == nil || !in.Sniffing.Enabled || !reflect.DeepEqual(in.Sniffing.DestOverride, []string{"http", "tls"})) {
				t.Errorf("mode %q: redirect inbound sniffing %+v, want http and tls", tt.mode, in.Sniffing)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("mode %q: inbounds %v, want %v", tt.mode, got, tt.want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestDefaultOutboundGoesFirst(t *testing.T) {
	spec := rendertest.SeedSpec()
	spec.DefaultOutbound = "AliSG"
	spec.Outbounds = append(spec.Outbounds, v1alpha1.Outbound{Tag: "direct", Protocol: v1alpha1.ProtocolFreedom})
	spec.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{
		{IP: []string{"10.0.0.0/8"}, Port: "53,443", OutboundTag: "direct"},
	}}
	res, err := render.Render(&spec, rendertest.SeedSecrets())
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, o := range res.Config.Outbounds {
		tags = append(tags, o.Tag)
	}
	if want := []string{"AliSG", "DOUS", "AliHK", "DOSG", "direct"}; !reflect.DeepEqual(tags, want) {
		t.Errorf("outbound order %v, want %v", tags, want)
	}
	want := &config.RoutingConfig{DomainStrategy: "AsIs", Rules: []config.RoutingRule{
		{Type: "field", IP: []string{"10.0.0.0/8"}, Port: "53,443", OutboundTag: "direct"},
	}}
	if !reflect.DeepEqual(res.Config.Routing, want) {
		t.Errorf("routing %+v, want %+v", res.Config.Routing, want)
	}
	// Chains stay in spec order.
	if res.Chains[0].Tag != "DOUS" || res.Chains[4].String() != "direct" {
		t.Errorf("chains %v", res.Chains)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*v1alpha1.ProxyChainSpec, map[string]map[string][]byte)
		check   func(error) bool
		message string // exact error text
	}{
		{
			name: "missing secret and key",
			edit: func(_ *v1alpha1.ProxyChainSpec, s map[string]map[string][]byte) {
				delete(s, rendertest.ShadowsocksSecret)
				delete(s[rendertest.VMessSecret], "DOSG")
			},
			check: isType[*render.SecretNotFoundError],
			message: `render: secret "ss-passwords" not found (spec.outbounds[1].settings.servers[0].passwordFrom); ` +
				`secret "ss-passwords" not found (spec.outbounds[2].settings.servers[0].passwordFrom); ` +
				`secret "vmess-ids" has no key "DOSG" (spec.outbounds[3].settings.vnext[0].users[0].idFrom)`,
		},
		{
			name: "id not a uuid",
			edit: func(_ *v1alpha1.ProxyChainSpec, s map[string]map[string][]byte) {
				s[rendertest.VMessSecret]["DOUS"] = []byte("not-a-uuid-secret")
			},
			check:   isType[*render.InvalidCredentialError],
			message: `render: secret "vmess-ids" key "DOUS" (spec.outbounds[0].settings.vnext[0].users[0].idFrom) is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`,
		},
		{
			name: "empty password",
			edit: func(_ *v1alpha1.ProxyChainSpec, s map[string]map[string][]byte) {
				s[rendertest.ShadowsocksSecret]["AliSG"] = []byte(" \n")
			},
			check:   isType[*render.InvalidCredentialError],
			message: `render: secret "ss-passwords" key "AliSG" (spec.outbounds[2].settings.servers[0].passwordFrom) is empty`,
		},
		{
			name: "password that is no Shadowsocks 2022 key",
			edit: func(spec *v1alpha1.ProxyChainSpec, s map[string]map[string][]byte) {
				spec.Outbounds[1].Settings.Servers[0].Method = "2022-blake3-aes-128-gcm"
				s[rendertest.ShadowsocksSecret]["AliHK"] = []byte("password") // not 16 bytes of base64
			},
			check: isType[*render.InvalidCredentialError],
			message: `render: secret "ss-passwords" key "AliHK" (spec.outbounds[1].settings.servers[0].passwordFrom) ` +
				`is not a password 2022-blake3-aes-128-gcm accepts (Shadowsocks 2022 methods take a base64 key of the cipher's size)`,
		},
		{
			name: "cycle",
			edit: func(spec *v1alpha1.ProxyChainSpec, _ map[string]map[string][]byte) {
				spec.Outbounds[1].ProxySettings = &v1alpha1.ProxySettings{Tag: "DOUS"} // AliHK via DOUS
			},
			check:   isType[*render.ChainError],
			message: `render: spec.outbounds: outbound cycle: DOUS -> DOSG -> AliSG -> AliHK -> DOUS`,
		},
		{
			name: "unknown tag",
			edit: func(spec *v1alpha1.ProxyChainSpec, _ map[string]map[string][]byte) {
				spec.Outbounds[1].ProxySettings = &v1alpha1.ProxySettings{Tag: "nowhere"}
			},
			check:   isType[*render.ChainError],
			message: `render: spec.outbounds[1].proxySettings.tag: no outbound tagged "nowhere"`,
		},
		{
			// The schema's patterns pass it; the data plane's router would not start.
			name: "rule the router cannot read",
			edit: func(spec *v1alpha1.ProxyChainSpec, _ map[string]map[string][]byte) {
				spec.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{{Port: "70000", OutboundTag: "AliHK"}}}
			},
			check:   isType[*render.ChainError],
			message: `render: spec.routing.rules[0].port: want ports like "53", "1000-2000" or "80,443", got "70000"`,
		},
		{
			// The default outbound goes first in the config; the error still names the
			// outbound's place in the spec.
			name: "outbound the data plane refuses",
			edit: func(spec *v1alpha1.ProxyChainSpec, _ map[string]map[string][]byte) {
				spec.Outbounds = slices.Insert(spec.Outbounds, 1, v1alpha1.Outbound{Tag: "direct", Protocol: v1alpha1.ProtocolFreedom,
					Settings: &v1alpha1.OutboundSettings{Redirect: "example.com"}})
				spec.DefaultOutbound = "AliSG"
			},
			check:   isType[*render.ChainError],
			message: `render: spec.outbounds[1].settings.redirect: address example.com: missing port in address`,
		},
		{
			// Within the schema's limits (128 rules of 256 domains), but over a ConfigMap's.
			name: "config too large for a ConfigMap",
			edit: func(spec *v1alpha1.ProxyChainSpec, _ map[string]map[string][]byte) {
				rule := v1alpha1.RoutingRule{OutboundTag: "AliHK"}
				for i := range 256 {
					rule.Domain = append(rule.Domain, fmt.Sprintf("domain:host-%03d.%s.example", i, strings.Repeat("x", 24)))
				}
				spec.Routing = &v1alpha1.Routing{Rules: slices.Repeat([]v1alpha1.RoutingRule{rule}, 128)}
			},
			check:   isType[*render.ChainError],
			message: "render: spec: renders to a config of 2047187 bytes, over the 1048565 a ConfigMap holds; shorten the routing rules or split the chain",
		},
		{
			name: "socks password over 255 bytes",
			edit: func(spec *v1alpha1.ProxyChainSpec, s map[string]map[string][]byte) {
				spec.Outbounds = append(spec.Outbounds, socksOutbound("bob"))
				s["socks"] = map[string][]byte{"pass": bytes.Repeat([]byte("p"), 256)}
			},
			check:   isType[*render.InvalidCredentialError],
			message: `render: secret "socks" key "pass" (spec.outbounds[4].settings.servers[0].users[0].passFrom) is 256 bytes, over the 255 a SOCKS5 password may be`,
		},
		{
			// The schema counts characters; SOCKS5 counts bytes.
			name: "socks user over 255 bytes",
			edit: func(spec *v1alpha1.ProxyChainSpec, s map[string]map[string][]byte) {
				spec.Outbounds = append(spec.Outbounds, socksOutbound(strings.Repeat("é", 200)))
				s["socks"] = map[string][]byte{"pass": []byte("p")}
			},
			check:   isType[*render.ChainError],
			message: `render: spec.outbounds[4].settings.servers[0].users[0].user: 400 bytes, over the 255 SOCKS5 carries`,
		},
		{
			name: "self reference",
			edit: func(spec *v1alpha1.ProxyChainSpec, _ map[string]map[string][]byte) {
				spec.Outbounds[1].ProxySettings = &v1alpha1.ProxySettings{Tag: "AliHK"}
			},
			check:   isType[*render.ChainError],
			message: `render: spec.outbounds[1].proxySettings.tag: outbound "AliHK" cannot be its own proxy`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := rendertest.SeedSpec()
			secrets := rendertest.SeedSecrets()
			tt.edit(&spec, secrets)
			res, err := render.Render(&spec, secrets)
			if err == nil {
				t.Fatalf("rendered %s", res.ConfigJSON)
			}
			if !tt.check(err) {
				t.Errorf("error %T: %v", err, err)
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("error\n got %s\nwant %s", err, tt.message)
			}
			if strings.Contains(err.Error(), "not-a-uuid-secret") {
				t.Errorf("error echoes the credential: %v", err)
			}
		})
	}
}

// TestManyMissingKeysMessage: the message names the first ten missing references and
// counts the rest, so it fits a condition however many a chain holds; the error still
// lists them all.
func TestManyMissingKeysMessage(t *testing.T) {
	spec := rendertest.ManyRefsSpec(32, "absent") // the schema's most: 8192 references
	_, err := render.Render(&spec, render.Secrets{})
	var notFound *render.SecretNotFoundError
	if !errors.As(err, &notFound) {
		t.Fatalf("error %T: %v", err, err)
	}
	if len(notFound.Missing) != 8192 {
		t.Errorf("%d missing references, want 8192", len(notFound.Missing))
	}
	var want strings.Builder
	want.WriteString("render: ")
	for u := range 10 {
		fmt.Fprintf(&want, `secret "absent" not found (spec.outbounds[0].settings.vnext[0].users[%d].idFrom); `, u)
	}
	want.WriteString("and 8182 more")
	if err.Error() != want.String() {
		t.Errorf("message\n got %s\nwant %s", err, want.String())
	}
}

func isType[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func TestCheckChainProblems(t *testing.T) {
	spec := rendertest.SeedSpec()
	spec.Outbounds[1].ProxySettings = &v1alpha1.ProxySettings{Tag: "DOUS"} // AliHK via DOUS: a cycle
	spec.Outbounds = append(spec.Outbounds, v1alpha1.Outbound{Tag: "lost", Protocol: v1alpha1.ProtocolFreedom,
		ProxySettings: &v1alpha1.ProxySettings{Tag: "nowhere"}})
	ce, ok := render.AsChainError(render.CheckChain(&spec))
	if !ok {
		t.Fatal("invalid chain accepted")
	}
	want := []render.Problem{
		{Field: "spec.outbounds[4].proxySettings.tag", Value: "nowhere", Message: `no outbound tagged "nowhere"`},
		{Field: "spec.outbounds", Message: "outbound cycle: DOUS -> DOSG -> AliSG -> AliHK -> DOUS",
			Cycle: []string{"DOUS", "DOSG", "AliSG", "AliHK", "DOUS"}},
	}
	if !reflect.DeepEqual(ce.Problems, want) {
		t.Errorf("problems\n got %+v\nwant %+v", ce.Problems, want)
	}
	valid := rendertest.SeedSpec()
	if err := render.CheckChain(&valid); err != nil {
		t.Errorf("seed chain: %v", err)
	}
}

func TestHash(t *testing.T) {
	spec := rendertest.SeedSpec()
	hashOf := func(edit func(map[string]map[string][]byte)) string {
		t.Helper()
		secrets := rendertest.SeedSecrets()
		edit(secrets)
		res, err := render.Render(&spec, secrets)
		if err != nil {
			t.Fatal(err)
		}
		return res.Hash
	}
	base := hashOf(func(map[string]map[string][]byte) {})
	if again := hashOf(func(map[string]map[string][]byte) {}); again != base {
		t.Errorf("hash is not deterministic: %s then %s", base, again)
	}
	if len(base) != 64 {
		t.Errorf("hash %q is not hex sha256", base)
	}
	rotated := hashOf(func(s map[string]map[string][]byte) { s[rendertest.ShadowsocksSecret]["AliHK"] = []byte("rotated") })
	if rotated == base {
		t.Error("rotating a password kept the hash")
	}
	newline := hashOf(func(s map[string]map[string][]byte) {
		s[rendertest.VMessSecret]["DOUS"] = []byte(rendertest.DOUSID + "\r\n")
	})
	if newline != base {
		t.Error("a trailing newline, which the data plane trims, changed the hash")
	}
}

func TestSecretNames(t *testing.T) {
	spec := rendertest.SeedSpec()
	got := render.SecretNames(&spec)
	if want := []string{rendertest.ShadowsocksSecret, rendertest.VMessSecret}; !reflect.DeepEqual(got, want) {
		t.Errorf("SecretNames = %v, want %v", got, want)
	}
}

func TestInsecureHops(t *testing.T) {
	spec := rendertest.SeedSpec()
	got := render.DescribeInsecure(render.InsecureHops(&spec))
	want := "weak crypto on DOUS (legacy VMess alterId 64), AliHK (stream cipher aes-256-cfb), " +
		"AliSG (stream cipher aes-256-cfb), DOSG (legacy VMess alterId 64)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for i := range spec.Outbounds {
		o := &spec.Outbounds[i]
		if o.Protocol == v1alpha1.ProtocolVMess {
			o.Settings.Vnext[0].Users[0].AlterID = 0
		} else {
			o.Settings.Servers[0].Method = "chacha20-ietf-poly1305"
		}
	}
	if hops := render.InsecureHops(&spec); len(hops) != 0 {
		t.Errorf("AEAD-only chain reported insecure: %v", hops)
	}
	spec.Outbounds[0].Settings.Vnext[0].Users[0].Security = "zero"
	want = "weak crypto on DOUS (VMess security zero, the body is not encrypted)"
	if got := render.DescribeInsecure(render.InsecureHops(&spec)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// socksOutbound is a SOCKS hop whose one account's password is key "pass" of Secret
// "socks".
func socksOutbound(user string) v1alpha1.Outbound {
	return v1alpha1.Outbound{Tag: "corp", Protocol: v1alpha1.ProtocolSocks, Settings: &v1alpha1.OutboundSettings{
		Servers: []v1alpha1.Server{{Address: "proxy.example", Port: 1080, Users: []v1alpha1.Account{{User: user,
			PassFrom: v1alpha1.CredentialSource{SecretKeyRef: v1alpha1.SecretKeySelector{Name: "socks", Key: "pass"}}}}}},
	}}
}
