package controllers

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render"
	"github.com/proxychain/proxychain/internal/render/rendertest"
	"github.com/proxychain/proxychain/proxy/config"
)

var unitSidecar = SidecarConfig{Image: "example.test/proxychain:v1", UID: 1337, LogLevel: "info"}

func unitChain(mode string) *v1alpha1.ProxyChain {
	spec := rendertest.SeedSpec()
	spec.Egress = v1alpha1.Egress{Mode: mode, ExcludeCIDRs: []string{"10.96.0.0/12"}, ExcludePorts: []int32{22}}
	return &v1alpha1.ProxyChain{
		ObjectMeta: metav1.ObjectMeta{Name: "us-exit", Namespace: "apps"},
		Spec:       spec,
		Status:     v1alpha1.ProxyChainStatus{ConfigHash: "abc123"},
	}
}

func unitPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: map[string]string{AnnotationChain: "us-exit"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", Image: "migrate"}},
			Containers: []corev1.Container{
				{Name: "app", Image: "app", Env: []corev1.EnvVar{{Name: "HTTP_PROXY", Value: "http://elsewhere:3128"}, {Name: "KEEP", Value: "1"}}},
				{Name: "worker", Image: "worker"},
			},
		},
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestInjectTransparent(t *testing.T) {
	pod := unitPod()
	opts, err := parseAnnotations(map[string]string{AnnotationExcludeCIDRs: "192.168.0.0/16, 10.96.0.0/12", AnnotationExcludePorts: "5432,22"})
	if err != nil {
		t.Fatal(err)
	}
	if err := inject(pod, unitChain(""), opts, unitSidecar); err != nil {
		t.Fatal(err)
	}
	if got, want := names(pod.Spec.InitContainers), []string{InitName, SidecarName, "migrate"}; !slices.Equal(got, want) {
		t.Fatalf("init containers %v, want %v", got, want)
	}
	ic, sc := pod.Spec.InitContainers[0], pod.Spec.InitContainers[1]
	wantArgs := []string{"init", "-mode", "transparent", "-redirect-port", "15001", "-sidecar-uid", "1337",
		"-exclude-cidrs", "10.96.0.0/12,192.168.0.0/16", "-exclude-ports", "22,5432"}
	if !slices.Equal(ic.Args, wantArgs) {
		t.Errorf("init args %q\nwant %q", ic.Args, wantArgs)
	}
	if s := ic.SecurityContext; *s.RunAsUser != 0 || *s.RunAsNonRoot || *s.Privileged || *s.AllowPrivilegeEscalation ||
		!slices.Equal(s.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
		!slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || ic.RestartPolicy != nil {
		t.Errorf("init securityContext %+v", s)
	}
	wantRun := []string{"run", "-c", "/etc/proxychain/config.json", "-metrics-addr", "0.0.0.0:15090", "-log-level", "info"}
	if !slices.Equal(sc.Args, wantRun) || !slices.Equal(sc.Command, []string{"/proxychain"}) {
		t.Errorf("sidecar command %q args %q", sc.Command, sc.Args)
	}
	if s := sc.SecurityContext; *s.RunAsUser != 1337 || !*s.RunAsNonRoot || !*s.ReadOnlyRootFilesystem ||
		*s.AllowPrivilegeEscalation || len(s.Capabilities.Add) != 0 || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("sidecar securityContext %+v restartPolicy %v", s, sc.RestartPolicy)
	}
	if sc.StartupProbe.HTTPGet.Path != "/readyz" || sc.ReadinessProbe.HTTPGet.Path != "/readyz" || sc.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("probes")
	}
	// Transparent mode leaves the app's environment alone.
	if !equality.Semantic.DeepEqual(pod.Spec.Containers, unitPod().Spec.Containers) {
		t.Error("app containers changed")
	}
	if pod.Annotations[AnnotationInjected] != "true" || pod.Annotations[AnnotationConfigHash] != "abc123" {
		t.Errorf("annotations %v", pod.Annotations)
	}
	if len(pod.Spec.Volumes) != 2 || pod.Spec.Volumes[0].Name != ConfigVolumeName || pod.Spec.Volumes[1].Name != XtablesVolumeName {
		t.Fatalf("volumes %+v", pod.Spec.Volumes)
	}
	srcs := pod.Spec.Volumes[0].Projected.Sources
	if len(srcs) != 2 || srcs[0].ConfigMap.Name != "us-exit-proxychain" || srcs[1].Secret.Name != "us-exit-proxychain-credentials" {
		t.Errorf("projected sources %+v", srcs)
	}

	// Injecting the injected pod again changes nothing.
	again := pod.DeepCopy()
	if err := inject(again, unitChain(""), opts, unitSidecar); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(pod, again) {
		t.Error("a second injection changed the pod")
	}
}

