package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/proxychain/proxychain/proxy/router/match"
)

// Validate checks what a config means, without reading files: required fields, port
// ranges, one of each secret and its file twin, and routing rules that name outbounds.
// The outbound graph (proxySettings) is checked by package chain. Every problem is
// reported, each a *PathError, joined with errors.Join.
func (c *Config) Validate() error {
	var v validator
	if len(c.Outbounds) == 0 {
		v.add("outbounds", "at least one outbound is required")
	}
	for i := range c.Outbounds {
		v.outbound(&c.Outbounds[i], fmt.Sprintf("outbounds[%d]", i))
	}
	inboundTags := map[string]int{}
	for i := range c.Inbounds {
		in := &c.Inbounds[i]
		p := fmt.Sprintf("inbounds[%d]", i)
		if in.Tag != "" {
			if j, dup := inboundTags[in.Tag]; dup {
				v.add(p+".tag", "duplicate tag %q (also inbounds[%d])", in.Tag, j)
			} else {
				inboundTags[in.Tag] = i
			}
		}
		v.inbound(in, p)
	}
	if c.Routing != nil {
		v.routing(c.Routing, c.Outbounds)
	}
	lp := c.Policy.Level0()
	if lp.Handshake != nil && *lp.Handshake == 0 {
		v.add("policy.levels.0.handshake", "must be at least 1 (seconds)")
	}
	if lp.ConnIdle != nil && *lp.ConnIdle == 0 {
		v.add("policy.levels.0.connIdle", "must be at least 1 (seconds)")
	}
	return errors.Join(v.errs...)
}

type validator struct {
	errs []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, pathErrorf(path, format, args...))
}

func (v *validator) outbound(o *OutboundConfig, p string) {
	if o.SendThrough != "" {
		if _, err := netip.ParseAddr(o.SendThrough); err != nil {
			v.add(p+".sendThrough", "want an IP address, got %q", o.SendThrough)
		}
	}
	// With proxySettings V2Ray ignores streamSettings (chain.Warnings says so), unless
	// transportLayer asks for them over the parent's stream.
	if o.ProxySettings == nil || o.ProxySettings.TransportLayer {
		v.streamSettings(p+".streamSettings", o.StreamSettings, "dials its server")
	}
	p += ".settings"
	switch s := o.Settings.(type) {
	case *ShadowsocksOutboundSettings:
		if len(s.Servers) == 0 {
			v.add(p+".servers", "at least one server is required")
		}
		for i := range s.Servers {
			srv := &s.Servers[i]
			sp := fmt.Sprintf("%s.servers[%d]", p, i)
			v.server(sp, srv.Address, srv.Port)
			v.required(sp+".method", srv.Method)
			v.secret(sp, "password", srv.Password, srv.PasswordFile)
			if srv.OTA {
				v.add(sp+".ota", `one-time auth was removed from Shadowsocks (SIP004 AEAD replaced it); set "ota": false`)
			}
		}
	case *VMessOutboundSettings:
		if len(s.Vnext) == 0 {
			v.add(p+".vnext", "at least one server is required")
		}
		for i := range s.Vnext {
			srv := &s.Vnext[i]
			sp := fmt.Sprintf("%s.vnext[%d]", p, i)
			v.server(sp, srv.Address, srv.Port)
			if len(srv.Users) == 0 {
				v.add(sp+".users", "at least one user is required")
			}
			for j := range srv.Users {
				v.vmessUser(&srv.Users[j], fmt.Sprintf("%s.users[%d]", sp, j))
			}
		}
	case *SocksOutboundSettings:
		v.proxyServers(p, s.Servers)
		for i := range s.Servers {
			v.socksAccounts(fmt.Sprintf("%s.servers[%d].users", p, i), s.Servers[i].Users)
		}
	case *HTTPOutboundSettings:
		v.proxyServers(p, s.Servers)
	case *FreedomSettings:
		switch s.DomainStrategy {
		case "", "AsIs", "UseIP", "UseIPv4", "UseIPv6":
		default:
			v.add(p+".domainStrategy", `want one of "AsIs", "UseIP", "UseIPv4", "UseIPv6", got %q`, s.DomainStrategy)
		}
		if s.Redirect != "" {
			if _, _, err := ParseRedirect(s.Redirect); err != nil {
				v.add(p+".redirect", "%v", err)
			}
		}
	case *BlackholeSettings:
		if s.Response != nil {
			switch s.Response.Type {
			case "", "none", "http":
			default:
				v.add(p+".response.type", `want "none" or "http", got %q`, s.Response.Type)
			}
		}
	case nil:
		v.add(p, "required")
	}
}

