package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// Load reads, parses and validates the config files at paths, then reads every secret
// file they name (passwordFile, idFile, passFile); a relative name is taken from the
// directory of the config file that names it. Secrets stay in memory: MarshalJSON writes
// the file names, not their contents.
//
// Several files merge as V2Ray 4 merges them, each over the ones before:
//   - log, policy and routing (its rules included) are replaced whole by a later file
//     that sets them;
//   - a later file with exactly one inbound replaces the inbound with the same tag, or
//     else adds it at the end;
//   - a later file with exactly one outbound replaces the outbound with the same tag, or
//     else adds it in front, where it becomes the default; at the end if the file's name
//     contains "tail";
//   - a later file with several inbounds or outbounds replaces the whole list.
//
// The merged config is validated as a whole, so one file may route to another's
// outbounds.
func Load(paths ...string) (*Config, []Warning, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("config: no config file")
	}
	merged := new(Config)
	var warnings []Warning
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, warnings, fmt.Errorf("config: %w", err)
		}
		cfg, w, err := decodeConfig(data)
		warnings = append(warnings, inFile(w, path, len(paths))...)
		if err == nil {
			err = cfg.ResolveFiles(filepath.Dir(path))
		}
		if err != nil {
			if len(paths) > 1 {
				err = fmt.Errorf("%s: %w", path, err)
			}
			return nil, warnings, err
		}
		merged.merge(cfg, filepath.Base(path))
	}
	if err := merged.Validate(); err != nil {
		if len(paths) > 1 {
			// The paths count in the merged lists, not in any one file's.
			err = fmt.Errorf("%s merged: %w", strings.Join(paths, " + "), err)
		}
		return nil, warnings, err
	}
	return merged, warnings, nil
}

func (c *Config) merge(next *Config, name string) {
	switch {
	case len(next.Inbounds) == 1 && len(c.Inbounds) > 0:
		if i := slices.IndexFunc(c.Inbounds, func(in InboundConfig) bool { return in.Tag == next.Inbounds[0].Tag }); i >= 0 {
			c.Inbounds[i] = next.Inbounds[0]
		} else {
			c.Inbounds = append(c.Inbounds, next.Inbounds[0])
		}
	case len(next.Inbounds) > 0:
		c.Inbounds = next.Inbounds
	}
	switch {
	case len(next.Outbounds) == 1 && len(c.Outbounds) > 0:
		o := next.Outbounds[0]
		if i := slices.IndexFunc(c.Outbounds, func(out OutboundConfig) bool { return out.Tag == o.Tag }); i >= 0 {
			c.Outbounds[i] = o
		} else if strings.Contains(strings.ToLower(name), "tail") {
			c.Outbounds = append(c.Outbounds, o)
		} else {
			c.Outbounds = append([]OutboundConfig{o}, c.Outbounds...)
		}
	case len(next.Outbounds) > 0:
		c.Outbounds = next.Outbounds
	}
	if next.Log != nil {
		c.Log = next.Log
	}
	if next.Policy != nil {
		c.Policy = next.Policy
	}
	if next.Routing != nil {
		c.Routing = next.Routing
	}
}

// inFile names the file in each warning when there are several.
func inFile(ws []Warning, path string, files int) []Warning {
	if files < 2 {
		return ws
	}
	for i := range ws {
		ws[i].Message = path + ": " + ws[i].Message
	}
	return ws
}

