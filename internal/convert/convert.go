// Package convert turns a V2Ray client config into what runs it in a cluster: a
// ProxyChain, and a Secret holding the credentials it references, as YAML for one
// `kubectl apply`.
//
// It imports no Kubernetes package, so that the data plane binary (proxychain convert)
// can carry it; the operator's tests decode its output into the API types and check that
// it renders the same chain as the config it came from. The rules the ProxyChain schema
// checks (tag and address patterns, method enum, list limits) are checked here too, so a
// config that cannot move gets an error naming its JSON path rather than an apiserver
// rejection naming a field of the output.
//
// Secret keys are the tag and the credential's kind, with server and user indexes only
// when the outbound holds more than one credential:
//
//	DOUS-id          the VMess UUID of DOUS's only user
//	AliHK-password   the Shadowsocks password of AliHK's only server
//	corp-0-1-pass    the password of user 1 of server 0 of the SOCKS outbound corp
package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/router/match"
)

// The API group and version of the ProxyChain this package writes.
const (
	APIVersion = "proxychain.io/v1alpha1"
	Kind       = "ProxyChain"
)

// Options name the objects Convert writes.
type Options struct {
	// Name is the ProxyChain's name.
	Name string
	// Namespace, when set, is written into both objects; otherwise kubectl's applies.
	Namespace string
	// SecretName is the credentials Secret's; empty means DefaultSecretName(Name).
	SecretName string
}

// DefaultSecretName is the credentials Secret's name for the ProxyChain named chain. It
// differs from the operator's own "<chain>-proxychain-credentials", which the operator
// owns and rewrites.
func DefaultSecretName(chain string) string { return chain + "-credentials" }

// Result is a converted config.
type Result struct {
	// YAML holds the Secret (when there is a credential), then the ProxyChain, as two
	// YAML documents.
	YAML []byte
	// Notes are what was left out because the ProxyChain's sidecar provides it (inbounds,
	// log), and names given where the config had none.
	Notes []config.Warning
	// Warnings are what the ProxyChain does not carry over and may matter.
	Warnings []config.Warning
}

// PathError is a part of the config a ProxyChain cannot express, at its JSON path (or the
// option, such as --name).
type PathError struct {
	Path string
	Msg  string
}

func (e *PathError) Error() string { return "convert: " + e.Path + ": " + e.Msg }

// Limits of the ProxyChain schema (api/v1alpha1).
const (
	maxOutbounds   = 32
	maxServers     = 16 // vnext or servers of one outbound
	maxUsers       = 16
	maxRules       = 128
	maxRuleEntries = 256 // domain or ip entries of one rule
	maxTagLen      = 63
	maxAddressLen  = 253
	maxEmailLen    = 253
	maxUserLen     = 255
	maxLevel       = 255
	maxRedirectLen = 261
	maxDomainLen   = 253
	maxPortLen     = 256
	maxChainName   = 63
	maxSecretName  = 253
)

