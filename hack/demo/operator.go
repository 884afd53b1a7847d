package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/proxy"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/proxychain/proxychain/internal/render"
)

// k8sVersion is the control plane hack/build-tools.sh builds into bin/k8s.
const k8sVersion = "1.37.2"

const (
	// demoNamespace holds the demo's ProxyChain and Secrets.
	demoNamespace = "demo"
	// chainSample is the seed's 4-hop chain as a ProxyChain, with its Secrets.
	chainSample = "config/samples/proxychain_v1alpha1_chain.yaml"
	crdPath     = "config/crd/bases"
)

// operator runs the operator flow; see the package comment.
func (d *demo) operator() error {
	assets := filepath.Join(d.root, "bin", "k8s", k8sVersion+"-linux-amd64")
	kubectl := filepath.Join(assets, "kubectl")
	manager := filepath.Join(d.root, "bin", "manager")
	for _, p := range []string{filepath.Join(assets, "etcd"), filepath.Join(assets, "kube-apiserver"), kubectl, manager} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s is missing: run make tools build", p)
		}
	}
	// The sidecar's inbounds are on fixed ports; say so now rather than after a minute.
	for _, port := range []int{render.RedirectPort, render.SocksPort, render.HTTPPort} {
		if err := portFree(fmt.Sprintf("%s:%d", render.ListenAddress, port)); err != nil {
			return err
		}
	}

	d.step("starting the control plane: etcd and kube-apiserver %s from bin/k8s (controller-runtime envtest)", k8sVersion)
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	d.onStop(func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stop control plane:", err)
		}
	})
	admin, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	kc := &kubectlRunner{d: d, path: kubectl, kubeconfig: filepath.Join(d.work, "kubeconfig")}
	if err := os.WriteFile(kc.kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	fmt.Printf("    kube-apiserver at %s; kubeconfig %s\n", cfg.Host, kc.kubeconfig)

	d.step("kubectl apply -f %s", crdPath)
	if err := kc.show("apply", "-f", filepath.Join(d.root, crdPath)); err != nil {
		return err
	}
	if _, err := kc.run("wait", "--for=condition=Established", "crd/proxychains.proxychain.io", "--timeout=30s"); err != nil {
		return err
	}

	probePort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	// Webhooks are off: the API server reaches webhooks through a Service, and nothing
	// routes a Service to a process outside a cluster. test/helm runs them against
	// this same control plane instead.
	d.step("starting the operator out of cluster: bin/manager --enable-webhooks=false")
	if err := d.start("manager", []string{"KUBECONFIG=" + kc.kubeconfig}, manager,
		"--enable-webhooks=false", "--leader-elect=false", "--metrics-bind-address=0",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort)); err != nil {
		return err
	}
	if err := waitHTTP(d.ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), 30*time.Second); err != nil {
		return fmt.Errorf("manager not ready: %w", err)
	}

	target, err := d.startTarget()
	if err != nil {
		return err
	}
	addrs, err := d.startHops()
	if err != nil {
		return err
	}

	manifest, chainName, err := d.chainManifest(addrs)
	if err != nil {
		return err
	}
	if _, err := kc.run("create", "namespace", demoNamespace); err != nil {
		return err
	}
	d.step("kubectl apply -n %s -f %s   (the seed's 4-hop chain and its Secrets)", demoNamespace, manifest)
	if err := kc.show("apply", "-n", demoNamespace, "-f", manifest); err != nil {
		return err
	}
	d.step("kubectl wait --for=condition=Ready proxychain/%s", chainName)
	if _, err := kc.run("wait", "-n", demoNamespace, "--for=condition=Ready", "proxychain/"+chainName, "--timeout=60s"); err != nil {
		return err
	}

	cmName, secretName := render.ConfigMapName(chainName), render.CredentialsSecretName(chainName)
	mount := filepath.Join(d.work, "etc-proxychain")
	d.step("laying out ConfigMap %s and Secret %s as the kubelet mounts them: %s", cmName, secretName, mount)
	files, err := d.renderedFiles(kc, cmName, secretName)
	if err != nil {
		return err
	}
	if err := writeProjected(mount, files); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Printf("    %s/%-22s %5d bytes\n", mount, name, len(files[name]))
	}

	configPath := filepath.Join(mount, render.ConfigKey)
	d.step("proxychain chain -c %s   (each outbound's path, as the sidecar will dial it)", configPath)
	out, err := exec.CommandContext(d.ctx, d.bin, "chain", "-c", configPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("proxychain chain: %w\n%s", err, out)
	}
	fmt.Print(indent(string(out)))

	metricsPort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	d.step("starting the sidecar: proxychain run -c %s", configPath)
	if err := d.start("sidecar", nil, d.bin, "run", "-c", configPath,
		"-metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort)); err != nil {
		return err
	}
	if err := waitHTTP(d.ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", metricsPort), 15*time.Second); err != nil {
		return fmt.Errorf("sidecar not ready: %w", err)
	}

	socks := fmt.Sprintf("%s:%d", render.ListenAddress, render.SocksPort)
	// The rendered config carries every sidecar inbound; nothing here installs iptables
	// rules, so the client uses the SOCKS5 one, as an explicit-mode pod does.
	d.step("GET %s through the sidecar's SOCKS5 inbound (curl --socks5-hostname %s %s)", target.url, socks, target.url)
	began := time.Now()
	body, err := fetchViaSOCKS(d, socks, target.url)
	if err != nil {
		return fmt.Errorf("fetch through the chain: %w", err)
	}
	elapsed := time.Since(began)
	chainPath, err := kc.run("get", "-n", demoNamespace, "proxychain", chainName,
		"-o", fmt.Sprintf(`jsonpath={.status.outbounds[?(@.tag=="%s")].path}`, exitTag))
	if err != nil {
		return err
	}
	if err := target.check("client -> "+strings.TrimSpace(chainPath)+" -> target", body, elapsed, addrs[exitTag]); err != nil {
		return err
	}

	d.step("kubectl get proxychains -n %s -o wide", demoNamespace)
	return kc.show("get", "proxychains", "-n", demoNamespace, "-o", "wide")
}