func (v *validator) inbound(in *InboundConfig, p string) {
	if in.Port < 1 || in.Port > 65535 {
		v.add(p+".port", "want a port from 1 to 65535, got %d", in.Port)
	}
	if in.Listen != "" {
		if _, err := netip.ParseAddr(in.Listen); err != nil {
			v.add(p+".listen", "want an IP address, got %q", in.Listen)
		}
	}
	v.streamSettings(p+".streamSettings", in.StreamSettings, "serves")
	p += ".settings"
	switch s := in.Settings.(type) {
	case *ShadowsocksInboundSettings:
		v.required(p+".method", s.Method)
		v.secret(p, "password", s.Password, s.PasswordFile)
		if s.OTA {
			v.add(p+".ota", `one-time auth was removed from Shadowsocks (SIP004 AEAD replaced it); set "ota": false`)
		}
	case *VMessInboundSettings:
		if len(s.Clients) == 0 {
			v.add(p+".clients", "at least one client is required")
		}
		for i := range s.Clients {
			v.vmessUser(&s.Clients[i], fmt.Sprintf("%s.clients[%d]", p, i))
		}
	case *SocksInboundSettings:
		switch s.Auth {
		case "", "noauth":
		case "password":
			if len(s.Accounts) == 0 {
				v.add(p+".accounts", `at least one account is required with "auth": "password"`)
			}
		default:
			v.add(p+".auth", `want "noauth" or "password", got %q`, s.Auth)
		}
		v.accounts(p+".accounts", s.Accounts)
		v.socksAccounts(p+".accounts", s.Accounts)
	case *HTTPInboundSettings:
		v.accounts(p+".accounts", s.Accounts)
	case *DokodemoSettings:
		if s.FollowRedirect {
			break
		}
		v.server(p, s.Address, s.Port)
	case *RedirectSettings:
	case nil:
		v.add(p, "required")
	}
}

func (v *validator) routing(r *RoutingConfig, outbounds []OutboundConfig) {
	tags := map[string]bool{}
	for _, o := range outbounds {
		if o.Tag != "" {
			tags[o.Tag] = true
		}
	}
	for i, rule := range r.Rules {
		p := fmt.Sprintf("routing.rules[%d]", i)
		if rule.Type != "" && rule.Type != "field" {
			v.add(p+".type", `want "field", got %q`, rule.Type)
		}
		if !rule.HasCondition() {
			v.errs = append(v.errs, &PathError{Path: p, Err: ErrNoCondition})
		}
		v.ruleConditions(&r.Rules[i], p)
		switch {
		case rule.OutboundTag == "":
			v.add(p+".outboundTag", "required (balancers are not implemented)")
		case !tags[rule.OutboundTag]:
			v.add(p+".outboundTag", "no outbound tagged %q", rule.OutboundTag)
		}
	}
}

// ruleConditions checks each condition's entries as the router will read them, so that a
// config the operator renders or `proxychain chain` passes also runs.
func (v *validator) ruleConditions(rule *RoutingRule, p string) {
	for i, d := range rule.Domain {
		if _, err := match.ParseDomain(d); err != nil {
			v.add(fmt.Sprintf("%s.domain[%d]", p, i), "%v", err)
		}
	}
	for i, s := range rule.IP {
		if _, err := match.ParseIP(s); err != nil {
			v.add(fmt.Sprintf("%s.ip[%d]", p, i), "%v", err)
		}
	}
	if rule.Port != "" {
		if _, err := match.ParsePorts(string(rule.Port)); err != nil {
			v.add(p+".port", "%v", err)
		}
	}
	if _, err := match.MatchesTCP(rule.Network); err != nil {
		v.add(p+".network", "%v", err)
	}
	for _, c := range []struct {
		name  string
		value json.RawMessage
	}{{"source", rule.Source}, {"sourcePort", rule.SourcePort}, {"user", rule.User}, {"protocol", rule.Protocol}, {"attrs", rule.Attrs}} {
		if len(c.value) > 0 && !isNull(c.value) {
			v.add(p+"."+c.name, "not implemented, and ignoring it would widen the rule; remove the condition or the rule")
		}
	}
}