var (
	tagPattern     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	addressPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	portPattern    = regexp.MustCompile(`^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$`)
	uuidPattern    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// Kubernetes object names: a DNS subdomain, and a DNS label for namespaces.
	subdomainPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelPattern     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// shadowsocksMethods are the methods the ProxyChain schema accepts. methodAliases are
// other spellings the data plane reads as one of them.
var (
	shadowsocksMethods = []string{
		"aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-poly1305", "chacha20-ietf-poly1305",
		"2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305",
		"aes-128-cfb", "aes-192-cfb", "aes-256-cfb", "aes-128-ctr", "aes-192-ctr", "aes-256-ctr",
		"chacha20-ietf",
	}
	methodAliases = map[string]string{
		"aead_aes_128_gcm":       "aes-128-gcm",
		"aead_aes_256_gcm":       "aes-256-gcm",
		"aead_chacha20_poly1305": "chacha20-ietf-poly1305",
	}
)

// privateRanges is what the data plane's router reads "geoip:private" as. The ProxyChain
// takes only IPs and CIDRs, so the rule gets the ranges themselves.
var privateRanges = []string{
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.168.0.0/16", "::/128", "::1/128", "fc00::/7", "fe80::/10",
}

// Convert writes cfg, as config.Load returns it (secret files read), as a ProxyChain and
// the Secret holding its credentials. The outbounds keep their order, so the first is
// still the default; inbounds and log are left out, since the sidecar brings its own.
// Every problem found is returned, joined, each a *PathError or a *chain.Error.
func Convert(cfg *config.Config, opts Options) (*Result, error) {
	c := &converter{secretName: opts.SecretName, keys: map[string]string{}}
	if c.secretName == "" {
		c.secretName = DefaultSecretName(opts.Name)
	}
	c.options(opts)
	for _, err := range chain.Validate(cfg.Outbounds) {
		c.errs = append(c.errs, err)
	}
	c.dropped(cfg)
	spec := c.spec(cfg)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}

	var docs []mapping
	if len(c.stringData) > 0 {
		docs = append(docs, mapping{
			{"apiVersion", "v1"},
			{"kind", "Secret"},
			{"metadata", metadata(c.secretName, opts.Namespace)},
			{"type", "Opaque"},
			{"stringData", c.stringData},
		})
	}
	docs = append(docs, mapping{
		{"apiVersion", APIVersion},
		{"kind", Kind},
		{"metadata", metadata(opts.Name, opts.Namespace)},
		{"spec", spec},
	})
	return &Result{YAML: documents(docs...), Notes: c.notes, Warnings: c.warnings}, nil
}

func metadata(name, namespace string) mapping {
	var m mapping
	m.set("name", name)
	m.set("namespace", namespace)
	return m
}

type converter struct {
	secretName string
	stringData mapping
	keys       map[string]string // Secret key to the JSON path of its credential
	errs       []error
	notes      []config.Warning
	warnings   []config.Warning
}

