package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Config is a V2Ray v4 JSON configuration, the subset proxychain implements. Field names
// and shapes are V2Ray's, so an existing V2Ray config loads as written. Top-level objects
// we do not implement (dns, api, stats, reverse, transport) are reported as warnings by
// Load, never silently dropped.
type Config struct {
	Log       *LogConfig       `json:"log,omitempty"`
	Inbounds  []InboundConfig  `json:"inbounds,omitempty"`
	Outbounds []OutboundConfig `json:"outbounds,omitempty"`
	Routing   *RoutingConfig   `json:"routing,omitempty"`
	Policy    *PolicyConfig    `json:"policy,omitempty"`
}

// PolicyConfig is V2Ray's "policy" object. proxychain applies level 0's timeouts to every
// inbound (level 0 is every user's and inbound's level unless set otherwise); other
// levels, statistics and buffer sizes are reported as not implemented.
type PolicyConfig struct {
	Levels map[string]LevelPolicy `json:"levels,omitempty"`
	System json.RawMessage        `json:"system,omitempty"`
}

// LevelPolicy is one level's limits, in seconds as V2Ray writes them. An absent field
// keeps proxychain's default (see proxy.ServerOptions).
type LevelPolicy struct {
	Handshake *uint32 `json:"handshake,omitempty"` // from accept to a decoded request
	ConnIdle  *uint32 `json:"connIdle,omitempty"`  // no byte either way
	// UplinkOnly and DownlinkOnly replace connIdle once the upstream, or the client, has
	// finished sending; 0 closes the connection at once, as in V2Ray.
	UplinkOnly        *uint32         `json:"uplinkOnly,omitempty"`
	DownlinkOnly      *uint32         `json:"downlinkOnly,omitempty"`
	StatsUserUplink   bool            `json:"statsUserUplink,omitempty"`
	StatsUserDownlink bool            `json:"statsUserDownlink,omitempty"`
	BufferSize        json.RawMessage `json:"bufferSize,omitempty"`
}

// Level0 returns the policy proxychain applies, level 0's; absent fields are nil.
func (p *PolicyConfig) Level0() LevelPolicy {
	if p == nil {
		return LevelPolicy{}
	}
	return p.Levels["0"]
}

// LogConfig is V2Ray's "log" object.
type LogConfig struct {
	Loglevel string `json:"loglevel,omitempty"` // debug, info, warning, error, none
	Access   string `json:"access,omitempty"`
	Error    string `json:"error,omitempty"`
}

// InboundConfig is one entry of "inbounds".
type InboundConfig struct {
	Tag      string `json:"tag,omitempty"`
	Protocol string `json:"protocol"`
	Listen   string `json:"listen,omitempty"`
	Port     Port   `json:"port"`
	// Settings holds a pointer to the protocol's settings type (see inboundSettings),
	// chosen by Protocol when the config is decoded.
	Settings       any             `json:"settings,omitempty"`
	Sniffing       *Sniffing       `json:"sniffing,omitempty"`
	StreamSettings json.RawMessage `json:"streamSettings,omitempty"`
}

// Sniffing recovers a domain from the first bytes of a captured connection.
type Sniffing struct {
	Enabled      bool     `json:"enabled"`
	DestOverride []string `json:"destOverride,omitempty"` // "http", "tls"
}

// OutboundConfig is one entry of "outbounds".
type OutboundConfig struct {
	Tag         string `json:"tag,omitempty"`
	Protocol    string `json:"protocol"`
	SendThrough string `json:"sendThrough,omitempty"`
	// Settings holds a pointer to the protocol's settings type (see outboundSettings).
	Settings       any             `json:"settings,omitempty"`
	ProxySettings  *ProxySettings  `json:"proxySettings,omitempty"`
	StreamSettings json.RawMessage `json:"streamSettings,omitempty"`
	Mux            json.RawMessage `json:"mux,omitempty"`
}

// ProxySettings names the outbound this outbound dials its server through.
type ProxySettings struct {
	Tag string `json:"tag"`
	// TransportLayer asks V2Ray (4.35+) to apply this outbound's streamSettings over the
	// parent's stream rather than ignore them. Validate allows only streamSettings that
	// mean plain TCP, so here the stream is the same either way.
	TransportLayer bool `json:"transportLayer,omitempty"`
}

