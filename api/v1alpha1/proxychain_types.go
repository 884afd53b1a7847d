package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Protocols an outbound may use. The names are V2Ray's.
const (
	ProtocolVMess       = "vmess"
	ProtocolShadowsocks = "shadowsocks"
	ProtocolSocks       = "socks"
	ProtocolHTTP        = "http"
	ProtocolFreedom     = "freedom"
	ProtocolBlackhole   = "blackhole"
)

// Egress modes: how the sidecar captures a pod's traffic.
const (
	// EgressTransparent captures every TCP connection with an iptables REDIRECT.
	EgressTransparent = "transparent"
	// EgressExplicit only sets proxy environment variables; nothing is captured.
	EgressExplicit = "explicit"
)

// ProxyChain declares a chain of proxy hops in V2Ray's vocabulary: each outbound may be
// dialed through another one named by proxySettings.tag, so each hop sees only
// ciphertext. The operator renders it into a ConfigMap (topology) and a Secret
// (credentials) that the data plane loads.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pc,categories=proxychain
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Entry",type=string,JSONPath=`.status.entry`
// +kubebuilder:printcolumn:name="Exit",type=string,JSONPath=`.status.exit`,priority=1
// +kubebuilder:printcolumn:name="Hops",type=integer,JSONPath=`.status.hops`
// +kubebuilder:printcolumn:name="Secure",type=string,JSONPath=`.status.conditions[?(@.type=="Secure")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: it names and labels the rendered ConfigMap and Secret"
type ProxyChain struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProxyChainSpec   `json:"spec"`
	Status ProxyChainStatus `json:"status,omitempty"`
}

// ProxyChainSpec is the desired chain.
//
// +kubebuilder:validation:XValidation:rule="!has(self.defaultOutbound) || self.outbounds.exists(o, o.tag == self.defaultOutbound)",message="must name an outbound of spec.outbounds",fieldPath=".defaultOutbound"
// +kubebuilder:validation:XValidation:rule="!has(self.routing) || !has(self.routing.rules) || self.routing.rules.all(r, self.outbounds.exists(o, o.tag == r.outboundTag))",message="every rule's outboundTag must name an outbound of spec.outbounds",fieldPath=".routing.rules"
type ProxyChainSpec struct {
	// Outbounds are V2Ray outbounds. Tags are unique; proxySettings.tag links an outbound
	// to the one it is dialed through.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=tag
	Outbounds []Outbound `json:"outbounds"`

	// DefaultOutbound is the tag traffic takes when no routing rule matches. As in V2Ray,
	// it defaults to the first outbound.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	DefaultOutbound string `json:"defaultOutbound,omitempty"`

	// Routing sends some destinations elsewhere, typically to a freedom outbound for
	// destinations that must go direct.
	// +optional
	Routing *Routing `json:"routing,omitempty"`

	// Egress tells the sidecar how to capture a pod's traffic.
	// +optional
	Egress Egress `json:"egress,omitempty"`
}

// Outbound is one V2Ray outbound: a hop of a chain, or a direct or blackhole exit.
//
// +kubebuilder:validation:XValidation:rule="self.protocol != 'vmess' || (has(self.settings) && has(self.settings.vnext) && size(self.settings.vnext) > 0)",message="settings.vnext is required for protocol vmess",fieldPath=".settings.vnext"
// +kubebuilder:validation:XValidation:rule="!(self.protocol in ['shadowsocks', 'socks', 'http']) || (has(self.settings) && has(self.settings.servers) && size(self.settings.servers) > 0)",message="settings.servers is required for protocols shadowsocks, socks and http",fieldPath=".settings.servers"
// +kubebuilder:validation:XValidation:rule="self.protocol == 'vmess' || !has(self.settings) || !has(self.settings.vnext)",message="settings.vnext is only valid for protocol vmess",fieldPath=".settings.vnext"
// +kubebuilder:validation:XValidation:rule="self.protocol in ['shadowsocks', 'socks', 'http'] || !has(self.settings) || !has(self.settings.servers)",message="settings.servers is only valid for protocols shadowsocks, socks and http",fieldPath=".settings.servers"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'shadowsocks' || !has(self.settings) || !has(self.settings.servers) || self.settings.servers.all(s, has(s.method) && has(s.passwordFrom) && !has(s.users))",message="each shadowsocks server needs method and passwordFrom, and takes no users",fieldPath=".settings.servers"
// +kubebuilder:validation:XValidation:rule="!(self.protocol in ['socks', 'http']) || !has(self.settings) || !has(self.settings.servers) || self.settings.servers.all(s, !has(s.method) && !has(s.passwordFrom))",message="method and passwordFrom are only valid for shadowsocks servers; socks and http servers take users",fieldPath=".settings.servers"
// +kubebuilder:validation:XValidation:rule="self.protocol == 'freedom' || !has(self.settings) || (!has(self.settings.domainStrategy) && !has(self.settings.redirect))",message="settings.domainStrategy and settings.redirect are only valid for protocol freedom",fieldPath=".settings"
// +kubebuilder:validation:XValidation:rule="self.protocol == 'blackhole' || !has(self.settings) || !has(self.settings.response)",message="settings.response is only valid for protocol blackhole",fieldPath=".settings.response"
type Outbound struct {
	// Tag names the outbound for proxySettings, routing and defaultOutbound. It is also
	// part of the credential file names, hence the conservative character set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`
	Tag string `json:"tag"`

	// Protocol is the outbound's protocol.
	// +kubebuilder:validation:Enum=vmess;shadowsocks;socks;http;freedom;blackhole
	Protocol string `json:"protocol"`

	// Settings holds the protocol's settings, in V2Ray's shape: vnext for vmess, servers
	// for shadowsocks, socks and http.
	// +optional
	Settings *OutboundSettings `json:"settings,omitempty"`

	// ProxySettings dials this outbound's server through another outbound.
	// +optional
	ProxySettings *ProxySettings `json:"proxySettings,omitempty"`
}

