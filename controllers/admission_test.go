package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render/rendertest"
)

// TestSchemaRejections creates invalid chains and checks the API server's own messages:
// the OpenAPI schema and CEL rules in the CRD, each naming the field.
func TestSchemaRejections(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	tests := []struct {
		name string
		edit func(*v1alpha1.ProxyChainSpec)
		want []string // substrings of the error, in order
	}{
		{
			name: "unknown protocol",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[0].Protocol = "wireguard" },
			want: []string{`spec.outbounds[0].protocol: Unsupported value: "wireguard"`},
		},
		{
			name: "vmess without vnext",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[0].Settings = nil },
			want: []string{`spec.outbounds[0].settings.vnext: Invalid value: settings.vnext is required for protocol vmess`},
		},
		{
			name: "servers on vmess",
			edit: func(s *v1alpha1.ProxyChainSpec) {
				s.Outbounds[0].Settings.Servers = s.Outbounds[1].Settings.Servers
			},
			want: []string{`spec.outbounds[0].settings.servers: Invalid value: settings.servers is only valid for protocols shadowsocks, socks and http`},
		},
		{
			name: "shadowsocks without password",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[1].Settings.Servers[0].PasswordFrom = nil },
			want: []string{`spec.outbounds[1].settings.servers: Invalid value: each shadowsocks server needs method and passwordFrom, and takes no users`},
		},
		{
			name: "unknown method",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[1].Settings.Servers[0].Method = "rc4" },
			want: []string{`spec.outbounds[1].settings.servers[0].method: Unsupported value: "rc4"`},
		},
		{
			name: "port out of range",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[1].Settings.Servers[0].Port = 70000 },
			want: []string{`spec.outbounds[1].settings.servers[0].port: Invalid value: 70000`, `less than or equal to 65535`},
		},
		{
			name: "port zero",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[0].Settings.Vnext[0].Port = 0 },
			want: []string{`spec.outbounds[0].settings.vnext[0].port: Invalid value: 0`, `greater than or equal to 1`},
		},
		{
			name: "duplicate tag",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[2].Tag = "AliHK" },
			want: []string{`spec.outbounds[2]: Duplicate value: {"tag":"AliHK"}`},
		},
		{
			name: "one-time auth",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[1].Settings.Servers[0].OTA = true },
			want: []string{`spec.outbounds[1].settings.servers[0].ota: Invalid value: true: one-time auth (ota) is not supported`},
		},
		{
			name: "default outbound unknown",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.DefaultOutbound = "nowhere" },
			want: []string{`spec.defaultOutbound: Invalid value: must name an outbound of spec.outbounds`},
		},
		{
			name: "routing to an unknown outbound",
			edit: func(s *v1alpha1.ProxyChainSpec) {
				s.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{{Port: "53", OutboundTag: "direct"}}}
			},
			want: []string{`spec.routing.rules: Invalid value: every rule's outboundTag must name an outbound of spec.outbounds`},
		},
		{
			name: "routing ip not a cidr",
			edit: func(s *v1alpha1.ProxyChainSpec) {
				s.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{{IP: []string{"10.0.0.0/33"}, OutboundTag: "DOUS"}}}
			},
			want: []string{`spec.routing.rules[0].ip: Invalid value: each entry must be an IP address or a CIDR`},
		},
		{
			name: "egress mode",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Egress.Mode = "sidecar" },
			want: []string{`spec.egress.mode: Unsupported value: "sidecar"`},
		},
		{
			name: "exclude cidr",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Egress.ExcludeCIDRs = []string{"10.0.0.1"} },
			want: []string{`spec.egress.excludeCIDRs: Invalid value: each entry must be a CIDR`},
		},
		{
			name: "exclude port",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Egress.ExcludePorts = []int32{443, 65536} },
			want: []string{`spec.egress.excludePorts[1]: Invalid value: 65536`},
		},
		{
			name: "long name",
			edit: func(*v1alpha1.ProxyChainSpec) {},
			want: []string{`metadata.name must be at most 63 characters`},
		},
		{
			name: "tag characters",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[3].Tag = "DO SG" },
			want: []string{`spec.outbounds[3].tag: Invalid value: "DO SG"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := rendertest.SeedSpec()
			tt.edit(&spec)
			pc := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bad-"}, Spec: spec}
			if tt.name == "long name" {
				pc.GenerateName, pc.Name = "", strings.Repeat("x", 64)
			}
			err := k8sClient.Create(context.Background(), pc)
			if err == nil {
				t.Fatalf("accepted %+v", spec)
			}
			t.Log(err)
			rest := err.Error()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error does not contain %q:\n%v", w, err)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestSchemaRejectsEmptyRuleLists: an empty domain or ip list is denied at the list. It
// is created unstructured because the typed client drops empty lists (omitempty), and
// the rendered rule would then lose the condition.
func TestSchemaRejectsEmptyRuleLists(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	tests := []struct {
		name string
		rule map[string]any
		want string
	}{
		{
			name: "empty domain",
			rule: map[string]any{"domain": []any{}, "outboundTag": "DOUS"},
			want: `spec.routing.rules[0].domain: Invalid value: 0: spec.routing.rules[0].domain in body should have at least 1 items`,
		},
		{
			name: "empty ip",
			rule: map[string]any{"ip": []any{}, "outboundTag": "DOUS"},
			want: `spec.routing.rules[0].ip: Invalid value: 0: spec.routing.rules[0].ip in body should have at least 1 items`,
		},
		{
			name: "empty domain beside a port",
			rule: map[string]any{"domain": []any{}, "port": "53", "outboundTag": "DOUS"},
			want: `spec.routing.rules[0].domain: Invalid value: 0: spec.routing.rules[0].domain in body should have at least 1 items`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := &v1alpha1.ProxyChain{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ProxyChain"},
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.ReplaceAll(tt.name, " ", "-")},
				Spec:       rendertest.SeedSpec(),
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pc)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: obj}
			if err := unstructured.SetNestedSlice(u.Object, []any{tt.rule}, "spec", "routing", "rules"); err != nil {
				t.Fatal(err)
			}
			err = k8sClient.Create(context.Background(), u)
			if err == nil {
				t.Fatalf("accepted %v", tt.rule)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not contain %q:\n%v", tt.want, err)
			}
		})
	}
}

// TestWebhookRejectsBadGraphs checks what only the webhook can: references, self-reference
// and cycles, on create and on update.
func TestWebhookRejectsBadGraphs(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t)
	tests := []struct {
		name string
		edit func(*v1alpha1.ProxyChainSpec)
		want string
	}{
		{
			name: "cycle",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[1].ProxySettings = &v1alpha1.ProxySettings{Tag: "DOUS"} },
			want: `admission webhook "vproxychain.proxychain.io" denied the request: ProxyChain.proxychain.io "%s" is invalid: ` +
				`spec.outbounds: Forbidden: outbound cycle: DOUS -> DOSG -> AliSG -> AliHK -> DOUS`,
		},
		{
			name: "unknown tag",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[0].ProxySettings.Tag = "DOJP" },
			want: `admission webhook "vproxychain.proxychain.io" denied the request: ProxyChain.proxychain.io "%s" is invalid: ` +
				`spec.outbounds[0].proxySettings.tag: Invalid value: "DOJP": no outbound tagged "DOJP"`,
		},
		{
			name: "self reference",
			edit: func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[3].ProxySettings.Tag = "DOSG" },
			want: `admission webhook "vproxychain.proxychain.io" denied the request: ProxyChain.proxychain.io "%s" is invalid: ` +
				`spec.outbounds[3].proxySettings.tag: Invalid value: "DOSG": outbound "DOSG" cannot be its own proxy`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			spec := rendertest.SeedSpec()
			tt.edit(&spec)
			pc := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
			err := k8sClient.Create(ctx, pc)
			if want := strings.ReplaceAll(tt.want, "%s", name); err == nil || err.Error() != want {
				t.Fatalf("create: got  %v\nwant %s", err, want)
			}

			// The same change as an update of a valid chain, read fresh since the
			// operator writes its status meanwhile.
			valid := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: rendertest.SeedSpec()}
			if err := k8sClient.Create(ctx, valid); err != nil {
				t.Fatal(err)
			}
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(valid), valid); err != nil {
					return err
				}
				tt.edit(&valid.Spec)
				return k8sClient.Update(ctx, valid)
			})
			if want := strings.ReplaceAll(tt.want, "%s", name); err == nil || err.Error() != want {
				t.Fatalf("update: got  %v\nwant %s", err, want)
			}
		})
	}
}

// TestWebhookRejectsBadRoutingEntries: routing entries the schema admits but the data
// plane's rule parser (package match) rejects are denied at admission, each naming its
// entry, on create and on update; entries the parser reads are admitted.
func TestWebhookRejectsBadRoutingEntries(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const denied = `admission webhook "vproxychain.proxychain.io" denied the request: ProxyChain.proxychain.io "%s" is invalid: `
	tests := []struct {
		name string
		rule v1alpha1.RoutingRule
		want string
	}{
		{
			name: "geosite list",
			rule: v1alpha1.RoutingRule{Domain: []string{"example.com", "geosite:cn"}},
			want: `spec.routing.rules[0].domain[1]: Invalid value: "geosite:cn": "geosite:cn": geosite lists are not supported; list the domains instead`,
		},
		{
			name: "ext list",
			rule: v1alpha1.RoutingRule{Domain: []string{"ext:x:y"}},
			want: `spec.routing.rules[0].domain[0]: Invalid value: "ext:x:y": "ext:x:y": ext lists are not supported; list the domains instead`,
		},
		{
			name: "bad regexp",
			rule: v1alpha1.RoutingRule{Domain: []string{"regexp:(a"}},
			want: "spec.routing.rules[0].domain[0]: Invalid value: \"regexp:(a\": error parsing regexp: missing closing ): `(a`",
		},
		{
			name: "empty domain",
			rule: v1alpha1.RoutingRule{Domain: []string{"domain:"}},
			want: `spec.routing.rules[0].domain[0]: Invalid value: "domain:": empty domain pattern`,
		},
		{
			name: "reversed port range",
			rule: v1alpha1.RoutingRule{Port: "443-80"},
			want: `spec.routing.rules[0].port: Invalid value: "443-80": want ports like "53", "1000-2000" or "80,443", got "443-80"`,
		},
		{
			name: "port out of range",
			rule: v1alpha1.RoutingRule{Port: "70000"},
			want: `spec.routing.rules[0].port: Invalid value: "70000": want ports like "53", "1000-2000" or "80,443", got "70000"`,
		},
	}
	withRule := func(spec *v1alpha1.ProxyChainSpec, rule v1alpha1.RoutingRule) {
		rule.OutboundTag = "DOUS"
		spec.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{rule}}
	}

	// The same values as an update of a valid chain; dry run, so it stays valid.
	valid := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "valid"}, Spec: rendertest.SeedSpec()}
	if err := k8sClient.Create(ctx, valid); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			spec := rendertest.SeedSpec()
			withRule(&spec, tt.rule)
			pc := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
			err := k8sClient.Create(ctx, pc)
			if want := fmt.Sprintf(denied, name) + tt.want; err == nil || err.Error() != want {
				t.Errorf("create: got  %v\nwant %s", err, want)
			}
			err = updateChain(ctx, client.ObjectKeyFromObject(valid), func(pc *v1alpha1.ProxyChain) { withRule(&pc.Spec, tt.rule) }, client.DryRunAll)
			if want := fmt.Sprintf(denied, valid.Name) + tt.want; err == nil || err.Error() != want {
				t.Errorf("update: got  %v\nwant %s", err, want)
			}
		})
	}

	t.Run("good entries", func(t *testing.T) {
		spec := rendertest.SeedSpec()
		spec.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{
			{Domain: []string{"example", "keyword:ads", "domain:example.com", "full:www.example.com", `regexp:\.goo.*\.com$`, "other:prefix"}, OutboundTag: "DOUS"},
			{IP: []string{"10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "::1"}, OutboundTag: "AliHK"},
			{Port: "53", OutboundTag: "DOUS"},
			{Port: "0-65535", OutboundTag: "DOUS"},
			{Domain: []string{"example.org"}, Port: "80,443,1000-2000", OutboundTag: "DOSG"},
		}}
		pc := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "good"}, Spec: spec}
		if err := k8sClient.Create(ctx, pc); err != nil {
			t.Fatal(err)
		}
	})
}

// skipValidationLabel marks chains the ProxyChain webhook skips while
// skipChainValidation is in force.
const skipValidationLabel = "test.proxychain.io/skip-validation"

// skipChainValidation makes the API server skip the ProxyChain webhook for chains labeled
// skipValidationLabel, until the returned restore is called or t ends. It stands for the
// webhook not running yet when a chain was created.
func skipChainValidation(t *testing.T) (restore func()) {
	t.Helper()
	ctx := context.Background()
	var original *metav1.LabelSelector
	setSelector := func(set func(*admissionregistrationv1.ValidatingWebhook)) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var list admissionregistrationv1.ValidatingWebhookConfigurationList
			if err := k8sClient.List(ctx, &list); err != nil {
				return err
			}
			for i := range list.Items {
				for j := range list.Items[i].Webhooks {
					if hook := &list.Items[i].Webhooks[j]; hook.Name == "vproxychain.proxychain.io" {
						set(hook)
						return k8sClient.Update(ctx, &list.Items[i])
					}
				}
			}
			return fmt.Errorf("vproxychain.proxychain.io not installed")
		})
	}
	if err := setSelector(func(h *admissionregistrationv1.ValidatingWebhook) {
		original = h.ObjectSelector.DeepCopy()
		h.ObjectSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: skipValidationLabel, Operator: metav1.LabelSelectorOpDoesNotExist},
		}}
	}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := setSelector(func(h *admissionregistrationv1.ValidatingWebhook) { h.ObjectSelector = original }); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

// TestInvalidChainCanBeDeleted: a chain stored while the webhook was not running, with a
// graph the webhook refuses, can still be labeled, lose its finalizer and go; a change to
// its spec that leaves it invalid is still refused.
func TestInvalidChainCanBeDeleted(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const finalizer = "test.proxychain.io/hold"
	const denial = `admission webhook "vproxychain.proxychain.io" denied the request: ProxyChain.proxychain.io "stale" is invalid: ` +
		`spec.outbounds[0].proxySettings.tag: Invalid value: "DOJP": no outbound tagged "DOJP"`

	restore := skipChainValidation(t)
	spec := rendertest.SeedSpec()
	spec.Outbounds[0].ProxySettings.Tag = "DOJP"
	pc := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: "stale", Labels: map[string]string{skipValidationLabel: "true"}, Finalizers: []string{finalizer},
	}, Spec: spec}
	// The API server takes up a changed webhook configuration a moment later.
	eventually(t, timeout, func() error { return k8sClient.Create(ctx, pc.DeepCopy()) })
	key := client.ObjectKeyFromObject(pc)

	// The webhook back in force for every chain, this one included.
	restore()
	respec := func(pc *v1alpha1.ProxyChain) { pc.Spec.Outbounds[1].Settings.Servers[0].Port++ } // still invalid
	eventually(t, timeout, func() error {
		err := updateChain(ctx, key, respec, client.DryRunAll)
		if err == nil || err.Error() != denial {
			return fmt.Errorf("spec change on the invalid chain: got %v, want the webhook's denial", err)
		}
		return nil
	})

	t.Run("spec change still denied", func(t *testing.T) {
		if err := updateChain(ctx, key, respec); err == nil || err.Error() != denial {
			t.Errorf("got  %v\nwant %s", err, denial)
		}
		var got v1alpha1.ProxyChain
		if err := k8sClient.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if port := got.Spec.Outbounds[1].Settings.Servers[0].Port; port != spec.Outbounds[1].Settings.Servers[0].Port {
			t.Errorf("stored port %d, created with %d", port, spec.Outbounds[1].Settings.Servers[0].Port)
		}
	})

	t.Run("label added", func(t *testing.T) {
		if err := updateChain(ctx, key, func(pc *v1alpha1.ProxyChain) { pc.Labels = map[string]string{"team": "net"} }); err != nil {
			t.Fatal(err)
		}
		var got v1alpha1.ProxyChain
		if err := k8sClient.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if got.Labels["team"] != "net" {
			t.Errorf("labels %v", got.Labels)
		}
	})

	t.Run("finalizer removed while deleting", func(t *testing.T) {
		if err := k8sClient.Delete(ctx, pc); err != nil {
			t.Fatal(err)
		}
		// As a controller releasing its hold does it: a patch of the finalizers alone.
		if err := k8sClient.Patch(ctx, pc, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
			t.Fatal(err)
		}
		eventually(t, timeout, func() error {
			if err := k8sClient.Get(ctx, key, &v1alpha1.ProxyChain{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("chain still there: %v", err)
			}
			return nil
		})
	})
}

// updateChain reads the chain, edits it and writes it back, again on a conflict: the
// operator writes the chain's status meanwhile.
func updateChain(ctx context.Context, key client.ObjectKey, edit func(*v1alpha1.ProxyChain), opts ...client.UpdateOption) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var pc v1alpha1.ProxyChain
		if err := k8sClient.Get(ctx, key, &pc); err != nil {
			return err
		}
		edit(&pc)
		return k8sClient.Update(ctx, &pc, opts...)
	})
}