// RoutingConfig is V2Ray's "routing" object: the first rule that matches picks the
// outbound; no match means the default outbound (the first).
type RoutingConfig struct {
	DomainStrategy string        `json:"domainStrategy,omitempty"` // only "AsIs" is implemented
	Rules          []RoutingRule `json:"rules,omitempty"`
}

// RoutingRule matches a destination by domain, IP, port, network or inbound. Within a
// rule all given conditions must match; within a condition any entry may.
type RoutingRule struct {
	Type        string     `json:"type,omitempty"` // "field"
	Domain      StringList `json:"domain,omitempty"`
	IP          StringList `json:"ip,omitempty"`
	Port        PortList   `json:"port,omitempty"`    // "53", "1000-2000", "80,443", or 53
	Network     StringList `json:"network,omitempty"` // "tcp", "udp": proxychain routes TCP only
	InboundTag  StringList `json:"inboundTag,omitempty"`
	OutboundTag string     `json:"outboundTag"`

	// Conditions V2Ray has and proxychain does not match on. Validate refuses a rule that
	// sets one: dropping the condition would widen the rule, sending elsewhere (say,
	// direct) traffic the rule was written to leave alone.
	Source     json.RawMessage `json:"source,omitempty"`
	SourcePort json.RawMessage `json:"sourcePort,omitempty"`
	User       json.RawMessage `json:"user,omitempty"`
	Protocol   json.RawMessage `json:"protocol,omitempty"`
	Attrs      json.RawMessage `json:"attrs,omitempty"`
}

// ErrNoCondition is the error for a rule that would match everything.
var ErrNoCondition = errors.New("a rule needs at least one of domain, ip, port, network or inboundTag")

// HasCondition reports whether the rule sets a condition proxychain matches on.
func (r *RoutingRule) HasCondition() bool {
	return len(r.Domain) > 0 || len(r.IP) > 0 || r.Port != "" || len(r.Network) > 0 || len(r.InboundTag) > 0
}

// PortList is a rule's port condition: a string ("53", "1000-2000", "80,443") or, as
// V2Ray also takes, a number.
type PortList string

func (l *PortList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = PortList(s)
		return nil
	}
	var n uint16
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a port number or a string of ports, got %s", describe(b))
	}
	*l = PortList(strconv.Itoa(int(n)))
	return nil
}

// StringList is V2Ray's list of strings: a JSON array, or one string of comma-separated
// items.
type StringList []string

func (l *StringList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*l = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want an array of strings or a string, got %s", describe(b))
	}
	*l = strings.Split(s, ",")
	return nil
}

// Secret-bearing fields have a File twin: the operator renders a config that names files
// in a mounted Secret instead of embedding credentials. A relative path is taken from the
// config file's directory. Exactly one of each pair may be set.

// ShadowsocksOutboundSettings: protocol "shadowsocks", outbound.
type ShadowsocksOutboundSettings struct {
	Servers []ShadowsocksServer `json:"servers"`
}

// ShadowsocksServer is one Shadowsocks server an outbound may use.
type ShadowsocksServer struct {
	Address      string `json:"address"`
	Port         int    `json:"port"`
	Method       string `json:"method"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	OTA          bool   `json:"ota,omitempty"`
	Email        string `json:"email,omitempty"`
	Level        int    `json:"level,omitempty"`

	passwordFromFile string // PasswordFile's contents, read by ResolveFiles
}

// ShadowsocksInboundSettings: protocol "shadowsocks", inbound (V2Ray v4 shape).
type ShadowsocksInboundSettings struct {
	Method       string `json:"method"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	OTA          bool   `json:"ota,omitempty"`
	Email        string `json:"email,omitempty"`
	Level        int    `json:"level,omitempty"`
	Network      string `json:"network,omitempty"` // "tcp" (udp is not implemented)

	passwordFromFile string // PasswordFile's contents, read by ResolveFiles
}

// VMessOutboundSettings: protocol "vmess", outbound.
type VMessOutboundSettings struct {
	Vnext []VMessServer `json:"vnext"`
}

// VMessServer is one VMess server and the users it knows.
type VMessServer struct {
	Address string      `json:"address"`
	Port    int         `json:"port"`
	Users   []VMessUser `json:"users"`
}

// VMessUser is a VMess account.
type VMessUser struct {
	ID       string `json:"id,omitempty"`
	IDFile   string `json:"idFile,omitempty"`
	AlterID  int    `json:"alterId,omitempty"`
	Security string `json:"security,omitempty"` // aes-128-gcm, chacha20-poly1305, none, zero, auto (default)
	Email    string `json:"email,omitempty"`
	Level    int    `json:"level,omitempty"`

	idFromFile string // IDFile's contents, read by ResolveFiles
}

