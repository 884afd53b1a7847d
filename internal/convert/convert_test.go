package convert

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/router"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Golden conversions. The operator's tests (controllers/convert_test.go) decode every
// testdata/*.yaml into the API types, create the objects on a real apiserver and check
// what the operator renders from them, so a golden file is only right if it works.
var goldens = []struct {
	name, config string
	opts         Options
	notes        []string
	warnings     []string
}{
	{
		name:   "seed-chain",
		config: "../../proxy/config/testdata/seed-chain.json",
		opts:   Options{Name: "us-exit"},
	},
	{
		name:   "seed-basic",
		config: "../../proxy/config/testdata/seed-basic.json",
		opts:   Options{Name: "basic", Namespace: "proxies", SecretName: "basic-secrets"},
		notes:  []string{`outbounds[0].tag: none given; tagged "outbound-0", since a ProxyChain names every outbound`},
	},
	{
		name:   "socks",
		config: "testdata/socks.json",
		opts:   Options{Name: "office"},
	},
	{
		name:   "full",
		config: "testdata/full.json",
		opts:   Options{Name: "full", Namespace: "ns"},
		notes: []string{
			"inbounds: left out (socks-in, inbounds[1]): the sidecar listens on its own inbounds",
			"log: left out: the sidecar's log settings come from the operator",
			`outbounds[4].tag: none given; tagged "outbound-4", since a ProxyChain names every outbound`,
			"routing.rules[1].ip[0]: geoip:private written as the 11 ranges it stands for",
		},
		warnings: []string{
			"outbounds[0].mux: left out: proxychain does not multiplex, each connection has its own stream",
			"outbounds[0].proxySettings.transportLayer: left out: it has no effect, the parent carries the stream as plain TCP either way",
			"outbounds[3].streamSettings: left out: a ProxyChain dials plain TCP with default socket options",
			"routing.rules[3]: left out: its network condition excludes TCP, the only traffic a ProxyChain routes",
		},
	},
}

func TestGolden(t *testing.T) {
	for _, tt := range goldens {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := config.Load(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := strs(res.Notes); !reflect.DeepEqual(got, tt.notes) {
				t.Errorf("notes:\n got %q\nwant %q", got, tt.notes)
			}
			if got := strs(res.Warnings); !reflect.DeepEqual(got, tt.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.warnings)
			}
			golden := filepath.Join("testdata", tt.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, res.YAML, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.YAML) != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, res.YAML)
			}
		})
	}
}

// TestGoldenNamesMatch keeps the operator's test, which reads the golden files by the
// names below, in step with this one.
func TestGoldenNamesMatch(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	var want []string
	for _, g := range goldens {
		want = append(want, g.name)
	}
	if len(names) != len(want) {
		t.Errorf("testdata holds %q, the table %q", names, want)
	}
}

