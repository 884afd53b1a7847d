package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/shadowsocks"
	"github.com/proxychain/proxychain/proxy/vmess"
)

// Where the sidecar finds the rendered objects, and the inbounds it listens on. The
// sidecar injector and the data plane's defaults use the same values.
const (
	// MountPath is the directory of the projected volume holding config.json and the
	// credential files.
	MountPath = "/etc/proxychain"
	// ConfigKey is the ConfigMap key, and file name, of the rendered config.
	ConfigKey = "config.json"
	// maxConfigMapBytes is the apiserver's limit on a ConfigMap's keys and values.
	maxConfigMapBytes = 1 << 20

	// ListenAddress keeps the sidecar's inbounds off the pod network. iptables REDIRECT
	// of locally generated packets delivers them to 127.0.0.1.
	ListenAddress = "127.0.0.1"
	// ListenAddress6 is where ip6tables REDIRECT delivers a pod's IPv6 TCP. A pod whose
	// kernel has IPv6 disabled has no such address; the sidecar then skips the listener.
	ListenAddress6 = "::1"
	// RedirectPort is the transparent mode inbound that iptables REDIRECT targets.
	RedirectPort = 15001
	// SocksPort is the explicit mode SOCKS5 inbound (ALL_PROXY=socks5://127.0.0.1:15080).
	SocksPort = 15080
	// HTTPPort is the explicit mode HTTP proxy inbound (HTTP_PROXY, HTTPS_PROXY).
	HTTPPort = 15081

	RedirectInboundTag  = "redirect-in"
	RedirectInbound6Tag = "redirect-in6"
	SocksInboundTag     = "socks-in"
	HTTPInboundTag      = "http-in"
)

// ConfigMapName is the name of the ConfigMap rendered for the ProxyChain named chain.
func ConfigMapName(chain string) string { return chain + "-proxychain" }

// CredentialsSecretName is the name of the credentials Secret rendered for a ProxyChain.
func CredentialsSecretName(chain string) string { return chain + "-proxychain-credentials" }

// Secrets holds the data of the Secrets a chain references, by Secret name. A Secret that
// does not exist is absent from the map.
type Secrets map[string]map[string][]byte

// Result is a rendered chain.
type Result struct {
	// Config is the data plane config; ConfigJSON is its encoding, the ConfigMap's
	// config.json. Neither holds a credential.
	Config     *config.Config
	ConfigJSON []byte
	// Credentials are the credentials Secret's data: file name to contents.
	Credentials map[string][]byte
	// Hash is the hex sha256 of ConfigJSON and Credentials.
	Hash string
	// Chains are the outbounds' chains, in spec order.
	Chains []Chain
}

// Chain is the path one outbound's traffic takes.
type Chain struct {
	Tag string
	// Path runs from the first hop dialed to the outbound itself.
	Path []string
}

func (c Chain) String() string { return strings.Join(c.Path, " -> ") }

// credential is one Secret key the rendered config names as a file.
type credential struct {
	field string // spec path of the reference
	ref   v1alpha1.SecretKeySelector
	file  string // name in the credentials Secret and in the mounted directory
	// invalid says why a value cannot be used ("" when it can); nil accepts any value.
	// It must not echo the value: it is a credential.
	invalid func(value string) string
}