// VMessInboundSettings: protocol "vmess", inbound.
type VMessInboundSettings struct {
	Clients []VMessUser `json:"clients"`
	// DisableInsecureEncryption keeps V2Ray's name. Legacy (alterId > 0) headers are
	// refused unless it is explicitly false, since probes can identify them.
	DisableInsecureEncryption *bool `json:"disableInsecureEncryption,omitempty"`
}

// SocksOutboundSettings: protocol "socks", outbound.
type SocksOutboundSettings struct {
	Servers []ProxyServer `json:"servers"`
}

// HTTPOutboundSettings: protocol "http", outbound.
type HTTPOutboundSettings struct {
	Servers []ProxyServer `json:"servers"`
}

// ProxyServer is a SOCKS or HTTP proxy server, optionally with accounts.
type ProxyServer struct {
	Address string    `json:"address"`
	Port    int       `json:"port"`
	Users   []Account `json:"users,omitempty"`
}

// Account is a username and password (RFC 1929, or HTTP Basic).
type Account struct {
	User     string `json:"user"`
	Pass     string `json:"pass,omitempty"`
	PassFile string `json:"passFile,omitempty"`

	passFromFile string // PassFile's contents, read by ResolveFiles
}

// FreedomSettings: protocol "freedom", the direct exit.
type FreedomSettings struct {
	DomainStrategy string `json:"domainStrategy,omitempty"` // AsIs (default), UseIP, UseIPv4, UseIPv6
	Redirect       string `json:"redirect,omitempty"`
}

// BlackholeSettings: protocol "blackhole", which drops everything.
type BlackholeSettings struct {
	Response *BlackholeResponse `json:"response,omitempty"`
}

// BlackholeResponse is what a blackhole answers before closing: "none" or "http" (403).
type BlackholeResponse struct {
	Type string `json:"type"`
}

// SocksInboundSettings: protocol "socks", inbound.
type SocksInboundSettings struct {
	Auth      string    `json:"auth,omitempty"` // "noauth" (default) or "password"
	Accounts  []Account `json:"accounts,omitempty"`
	UDP       bool      `json:"udp,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserLevel int       `json:"userLevel,omitempty"`
}

// HTTPInboundSettings: protocol "http", inbound.
type HTTPInboundSettings struct {
	Timeout          int       `json:"timeout,omitempty"` // seconds of idle time
	Accounts         []Account `json:"accounts,omitempty"`
	AllowTransparent bool      `json:"allowTransparent,omitempty"`
	UserLevel        int       `json:"userLevel,omitempty"`
}

// DokodemoSettings: protocol "dokodemo-door", which forwards to a fixed destination.
type DokodemoSettings struct {
	Address        string `json:"address,omitempty"`
	Port           int    `json:"port,omitempty"`
	Network        string `json:"network,omitempty"`
	Timeout        int    `json:"timeout,omitempty"`
	FollowRedirect bool   `json:"followRedirect,omitempty"`
	UserLevel      int    `json:"userLevel,omitempty"`
}

// RedirectSettings: protocol "redirect", the sidecar's inbound for connections captured
// by iptables REDIRECT; the destination is the socket's original one.
type RedirectSettings struct{}

// outboundSettings and inboundSettings are the registries: each protocol's settings type.
var outboundSettings = map[string]func() any{
	"shadowsocks": func() any { return new(ShadowsocksOutboundSettings) },
	"vmess":       func() any { return new(VMessOutboundSettings) },
	"socks":       func() any { return new(SocksOutboundSettings) },
	"http":        func() any { return new(HTTPOutboundSettings) },
	"freedom":     func() any { return new(FreedomSettings) },
	"blackhole":   func() any { return new(BlackholeSettings) },
}

var inboundSettings = map[string]func() any{
	"shadowsocks":   func() any { return new(ShadowsocksInboundSettings) },
	"vmess":         func() any { return new(VMessInboundSettings) },
	"socks":         func() any { return new(SocksInboundSettings) },
	"http":          func() any { return new(HTTPInboundSettings) },
	"dokodemo-door": func() any { return new(DokodemoSettings) },
	"redirect":      func() any { return new(RedirectSettings) },
}
