package controllers

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render"
	"github.com/proxychain/proxychain/proxy/capture"
)

// What the injector adds to a pod. The names are reserved: an application container
// may not use them.
const (
	SidecarName       = "proxychain"
	InitName          = "proxychain-init"
	ConfigVolumeName  = "proxychain-config"
	XtablesVolumeName = "proxychain-xtables"

	// SidecarBinary is the data plane binary's path in the image.
	SidecarBinary = "/proxychain"
	// MetricsPort serves /metrics, /readyz and /healthz. The kubelet probes the pod IP,
	// not loopback, so the sidecar listens on every address of the pod for them.
	MetricsPort     = 15090
	MetricsPortName = "pc-metrics"
)

// reservedPorts are the sidecar's ports; an application listening on one would
// collide with it.
var reservedPorts = []int32{render.RedirectPort, render.SocksPort, render.HTTPPort, MetricsPort}

// SidecarLogLevels are the values proxychain run -log-level takes.
var SidecarLogLevels = []string{"debug", "info", "warning", "error", "none"}

// SidecarConfig is what the manager's flags say about the injected containers.
type SidecarConfig struct {
	// Image holds /proxychain (and, for transparent mode, iptables-restore).
	Image string
	// UID runs the sidecar; the capture exempts this UID's traffic, so no application
	// container may run as it.
	UID       int64
	Resources corev1.ResourceRequirements
	// LogLevel is passed as -log-level; empty leaves the sidecar's default.
	LogLevel string
	// ClusterDNS are the cluster's resolvers, as the kubelet's clusterDNS lists them: what
	// a ClusterFirst pod's resolv.conf names. The capture lets a pod query only these
	// and its own nameservers on port 53. Empty means unknown: port 53 to any address.
	ClusterDNS []netip.Addr
}

// Validate checks the flags' values before the manager starts.
func (s SidecarConfig) Validate() error {
	var errs []error
	if s.Image == "" {
		errs = append(errs, errors.New("controllers: sidecar image: empty"))
	}
	if s.UID <= 0 || s.UID >= 1<<32-1 {
		errs = append(errs, fmt.Errorf("controllers: sidecar UID: %d is not a non-root UID (1 to 4294967294)", s.UID))
	}
	if s.LogLevel != "" && !slices.Contains(SidecarLogLevels, s.LogLevel) {
		errs = append(errs, fmt.Errorf("controllers: sidecar log level: %q is not one of %s", s.LogLevel, strings.Join(SidecarLogLevels, ", ")))
	}
	for _, a := range s.ClusterDNS {
		if !a.IsValid() || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("controllers: cluster DNS: %q is not an IP address", a))
		}
	}
	return errors.Join(errs...)
}

// ParseClusterDNS reads a comma-separated list of resolver addresses, IPv4 and IPv6,
// as proxychain init's -dns takes them.
func ParseClusterDNS(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range splitList(s) {
		a, err := parseResolver(f)
		if err != nil {
			return nil, err
		}
		out = mergeUnique(out, []netip.Addr{a})
	}
	return out, nil
}

