// Package helm tests the Helm chart in charts/proxychain as users install it: helm lint,
// helm template with default and non-default values (asserting on the parsed objects),
// and, against a real kube-apiserver started by envtest, a server-side dry run of the
// whole chart, then a real install of its CRD, RBAC and webhook configurations with the
// manager running out of cluster as the chart's ServiceAccount.
//
// The tools come from bin/ (hack/build-tools.sh): bin/helm, built with its Kubernetes
// version set to 1.37, and bin/k8s/<version>-linux-amd64/{kubectl,kube-apiserver,etcd}.
// Never the machine's kubectl or kubeconfig. Without them the suite skips, loudly; under
// CI=true it fails instead.
package helm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/internal/testenv"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	releaseName      = "pc"
	releaseNamespace = "proxychain-system"
	// fullname is the chart's object name prefix for releaseName.
	fullname = "pc-proxychain"
)

var (
	root    string // the repository
	chart   string // charts/proxychain
	helmBin string
	kubectl string
	assets  string // KUBEBUILDER_ASSETS: kube-apiserver and etcd
	// helmEnv keeps helm's cache, config and data out of the user's home.
	helmEnv []string

	// skipTools and skipCluster are why tests skip; empty when they can run.
	skipTools   string
	skipCluster string
)

func TestMain(m *testing.M) {
	os.Exit(testenv.LeakCheck("helm", setup(m)))
}

func setup(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root = filepath.Join(wd, "..", "..")
	chart = filepath.Join(root, "charts", "proxychain")
	dir := filepath.Join(root, "bin", "k8s", testenv.K8sVersion+"-linux-amd64")
	helmBin = filepath.Join(root, "bin", "helm")
	kubectl = filepath.Join(dir, "kubectl")
	assets = os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = dir
	}

	var missing []string
	for _, p := range []string{helmBin, kubectl} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		skipTools = fmt.Sprintf("%s not found: run hack/build-tools.sh (make tools)", strings.Join(missing, ", "))
	}
	missing = nil
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			missing = append(missing, filepath.Join(assets, name))
		}
	}
	switch {
	case skipTools != "":
		skipCluster = skipTools
	case len(missing) > 0:
		skipCluster = fmt.Sprintf("%s not found: run hack/build-tools.sh (make tools) or set KUBEBUILDER_ASSETS", strings.Join(missing, ", "))
	}
	for _, reason := range []string{skipTools, skipCluster} {
		if reason == "" {
			continue
		}
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL: the Helm chart suite needs its tools under CI: "+reason)
			return 1
		}
		fmt.Fprintln(os.Stderr, "\n!!! SKIPPING parts of the Helm chart suite: "+reason+" !!!\n")
		break
	}

	home, err := os.MkdirTemp("", "proxychain-helm-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	helmEnv = []string{
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		// Nothing here may fall back to the machine's cluster.
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}
	return m.Run()
}

func requireTools(t *testing.T) {
	t.Helper()
	if skipTools != "" {
		t.Skip("SKIPPED, tools missing: " + skipTools)
	}
}

func requireCluster(t *testing.T) {
	t.Helper()
	if skipCluster != "" {
		t.Skip("SKIPPED, no control plane: " + skipCluster)
	}
}

// run runs a tool with stdin and returns its standard output; the error holds its
// standard error.
func run(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), helmEnv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// helm runs bin/helm and fails t on error.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := run(nil, helmBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// template renders the chart as release pc in proxychain-system with extra flags.
func template(t *testing.T, flags ...string) []byte {
	t.Helper()
	return helm(t, append([]string{"template", releaseName, chart, "--namespace", releaseNamespace}, flags...)...)
}

// manifest is a parsed multi-document YAML stream.
type manifest []*unstructured.Unstructured

func parse(t *testing.T, data []byte) manifest {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs manifest
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("parse manifest: %v", err)
		}
		if len(u.Object) == 0 {
			continue // an empty document
		}
		objs = append(objs, &u)
	}
}

// find returns the object of kind and name, failing t when there is not exactly one.
func (m manifest) find(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, u := range m {
		if u.GetKind() == kind && u.GetName() == name {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %q in the manifest, found %d (have: %s)", kind, name, len(found), m.names())
	}
	return found[0]
}

// ofKind returns the objects of kind.
func (m manifest) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range m {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

func (m manifest) names() string {
	var s []string
	for _, u := range m {
		s = append(s, u.GetKind()+"/"+u.GetName())
	}
	return strings.Join(s, ", ")
}

// typed converts u into a typed API object.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}