// chainManifest writes the chain sample with each hop's address moved to its loopback
// server; nothing else changes.
func (d *demo) chainManifest(addrs map[string]*net.TCPAddr) (path, chainName string, err error) {
	raw, err := os.ReadFile(filepath.Join(d.root, chainSample))
	if err != nil {
		return "", "", err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out bytes.Buffer
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", "", fmt.Errorf("%s: %w", chainSample, err)
		}
		if obj == nil {
			continue
		}
		if obj["kind"] == "ProxyChain" {
			meta, _ := obj["metadata"].(map[string]any)
			chainName, _ = meta["name"].(string)
			if err := moveHops(obj, addrs); err != nil {
				return "", "", fmt.Errorf("%s: %w", chainSample, err)
			}
		}
		doc, err := yaml.Marshal(obj)
		if err != nil {
			return "", "", err
		}
		out.WriteString("---\n")
		out.Write(doc)
	}
	if chainName == "" {
		return "", "", fmt.Errorf("%s holds no ProxyChain", chainSample)
	}
	path = filepath.Join(d.work, "chain.yaml")
	return path, chainName, os.WriteFile(path, out.Bytes(), 0o600)
}

// moveHops points each outbound of the ProxyChain obj at its loopback server.
func moveHops(obj map[string]any, addrs map[string]*net.TCPAddr) error {
	spec, _ := obj["spec"].(map[string]any)
	outbounds, _ := spec["outbounds"].([]any)
	moved := 0
	for _, o := range outbounds {
		out, _ := o.(map[string]any)
		tag, _ := out["tag"].(string)
		addr, ok := addrs[tag]
		if !ok {
			continue
		}
		settings, _ := out["settings"].(map[string]any)
		servers, _ := settings["vnext"].([]any)
		if len(servers) == 0 {
			servers, _ = settings["servers"].([]any)
		}
		if len(servers) != 1 {
			return fmt.Errorf("outbound %s: want one server, have %d", tag, len(servers))
		}
		srv, _ := servers[0].(map[string]any)
		fmt.Printf("    %-5s %-11s %s:%v -> %s\n", tag, out["protocol"], srv["address"], srv["port"], addr)
		srv["address"] = addr.IP.String()
		srv["port"] = addr.Port
		moved++
	}
	if moved != len(addrs) {
		return fmt.Errorf("found %d of the %d hops among the outbounds", moved, len(addrs))
	}
	return nil
}

// renderedFiles reads the operator's ConfigMap and Secret: the files of the sidecar's
// projected volume.
func (d *demo) renderedFiles(kc *kubectlRunner, cmName, secretName string) (map[string][]byte, error) {
	var cm struct {
		Data map[string]string `json:"data"`
	}
	var secret struct {
		Data map[string][]byte `json:"data"` // base64 in JSON, decoded by encoding/json
	}
	for _, get := range []struct {
		kind, name string
		into       any
	}{{"configmap", cmName, &cm}, {"secret", secretName, &secret}} {
		out, err := kc.run("get", "-n", demoNamespace, get.kind, get.name, "-o", "json")
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(out), get.into); err != nil {
			return nil, fmt.Errorf("%s %s: %w", get.kind, get.name, err)
		}
	}
	if _, ok := cm.Data[render.ConfigKey]; !ok {
		return nil, fmt.Errorf("configmap %s has no %s", cmName, render.ConfigKey)
	}
	files := map[string][]byte{}
	for k, v := range cm.Data {
		files[k] = []byte(v)
	}
	for k, v := range secret.Data {
		if _, clash := files[k]; clash {
			return nil, fmt.Errorf("secret %s and configmap %s both hold %s", secretName, cmName, k)
		}
		files[k] = v
	}
	return files, nil
}

// writeProjected lays files out as the kubelet's atomic writer does for a projected
// volume: the payload in a timestamped directory, a ..data symlink to it, and one
// symlink per file through ..data, so an update is a single rename of ..data.
func writeProjected(dir string, files map[string][]byte) error {
	payload := ".." + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	if err := os.MkdirAll(filepath.Join(dir, payload), 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("refusing file name %q", name)
		}
		if err := os.WriteFile(filepath.Join(dir, payload, name), data, 0o600); err != nil {
			return err
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return os.Symlink(payload, filepath.Join(dir, "..data"))
}

// fetchViaSOCKS GETs url through the SOCKS5 proxy at socks, as an app with
// ALL_PROXY=socks5h://... would.
func fetchViaSOCKS(d *demo, socks, url string) ([]byte, error) {
	dialer, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{DialContext: dialer.(proxy.ContextDialer).DialContext}
	// An idle keep-alive connection would hold the sidecar's drain open at teardown.
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 30 * time.Second, Transport: transport}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// kubectlRunner runs bin/k8s/.../kubectl against the demo's control plane only.
type kubectlRunner struct {
	d          *demo
	path       string
	kubeconfig string
}

// run returns kubectl's standard output, or an error holding its standard error.
func (k *kubectlRunner) run(args ...string) (string, error) {
	cmd := exec.CommandContext(k.d.ctx, k.path, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// show runs kubectl and prints its output indented.
func (k *kubectlRunner) show(args ...string) error {
	out, err := k.run(args...)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	return nil
}