// Parse decodes and validates a config. It reads no files: secret files are checked for
// presence of a name only, and read by Load or ResolveFiles.
func Parse(data []byte) (*Config, []Warning, error) {
	cfg, warnings, err := decodeConfig(data)
	if err != nil {
		return nil, warnings, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

// decodeConfig parses one file into a Config without validating it as a whole.
func decodeConfig(data []byte) (*Config, []Warning, error) {
	stripped := StripComments(data)
	if err := syntaxCheck(data, stripped); err != nil {
		return nil, nil, err
	}
	var d decoder
	cfg := new(Config)
	if err := d.decode(stripped, reflect.ValueOf(cfg).Elem(), ""); err != nil {
		return nil, nil, err
	}
	warnings := normalizeNames(cfg)
	for i := range cfg.Outbounds {
		o := &cfg.Outbounds[i]
		if err := d.settings(&o.Settings, o.Protocol, outboundSettings, fmt.Sprintf("outbounds[%d]", i)); err != nil {
			return nil, nil, err
		}
	}
	for i := range cfg.Inbounds {
		in := &cfg.Inbounds[i]
		if err := d.settings(&in.Settings, in.Protocol, inboundSettings, fmt.Sprintf("inbounds[%d]", i)); err != nil {
			return nil, nil, err
		}
	}
	normalizeSettings(cfg)
	if ignored := append(d.unknown, unimplemented(cfg)...); len(ignored) > 0 {
		slices.Sort(ignored)
		warnings = append(warnings, Warning{
			Message: "ignoring fields proxychain does not implement: " + strings.Join(ignored, ", "),
		})
	}
	return cfg, warnings, nil
}

// settings replaces the raw settings in *slot with the protocol's settings type. Absent
// settings become that type's zero value, so a consumer can always type-switch.
func (d *decoder) settings(slot *any, protocol string, registry map[string]func() any, path string) error {
	if protocol == "" {
		return pathErrorf(path+".protocol", "required")
	}
	mk, ok := registry[protocol]
	if !ok {
		return pathErrorf(path+".protocol", "unknown protocol %q", protocol)
	}
	target := mk()
	if raw, ok := (*slot).(json.RawMessage); ok {
		if err := d.decodeInto(raw, target, path+".settings"); err != nil {
			return err
		}
	}
	*slot = target
	return nil
}

// V2Ray reads protocol, rule type, log level and settings names in any case. Decoding
// keeps one spelling of each, so the rest of the code compares one: normalizeNames before
// the settings are decoded by protocol, normalizeSettings after.

// normalizeNames spells protocols, rule types and the log level as the code compares
// them. An unknown log level becomes "warning", as in V2Ray, with a warning.
func normalizeNames(cfg *Config) []Warning {
	for i := range cfg.Outbounds {
		cfg.Outbounds[i].Protocol = strings.ToLower(cfg.Outbounds[i].Protocol)
	}
	for i := range cfg.Inbounds {
		cfg.Inbounds[i].Protocol = strings.ToLower(cfg.Inbounds[i].Protocol)
	}
	if cfg.Routing != nil {
		for i := range cfg.Routing.Rules {
			cfg.Routing.Rules[i].Type = strings.ToLower(cfg.Routing.Rules[i].Type)
		}
	}
	if l := cfg.Log; l != nil && l.Loglevel != "" {
		switch level := strings.ToLower(l.Loglevel); level {
		case "debug", "info", "warning", "error", "none":
			l.Loglevel = level
		default:
			w := Warning{Path: "log.loglevel", Message: fmt.Sprintf(`unknown level %q: using "warning", as V2Ray does`, l.Loglevel)}
			l.Loglevel = "warning"
			return []Warning{w}
		}
	}
	return nil
}

// normalizeSettings spells the settings' names as the code compares them.
func normalizeSettings(cfg *Config) {
	users := func(us []VMessUser) {
		for i := range us {
			us[i].Security = strings.ToLower(us[i].Security)
		}
	}
	for _, o := range cfg.Outbounds {
		switch s := o.Settings.(type) {
		case *VMessOutboundSettings:
			for i := range s.Vnext {
				users(s.Vnext[i].Users)
			}
		case *FreedomSettings:
			for _, canonical := range []string{"AsIs", "UseIP", "UseIPv4", "UseIPv6"} {
				if strings.EqualFold(s.DomainStrategy, canonical) {
					s.DomainStrategy = canonical
				}
			}
		case *BlackholeSettings:
			if s.Response != nil {
				s.Response.Type = strings.ToLower(s.Response.Type)
			}
		}
	}
	for _, in := range cfg.Inbounds {
		if s, ok := in.Settings.(*VMessInboundSettings); ok {
			users(s.Clients)
		}
	}
}

// unimplemented lists the paths of known fields whose value asks for something
// proxychain does not do, so they are reported with the unknown ones.
func unimplemented(cfg *Config) []string {
	var paths []string
	if cfg.Log != nil && cfg.Log.Access != "" {
		paths = append(paths, "log.access")
	}
	if cfg.Routing != nil && cfg.Routing.DomainStrategy != "" && !strings.EqualFold(cfg.Routing.DomainStrategy, "AsIs") {
		paths = append(paths, "routing.domainStrategy")
	}
	if p := cfg.Policy; p != nil {
		if len(p.System) > 0 && !isNull(p.System) {
			paths = append(paths, "policy.system")
		}
		for level, lp := range p.Levels {
			lpath := "policy.levels." + level
			if level != "0" {
				paths = append(paths, lpath)
				continue
			}
			if lp.StatsUserUplink {
				paths = append(paths, lpath+".statsUserUplink")
			}
			if lp.StatsUserDownlink {
				paths = append(paths, lpath+".statsUserDownlink")
			}
			if len(lp.BufferSize) > 0 {
				paths = append(paths, lpath+".bufferSize")
			}
		}
	}
	for i, in := range cfg.Inbounds {
		p := fmt.Sprintf("inbounds[%d]", i)
		if !plainTCP(in.StreamSettings) {
			paths = append(paths, p+".streamSettings")
		}
		if s, _ := in.Settings.(*DokodemoSettings); in.Sniffing != nil && in.Sniffing.Enabled && in.Protocol != "redirect" && (s == nil || !s.FollowRedirect) {
			paths = append(paths, p+".sniffing")
		}
		switch s := in.Settings.(type) {
		case *SocksInboundSettings:
			if s.UDP {
				paths = append(paths, p+".settings.udp")
			}
		case *ShadowsocksInboundSettings:
			if strings.Contains(s.Network, "udp") {
				paths = append(paths, p+".settings.network")
			}
		case *DokodemoSettings:
			if strings.Contains(s.Network, "udp") {
				paths = append(paths, p+".settings.network")
			}
		}
	}
	for i, o := range cfg.Outbounds {
		p := fmt.Sprintf("outbounds[%d]", i)
		if !plainTCP(o.StreamSettings) {
			paths = append(paths, p+".streamSettings")
		}
		if len(o.Mux) > 0 {
			var mux struct{ Enabled bool }
			if json.Unmarshal(o.Mux, &mux) != nil || mux.Enabled {
				paths = append(paths, p+".mux")
			}
		}
	}
	return paths
}

// plainTCP reports whether streamSettings holds nothing but what Validate judges (the
// transport, TLS, an obfuscation header), which it lets through only as plain TCP.
// Anything else there (socket options, say) proxychain leaves at its defaults.
func plainTCP(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	for k, v := range m {
		switch k {
		case "network", "security":
		case "tcpSettings":
			var tcp map[string]json.RawMessage
			if json.Unmarshal(v, &tcp) != nil {
				return false
			}
			for k := range tcp {
				if k != "header" {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// MarshalJSON writes the config as V2Ray JSON that Parse reads back. Secrets read from
// files are not written; the file names are.
func (c *Config) MarshalJSON() ([]byte, error) {
	type plain Config // without this method
	return json.Marshal((*plain)(c))
}