// OutboundSettings is the union of the outbound protocols' settings; CEL rules on
// Outbound allow only the fields its protocol uses.
type OutboundSettings struct {
	// Vnext lists VMess servers (protocol vmess).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Vnext []VMessServer `json:"vnext,omitempty"`

	// Servers lists Shadowsocks, SOCKS or HTTP proxy servers.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Servers []Server `json:"servers,omitempty"`

	// DomainStrategy is freedom's name resolution strategy.
	// +optional
	// +kubebuilder:validation:Enum=AsIs;UseIP;UseIPv4;UseIPv6
	DomainStrategy string `json:"domainStrategy,omitempty"`

	// Redirect sends every freedom connection to this host:port.
	// +optional
	// +kubebuilder:validation:MaxLength=261
	Redirect string `json:"redirect,omitempty"`

	// Response is what a blackhole answers before closing.
	// +optional
	Response *BlackholeResponse `json:"response,omitempty"`
}

// VMessServer is one VMess server and the accounts it knows.
type VMessServer struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._:-]+$`
	Address string `json:"address"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Users []VMessUser `json:"users"`
}

// VMessUser is a VMess account. Its UUID comes from a Secret.
type VMessUser struct {
	// IDFrom names the Secret key holding the account's UUID.
	IDFrom CredentialSource `json:"idFrom"`
	// AlterID > 0 selects the legacy (MD5) header; such hops are marked Secure=False.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	AlterID int32 `json:"alterId,omitempty"`
	// Security is the body cipher; auto picks by CPU.
	// +optional
	// +kubebuilder:validation:Enum=aes-128-gcm;chacha20-poly1305;auto;none;zero
	Security string `json:"security,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Email string `json:"email,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	Level int32 `json:"level,omitempty"`
}

// Server is a Shadowsocks, SOCKS or HTTP proxy server. Shadowsocks uses method and
// passwordFrom; SOCKS and HTTP use users.
type Server struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._:-]+$`
	Address string `json:"address"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Method is the Shadowsocks cipher. AEAD methods (*-gcm, *-poly1305) and the
	// Shadowsocks 2022 methods (2022-blake3-*, whose password is a base64 key) are secure;
	// stream methods are accepted for existing servers and mark the chain Secure=False.
	// +optional
	// +kubebuilder:validation:Enum=aes-128-gcm;aes-192-gcm;aes-256-gcm;chacha20-poly1305;chacha20-ietf-poly1305;2022-blake3-aes-128-gcm;2022-blake3-aes-256-gcm;2022-blake3-chacha20-poly1305;aes-128-cfb;aes-192-cfb;aes-256-cfb;aes-128-ctr;aes-192-ctr;aes-256-ctr;chacha20-ietf
	Method string `json:"method,omitempty"`
	// PasswordFrom names the Secret key holding the Shadowsocks password.
	// +optional
	PasswordFrom *CredentialSource `json:"passwordFrom,omitempty"`
	// OTA (one-time auth) is accepted only as false, as V2Ray 4 configs write it.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!self",message="one-time auth (ota) is not supported"
	OTA bool `json:"ota,omitempty"`

	// Users are SOCKS or HTTP accounts.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Users []Account `json:"users,omitempty"`

	// +optional
	// +kubebuilder:validation:MaxLength=253
	Email string `json:"email,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	Level int32 `json:"level,omitempty"`
}

// Account is a SOCKS (RFC 1929) or HTTP Basic account.
type Account struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	User string `json:"user"`
	// PassFrom names the Secret key holding the password.
	PassFrom CredentialSource `json:"passFrom"`
}

// CredentialSource says where a credential comes from. Credentials never sit in the
// ProxyChain itself.
type CredentialSource struct {
	// SecretKeyRef names a key of a Secret in the ProxyChain's namespace.
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`
}

