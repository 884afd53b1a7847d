package controllers_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/convert"
	"github.com/proxychain/proxychain/internal/render"
	"github.com/proxychain/proxychain/internal/render/rendertest"
	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/router"
	"github.com/proxychain/proxychain/proxy/shadowsocks"
)

var (
	seedChainJSON   = filepath.Join("..", "proxy", "config", "testdata", "seed-chain.json")
	convertTestdata = filepath.Join("..", "internal", "convert", "testdata")
)

// converted is what proxychain convert prints, decoded into the API types.
type converted struct {
	secret *corev1.Secret // nil when the config holds no credential
	chain  *v1alpha1.ProxyChain
}

// convertFile converts a V2Ray config as proxychain convert does.
func convertFile(t *testing.T, path string, opts convert.Options) []byte {
	t.Helper()
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := convert.Convert(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res.YAML
}

var documentSeparator = regexp.MustCompile(`(?m)^---\n`)

// decodeConverted reads the YAML documents strictly, so a field name the API does not
// know fails the test rather than vanishing.
func decodeConverted(t *testing.T, data []byte) converted {
	t.Helper()
	var out converted
	for i, doc := range documentSeparator.Split(string(data), -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		switch {
		case tm.APIVersion == "v1" && tm.Kind == "Secret" && out.secret == nil && out.chain == nil:
			out.secret = new(corev1.Secret)
			if err := yaml.UnmarshalStrict([]byte(doc), out.secret); err != nil {
				t.Fatalf("document %d: %v\n%s", i, err, doc)
			}
		case tm.APIVersion == "proxychain.io/v1alpha1" && tm.Kind == "ProxyChain" && out.chain == nil:
			out.chain = new(v1alpha1.ProxyChain)
			if err := yaml.UnmarshalStrict([]byte(doc), out.chain); err != nil {
				t.Fatalf("document %d: %v\n%s", i, err, doc)
			}
		default:
			t.Fatalf("document %d is an unexpected %s %s:\n%s", i, tm.APIVersion, tm.Kind, doc)
		}
	}
	if out.chain == nil {
		t.Fatalf("no ProxyChain in\n%s", data)
	}
	return out
}

// secrets is the Secret's data as render takes it.
func (c converted) secrets() render.Secrets {
	if c.secret == nil {
		return render.Secrets{}
	}
	data := map[string][]byte{}
	for k, v := range c.secret.StringData {
		data[k] = []byte(v)
	}
	return render.Secrets{c.secret.Name: data}
}

// TestConvertSeedRendersAsSeedSpec renders the converted seed and rendertest's seed
// ProxyChain: the config, the credentials and so the hash must be the same. No apiserver.
func TestConvertSeedRendersAsSeedSpec(t *testing.T) {
	got := decodeConverted(t, convertFile(t, seedChainJSON, convert.Options{Name: "us-exit"}))
	if got.secret == nil || got.secret.Name != "us-exit-credentials" || got.chain.Name != "us-exit" {
		t.Fatalf("decoded %+v", got)
	}
	if got.chain.Spec.DefaultOutbound != "DOUS" {
		t.Errorf("defaultOutbound %q", got.chain.Spec.DefaultOutbound)
	}
	fromConvert, err := render.Render(&got.chain.Spec, got.secrets())
	if err != nil {
		t.Fatal(err)
	}
	spec := rendertest.SeedSpec()
	fromSeedSpec, err := render.Render(&spec, rendertest.SeedSecrets())
	if err != nil {
		t.Fatal(err)
	}
	if string(fromConvert.ConfigJSON) != string(fromSeedSpec.ConfigJSON) {
		t.Errorf("config.json\n got %s\nwant %s", fromConvert.ConfigJSON, fromSeedSpec.ConfigJSON)
	}
	if !reflect.DeepEqual(fromConvert.Credentials, fromSeedSpec.Credentials) || fromConvert.Hash != fromSeedSpec.Hash {
		t.Errorf("credentials %q, want %q", fromConvert.Credentials, fromSeedSpec.Credentials)
	}
}

// TestConvertMethodsMatchCRD keeps convert's Shadowsocks methods in step with the CRD: of
// every method the data plane or the CRD knows, convert takes exactly those the CRD
// takes. No apiserver.
func TestConvertMethodsMatchCRD(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "crd", "bases", "proxychain.io_proxychains.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema schemaNode `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil || len(crd.Spec.Versions) != 1 {
		t.Fatalf("CRD: %v", err)
	}
	method := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.
		at("spec", "outbounds", "[]", "settings", "servers", "[]", "method")
	if method == nil || len(method.Enum) == 0 {
		t.Fatal("no method enum in the CRD")
	}
	methods := slices.Concat(method.Enum, shadowsocks.Methods())
	slices.Sort(methods)
	for _, m := range slices.Compact(methods) {
		cfg, _, err := config.Parse(fmt.Appendf(nil, `{"outbounds": [{"tag": "s", "protocol": "shadowsocks",
			"settings": {"servers": [{"address": "h", "port": 1, "method": %q, "password": "p"}]}}]}`, m))
		if err != nil {
			t.Fatal(err)
		}
		_, err = convert.Convert(cfg, convert.Options{Name: "a"})
		if inCRD := slices.Contains(method.Enum, m); (err == nil) != inCRD {
			t.Errorf("method %q: in the CRD %v, convert error %v", m, inCRD, err)
		}
	}
}

