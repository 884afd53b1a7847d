package chain

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/proxy/config"
)

// outbounds builds a graph from "tag<-parent" specs; "tag" alone has no parent.
func outbounds(specs ...string) []config.OutboundConfig {
	var obs []config.OutboundConfig
	for _, s := range specs {
		tag, parent, ok := strings.Cut(s, "<-")
		o := config.OutboundConfig{Tag: tag, Protocol: "freedom"}
		if ok {
			o.ProxySettings = &config.ProxySettings{Tag: parent}
		}
		obs = append(obs, o)
	}
	return obs
}

func tags(obs []config.OutboundConfig, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, Name(obs, i))
	}
	return out
}

func TestSeedChain(t *testing.T) {
	cfg, _, err := config.Load("../config/testdata/seed-chain.json")
	if err != nil {
		t.Fatal(err)
	}
	order, err := Order(cfg.Outbounds)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tags(cfg.Outbounds, order), []string{"AliHK", "AliSG", "DOSG", "DOUS"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	hops, err := Path(cfg.Outbounds, "DOUS")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tags(cfg.Outbounds, hops), []string{"AliHK", "AliSG", "DOSG", "DOUS"}; !reflect.DeepEqual(got, want) {
		t.Errorf("path = %v, want %v", got, want)
	}
	if w := Warnings(cfg.Outbounds); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestSeedBasicUntagged(t *testing.T) {
	cfg, _, err := config.Load("../config/testdata/seed-basic.json")
	if err != nil {
		t.Fatal(err)
	}
	hops, err := Hops(cfg.Outbounds, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tags(cfg.Outbounds, hops), []string{"transit", "outbounds[0]"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hops = %v, want %v", got, want)
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  []string
	}{
		{"empty", nil, nil},
		{"independent keep config order", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"parent after child in config", []string{"c<-b", "b<-a", "a"}, []string{"a", "b", "c"}},
		{"tree", []string{"x<-root", "root", "y<-root", "z<-x"}, []string{"root", "x", "y", "z"}},
		{"untagged child", []string{"<-a", "a"}, []string{"a", "outbounds[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := outbounds(tt.specs...)
			order, err := Order(obs)
			if err != nil {
				t.Fatal(err)
			}
			if got := tags(obs, order); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOrderErrors(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  []string
	}{
		{"unknown tag", []string{"DOUS<-DOSGX", "DOSG"},
			[]string{`chain: outbounds[0].proxySettings.tag: no outbound tagged "DOSGX"`}},
		{"self reference", []string{"a", "b<-b"},
			[]string{`chain: outbounds[1].proxySettings.tag: outbound "b" cannot be its own proxy`}},
		{"empty parent tag", []string{"a<-"},
			[]string{`chain: outbounds[0].proxySettings.tag: required`}},
		{"duplicate tag", []string{"DOUS", "AliHK", "DOSG", "AliHK"},
			[]string{`chain: outbounds[3].tag: duplicate tag "AliHK" (also outbounds[1])`}},
		{"cycle", []string{"DOUS<-DOSG", "AliHK", "AliSG<-DOUS", "DOSG<-AliSG"},
			[]string{"chain: outbound cycle: DOUS -> DOSG -> AliSG -> DOUS"}},
		{"cycle named from its first member", []string{"x<-b", "b<-a", "a<-b"},
			[]string{"chain: outbound cycle: b -> a -> b"}},
		{"two cycles and a dangling link", []string{"a<-b", "b<-a", "c<-d", "d<-c", "e<-zz"},
			[]string{
				`chain: outbounds[4].proxySettings.tag: no outbound tagged "zz"`,
				"chain: outbound cycle: a -> b -> a",
				"chain: outbound cycle: c -> d -> c",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := outbounds(tt.specs...)
			_, err := Order(obs)
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *chain.Error")
			}
			if len(Validate(obs)) != len(tt.want) {
				t.Errorf("Validate found %d problems, want %d", len(Validate(obs)), len(tt.want))
			}
			if _, err := Hops(obs, 0); err == nil {
				t.Errorf("Hops succeeded on a broken graph")
			}
		})
	}
}

func TestCycleField(t *testing.T) {
	errs := Validate(outbounds("DOUS<-DOSG", "AliHK", "AliSG<-DOUS", "DOSG<-AliSG"))
	if len(errs) != 1 {
		t.Fatalf("got %v", errs)
	}
	if want := []string{"DOUS", "DOSG", "AliSG", "DOUS"}; !reflect.DeepEqual(errs[0].Cycle, want) {
		t.Errorf("Cycle = %v, want %v", errs[0].Cycle, want)
	}
}

func TestPathUnknown(t *testing.T) {
	_, err := Path(outbounds("a"), "b")
	if err == nil || err.Error() != `chain: no outbound tagged "b"` {
		t.Errorf("err = %v", err)
	}
	if _, err := Hops(outbounds("a"), 3); err == nil {
		t.Error("Hops out of range succeeded")
	}
}

func TestWarnings(t *testing.T) {
	obs := outbounds("a", "b<-a", "c")
	obs[1].StreamSettings = []byte(`{"network": "ws"}`)
	obs[2].StreamSettings = []byte(`{"network": "tcp"}`)
	want := []config.Warning{{
		Path:    "outbounds[1].streamSettings",
		Message: "ignored because the outbound has proxySettings: its parent carries it as plain TCP",
	}}
	if got := Warnings(obs); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %v, want %v", got, want)
	}
}

func TestDescribe(t *testing.T) {
	cfg, _, err := config.Load("../config/testdata/seed-chain.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Describe(cfg.Outbounds)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DOUS: client -> AliHK (shadowsocks 2.2.2.2:1024) -> AliSG (shadowsocks 3.3.3.3:3442) -> DOSG (vmess 4.4.4.4:8462) -> DOUS (vmess 1.1.1.1:8888) -> destination",
		"AliHK: client -> AliHK (shadowsocks 2.2.2.2:1024) -> destination",
		"AliSG: client -> AliHK (shadowsocks 2.2.2.2:1024) -> AliSG (shadowsocks 3.3.3.3:3442) -> destination",
		"DOSG: client -> AliHK (shadowsocks 2.2.2.2:1024) -> AliSG (shadowsocks 3.3.3.3:3442) -> DOSG (vmess 4.4.4.4:8462) -> destination",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Describe:\n got %q\nwant %q", got, want)
	}
	obs := outbounds("direct", "block")
	obs[1].Protocol = "blackhole"
	got, _ = Describe(obs)
	if want := []string{"direct: client -> direct (freedom) -> destination", "block: client -> block (blackhole) -> dropped"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Describe = %q", got)
	}
	if _, err := Describe(outbounds("a<-b")); err == nil {
		t.Error("broken graph described")
	}
}