func TestInjectExplicit(t *testing.T) {
	pod := unitPod()
	if err := inject(pod, unitChain(v1alpha1.EgressExplicit), podOptions{}, unitSidecar); err != nil {
		t.Fatal(err)
	}
	if got := names(pod.Spec.InitContainers); !slices.Equal(got, []string{SidecarName, "migrate"}) {
		t.Fatalf("init containers %v", got)
	}
	if len(pod.Spec.Volumes) != 1 {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
	want := map[string]string{
		"HTTP_PROXY": "http://127.0.0.1:15081", "HTTPS_PROXY": "http://127.0.0.1:15081",
		"ALL_PROXY": "socks5h://127.0.0.1:15080", "NO_PROXY": "localhost,127.0.0.1,::1,10.96.0.0/12",
	}
	for _, c := range append(slices.Clone(pod.Spec.Containers), pod.Spec.InitContainers[1]) {
		got := map[string]string{}
		for _, e := range c.Env {
			if _, dup := got[e.Name]; dup {
				t.Errorf("%s: %s twice", c.Name, e.Name)
			}
			got[e.Name] = e.Value
		}
		for k, v := range want {
			if got[k] != v || got[strings.ToLower(k)] != v {
				t.Errorf("%s: %s=%q %s=%q, want %q", c.Name, k, got[k], strings.ToLower(k), got[strings.ToLower(k)], v)
			}
		}
		if c.Name == "app" && got["KEEP"] != "1" {
			t.Error("app lost its own variable")
		}
	}
	if env := pod.Spec.InitContainers[0].Env; len(env) != 0 {
		t.Errorf("sidecar env %v", env)
	}
	again := pod.DeepCopy()
	if err := inject(again, unitChain(v1alpha1.EgressExplicit), podOptions{}, unitSidecar); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(pod, again) {
		t.Error("a second injection changed the pod")
	}
}

// TestModeOverrideLoads runs the files the sidecar would read, the chain's rendered
// config.json plus the pod's inbounds, through the data plane's own loader.
func TestModeOverrideLoads(t *testing.T) {
	tests := []struct {
		chainMode, podMode string
		wantPorts          []int
	}{
		{v1alpha1.EgressTransparent, v1alpha1.EgressExplicit, []int{15001, 15001, 15080, 15081}},
		{v1alpha1.EgressExplicit, v1alpha1.EgressTransparent, []int{15001, 15001, 15080, 15081}},
	}
	for _, tt := range tests {
		t.Run(tt.chainMode+" chain, "+tt.podMode+" pod", func(t *testing.T) {
			chain := unitChain(tt.chainMode)
			res, err := render.Render(&chain.Spec, rendertest.SeedSecrets())
			if err != nil {
				t.Fatal(err)
			}
			pod := unitPod()
			if err := inject(pod, chain, podOptions{mode: tt.podMode}, unitSidecar); err != nil {
				t.Fatal(err)
			}
			// The chain's own config serves either mode: the pod needs nothing of its own.
			sc := pod.Spec.InitContainers[slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == SidecarName })]
			if want := []string{"run", "-c", "/etc/proxychain/" + render.ConfigKey}; !slices.Equal(sc.Args[:3], want) || slices.Contains(sc.Args[3:], "-c") {
				t.Errorf("sidecar args %q, want the chain's config alone", sc.Args)
			}
			if srcs := pod.Spec.Volumes[0].Projected.Sources; len(srcs) != 2 {
				t.Errorf("projected sources %+v, want the ConfigMap and the Secret", srcs)
			}

			dir := t.TempDir()
			write := func(name string, data []byte) {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(render.ConfigKey, res.ConfigJSON)
			for name, v := range res.Credentials {
				write(name, v)
			}
			cfg, _, err := config.Load(filepath.Join(dir, render.ConfigKey))
			if err != nil {
				t.Fatal(err)
			}
			var ports []int
			for _, in := range cfg.Inbounds {
				ports = append(ports, int(in.Port))
				if in.Listen != "127.0.0.1" && in.Listen != "::1" {
					t.Errorf("inbound %s listens on %q, off loopback", in.Tag, in.Listen)
				}
			}
			if !slices.Equal(ports, tt.wantPorts) {
				t.Errorf("inbound ports %v, want %v", ports, tt.wantPorts)
			}
			// Explicit pods get proxy variables, transparent pods the capture.
			hasInit := pod.Spec.InitContainers[0].Name == InitName
			if hasInit != (tt.podMode == v1alpha1.EgressTransparent) {
				t.Errorf("init container present: %v in %s mode", hasInit, tt.podMode)
			}
		})
	}
}

