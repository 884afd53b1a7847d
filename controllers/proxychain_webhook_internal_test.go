package controllers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render/rendertest"
)

// TestValidatorMessages runs without a control plane; the envtest suite checks the same
// messages as the API server returns them.
func TestValidatorMessages(t *testing.T) {
	tests := []struct {
		name string
		edit func(*v1alpha1.ProxyChainSpec)
		want string
	}{
		{"valid", func(*v1alpha1.ProxyChainSpec) {}, ""},
		{
			"cycle",
			func(s *v1alpha1.ProxyChainSpec) { s.Outbounds[1].ProxySettings = &v1alpha1.ProxySettings{Tag: "DOUS"} },
			`ProxyChain.proxychain.io "c" is invalid: spec.outbounds: Forbidden: outbound cycle: DOUS -> DOSG -> AliSG -> AliHK -> DOUS`,
		},
		{
			"unknown tag and self reference",
			func(s *v1alpha1.ProxyChainSpec) {
				s.Outbounds[0].ProxySettings.Tag = "DOJP"
				s.Outbounds[3].ProxySettings.Tag = "DOSG"
			},
			`ProxyChain.proxychain.io "c" is invalid: [spec.outbounds[0].proxySettings.tag: Invalid value: "DOJP": no outbound tagged "DOJP", ` +
				`spec.outbounds[3].proxySettings.tag: Invalid value: "DOSG": outbound "DOSG" cannot be its own proxy]`,
		},
		{
			// The API server's CEL rule denies such an ip entry before the webhook sees it,
			// so only this test reaches the webhook's ip check.
			"routing entries and graph",
			func(s *v1alpha1.ProxyChainSpec) {
				s.Outbounds[0].ProxySettings.Tag = "DOJP"
				s.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{
					{Domain: []string{"example.com"}, IP: []string{"10.0.0.0/8", "geoip:cn"}, OutboundTag: "DOUS"},
					{Domain: []string{"geosite:cn"}, Port: "443-80", OutboundTag: "DOUS"},
				}}
			},
			`ProxyChain.proxychain.io "c" is invalid: [spec.outbounds[0].proxySettings.tag: Invalid value: "DOJP": no outbound tagged "DOJP", ` +
				`spec.routing.rules[0].ip[1]: Invalid value: "geoip:cn": "geoip:cn": geoip lists are not supported (only geoip:private); list the CIDRs instead, ` +
				`spec.routing.rules[1].domain[0]: Invalid value: "geosite:cn": "geosite:cn": geosite lists are not supported; list the domains instead, ` +
				`spec.routing.rules[1].port: Invalid value: "443-80": want ports like "53", "1000-2000" or "80,443", got "443-80"]`,
		},
		{
			"routing entries valid",
			func(s *v1alpha1.ProxyChainSpec) {
				s.Routing = &v1alpha1.Routing{Rules: []v1alpha1.RoutingRule{
					{Domain: []string{"domain:example.com", `regexp:\.goo.*\.com$`}, IP: []string{"geoip:private", "2001:db8::1"}, Port: "80,443,1000-2000", OutboundTag: "DOUS"},
				}}
			},
			"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: rendertest.SeedSpec()}
			pc := old.DeepCopy()
			tt.edit(&pc.Spec)
			_, createErr := ChainValidator{}.ValidateCreate(context.Background(), pc)
			_, updateErr := ChainValidator{}.ValidateUpdate(context.Background(), old, pc)
			for _, err := range []error{createErr, updateErr} {
				got := ""
				if err != nil {
					got = err.Error()
				}
				if got != tt.want {
					t.Errorf("got  %s\nwant %s", got, tt.want)
				}
			}
		})
	}
}

// TestValidatorLetsInvalidChainsGo: an update that leaves the spec as it is, or of a
// chain being deleted, is allowed even when the stored chain is invalid; a spec change
// that leaves it invalid is not.
func TestValidatorLetsInvalidChainsGo(t *testing.T) {
	old := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Name: "c", Finalizers: []string{"example.test/hold"}}, Spec: rendertest.SeedSpec()}
	old.Spec.Outbounds[0].ProxySettings.Tag = "DOJP"
	tests := []struct {
		name    string
		edit    func(*v1alpha1.ProxyChain)
		allowed bool
	}{
		{"label added", func(pc *v1alpha1.ProxyChain) { pc.Labels = map[string]string{"team": "net"} }, true},
		{"finalizer removed", func(pc *v1alpha1.ProxyChain) { pc.Finalizers = nil }, true},
		{"finalizer removed while deleting", func(pc *v1alpha1.ProxyChain) {
			pc.DeletionTimestamp = &metav1.Time{}
			pc.Finalizers = nil
		}, true},
		{"spec changed while deleting", func(pc *v1alpha1.ProxyChain) {
			pc.DeletionTimestamp = &metav1.Time{}
			pc.Spec.Outbounds[1].Settings.Servers[0].Port++
		}, true},
		{"spec changed, still invalid", func(pc *v1alpha1.ProxyChain) { pc.Spec.Outbounds[1].Settings.Servers[0].Port++ }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := old.DeepCopy()
			tt.edit(pc)
			_, err := ChainValidator{}.ValidateUpdate(context.Background(), old, pc)
			if (err == nil) != tt.allowed {
				t.Errorf("allowed %v, want %v (err %v)", err == nil, tt.allowed, err)
			}
		})
	}
}
