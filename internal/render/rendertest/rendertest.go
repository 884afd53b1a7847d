// Package rendertest holds the seed's chain as a ProxyChain, and a view of a loaded data
// plane config that compares outbounds with their secrets resolved, for the renderer's
// and the operator's tests.
package rendertest

import (
	"fmt"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/proxy/config"
)

// Secret names and credentials of the seed's chain (proxy/config/testdata/seed-chain.json).
const (
	VMessSecret       = "vmess-ids"
	ShadowsocksSecret = "ss-passwords"
	DOUSID            = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	DOSGID            = "b27c24ab-2b5a-433e-902c-33f1168a7902"
	SeedPassword      = "password"
)

// SeedPath is the chain the seed's default outbound (DOUS) takes.
const SeedPath = "AliHK -> AliSG -> DOSG -> DOUS"

// SeedSecrets is the data of the Secrets SeedSpec references.
func SeedSecrets() map[string]map[string][]byte {
	return map[string]map[string][]byte{
		VMessSecret:       {"DOUS": []byte(DOUSID), "DOSG": []byte(DOSGID + "\n")},
		ShadowsocksSecret: {"AliHK": []byte(SeedPassword), "AliSG": []byte(SeedPassword)},
	}
}

// SeedSpec is the seed's 4-hop chain: PC -> AliHK -> AliSG -> DOSG -> DOUS, with the
// credentials moved into Secrets.
func SeedSpec() v1alpha1.ProxyChainSpec {
	ref := func(secret, key string) v1alpha1.CredentialSource {
		return v1alpha1.CredentialSource{SecretKeyRef: v1alpha1.SecretKeySelector{Name: secret, Key: key}}
	}
	vmess := func(tag, address string, port int32, parent string) v1alpha1.Outbound {
		return v1alpha1.Outbound{
			Tag: tag, Protocol: v1alpha1.ProtocolVMess,
			Settings: &v1alpha1.OutboundSettings{Vnext: []v1alpha1.VMessServer{{
				Address: address, Port: port,
				Users: []v1alpha1.VMessUser{{IDFrom: ref(VMessSecret, tag), AlterID: 64}},
			}}},
			ProxySettings: &v1alpha1.ProxySettings{Tag: parent},
		}
	}
	ss := func(tag, address string, port int32) v1alpha1.Outbound {
		pw := ref(ShadowsocksSecret, tag)
		return v1alpha1.Outbound{
			Tag: tag, Protocol: v1alpha1.ProtocolShadowsocks,
			Settings: &v1alpha1.OutboundSettings{Servers: []v1alpha1.Server{{
				Address: address, Port: port, Method: "aes-256-cfb", PasswordFrom: &pw,
			}}},
		}
	}
	aliSG := ss("AliSG", "3.3.3.3", 3442)
	aliSG.ProxySettings = &v1alpha1.ProxySettings{Tag: "AliHK"}
	return v1alpha1.ProxyChainSpec{
		Outbounds: []v1alpha1.Outbound{
			vmess("DOUS", "1.1.1.1", 8888, "DOSG"),
			ss("AliHK", "2.2.2.2", 1024),
			aliSG,
			vmess("DOSG", "4.4.4.4", 8462, "AliSG"),
		},
	}
}

// ManyRefsSpec is a valid chain of the given number of VMess outbounds, each with the
// schema's most servers and users per server, every user's id a key of secret: 256
// references per outbound.
func ManyRefsSpec(outbounds int, secret string) v1alpha1.ProxyChainSpec {
	var spec v1alpha1.ProxyChainSpec
	for o := range outbounds {
		out := v1alpha1.Outbound{Tag: fmt.Sprintf("out%d", o), Protocol: v1alpha1.ProtocolVMess, Settings: &v1alpha1.OutboundSettings{}}
		for v := range 16 {
			server := v1alpha1.VMessServer{Address: fmt.Sprintf("10.0.%d.%d", o, v), Port: 443}
			for u := range 16 {
				server.Users = append(server.Users, v1alpha1.VMessUser{IDFrom: v1alpha1.CredentialSource{
					SecretKeyRef: v1alpha1.SecretKeySelector{Name: secret, Key: fmt.Sprintf("%d-%d-%d", o, v, u)},
				}})
			}
			out.Settings.Vnext = append(out.Settings.Vnext, server)
		}
		spec.Outbounds = append(spec.Outbounds, out)
	}
	return spec
}

// Outbound is a loaded outbound with its secrets in place of their file names, so a
// config that embeds credentials and one that names files compare equal.
type Outbound struct {
	Tag, Protocol, Via string
	Settings           any
}

// ResolvedOutbounds views cfg's outbounds with secrets resolved. cfg must come from
// config.Load (or have had ResolveFiles called).
func ResolvedOutbounds(cfg *config.Config) ([]Outbound, error) {
	var out []Outbound
	for i, o := range cfg.Outbounds {
		v := Outbound{Tag: o.Tag, Protocol: o.Protocol}
		if o.ProxySettings != nil {
			v.Via = o.ProxySettings.Tag
		}
		switch s := o.Settings.(type) {
		case *config.ShadowsocksOutboundSettings:
			var servers []config.ShadowsocksServer
			for _, srv := range s.Servers {
				pw, err := srv.ResolvedPassword()
				if err != nil {
					return nil, fmt.Errorf("outbounds[%d]: %w", i, err)
				}
				servers = append(servers, config.ShadowsocksServer{
					Address: srv.Address, Port: srv.Port, Method: srv.Method, Password: pw,
					OTA: srv.OTA, Email: srv.Email, Level: srv.Level,
				})
			}
			v.Settings = servers
		case *config.VMessOutboundSettings:
			var servers []config.VMessServer
			for _, srv := range s.Vnext {
				cs := config.VMessServer{Address: srv.Address, Port: srv.Port}
				for _, u := range srv.Users {
					id, err := u.ResolvedID()
					if err != nil {
						return nil, fmt.Errorf("outbounds[%d]: %w", i, err)
					}
					cs.Users = append(cs.Users, config.VMessUser{
						ID: id, AlterID: u.AlterID, Security: u.Security, Email: u.Email, Level: u.Level,
					})
				}
				servers = append(servers, cs)
			}
			v.Settings = servers
		default:
			v.Settings = s
		}
		out = append(out, v)
	}
	return out, nil
}
