package render

import (
	"fmt"
	"strings"

	"github.com/proxychain/proxychain/api/v1alpha1"
)

// aeadMethods are the Shadowsocks methods that authenticate what they encrypt. The
// others are stream ciphers: malleable and open to active probing.
var aeadMethods = map[string]bool{
	"aes-128-gcm":            true,
	"aes-192-gcm":            true,
	"aes-256-gcm":            true,
	"chacha20-poly1305":      true,
	"chacha20-ietf-poly1305": true,
	// Shadowsocks 2022 (SIP022): AEAD with replay protection.
	"2022-blake3-aes-128-gcm":       true,
	"2022-blake3-aes-256-gcm":       true,
	"2022-blake3-chacha20-poly1305": true,
}

// InsecureHop is an outbound whose crypto is weak, and why.
type InsecureHop struct {
	Tag    string
	Reason string
}

func (h InsecureHop) String() string { return h.Tag + " (" + h.Reason + ")" }

// InsecureHops lists, in spec order, the outbounds using a Shadowsocks stream cipher,
// legacy VMess (alterId > 0, the MD5 header that probes identify) or VMess with an
// unencrypted body (security none or zero). Each is listed once, with its first weakness.
func InsecureHops(spec *v1alpha1.ProxyChainSpec) []InsecureHop {
	var hops []InsecureHop
	for _, o := range spec.Outbounds {
		if reason := weakness(o); reason != "" {
			hops = append(hops, InsecureHop{Tag: o.Tag, Reason: reason})
		}
	}
	return hops
}

func weakness(o v1alpha1.Outbound) string {
	if o.Settings == nil {
		return ""
	}
	switch o.Protocol {
	case v1alpha1.ProtocolShadowsocks:
		for _, s := range o.Settings.Servers {
			if !aeadMethods[s.Method] {
				return fmt.Sprintf("stream cipher %s", s.Method)
			}
		}
	case v1alpha1.ProtocolVMess:
		for _, s := range o.Settings.Vnext {
			for _, u := range s.Users {
				switch {
				case u.AlterID > 0:
					return fmt.Sprintf("legacy VMess alterId %d", u.AlterID)
				case u.Security == "none" || u.Security == "zero":
					// The header is sealed, the payload is not: any hop after reads it.
					return fmt.Sprintf("VMess security %s, the body is not encrypted", u.Security)
				}
			}
		}
	}
	return ""
}

// DescribeInsecure is the Secure condition's message for hops.
func DescribeInsecure(hops []InsecureHop) string {
	parts := make([]string, len(hops))
	for i, h := range hops {
		parts[i] = h.String()
	}
	return "weak crypto on " + strings.Join(parts, ", ")
}

// MessageAllHopsAEAD is the Secure condition's message when no hop is weak.
const MessageAllHopsAEAD = "every hop uses authenticated encryption"