// parseResolver accepts what capture does for a resolver: an address without a zone.
// IPv4 comes out in IPv4 form, as capture matches it.
func parseResolver(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// ParseResources builds requests and limits from quantities; an empty string leaves
// that entry unset.
func ParseResources(cpuRequest, memoryRequest, cpuLimit, memoryLimit string) (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	set := func(list *corev1.ResourceList, name corev1.ResourceName, flag, value string) error {
		if value == "" {
			return nil
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return fmt.Errorf("controllers: %s: %q: %w", flag, value, err)
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
		return nil
	}
	return rr, errors.Join(
		set(&rr.Requests, corev1.ResourceCPU, "sidecar cpu request", cpuRequest),
		set(&rr.Requests, corev1.ResourceMemory, "sidecar memory request", memoryRequest),
		set(&rr.Limits, corev1.ResourceCPU, "sidecar cpu limit", cpuLimit),
		set(&rr.Limits, corev1.ResourceMemory, "sidecar memory limit", memoryLimit),
	)
}

// podOptions are the per-pod annotations, parsed.
type podOptions struct {
	mode         string // "" keeps the chain's
	excludeCIDRs []string
	excludePorts []int32
}

// parseAnnotations reads the optional per-pod annotations. An error names the
// annotation and the value at fault.
func parseAnnotations(a map[string]string) (podOptions, error) {
	var o podOptions
	if v, ok := a[AnnotationMode]; ok {
		if v != v1alpha1.EgressTransparent && v != v1alpha1.EgressExplicit {
			return o, fmt.Errorf("annotation %s: %q is not %s or %s", AnnotationMode, v, v1alpha1.EgressTransparent, v1alpha1.EgressExplicit)
		}
		o.mode = v
	}
	for _, s := range splitList(a[AnnotationExcludeCIDRs]) {
		if _, err := parseCIDR(s); err != nil {
			return o, fmt.Errorf("annotation %s: %w", AnnotationExcludeCIDRs, err)
		}
		o.excludeCIDRs = append(o.excludeCIDRs, s)
	}
	for _, s := range splitList(a[AnnotationExcludePorts]) {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 || n > 65535 {
			return o, fmt.Errorf("annotation %s: %q is not a port (1 to 65535)", AnnotationExcludePorts, s)
		}
		o.excludePorts = append(o.excludePorts, int32(n))
	}
	return o, nil
}

// parseCIDR accepts what proxychain init does: a CIDR, or an address meaning its host
// network, IPv4 written as IPv4.
func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or an IP address", s)
		}
		return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	return p, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkPod lists what in the pod would let its traffic escape the chain, or collide
// with the sidecar. Containers the injector added earlier (a re-invocation, or a copy of
// an injected pod) are its own and skipped.
func checkPod(pod *corev1.Pod, sidecarUID int64) []string {
	var problems []string
	if pod.Spec.HostNetwork {
		problems = append(problems, "hostNetwork: the pod shares the node's network namespace, where the capture would apply to the node")
	}
	check := func(kind string, c *corev1.Container) {
		what := fmt.Sprintf("%s %q", kind, c.Name)
		uid := effectiveUID(pod, c)
		if uid != nil && *uid == sidecarUID {
			problems = append(problems, fmt.Sprintf("%s runs as UID %d, the sidecar's: its traffic would bypass the chain", what, sidecarUID))
		}
		if sc := c.SecurityContext; sc != nil {
			if sc.Privileged != nil && *sc.Privileged {
				problems = append(problems, what+" is privileged: it could remove the capture")
			}
			if sc.Capabilities != nil {
				for _, cp := range sc.Capabilities.Add {
					if name := capabilityName(cp); name == "NET_ADMIN" || name == "ALL" {
						problems = append(problems, fmt.Sprintf("%s adds capability %s: it could remove the capture", what, cp))
					}
				}
			}
		}
		for _, port := range c.Ports {
			if slices.Contains(reservedPorts, port.ContainerPort) {
				problems = append(problems, fmt.Sprintf("%s uses port %d, which the sidecar listens on", what, port.ContainerPort))
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.Name != SidecarName && c.Name != InitName {
			check("init container", c)
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name == SidecarName || c.Name == InitName {
			problems = append(problems, fmt.Sprintf("container %q: the name is reserved for the injected sidecar", c.Name))
			continue
		}
		check("container", c)
	}
	return problems
}

// effectiveUID is the UID the container's process starts as, when the pod says; nil
// means the image decides, which admission cannot see.
func effectiveUID(pod *corev1.Pod, c *corev1.Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if pod.Spec.SecurityContext != nil {
		return pod.Spec.SecurityContext.RunAsUser
	}
	return nil
}

// capabilityName normalises "cap_net_admin" and "NET_ADMIN" alike: runtimes accept both.
func capabilityName(c corev1.Capability) string {
	return strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
}

// inject adds the sidecar (and, in transparent mode, the capture init container) to
// pod. It first removes whatever an earlier injection added, so the result depends only
// on the pod's own containers, the chain and opts: injecting twice changes nothing.
func inject(pod *corev1.Pod, pc *v1alpha1.ProxyChain, o podOptions, s SidecarConfig) error {
	mode := pc.Spec.Egress.Mode
	if mode == "" {
		mode = v1alpha1.EgressTransparent
	}
	if o.mode != "" {
		mode = o.mode
	}
	cidrs := mergeUnique(pc.Spec.Egress.ExcludeCIDRs, o.excludeCIDRs)
	ports := mergeUnique(pc.Spec.Egress.ExcludePorts, o.excludePorts)

	inits := []corev1.Container{}
	if mode == v1alpha1.EgressTransparent {
		dns, err := podResolvers(&pod.Spec, s.ClusterDNS)
		if err != nil {
			return err
		}
		ic, err := initContainer(s, cidrs, ports, dns)
		if err != nil {
			return err
		}
		inits = append(inits, ic)
	}
	inits = append(inits, sidecarContainer(s))
	for _, c := range pod.Spec.InitContainers {
		if c.Name != SidecarName && c.Name != InitName {
			inits = append(inits, c)
		}
	}
	pod.Spec.InitContainers = inits

	pod.Spec.Volumes = slices.DeleteFunc(pod.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Name == ConfigVolumeName || v.Name == XtablesVolumeName
	})
	pod.Spec.Volumes = append(pod.Spec.Volumes, configVolume(pc.Name))
	if mode == v1alpha1.EgressTransparent {
		pod.Spec.Volumes = append(pod.Spec.Volumes, xtablesVolume())
	}

	if mode == v1alpha1.EgressExplicit {
		env := proxyEnv(cidrs)
		for i := range pod.Spec.InitContainers {
			if c := &pod.Spec.InitContainers[i]; c.Name != SidecarName && c.Name != InitName {
				setEnv(c, env)
			}
		}
		for i := range pod.Spec.Containers {
			setEnv(&pod.Spec.Containers[i], env)
		}
	}

	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationInjected] = "true"
	pod.Annotations[AnnotationConfigHash] = pc.Status.ConfigHash
	return nil
}

// podResolvers lists every resolver the pod's resolv.conf can name, for init's -dns; nil
// when the manager cannot know them all, which leaves port 53 open to any address
// (capture's default), as blocking an unknown resolver would break the pod's lookups.
//
// The list may hold one family only (an IPv4 cluster DNS). The capture then allows no DNS
// at all in the other family, and that is meant: resolv.conf names no resolver there,
// so port 53 of such an address is not the pod's DNS, and opening that family to any
// address would put back the hole this list closes.
func podResolvers(spec *corev1.PodSpec, clusterDNS []netip.Addr) ([]string, error) {
	var own []netip.Addr
	if spec.DNSConfig != nil {
		for i, s := range spec.DNSConfig.Nameservers {
			a, err := parseResolver(s)
			if err != nil {
				return nil, fmt.Errorf("proxychain cannot inject this pod: spec.dnsConfig.nameservers[%d]: %w", i, err)
			}
			own = append(own, a)
		}
	}
	var all []netip.Addr
	switch spec.DNSPolicy {
	case corev1.DNSNone:
		// The kubelet writes these and nothing else.
		all = mergeUnique(nil, own)
	case corev1.DNSDefault:
		// The node's resolvers (the kubelet's resolvConf), which the manager does not know.
		return nil, nil
	default:
		// ClusterFirst. ClusterFirstWithHostNet is the same for a pod off the host
		// network, and checkPod refuses those on it.
		if len(clusterDNS) == 0 {
			return nil, nil
		}
		all = mergeUnique(clusterDNS, own)
	}
	out := make([]string, len(all))
	for i, a := range all {
		out[i] = a.String()
	}
	return out, nil
}

func mergeUnique[T comparable](a, b []T) []T {
	var out []T
	for _, v := range slices.Concat(a, b) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// restricted is the securityContext both injected containers share: nothing beyond
// what each needs, and the runtime's default seccomp profile, so a namespace enforcing
// the restricted Pod Security Standard admits the sidecar.
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Privileged:               ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func sidecarContainer(s SidecarConfig) corev1.Container {
	args := []string{"run", "-c", render.MountPath + "/" + render.ConfigKey}
	args = append(args, "-metrics-addr", fmt.Sprintf("0.0.0.0:%d", MetricsPort))
	if s.LogLevel != "" {
		args = append(args, "-log-level", s.LogLevel)
	}
	sc := restricted()
	sc.RunAsUser = ptr.To(s.UID)
	sc.RunAsGroup = ptr.To(s.UID)
	sc.RunAsNonRoot = ptr.To(true)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString(MetricsPortName), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1, SuccessThreshold: 1,
		}
	}
	return corev1.Container{
		Name:    SidecarName,
		Image:   s.Image,
		Command: []string{SidecarBinary},
		Args:    args,
		// A native sidecar: it starts before the app containers and the later init
		// containers, runs for the pod's life, and does not keep a Job's pod alive.
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Ports: []corev1.ContainerPort{{
			Name: MetricsPortName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP,
		}},
		Resources:       s.Resources,
		SecurityContext: sc,
		VolumeMounts: []corev1.VolumeMount{{
			Name: ConfigVolumeName, MountPath: render.MountPath, ReadOnly: true,
		}},
		// The kubelet starts the next container only once the startup probe passes:
		// the app's first connection finds the chain loaded and listening. Two minutes
		// allows for a slow image pull of nothing but a cold start.
		StartupProbe:             probe("/readyz", 1, 120),
		ReadinessProbe:           probe("/readyz", 5, 3),
		LivenessProbe:            probe("/healthz", 10, 3),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func initContainer(s SidecarConfig, cidrs []string, ports []int32, dns []string) (corev1.Container, error) {
	portStrings := make([]string, len(ports))
	intPorts := make([]int, len(ports))
	for i, p := range ports {
		portStrings[i] = strconv.Itoa(int(p))
		intPorts[i] = int(p)
	}
	// The same check proxychain init makes, so an admitted pod's init never fails on
	// its arguments.
	if _, _, err := capture.Rules(capture.Options{
		RedirectPort: render.RedirectPort, SidecarUID: int(s.UID), ExcludeCIDRs: cidrs, ExcludePorts: intPorts,
		DNSServers: dns,
	}); err != nil {
		return corev1.Container{}, fmt.Errorf("proxychain cannot inject this pod: %w", err)
	}
	args := []string{"init", "-mode", v1alpha1.EgressTransparent,
		"-redirect-port", strconv.Itoa(render.RedirectPort),
		"-sidecar-uid", strconv.FormatInt(s.UID, 10)}
	if len(cidrs) > 0 {
		args = append(args, "-exclude-cidrs", strings.Join(cidrs, ","))
	}
	if len(ports) > 0 {
		args = append(args, "-exclude-ports", strings.Join(portStrings, ","))
	}
	if len(dns) > 0 {
		args = append(args, "-dns", strings.Join(dns, ","))
	}
	sc := restricted()
	// iptables needs root in the pod's network namespace; NET_ADMIN and NET_RAW are
	// the only capabilities it gets, and nothing privileged.
	sc.RunAsUser = ptr.To[int64](0)
	sc.RunAsGroup = ptr.To[int64](0)
	sc.RunAsNonRoot = ptr.To(false)
	sc.Capabilities.Add = []corev1.Capability{"NET_ADMIN", "NET_RAW"}
	return corev1.Container{
		Name:            InitName,
		Image:           s.Image,
		Command:         []string{SidecarBinary},
		Args:            args,
		Resources:       s.Resources,
		SecurityContext: sc,
		// iptables-legacy takes its lock in /run; the root filesystem stays read-only.
		VolumeMounts:             []corev1.VolumeMount{{Name: XtablesVolumeName, MountPath: "/run"}},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}, nil
}

// configVolume projects the chain's ConfigMap and credentials Secret into one
// directory. The kubelet refreshes the two separately, so they can briefly be of two
// revisions (see internal/render's package doc).
func configVolume(chain string) corev1.Volume {
	sources := []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: render.ConfigMapName(chain)}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: render.CredentialsSecretName(chain)}}},
	}
	return corev1.Volume{Name: ConfigVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: sources,
		// Readable by the sidecar's UID without an fsGroup; only the sidecar mounts it.
		DefaultMode: ptr.To[int32](0o444),
	}}}
}