func strs(ws []config.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// TestSeedSecretHoldsCredentials reads the seed's credentials back from the Secret
// document, and checks that no credential appears in the ProxyChain document.
func TestSeedSecretHoldsCredentials(t *testing.T) {
	cfg, _, err := config.Load("../../proxy/config/testdata/seed-chain.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(cfg, Options{Name: "us-exit"})
	if err != nil {
		t.Fatal(err)
	}
	secret, pc, ok := strings.Cut(string(res.YAML), "---\n")
	if !ok {
		t.Fatalf("one document:\n%s", res.YAML)
	}
	for _, line := range []string{
		`  "DOUS-id": "b12614c5-5ca4-4eba-a215-c61d642116ce"`,
		`  "DOSG-id": "b27c24ab-2b5a-433e-902c-33f1168a7902"`,
		`  "AliHK-password": "password"`,
		`  "AliSG-password": "password"`,
	} {
		if !strings.Contains(secret, line+"\n") {
			t.Errorf("Secret lacks %s:\n%s", line, secret)
		}
	}
	for _, credential := range []string{"b12614c5", "b27c24ab", `"password"`} {
		if strings.Contains(pc, credential) {
			t.Errorf("ProxyChain holds %s:\n%s", credential, pc)
		}
	}
}

func TestNoCredentialsNoSecret(t *testing.T) {
	cfg := parse(t, `{"outbounds": [{"tag": "direct", "protocol": "freedom"}]}`)
	res, err := Convert(cfg, Options{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: "proxychain.io/v1alpha1"
kind: "ProxyChain"
metadata:
  name: "direct"
spec:
  outbounds:
  - tag: "direct"
    protocol: "freedom"
  defaultOutbound: "direct"
`
	if string(res.YAML) != want {
		t.Errorf("got\n%s\nwant\n%s", res.YAML, want)
	}
}

func parse(t *testing.T, js string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// outbound is a config with one outbound and whatever else the case needs.
func outbound(o string) string { return `{"outbounds": [` + o + `]}` }

func ss(server string) string {
	return outbound(`{"tag": "s", "protocol": "shadowsocks", "settings": {"servers": [` + server + `]}}`)
}

const okServer = `{"address": "h", "port": 1, "method": "aes-128-gcm", "password": "p"}`

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		opts   Options
		want   []string // each error, in order
	}{
		{"no name", ss(okServer), Options{}, []string{"convert: --name: required"}},
		{"bad name", ss(okServer), Options{Name: "US_exit"},
			[]string{`convert: --name: "US_exit": want a lower case DNS name of at most 63 characters (a-z, 0-9, '-', '.')`}},
		{"long name", ss(okServer), Options{Name: strings.Repeat("a", 64)},
			[]string{`convert: --name: "` + strings.Repeat("a", 64) + `": want a lower case DNS name of at most 63 characters (a-z, 0-9, '-', '.')`}},
		{"bad namespace", ss(okServer), Options{Name: "a", Namespace: "a.b"},
			[]string{`convert: --namespace: "a.b": want a lower case DNS label of at most 63 characters (a-z, 0-9, '-')`}},
		{"bad secret name", ss(okServer), Options{Name: "a", SecretName: "A"},
			[]string{`convert: --secret-name: "A": want a lower case DNS name of at most 253 characters (a-z, 0-9, '-', '.')`}},
		{"operator's secret name", ss(okServer), Options{Name: "a", SecretName: "a-proxychain-credentials"},
			[]string{`convert: --secret-name: "a-proxychain-credentials" is the Secret the operator renders for the chain; choose another name`}},
		{"bad tag", outbound(`{"tag": "my proxy", "protocol": "freedom"}`), Options{Name: "a"},
			[]string{`convert: outbounds[0].tag: "my proxy" cannot tag a ProxyChain outbound: want letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 63 characters`}},
		{"sendThrough", outbound(`{"tag": "d", "protocol": "freedom", "sendThrough": "10.0.0.1"}`), Options{Name: "a"},
			[]string{"convert: outbounds[0].sendThrough: a ProxyChain cannot choose the source address (the sidecar dials from the pod's); remove it"}},
		{"method the data plane lacks", ss(`{"address": "h", "port": 1, "method": "chacha20", "password": "p"}`), Options{Name: "a"},
			[]string{`convert: outbounds[0].settings.servers[0].method: "chacha20" cannot be expressed in a ProxyChain, which takes ` +
				strings.Join(shadowsocksMethods, ", ")}},
		{"bad address", ss(`{"address": "[::1]", "port": 1, "method": "aes-128-gcm", "password": "p"}`), Options{Name: "a"},
			[]string{`convert: outbounds[0].settings.servers[0].address: "[::1]" cannot be a ProxyChain server address: want a host name or IP address (letters, digits, '.', '-', '_', ':'), at most 253 characters`}},
		{"padded password", ss(`{"address": "h", "port": 1, "method": "aes-128-gcm", "password": " secret"}`), Options{Name: "a"},
			[]string{"convert: outbounds[0].settings.servers[0].password: has leading or trailing white space, which the operator trims from Secret values; remove it"}},
		{"level", ss(`{"address": "h", "port": 1, "method": "aes-128-gcm", "password": "p", "level": 256}`), Options{Name: "a"},
			[]string{"convert: outbounds[0].settings.servers[0].level: want 0 to 255, got 256"}},
		{"id not a UUID", outbound(`{"tag": "v", "protocol": "vmess", "settings": {"vnext": [{"address": "h", "port": 1, "users": [{"id": "not-a-uuid"}]}]}}`), Options{Name: "a"},
			[]string{"convert: outbounds[0].settings.vnext[0].users[0].id: is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), which the operator requires"}},
		{"secret keys collide", `{"outbounds": [
			{"tag": "a-0", "protocol": "shadowsocks", "settings": {"servers": [` + okServer + `]}},
			{"tag": "a", "protocol": "shadowsocks", "settings": {"servers": [` + okServer + `, ` + okServer + `]}}]}`, Options{Name: "a"},
			[]string{`convert: outbounds[1].settings.servers[0].password: its Secret key "a-0-password" is also outbounds[0].settings.servers[0].password's; rename one of the outbounds`}},
		{"cycle", `{"outbounds": [
			{"tag": "a", "protocol": "freedom", "proxySettings": {"tag": "b"}},
			{"tag": "b", "protocol": "freedom", "proxySettings": {"tag": "a"}}]}`, Options{Name: "a"},
			[]string{"chain: outbound cycle: a -> b -> a"}},
		{"inboundTag", `{"inbounds": [{"tag": "in", "protocol": "socks", "port": 1080}],
			"outbounds": [{"tag": "d", "protocol": "freedom"}],
			"routing": {"rules": [{"inboundTag": ["in"], "outboundTag": "d"}]}}`, Options{Name: "a"},
			[]string{"convert: routing.rules[0].inboundTag: a ProxyChain cannot match by inbound, since the sidecar's inbounds replace the config's; remove the condition or the rule"}},
		{"catch-all rule", `{"outbounds": [{"tag": "p", "protocol": "freedom"}, {"tag": "d", "protocol": "freedom"}],
			"routing": {"rules": [{"network": "tcp,udp", "outboundTag": "d"}]}}`, Options{Name: "a"},
			[]string{`convert: routing.rules[0]: matches every connection, which a ProxyChain rule cannot say (it needs domain, ip or port); ` +
				`make "d" the defaultOutbound instead, and drop the rules after this one, which it shadows`}},
		{"too many outbounds", outbound(strings.TrimSuffix(strings.Repeat(`{"protocol": "freedom"},`, 33), ",")), Options{Name: "a"},
			[]string{"convert: outbounds: 33 outbounds, a ProxyChain takes at most 32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert(parse(t, tt.config), tt.opts)
			if err == nil {
				t.Fatalf("no error; output:\n%s", res.YAML)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			for _, e := range unjoin(err) {
				var pe *PathError
				var ce *chain.Error
				if !errors.As(e, &pe) && !errors.As(e, &ce) {
					t.Errorf("%T is neither a *PathError nor a *chain.Error", e)
				}
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// A credential never appears in an error, whatever is wrong with it.
func TestErrorsHideCredentials(t *testing.T) {
	const secret = "hunter2-but-padded "
	cfg := parse(t, ss(`{"address": "h", "port": 1, "method": "aes-128-gcm", "password": "`+secret+`"}`))
	_, err := Convert(cfg, Options{Name: "a"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
	cfg = parse(t, outbound(`{"tag": "v", "protocol": "vmess", "settings": {"vnext": [{"address": "h", "port": 1, "users": [{"id": "hunter2"}]}]}}`))
	_, err = Convert(cfg, Options{Name: "a"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
}

func TestUnreadSecretFile(t *testing.T) {
	cfg := parse(t, ss(`{"address": "h", "port": 1, "method": "aes-128-gcm", "passwordFile": "pw"}`))
	_, err := Convert(cfg, Options{Name: "a"})
	want := "convert: outbounds[0].settings.servers[0].passwordFile: config: secret file has not been read (use Load or ResolveFiles): pw"
	if err == nil || err.Error() != want {
		t.Errorf("error %v", err)
	}
}

func TestMethodSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"AES-256-CFB":             "aes-256-cfb",
		" aes-128-gcm ":           "aes-128-gcm",
		"aead_aes_128_gcm":        "aes-128-gcm",
		"aead_aes_256_gcm":        "aes-256-gcm",
		"aead_chacha20_poly1305":  "chacha20-ietf-poly1305",
		"chacha20-poly1305":       "chacha20-poly1305",
		"2022-blake3-aes-128-gcm": "2022-blake3-aes-128-gcm",
	} {
		var c converter
		if got := c.method("m", in); got != want || len(c.errs) > 0 {
			t.Errorf("%q: got %q, errors %v", in, got, c.errs)
		}
	}
	for _, bad := range []string{"none", "plain", "chacha20", "rc4-md5", ""} {
		var c converter
		if c.method("m", bad); len(c.errs) != 1 {
			t.Errorf("%q: errors %v", bad, c.errs)
		}
	}
}

func TestCredentialKey(t *testing.T) {
	for _, tt := range []struct {
		only    bool
		indexes []int
		want    string
	}{
		{true, []int{0, 0}, "t-id"},
		{false, []int{0}, "t-0-id"},
		{false, []int{1, 2}, "t-1-2-id"},
	} {
		if got := credentialKey("t", "id", tt.only, tt.indexes...); got != tt.want {
			t.Errorf("%v %v: got %q, want %q", tt.only, tt.indexes, got, tt.want)
		}
	}
}

// TestRulesRouteAsBefore routes destinations with the config's rules and with the
// converted ones through the data plane's router: every destination must take the same
// outbound.
func TestRulesRouteAsBefore(t *testing.T) {
	cfg, _, err := config.Load("testdata/full.json")
	if err != nil {
		t.Fatal(err)
	}
	var c converter
	converted := &config.RoutingConfig{Rules: c.rules(cfg.Routing.Rules)}
	if len(c.errs) > 0 {
		t.Fatal(c.errs)
	}
	var outbounds []proxy.Outbound
	for _, o := range cfg.Outbounds {
		outbounds = append(outbounds, tagged(o.Tag))
	}
	before, err := router.New(cfg.Routing, outbounds)
	if err != nil {
		t.Fatal(err)
	}
	after, err := router.New(converted, outbounds)
	if err != nil {
		t.Fatal(err)
	}
	destinations := []string{
		"example.com:443", "www.example.com:80", "a.example:443", "b.a.example:443", "x.y:1", "keyword.test:1",
		"10.1.2.3:443", "192.168.0.1:8080", "[::1]:443", "[fd00::1]:1", "[fe80::1]:1", "100.64.0.1:1",
		"192.0.2.200:1", "192.0.3.1:53", "198.51.100.7:53", "[::ffff:198.51.100.7]:53", "198.51.100.8:53",
		"1.1.1.1:53", "1.1.1.1:1500", "1.1.1.1:2001", "1.1.1.1:25", "mail.test:25", "[2001:db8::1]:443",
	}
	for _, d := range destinations {
		b, err1 := before.Pick(context.Background(), d)
		a, err2 := after.Pick(context.Background(), d)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", d, err1, err2)
		}
		if a.Tag() != b.Tag() {
			t.Errorf("%s: routed to %q, was %q", d, a.Tag(), b.Tag())
		}
	}
}

type tagged string

func (t tagged) Tag() string { return string(t) }
func (t tagged) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("%s: not dialed in this test", t)
}