// streamSettings rejects what would change the bytes on the wire: a transport other than
// TCP, TLS, an obfuscation header. proxychain speaks plain TCP only, so it would send in
// the clear what the config asks to wrap (an HTTP proxy's password, the destination), or
// talk past a peer that expects the wrapping. Socket options and the like only warn
// (unimplemented, in load.go). how is what the side does: "dials its server", "serves".
func (v *validator) streamSettings(p string, raw json.RawMessage, how string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return
	}
	var ss struct {
		Network     string `json:"network"`
		Security    string `json:"security"`
		TCPSettings struct {
			Header struct {
				Type string `json:"type"`
			} `json:"header"`
		} `json:"tcpSettings"`
	}
	if err := json.Unmarshal(raw, &ss); err != nil {
		v.add(p, "%v", err)
		return
	}
	// V2Ray reads these names in any case; Xray calls TCP "raw".
	switch strings.ToLower(ss.Network) {
	case "", "tcp", "raw":
	default:
		v.add(p+".network", "%q is not implemented: proxychain %s over plain TCP; remove it if the peer also takes plain TCP", ss.Network, how)
	}
	switch strings.ToLower(ss.Security) {
	case "", "none":
	default:
		v.add(p+".security", "%q is not implemented: proxychain %s without TLS, so what it should protect would go in the clear; remove it if the peer also takes plain TCP", ss.Security, how)
	}
	switch t := ss.TCPSettings.Header.Type; strings.ToLower(t) {
	case "", "none":
	default:
		v.add(p+".tcpSettings.header.type", "%q is not implemented: proxychain %s with no obfuscation header; remove it if the peer takes none", t, how)
	}
}

func (v *validator) server(p, address string, port int) {
	v.required(p+".address", address)
	if port < 1 || port > 65535 {
		v.add(p+".port", "want a port from 1 to 65535, got %d", port)
	}
}

func (v *validator) proxyServers(p string, servers []ProxyServer) {
	if len(servers) == 0 {
		v.add(p+".servers", "at least one server is required")
	}
	for i := range servers {
		sp := fmt.Sprintf("%s.servers[%d]", p, i)
		v.server(sp, servers[i].Address, servers[i].Port)
		v.accounts(sp+".users", servers[i].Users)
	}
}

func (v *validator) accounts(p string, accounts []Account) {
	for i := range accounts {
		ap := fmt.Sprintf("%s[%d]", p, i)
		v.required(ap+".user", accounts[i].User)
		v.secret(ap, "pass", accounts[i].Pass, accounts[i].PassFile)
	}
}

// socksAccounts checks what SOCKS5 can carry: a user name and password of at most 255
// bytes each (RFC 1929). A password in a file is checked once the file is read (Load).
func (v *validator) socksAccounts(p string, accounts []Account) {
	for i := range accounts {
		ap := fmt.Sprintf("%s[%d]", p, i)
		if len(accounts[i].User) > 255 {
			v.add(ap+".user", "%d bytes, over the 255 SOCKS5 carries", len(accounts[i].User))
		}
		if pass, err := accounts[i].ResolvedPass(); err == nil && len(pass) > 255 {
			field := "pass"
			if accounts[i].PassFile != "" {
				field = "passFile"
			}
			v.add(ap+"."+field, "%d bytes, over the 255 SOCKS5 carries", len(pass))
		}
	}
}

func (v *validator) vmessUser(u *VMessUser, p string) {
	v.secret(p, "id", u.ID, u.IDFile)
	if u.AlterID < 0 || u.AlterID > 65535 {
		v.add(p+".alterId", "want 0 to 65535, got %d", u.AlterID)
	}
	switch u.Security {
	case "", "auto", "aes-128-gcm", "chacha20-poly1305", "none", "zero":
	default:
		v.add(p+".security", `want one of "auto", "aes-128-gcm", "chacha20-poly1305", "none", "zero", got %q`, u.Security)
	}
}

func (v *validator) required(p, value string) {
	if value == "" {
		v.add(p, "required")
	}
}

// secret checks that exactly one of field and its File twin is set.
func (v *validator) secret(p, field, value, file string) {
	switch {
	case value != "" && file != "":
		v.add(p+"."+field, "set only one of %q and %q", field, field+"File")
	case value == "" && file == "":
		v.add(p+"."+field, "required (or %q)", field+"File")
	}
}

// ParseRedirect parses freedom's redirect, "host:port". An empty host or port (or port
// 0) keeps the original destination's, and comes back empty.
func ParseRedirect(s string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		return "", "", err
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return "", "", fmt.Errorf("want host:port with a port from 0 to 65535, got %q", s)
		}
		if n == 0 {
			port = ""
		}
	}
	return host, port, nil
}