func xtablesVolume() corev1.Volume {
	return corev1.Volume{Name: XtablesVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi")),
	}}}
}

// proxyEnv points an explicit mode app at the sidecar. Both spellings are set: tools
// disagree on which they read. socks5h makes the sidecar resolve names, so the exit hop
// sees the name the app asked for.
func proxyEnv(excludeCIDRs []string) []corev1.EnvVar {
	httpProxy := fmt.Sprintf("http://%s:%d", render.ListenAddress, render.HTTPPort)
	allProxy := fmt.Sprintf("socks5h://%s:%d", render.ListenAddress, render.SocksPort)
	noProxy := strings.Join(append([]string{"localhost", "127.0.0.1", "::1"}, excludeCIDRs...), ",")
	var env []corev1.EnvVar
	for _, kv := range [][2]string{
		{"HTTP_PROXY", httpProxy}, {"HTTPS_PROXY", httpProxy}, {"ALL_PROXY", allProxy}, {"NO_PROXY", noProxy},
	} {
		env = append(env, corev1.EnvVar{Name: kv[0], Value: kv[1]}, corev1.EnvVar{Name: strings.ToLower(kv[0]), Value: kv[1]})
	}
	return env
}

// setEnv sets each variable of env in c, replacing one of the same name: the app's own
// proxy settings would send traffic around the chain.
func setEnv(c *corev1.Container, env []corev1.EnvVar) {
	for _, e := range env {
		i := slices.IndexFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name })
		if i >= 0 {
			c.Env[i] = e
		} else {
			c.Env = append(c.Env, e)
		}
	}
}