func TestAnnotationErrors(t *testing.T) {
	tests := []struct {
		annotations map[string]string
		want        string
	}{
		{map[string]string{AnnotationMode: "sidecar"}, `annotation proxychain.io/mode: "sidecar" is not transparent or explicit`},
		{map[string]string{AnnotationExcludeCIDRs: "10.0.0.0/8,10.0.0.0/40"}, `annotation proxychain.io/exclude-cidrs: "10.0.0.0/40" is not a CIDR`},
		{map[string]string{AnnotationExcludeCIDRs: "example.com"}, `annotation proxychain.io/exclude-cidrs: "example.com" is not a CIDR or an IP address`},
		{map[string]string{AnnotationExcludeCIDRs: "::ffff:10.0.0.0/104"}, `annotation proxychain.io/exclude-cidrs: "::ffff:10.0.0.0/104" is not a CIDR`},
		{map[string]string{AnnotationExcludePorts: "443,0"}, `annotation proxychain.io/exclude-ports: "0" is not a port (1 to 65535)`},
		{map[string]string{AnnotationExcludePorts: "70000"}, `annotation proxychain.io/exclude-ports: "70000" is not a port (1 to 65535)`},
		{map[string]string{AnnotationExcludePorts: "http"}, `annotation proxychain.io/exclude-ports: "http" is not a port (1 to 65535)`},
		{map[string]string{AnnotationMode: "explicit", AnnotationExcludeCIDRs: " 10.0.0.1 , fd00::/8 ", AnnotationExcludePorts: "1,65535"}, ""},
	}
	for _, tt := range tests {
		_, err := parseAnnotations(tt.annotations)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%v:\n got %s\nwant %s", tt.annotations, got, tt.want)
		}
	}
}