// Render renders spec with the referenced Secrets' data. It fails with *ChainError when
// the outbound graph is invalid, *SecretNotFoundError when a referenced Secret or key is
// missing, and *InvalidCredentialError when a value is unusable; the first of these found
// is returned, and nothing partial.
func Render(spec *v1alpha1.ProxyChainSpec, secrets Secrets) (*Result, error) {
	outbounds, creds := topology(spec)
	chains, err := chainsOf(outbounds)
	if err != nil {
		return nil, err
	}
	values, err := resolve(creds, secrets)
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{
		Inbounds:  inbounds(),
		Outbounds: defaultFirst(outbounds, spec.DefaultOutbound),
		Routing:   routing(spec.Routing),
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	data = append(data, '\n')
	// The ConfigMap holds config.json alone, and the apiserver refuses one whose keys and
	// values come to over 1 MiB. Refused here, nothing is written; refused there, the
	// credentials Secret, written first, would already be the new one.
	if n := len(ConfigKey) + len(data); n > maxConfigMapBytes {
		return nil, &ChainError{Problems: []Problem{{Field: "spec", Message: fmt.Sprintf(
			"renders to a config of %d bytes, over the %d a ConfigMap holds; shorten the routing rules or split the chain",
			len(data), maxConfigMapBytes-len(ConfigKey))}}}
	}
	// What the data plane cannot load must not reach it. Parse reads no files, so the
	// credentials are checked above, and here only that the names are in place.
	if _, _, err := config.Parse(data); err != nil {
		return nil, &ChainError{Problems: specProblems(err, cfg.Outbounds, spec)}
	}
	return &Result{
		Config:      cfg,
		ConfigJSON:  data,
		Credentials: values,
		Hash:        hash(data, values),
		Chains:      chains,
	}, nil
}

// Topology is the outbound graph of spec as data plane outbounds, in spec order, with
// credentials named by file. It needs no Secret, so the webhook checks it.
func Topology(spec *v1alpha1.ProxyChainSpec) []config.OutboundConfig {
	outbounds, _ := topology(spec)
	return outbounds
}

func topology(spec *v1alpha1.ProxyChainSpec) ([]config.OutboundConfig, []credential) {
	var creds []credential
	add := func(field string, ref v1alpha1.SecretKeySelector, file string, invalid func(string) string) string {
		creds = append(creds, credential{field: field, ref: ref, file: file, invalid: invalid})
		return file
	}
	outbounds := make([]config.OutboundConfig, 0, len(spec.Outbounds))
	for i, o := range spec.Outbounds {
		p := fmt.Sprintf("spec.outbounds[%d].settings", i)
		out := config.OutboundConfig{Tag: o.Tag, Protocol: o.Protocol}
		if o.ProxySettings != nil {
			out.ProxySettings = &config.ProxySettings{Tag: o.ProxySettings.Tag}
		}
		s := o.Settings
		if s == nil {
			s = &v1alpha1.OutboundSettings{}
		}
		switch o.Protocol {
		case v1alpha1.ProtocolVMess:
			vs := &config.VMessOutboundSettings{Vnext: []config.VMessServer{}}
			for j, srv := range s.Vnext {
				cs := config.VMessServer{Address: srv.Address, Port: int(srv.Port), Users: []config.VMessUser{}}
				for k, u := range srv.Users {
					cs.Users = append(cs.Users, config.VMessUser{
						IDFile: add(fmt.Sprintf("%s.vnext[%d].users[%d].idFrom", p, j, k), u.IDFrom.SecretKeyRef,
							fmt.Sprintf("%s-%d-%d-id", o.Tag, j, k), invalidUUID),
						AlterID:  int(u.AlterID),
						Security: u.Security,
						Email:    u.Email,
						Level:    int(u.Level),
					})
				}
				vs.Vnext = append(vs.Vnext, cs)
			}
			out.Settings = vs
		case v1alpha1.ProtocolShadowsocks:
			ss := &config.ShadowsocksOutboundSettings{Servers: []config.ShadowsocksServer{}}
			for j, srv := range s.Servers {
				cs := config.ShadowsocksServer{
					Address: srv.Address,
					Port:    int(srv.Port),
					Method:  srv.Method,
					OTA:     srv.OTA,
					Email:   srv.Email,
					Level:   int(srv.Level),
				}
				if srv.PasswordFrom != nil {
					cs.PasswordFile = add(fmt.Sprintf("%s.servers[%d].passwordFrom", p, j), srv.PasswordFrom.SecretKeyRef,
						fmt.Sprintf("%s-%d-password", o.Tag, j), invalidPassword(srv.Method))
				}
				ss.Servers = append(ss.Servers, cs)
			}
			out.Settings = ss
		case v1alpha1.ProtocolSocks, v1alpha1.ProtocolHTTP:
			servers := []config.ProxyServer{}
			for j, srv := range s.Servers {
				cs := config.ProxyServer{Address: srv.Address, Port: int(srv.Port)}
				var invalid func(string) string
				if o.Protocol == v1alpha1.ProtocolSocks {
					invalid = invalidSocksPass
				}
				for k, a := range srv.Users {
					cs.Users = append(cs.Users, config.Account{
						User: a.User,
						PassFile: add(fmt.Sprintf("%s.servers[%d].users[%d].passFrom", p, j, k), a.PassFrom.SecretKeyRef,
							fmt.Sprintf("%s-%d-%d-pass", o.Tag, j, k), invalid),
					})
				}
				servers = append(servers, cs)
			}
			if o.Protocol == v1alpha1.ProtocolSocks {
				out.Settings = &config.SocksOutboundSettings{Servers: servers}
			} else {
				out.Settings = &config.HTTPOutboundSettings{Servers: servers}
			}
		case v1alpha1.ProtocolFreedom:
			out.Settings = &config.FreedomSettings{DomainStrategy: s.DomainStrategy, Redirect: s.Redirect}
		case v1alpha1.ProtocolBlackhole:
			bs := &config.BlackholeSettings{}
			if s.Response != nil {
				bs.Response = &config.BlackholeResponse{Type: s.Response.Type}
			}
			out.Settings = bs
		}
		outbounds = append(outbounds, out)
	}
	return outbounds, creds
}

// SecretNames lists the Secrets spec references, sorted, each once.
func SecretNames(spec *v1alpha1.ProxyChainSpec) []string {
	_, creds := topology(spec)
	names := make([]string, 0, len(creds))
	for _, c := range creds {
		names = append(names, c.ref.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func invalidUUID(v string) string {
	if _, err := vmess.ParseUUID(v); err != nil {
		return "is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
	}
	return ""
}

// invalidPassword checks what the method makes of a password: any text for the stream and
// AEAD methods, a base64 key of the method's size for Shadowsocks 2022.
func invalidPassword(method string) func(string) string {
	return func(v string) string {
		if _, err := shadowsocks.NewCipher(method, v); err != nil {
			return "is not a password " + method + " accepts (Shadowsocks 2022 methods take a base64 key of the cipher's size)"
		}
		return ""
	}
}

// invalidSocksPass refuses what SOCKS5 cannot carry (RFC 1929: 255 bytes).
func invalidSocksPass(v string) string {
	if len(v) > 255 {
		return fmt.Sprintf("is %d bytes, over the 255 a SOCKS5 password may be", len(v))
	}
	return ""
}

// resolve looks every credential up. Values are trimmed of surrounding white space, as
// the data plane trims the files (kubectl create secret --from-file keeps a newline).
func resolve(creds []credential, secrets Secrets) (map[string][]byte, error) {
	values := make(map[string][]byte, len(creds))
	var missing []MissingKey
	for _, c := range creds {
		data, ok := secrets[c.ref.Name]
		if !ok {
			missing = append(missing, MissingKey{Field: c.field, Secret: c.ref.Name, Key: c.ref.Key, SecretMissing: true})
			continue
		}
		v, ok := data[c.ref.Key]
		if !ok {
			missing = append(missing, MissingKey{Field: c.field, Secret: c.ref.Name, Key: c.ref.Key})
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0:
			return nil, &InvalidCredentialError{Field: c.field, Secret: c.ref.Name, Key: c.ref.Key, Reason: "is empty"}
		case c.invalid != nil:
			if reason := c.invalid(string(v)); reason != "" {
				return nil, &InvalidCredentialError{Field: c.field, Secret: c.ref.Name, Key: c.ref.Key, Reason: reason}
			}
		}
		values[c.file] = v
	}
	if len(missing) > 0 {
		return nil, &SecretNotFoundError{Missing: missing}
	}
	return values, nil
}

// inbounds are the sidecar's listeners. Every chain gets all of them, whatever its egress
// mode, so a pod may choose its own mode without a config of its own: the redirect inbound
// takes what iptables captures in transparent mode (sniffing the TLS or HTTP name, so the
// exit hop resolves the name the app asked for), and the SOCKS and HTTP inbounds serve
// explicit mode's proxy variables. All listen on loopback only; the redirect inbound on
// both families, as the capture redirects IPv4 and IPv6.
func inbounds() []config.InboundConfig {
	return []config.InboundConfig{
		{Tag: RedirectInboundTag, Protocol: "redirect", Listen: ListenAddress, Port: RedirectPort,
			Settings: &config.RedirectSettings{}, Sniffing: sniffing()},
		{Tag: RedirectInbound6Tag, Protocol: "redirect", Listen: ListenAddress6, Port: RedirectPort,
			Settings: &config.RedirectSettings{}, Sniffing: sniffing()},
		{Tag: SocksInboundTag, Protocol: "socks", Listen: ListenAddress, Port: SocksPort,
			Settings: &config.SocksInboundSettings{Auth: "noauth"}},
		{Tag: HTTPInboundTag, Protocol: "http", Listen: ListenAddress, Port: HTTPPort,
			Settings: &config.HTTPInboundSettings{}},
	}
}

func sniffing() *config.Sniffing {
	return &config.Sniffing{Enabled: true, DestOverride: []string{"http", "tls"}}
}

// defaultFirst moves the default outbound to the front: the data plane, like V2Ray, takes
// the first outbound as the default.
// specProblems turns the data plane's errors about a rendered config into problems at
// the spec's paths: outbounds are found by tag, as defaultFirst may have moved them, and
// rules keep their index.
func specProblems(err error, rendered []config.OutboundConfig, spec *v1alpha1.ProxyChainSpec) []Problem {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	var problems []Problem
	for _, e := range errs {
		var pe *config.PathError
		if !errors.As(e, &pe) {
			problems = append(problems, Problem{Field: "spec", Message: e.Error()})
			continue
		}
		field := "spec"
		var i int
		var rest string
		switch {
		case scanIndex(pe.Path, "outbounds[", &i, &rest) && i < len(rendered):
			j := slices.IndexFunc(spec.Outbounds, func(o v1alpha1.Outbound) bool { return o.Tag == rendered[i].Tag })
			field = fmt.Sprintf("spec.outbounds[%d]%s", j, rest)
		case strings.HasPrefix(pe.Path, "routing."):
			field = "spec." + pe.Path
		case pe.Path != "":
			field = "spec (the rendered " + pe.Path + ")"
		}
		problems = append(problems, Problem{Field: field, Message: pe.Err.Error()})
	}
	return problems
}

// scanIndex reads "<prefix>N]rest" from path.
func scanIndex(path, prefix string, i *int, rest *string) bool {
	after, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return false
	}
	num, tail, ok := strings.Cut(after, "]")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		return false
	}
	*i, *rest = n, tail
	return true
}

func defaultFirst(outbounds []config.OutboundConfig, tag string) []config.OutboundConfig {
	i := slices.IndexFunc(outbounds, func(o config.OutboundConfig) bool { return o.Tag == tag })
	if i <= 0 {
		return outbounds
	}
	ordered := make([]config.OutboundConfig, 0, len(outbounds))
	ordered = append(ordered, outbounds[i])
	ordered = append(ordered, outbounds[:i]...)
	return append(ordered, outbounds[i+1:]...)
}

func routing(r *v1alpha1.Routing) *config.RoutingConfig {
	if r == nil || len(r.Rules) == 0 {
		return nil
	}
	rc := &config.RoutingConfig{DomainStrategy: "AsIs"}
	for _, rule := range r.Rules {
		rc.Rules = append(rc.Rules, config.RoutingRule{
			Type:        "field",
			Domain:      rule.Domain,
			IP:          rule.IP,
			Port:        config.PortList(rule.Port),
			OutboundTag: rule.OutboundTag,
		})
	}
	return rc
}

// hash covers the config and every credential, each length-prefixed so that no two
// different inputs share an encoding.
func hash(configJSON []byte, credentials map[string][]byte) string {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field(configJSON)
	for _, k := range slices.Sorted(maps.Keys(credentials)) {
		field([]byte(k))
		field(credentials[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}