type schemaNode struct {
	Properties map[string]schemaNode `json:"properties"`
	Items      *schemaNode           `json:"items"`
	Enum       []string              `json:"enum"`
}

// at walks properties by name, and list items by "[]".
func (n schemaNode) at(path ...string) *schemaNode {
	for _, p := range path {
		if p == "[]" {
			if n.Items == nil {
				return nil
			}
			n = *n.Items
			continue
		}
		next, ok := n.Properties[p]
		if !ok {
			return nil
		}
		n = next
	}
	return &n
}

// apply creates the converted objects in ns, as kubectl apply would, and waits for the
// chain to be rendered.
func apply(t *testing.T, ns string, c converted) *v1alpha1.ProxyChain {
	t.Helper()
	ctx := context.Background()
	if c.secret != nil {
		c.secret.Namespace = ns
		if err := k8sClient.Create(ctx, c.secret); err != nil {
			t.Fatalf("create Secret: %v", err)
		}
	}
	c.chain.Namespace = ns
	if err := k8sClient.Create(ctx, c.chain); err != nil {
		t.Fatalf("create ProxyChain: %v", err)
	}
	return waitCondition(t, client.ObjectKeyFromObject(c.chain), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRendered)
}

// loadRendered writes the chain's rendered ConfigMap and credentials Secret into a
// directory as the sidecar's volume lays them out, and loads the config from there.
func loadRendered(t *testing.T, ns, name string) *config.Config {
	t.Helper()
	ctx := context.Background()
	var cm corev1.ConfigMap
	var creds corev1.Secret
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.ConfigMapName(name)}, &cm); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.CredentialsSecretName(name)}, &creds); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, render.ConfigKey), []byte(cm.Data[render.ConfigKey]), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, value := range creds.Data {
		if err := os.WriteFile(filepath.Join(dir, file), value, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _, err := config.Load(filepath.Join(dir, render.ConfigKey))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestConvertSeedChainApplies is the promise end to end: the seed's chain,
// converted and created as kubectl apply would, is rendered by the operator into a config
// that loads as the same chain as the seed's JSON.
func TestConvertSeedChainApplies(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	pc := apply(t, ns, decodeConverted(t, convertFile(t, seedChainJSON, convert.Options{Name: "us-exit"})))

	cfg := loadRendered(t, ns, "us-exit")
	got, err := rendertest.ResolvedOutbounds(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := loadResolved(t, seedChainJSON)
	if len(want) != 4 || !reflect.DeepEqual(got, want) {
		t.Errorf("rendered outbounds\n got %+v\nwant %+v", got, want)
	}
	spec := rendertest.SeedSpec()
	res, err := render.Render(&spec, rendertest.SeedSecrets())
	if err != nil {
		t.Fatal(err)
	}
	if pc.Status.ConfigHash != res.Hash || len(pc.Status.Outbounds) != 4 || pc.Status.Outbounds[0].Path != rendertest.SeedPath {
		t.Errorf("status %+v; want the seed ProxyChain's hash %s and path %s", pc.Status, res.Hash, rendertest.SeedPath)
	}
}

// TestConvertGoldensApply creates every golden output of internal/convert on the
// apiserver (schema, CEL rules and the validating webhook all pass it), waits for the
// operator to render it, and checks that the rendered config has the original config's
// outbounds, credentials included, and routes as it did.
func TestConvertGoldensApply(t *testing.T) {
	requireEnv(t)
	sources := map[string]string{
		"seed-chain": seedChainJSON,
		"seed-basic": filepath.Join("..", "proxy", "config", "testdata", "seed-basic.json"),
		"socks":      filepath.Join(convertTestdata, "socks.json"),
		"full":       filepath.Join(convertTestdata, "full.json"),
	}
	goldens, err := filepath.Glob(filepath.Join(convertTestdata, "*.yaml"))
	if err != nil || len(goldens) != len(sources) {
		t.Fatalf("golden files %q (%v), want one for each of %d sources", goldens, err, len(sources))
	}
	for _, golden := range goldens {
		name := strings.TrimSuffix(filepath.Base(golden), ".yaml")
		t.Run(name, func(t *testing.T) {
			source, ok := sources[name]
			if !ok {
				t.Fatalf("no source config for %s", golden)
			}
			data, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			c := decodeConverted(t, data)
			ns := newNamespace(t)
			apply(t, ns, c)
			rendered := loadRendered(t, ns, c.chain.Name)
			original, _, err := config.Load(source)
			if err != nil {
				t.Fatal(err)
			}
			got, want := comparable(t, rendered), comparable(t, original)
			for i := range want {
				if want[i].Tag == "" {
					want[i].Tag = fmt.Sprintf("outbound-%d", i) // the name convert gives it
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rendered outbounds\n got %+v\nwant %+v", got, want)
			}
			routesAlike(t, original, rendered)
		})
	}
}

// comparable views cfg's outbounds with every credential resolved (rendertest does
// Shadowsocks and VMess; SOCKS and HTTP accounts are done here) and Shadowsocks methods
// in the data plane's canonical spelling.
func comparable(t *testing.T, cfg *config.Config) []rendertest.Outbound {
	t.Helper()
	out, err := rendertest.ResolvedOutbounds(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		switch s := out[i].Settings.(type) {
		case []config.ShadowsocksServer:
			for j := range s {
				ciph, err := shadowsocks.NewCipher(s[j].Method, s[j].Password)
				if err != nil {
					t.Fatal(err)
				}
				s[j].Method = ciph.Method()
			}
		case *config.SocksOutboundSettings:
			out[i].Settings = resolvedServers(t, s.Servers)
		case *config.HTTPOutboundSettings:
			out[i].Settings = resolvedServers(t, s.Servers)
		}
	}
	return out
}

func resolvedServers(t *testing.T, servers []config.ProxyServer) []config.ProxyServer {
	t.Helper()
	var out []config.ProxyServer
	for _, srv := range servers {
		rs := config.ProxyServer{Address: srv.Address, Port: srv.Port}
		for _, a := range srv.Users {
			pass, err := a.ResolvedPass()
			if err != nil {
				t.Fatal(err)
			}
			rs.Users = append(rs.Users, config.Account{User: a.User, Pass: pass})
		}
		out = append(out, rs)
	}
	return out
}

// routesAlike routes a set of destinations with both configs' rules through the data
// plane's router: each must take the same outbound (by position, since convert names
// untagged outbounds).
func routesAlike(t *testing.T, original, rendered *config.Config) {
	t.Helper()
	build := func(cfg *config.Config) (*router.Router, map[string]int) {
		var outbounds []proxy.Outbound
		index := map[string]int{}
		for i, o := range cfg.Outbounds {
			tag := o.Tag
			if tag == "" {
				tag = fmt.Sprintf("untagged-%d", i)
			}
			outbounds = append(outbounds, fakeOutbound(tag))
			index[tag] = i
		}
		r, err := router.New(cfg.Routing, outbounds)
		if err != nil {
			t.Fatal(err)
		}
		return r, index
	}
	before, beforeIndex := build(original)
	after, afterIndex := build(rendered)
	for _, d := range []string{
		"example.com:443", "www.example.com:80", "a.example:443", "x.y:1", "keyword.test:1", "other.test:443",
		"10.1.2.3:443", "192.168.0.1:8080", "[::1]:443", "[fd00::1]:1", "100.64.0.1:1", "192.0.2.200:1",
		"198.51.100.7:53", "1.1.1.1:53", "1.1.1.1:1500", "1.1.1.1:25", "[2001:db8::1]:443",
	} {
		b, err1 := before.Pick(context.Background(), d)
		a, err2 := after.Pick(context.Background(), d)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", d, err1, err2)
		}
		if afterIndex[a.Tag()] != beforeIndex[b.Tag()] {
			t.Errorf("%s: routed to %s, was %s", d, a.Tag(), b.Tag())
		}
	}
}

type fakeOutbound string

func (o fakeOutbound) Tag() string { return string(o) }
func (o fakeOutbound) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("%s: not dialed in this test", o)
}