func (c *converter) fail(path, format string, args ...any) {
	c.errs = append(c.errs, &PathError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *converter) note(path, format string, args ...any) {
	c.notes = append(c.notes, config.Warning{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *converter) warn(path, format string, args ...any) {
	c.warnings = append(c.warnings, config.Warning{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *converter) limit(path string, n, max int, what string) {
	if n > max {
		c.fail(path, "%d %s, a ProxyChain takes at most %d", n, what, max)
	}
}

func (c *converter) options(opts Options) {
	switch {
	case opts.Name == "":
		c.fail("--name", "required")
	case len(opts.Name) > maxChainName || !subdomainPattern.MatchString(opts.Name):
		c.fail("--name", "%q: want a lower case DNS name of at most %d characters (a-z, 0-9, '-', '.')", opts.Name, maxChainName)
	}
	if opts.Namespace != "" && (len(opts.Namespace) > 63 || !labelPattern.MatchString(opts.Namespace)) {
		c.fail("--namespace", "%q: want a lower case DNS label of at most 63 characters (a-z, 0-9, '-')", opts.Namespace)
	}
	switch {
	case opts.SecretName == "":
	case len(opts.SecretName) > maxSecretName || !subdomainPattern.MatchString(opts.SecretName):
		c.fail("--secret-name", "%q: want a lower case DNS name of at most %d characters (a-z, 0-9, '-', '.')", opts.SecretName, maxSecretName)
	case opts.SecretName == opts.Name+"-proxychain-credentials":
		// The operator writes its rendered credentials under this name and would
		// overwrite the user's Secret with them.
		c.fail("--secret-name", "%q is the Secret the operator renders for the chain; choose another name", opts.SecretName)
	}
}

// dropped notes what the sidecar provides itself.
func (c *converter) dropped(cfg *config.Config) {
	if n := len(cfg.Inbounds); n > 0 {
		var tags []string
		for i, in := range cfg.Inbounds {
			if in.Tag != "" {
				tags = append(tags, in.Tag)
			} else {
				tags = append(tags, fmt.Sprintf("inbounds[%d]", i))
			}
		}
		c.note("inbounds", "left out (%s): the sidecar listens on its own inbounds", strings.Join(tags, ", "))
	}
	if cfg.Log != nil {
		c.note("log", "left out: the sidecar's log settings come from the operator")
	}
}

func (c *converter) spec(cfg *config.Config) mapping {
	c.limit("outbounds", len(cfg.Outbounds), maxOutbounds, "outbounds")
	tags := c.tags(cfg.Outbounds)
	var outbounds sequence
	for i := range cfg.Outbounds {
		outbounds = append(outbounds, c.outbound(fmt.Sprintf("outbounds[%d]", i), &cfg.Outbounds[i], tags[i]))
	}
	for _, w := range chain.Warnings(cfg.Outbounds) {
		c.warnings = append(c.warnings, w)
	}
	var spec mapping
	spec.set("outbounds", outbounds)
	if len(tags) > 0 {
		// The first outbound is the default in V2Ray and in a ProxyChain alike; naming
		// it keeps it the default if the outbounds are reordered later.
		spec.set("defaultOutbound", tags[0])
	}
	if cfg.Routing != nil && len(cfg.Routing.Rules) > 0 {
		var rules sequence
		for _, r := range c.rules(cfg.Routing.Rules) {
			rules = append(rules, ruleMapping(r))
		}
		spec.set("routing", mapping{{"rules", rules}})
	}
	return spec
}

// tags checks the config's tags and names the outbounds that have none: a ProxyChain
// names every outbound. Nothing can refer to an untagged outbound, so the name is free.
func (c *converter) tags(outbounds []config.OutboundConfig) []string {
	used := map[string]bool{}
	for _, o := range outbounds {
		used[o.Tag] = true
	}
	tags := make([]string, len(outbounds))
	for i, o := range outbounds {
		p := fmt.Sprintf("outbounds[%d].tag", i)
		if o.Tag != "" {
			if len(o.Tag) > maxTagLen || !tagPattern.MatchString(o.Tag) {
				c.fail(p, "%q cannot tag a ProxyChain outbound: want letters, digits, '-', '_' and '.', "+
					"starting and ending with a letter or digit, at most %d characters", o.Tag, maxTagLen)
			}
			tags[i] = o.Tag
			continue
		}
		tag := fmt.Sprintf("outbound-%d", i)
		for n := 2; used[tag]; n++ {
			tag = fmt.Sprintf("outbound-%d-%d", i, n)
		}
		used[tag] = true
		tags[i] = tag
		c.note(p, "none given; tagged %q, since a ProxyChain names every outbound", tag)
	}
	return tags
}

func (c *converter) outbound(p string, o *config.OutboundConfig, tag string) mapping {
	if o.SendThrough != "" {
		c.fail(p+".sendThrough", "a ProxyChain cannot choose the source address (the sidecar dials from the pod's); remove it")
	}
	if o.ProxySettings == nil {
		// With proxySettings, V2Ray and proxychain ignore streamSettings, and
		// chain.Warnings says so.
		c.streamSettings(p+".streamSettings", o.StreamSettings)
	}
	if muxEnabled(o.Mux) {
		c.warn(p+".mux", "left out: proxychain does not multiplex, each connection has its own stream")
	}

	m := mapping{{"tag", tag}, {"protocol", o.Protocol}}
	if ps := o.ProxySettings; ps != nil && ps.TransportLayer {
		c.warn(p+".proxySettings.transportLayer", "left out: it has no effect, the parent carries the stream as plain TCP either way")
	}
	p += ".settings"
	switch s := o.Settings.(type) {
	case *config.VMessOutboundSettings:
		m.set("settings", mapping{{"vnext", c.vnext(p+".vnext", tag, s.Vnext)}})
	case *config.ShadowsocksOutboundSettings:
		m.set("settings", mapping{{"servers", c.shadowsocks(p+".servers", tag, s.Servers)}})
	case *config.SocksOutboundSettings:
		m.set("settings", mapping{{"servers", c.proxyServers(p+".servers", tag, s.Servers)}})
	case *config.HTTPOutboundSettings:
		m.set("settings", mapping{{"servers", c.proxyServers(p+".servers", tag, s.Servers)}})
	case *config.FreedomSettings:
		var fs mapping
		fs.set("domainStrategy", s.DomainStrategy)
		if len(s.Redirect) > maxRedirectLen {
			c.fail(p+".redirect", "longer than %d characters", maxRedirectLen)
		}
		fs.set("redirect", s.Redirect)
		m.set("settings", fs)
	case *config.BlackholeSettings:
		// An empty type means none, and so does no response at all.
		if s.Response != nil && s.Response.Type != "" {
			m.set("settings", mapping{{"response", mapping{{"type", s.Response.Type}}}})
		}
	}
	if ps := o.ProxySettings; ps != nil {
		m.set("proxySettings", mapping{{"tag", ps.Tag}})
	}
	return m
}

// streamSettings warns that socket options and the like are left out: a ProxyChain
// dials plain TCP with default options. What would change the bytes on the wire (another
// transport, TLS) config.Validate has already refused.
func (c *converter) streamSettings(p string, raw json.RawMessage) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return
	}
	for k := range fields {
		if k != "network" && k != "security" {
			c.warn(p, "left out: a ProxyChain dials plain TCP with default socket options")
			return
		}
	}
}

func muxEnabled(raw json.RawMessage) bool {
	var mux struct {
		Enabled bool `json:"enabled"`
	}
	return len(raw) > 0 && json.Unmarshal(raw, &mux) == nil && mux.Enabled
}

func (c *converter) vnext(p, tag string, servers []config.VMessServer) sequence {
	c.limit(p, len(servers), maxServers, "servers")
	users := 0
	for _, s := range servers {
		users += len(s.Users)
	}
	var out sequence
	for j, srv := range servers {
		sp := fmt.Sprintf("%s[%d]", p, j)
		c.limit(sp+".users", len(srv.Users), maxUsers, "users")
		var us sequence
		for k, u := range srv.Users {
			up := fmt.Sprintf("%s.users[%d]", sp, k)
			var m mapping
			id, err := u.ResolvedID()
			if err != nil {
				c.fail(up+".idFile", "%v", err)
			} else {
				m.set("idFrom", c.credential(up+".id", credentialKey(tag, "id", users == 1, j, k), id, true))
			}
			m.set("alterId", u.AlterID)
			m.set("security", u.Security)
			m.set("email", c.email(up+".email", u.Email))
			m.set("level", c.level(up+".level", u.Level))
			us = append(us, m)
		}
		m := c.server(sp, srv.Address, srv.Port)
		m.set("users", us)
		out = append(out, m)
	}
	return out
}

func (c *converter) shadowsocks(p, tag string, servers []config.ShadowsocksServer) sequence {
	c.limit(p, len(servers), maxServers, "servers")
	var out sequence
	for j, srv := range servers {
		sp := fmt.Sprintf("%s[%d]", p, j)
		m := c.server(sp, srv.Address, srv.Port)
		m.set("method", c.method(sp+".method", srv.Method))
		if pw, err := srv.ResolvedPassword(); err != nil {
			c.fail(sp+".passwordFile", "%v", err)
		} else {
			m.set("passwordFrom", c.credential(sp+".password", credentialKey(tag, "password", len(servers) == 1, j), pw, false))
		}
		// ota is false here: config.Validate rejects true.
		m.set("email", c.email(sp+".email", srv.Email))
		m.set("level", c.level(sp+".level", srv.Level))
		out = append(out, m)
	}
	return out
}

func (c *converter) proxyServers(p, tag string, servers []config.ProxyServer) sequence {
	c.limit(p, len(servers), maxServers, "servers")
	users := 0
	for _, s := range servers {
		users += len(s.Users)
	}
	var out sequence
	for j, srv := range servers {
		sp := fmt.Sprintf("%s[%d]", p, j)
		c.limit(sp+".users", len(srv.Users), maxUsers, "users")
		var us sequence
		for k, a := range srv.Users {
			ap := fmt.Sprintf("%s.users[%d]", sp, k)
			if len(a.User) > maxUserLen {
				c.fail(ap+".user", "longer than %d characters", maxUserLen)
			}
			m := mapping{{"user", a.User}}
			if pass, err := a.ResolvedPass(); err != nil {
				c.fail(ap+".passFile", "%v", err)
			} else {
				m.set("passFrom", c.credential(ap+".pass", credentialKey(tag, "pass", users == 1, j, k), pass, false))
			}
			us = append(us, m)
		}
		m := c.server(sp, srv.Address, srv.Port)
		m.set("users", us)
		out = append(out, m)
	}
	return out
}

func (c *converter) server(p, address string, port int) mapping {
	if len(address) > maxAddressLen || !addressPattern.MatchString(address) {
		c.fail(p+".address", "%q cannot be a ProxyChain server address: want a host name or IP address "+
			"(letters, digits, '.', '-', '_', ':'), at most %d characters", address, maxAddressLen)
	}
	return mapping{{"address", address}, {"port", port}}
}

func (c *converter) method(p, method string) string {
	m := strings.ToLower(strings.TrimSpace(method))
	if alias, ok := methodAliases[m]; ok {
		m = alias
	}
	for _, known := range shadowsocksMethods {
		if m == known {
			return m
		}
	}
	c.fail(p, "%q cannot be expressed in a ProxyChain, which takes %s", method, strings.Join(shadowsocksMethods, ", "))
	return method
}

func (c *converter) email(p, email string) string {
	if len(email) > maxEmailLen {
		c.fail(p, "longer than %d characters", maxEmailLen)
	}
	return email
}

func (c *converter) level(p string, level int) int {
	if level < 0 || level > maxLevel {
		c.fail(p, "want 0 to %d, got %d", maxLevel, level)
	}
	return level
}

// credentialKey names a credential in the Secret: the tag and kind alone when it is the
// outbound's only credential, else with its server (and user) indexes.
func credentialKey(tag, kind string, only bool, indexes ...int) string {
	if only {
		return tag + "-" + kind
	}
	key := tag
	for _, i := range indexes {
		key += fmt.Sprintf("-%d", i)
	}
	return key + "-" + kind
}

// credential moves value into the Secret under key and returns the reference to it. The
// value is checked as the operator will check it, and never appears in an error.
func (c *converter) credential(p, key, value string, wantUUID bool) mapping {
	switch {
	case !utf8.ValidString(value):
		c.fail(p, "is not valid UTF-8, which a Secret's stringData cannot hold")
	case strings.TrimSpace(value) != value:
		c.fail(p, "has leading or trailing white space, which the operator trims from Secret values; remove it")
	case wantUUID && !uuidPattern.MatchString(value):
		c.fail(p, "is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), which the operator requires")
	}
	if other, taken := c.keys[key]; taken {
		// Tags may contain '-' and digits, so "a-0" and "a" with two servers collide.
		c.fail(p, "its Secret key %q is also %s's; rename one of the outbounds", key, other)
	}
	c.keys[key] = p
	c.stringData = append(c.stringData, field{key, value})
	return mapping{{"secretKeyRef", mapping{{"name", c.secretName}, {"key", key}}}}
}

// rules returns the routing rules in the form a ProxyChain takes: geoip:private spelled
// out as its ranges, IPs and CIDRs in canonical form, ports without spaces.
func (c *converter) rules(rules []config.RoutingRule) []config.RoutingRule {
	c.limit("routing.rules", len(rules), maxRules, "rules")
	var out []config.RoutingRule
	for i, r := range rules {
		p := fmt.Sprintf("routing.rules[%d]", i)
		if len(r.InboundTag) > 0 {
			// Dropping the condition would widen the rule to all traffic.
			c.fail(p+".inboundTag", "a ProxyChain cannot match by inbound, since the sidecar's inbounds replace the config's; "+
				"remove the condition or the rule")
		}
		if tcp, _ := match.MatchesTCP(r.Network); !tcp {
			// config.Validate has checked the list; without TCP the rule never matches.
			c.warn(p, "left out: its network condition excludes TCP, the only traffic a ProxyChain routes")
			continue
		}
		// A network condition that admits TCP holds for every connection, so it goes.
		rule := config.RoutingRule{OutboundTag: r.OutboundTag}
		c.limit(p+".domain", len(r.Domain), maxRuleEntries, "entries")
		for k, d := range r.Domain {
			// config.Validate has refused site lists and empty patterns.
			if len(d) > maxDomainLen {
				c.fail(fmt.Sprintf("%s.domain[%d]", p, k), "longer than %d characters", maxDomainLen)
			}
			rule.Domain = append(rule.Domain, d)
		}
		for k, s := range r.IP {
			ip, err := canonicalIP(s)
			if err != nil {
				c.fail(fmt.Sprintf("%s.ip[%d]", p, k), "%v", err)
				continue
			}
			if s == "geoip:private" {
				c.note(fmt.Sprintf("%s.ip[%d]", p, k), "geoip:private written as the %d ranges it stands for", len(privateRanges))
			}
			rule.IP = append(rule.IP, ip...)
		}
		c.limit(p+".ip", len(rule.IP), maxRuleEntries, "entries")
		if r.Port != "" {
			rule.Port = config.PortList(strings.ReplaceAll(string(r.Port), " ", ""))
			if len(rule.Port) > maxPortLen || !portPattern.MatchString(string(rule.Port)) {
				c.fail(p+".port", `want ports like "53", "1000-2000" or "80,443", got %q`, r.Port)
			}
		}
		if !rule.HasCondition() && len(r.InboundTag) == 0 {
			// Only the network condition was left, and it holds for every TCP connection.
			c.fail(p, "matches every connection, which a ProxyChain rule cannot say (it needs domain, ip or port); "+
				"make %q the defaultOutbound instead, and drop the rules after this one, which it shadows", r.OutboundTag)
			continue
		}
		out = append(out, rule)
	}
	return out
}

// canonicalIP reads an ip entry of a rule as the data plane's router does, and writes it
// as a ProxyChain takes it: an IP address or a CIDR with no host bits, IPv4 unmapped.
func canonicalIP(s string) ([]string, error) {
	switch {
	case s == "geoip:private":
		return privateRanges, nil
	case strings.HasPrefix(s, "geoip:") || strings.HasPrefix(s, "ext:"):
		return nil, fmt.Errorf("%q: geoip lists are not supported (only geoip:private); list the CIDRs instead", s)
	}
	if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Zone() == "" {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return []string{p.Masked().String()}, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return []string{ip.Unmap().String()}, nil
	}
	return nil, fmt.Errorf("want an IP address or CIDR, got %q", s)
}

func ruleMapping(r config.RoutingRule) mapping {
	var m mapping
	m.set("domain", stringSeq(r.Domain))
	m.set("ip", stringSeq(r.IP))
	m.set("port", string(r.Port))
	m.set("outboundTag", r.OutboundTag)
	return m
}

func stringSeq(ss []string) sequence {
	var s sequence
	for _, v := range ss {
		s = append(s, v)
	}
	return s
}