func TestCheckPod(t *testing.T) {
	tests := []struct {
		name string
		edit func(*corev1.Pod)
		want []string
	}{
		{"plain", func(*corev1.Pod) {}, nil},
		{"pod runs as sidecar UID", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1337)}
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
		}, []string{`init container "migrate" runs as UID 1337`, `container "app" runs as UID 1337`}},
		{"container runs as sidecar UID", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1337)}
		}, []string{`container "worker" runs as UID 1337, the sidecar's: its traffic would bypass the chain`}},
		{"NET_ADMIN", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE", "cap_net_admin"}}}
		}, []string{`container "app" adds capability cap_net_admin: it could remove the capture`}},
		{"ALL", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"ALL"}}}
		}, []string{`init container "migrate" adds capability ALL`}},
		{"privileged", func(p *corev1.Pod) {
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, []string{`container "worker" is privileged: it could remove the capture`}},
		{"hostNetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, []string{"hostNetwork"}},
		{"reserved port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 15090}}
		}, []string{`container "app" uses port 15090, which the sidecar listens on`}},
		{"reserved name", func(p *corev1.Pod) { p.Spec.Containers[1].Name = SidecarName },
			[]string{`container "proxychain": the name is reserved`}},
		{"injected containers are ours", func(p *corev1.Pod) {
			if err := inject(p, unitChain(""), podOptions{}, unitSidecar); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := unitPod()
			tt.edit(pod)
			got := checkPod(pod, 1337)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d problems like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %d: %q does not contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSidecarConfigValidate(t *testing.T) {
	if err := unitSidecar.Validate(); err != nil {
		t.Fatal(err)
	}
	err := SidecarConfig{UID: 0, LogLevel: "loud"}.Validate()
	for _, want := range []string{"sidecar image: empty", "sidecar UID: 0 is not a non-root UID", `sidecar log level: "loud"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
	rr, err := ParseResources("50m", "32Mi", "", "128Mi")
	if err != nil || rr.Requests.Cpu().String() != "50m" || rr.Limits.Memory().String() != "128Mi" || rr.Limits.Cpu().String() != "0" {
		t.Errorf("ParseResources: %+v %v", rr, err)
	}
	if _, err := ParseResources("lots", "", "", ""); err == nil || !strings.Contains(err.Error(), `sidecar cpu request: "lots"`) {
		t.Errorf("ParseResources(lots): %v", err)
	}
}

func TestParseClusterDNS(t *testing.T) {
	got, err := ParseClusterDNS(" 10.96.0.10, fd00:10:96::a,,::ffff:10.96.0.10 ")
	want := []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v %v, want %v: IPv4 in IPv4 form, once", got, err, want)
	}
	if got, err := ParseClusterDNS(""); err != nil || got != nil {
		t.Errorf("empty: got %v %v, want none", got, err)
	}
	for _, bad := range []string{"kube-dns", "10.96.0.0/12", "fe80::1%eth0"} {
		if _, err := ParseClusterDNS("10.96.0.10," + bad); err == nil || err.Error() != strconv.Quote(bad)+" is not an IP address" {
			t.Errorf("%s: got %v", bad, err)
		}
	}
	if err := (SidecarConfig{Image: "i", UID: 1, ClusterDNS: []netip.Addr{{}}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "cluster DNS") {
		t.Errorf("Validate with an invalid address: %v", err)
	}
}

func TestPodResolvers(t *testing.T) {
	cluster := []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a")}
	own := &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53", "10.96.0.10"}}
	tests := []struct {
		name    string
		policy  corev1.DNSPolicy
		config  *corev1.PodDNSConfig
		cluster []netip.Addr
		want    []string
	}{
		{"cluster first", corev1.DNSClusterFirst, nil, cluster, []string{"10.96.0.10", "fd00:10:96::a"}},
		{"cluster first adds the pod's own", corev1.DNSClusterFirst, own, cluster, []string{"10.96.0.10", "fd00:10:96::a", "192.0.2.53"}},
		{"unset is cluster first", "", own, cluster, []string{"10.96.0.10", "fd00:10:96::a", "192.0.2.53"}},
		{"with host net off the host network", corev1.DNSClusterFirstWithHostNet, nil, cluster, []string{"10.96.0.10", "fd00:10:96::a"}},
		{"one family stays one family", corev1.DNSClusterFirst, nil, cluster[:1], []string{"10.96.0.10"}},
		{"cluster DNS unknown", corev1.DNSClusterFirst, own, nil, nil},
		{"none is the pod's own alone", corev1.DNSNone, own, cluster, []string{"192.0.2.53", "10.96.0.10"}},
		{"none without cluster DNS", corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"::ffff:192.0.2.53"}}, nil, []string{"192.0.2.53"}},
		{"default uses the node's", corev1.DNSDefault, own, cluster, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := podResolvers(&corev1.PodSpec{DNSPolicy: tt.policy, DNSConfig: tt.config}, tt.cluster)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q %v, want %q", got, err, tt.want)
			}
		})
	}
	_, err := podResolvers(&corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1", "dns.example"}}}, cluster)
	if want := `proxychain cannot inject this pod: spec.dnsConfig.nameservers[1]: "dns.example" is not an IP address`; err == nil || err.Error() != want {
		t.Errorf("bad nameserver: got %v, want %s", err, want)
	}
}

func TestInjectClusterDNS(t *testing.T) {
	s := unitSidecar
	s.ClusterDNS = []netip.Addr{netip.MustParseAddr("10.96.0.10")}
	pod := unitPod()
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"fd00::53"}}
	if err := inject(pod, unitChain(""), podOptions{}, s); err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"init", "-mode", "transparent", "-redirect-port", "15001", "-sidecar-uid", "1337",
		"-exclude-cidrs", "10.96.0.0/12", "-exclude-ports", "22", "-dns", "10.96.0.10,fd00::53"}
	if args := pod.Spec.InitContainers[0].Args; !slices.Equal(args, wantArgs) {
		t.Errorf("init args %q\nwant %q", args, wantArgs)
	}
	again := pod.DeepCopy()
	if err := inject(again, unitChain(""), podOptions{}, s); err != nil || !equality.Semantic.DeepEqual(pod, again) {
		t.Errorf("a second injection changed the pod (%v)", err)
	}
}