// SecretKeySelector names a key of a Secret in the same namespace.
type SecretKeySelector struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// BlackholeResponse is what a blackhole answers: none, or an HTTP 403.
type BlackholeResponse struct {
	// +kubebuilder:validation:Enum=none;http
	Type string `json:"type"`
}

// ProxySettings names the outbound this one dials its server through.
type ProxySettings struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Tag string `json:"tag"`
}

// Routing is V2Ray's routing: the first rule that matches picks the outbound.
type Routing struct {
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	Rules []RoutingRule `json:"rules,omitempty"`
}

// RoutingRule matches a destination by domain, IP or port; all given conditions must
// match, and within a condition any entry may. A condition given is not empty: the
// domain and ip lists need an entry, since an empty list would render as no condition.
//
// +kubebuilder:validation:XValidation:rule="has(self.domain) || has(self.ip) || has(self.port)",message="a rule needs domain, ip or port"
type RoutingRule struct {
	// Domain entries in V2Ray syntax: "example.com" (substring), "domain:example.com"
	// (the domain and its subdomains), "full:example.com", "regexp:...", "keyword:...".
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	Domain []string `json:"domain,omitempty"`
	// IP entries are addresses or CIDRs.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(x, isIP(x) || isCIDR(x))",message="each entry must be an IP address or a CIDR"
	// +listType=atomic
	IP []string `json:"ip,omitempty"`
	// Port is "53", "1000-2000" or "80,443".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$`
	Port string `json:"port,omitempty"`
	// OutboundTag names the outbound matching traffic takes.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	OutboundTag string `json:"outboundTag"`
}

// Egress tells the sidecar how to capture a pod's traffic.
type Egress struct {
	// Mode is transparent (iptables REDIRECT of all TCP) or explicit (proxy environment
	// variables only).
	// +optional
	// +kubebuilder:default:=transparent
	// +kubebuilder:validation:Enum=transparent;explicit
	Mode string `json:"mode,omitempty"`
	// ExcludeCIDRs are destinations the sidecar does not capture.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(x, isCIDR(x))",message="each entry must be a CIDR"
	// +listType=atomic
	ExcludeCIDRs []string `json:"excludeCIDRs,omitempty"`
	// ExcludePorts are destination ports the sidecar does not capture.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +listType=atomic
	ExcludePorts []int32 `json:"excludePorts,omitempty"`
}

// Condition types and the reasons the operator sets them with.
const (
	// ConditionReady is True when the ConfigMap and credentials Secret hold the current spec.
	ConditionReady = "Ready"
	// ConditionSecure is False when a hop uses a stream cipher or legacy VMess.
	ConditionSecure = "Secure"

	ReasonRendered          = "Rendered"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonInvalidCredential = "InvalidCredential"
	ReasonInvalidChain      = "InvalidChain"
	ReasonReadFailed        = "ReadFailed" // an API error reading a referenced Secret; retried
	ReasonWriteFailed       = "WriteFailed"

	ReasonAllHopsAEAD  = "AllHopsAEAD"
	ReasonInsecureHops = "InsecureHops"
)

// ProxyChainStatus is what the operator observed and rendered.
type ProxyChainStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready and Secure.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Entry is the hop the default outbound's traffic reaches first.
	// +optional
	Entry string `json:"entry,omitempty"`
	// Exit is the default outbound: the hop that reaches the destination.
	// +optional
	Exit string `json:"exit,omitempty"`
	// Hops is the length of the default outbound's chain.
	// +optional
	Hops int32 `json:"hops,omitempty"`

	// Outbounds is the rendered chain of each outbound, in spec order.
	// +optional
	// +listType=map
	// +listMapKey=tag
	Outbounds []OutboundStatus `json:"outbounds,omitempty"`

	// ConfigHash is the sha256 of the rendered config.json and credentials; the sidecar
	// injector annotates pods with it so they restart when it changes.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
}

// OutboundStatus is the chain one outbound's traffic takes, in the order it is dialed.
type OutboundStatus struct {
	Tag string `json:"tag"`
	// Path is the chain from the first hop dialed to this outbound:
	// "AliHK -> AliSG -> DOSG -> DOUS".
	Path string `json:"path"`
	Hops int32  `json:"hops"`
}

// +kubebuilder:object:root=true

// ProxyChainList is a list of ProxyChains.
type ProxyChainList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProxyChain `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ProxyChain{}, &ProxyChainList{})
}
