// Package testenv is what the suites that run against a real control plane share: where
// the envtest binaries are, what happens when they are not, and the goroutine leak check
// after the control plane has stopped. Only tests import it.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/test/harness"
)

// K8sVersion is the control plane the suites run against, built by hack/build-tools.sh.
const K8sVersion = "1.37.2"

// Assets returns the absolute directory holding kube-apiserver and etcd: KUBEBUILDER_ASSETS,
// else the repository's bin/k8s/<version>-linux-amd64; "" when neither has both. It points
// KUBEBUILDER_ASSETS at the directory it chose, since envtest reads the variable first.
func Assets() string {
	dirs := []string{os.Getenv("KUBEBUILDER_ASSETS")}
	if root, err := harness.RepoRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, "bin", "k8s", K8sVersion+"-linux-amd64"))
	}
	for _, dir := range dirs {
		if dir == "" || !exists(filepath.Join(dir, "kube-apiserver")) || !exists(filepath.Join(dir, "etcd")) {
			continue
		}
		if abs, err := filepath.Abs(dir); err == nil {
			os.Setenv("KUBEBUILDER_ASSETS", abs)
			return abs
		}
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Missing reports that suite cannot find the control plane. Under CI (CI=true) that is a
// failure: it returns "" and the caller exits non-zero. Elsewhere it says so loudly and
// returns the reason for each test to skip with.
func Missing(suite string) (skipReason string) {
	msg := fmt.Sprintf("envtest binaries (kube-apiserver, etcd %s) not found: set KUBEBUILDER_ASSETS or run hack/build-tools.sh", K8sVersion)
	if os.Getenv("CI") == "true" {
		fmt.Fprintln(os.Stderr, "FAIL: "+msg)
		return ""
	}
	fmt.Fprintln(os.Stderr, "\n!!! SKIPPING "+suite+": "+msg+" !!!\n")
	return msg
}

// LeakCheck turns a passing exit code into a failing one if goroutines are left once the
// suite has stopped everything it started.
func LeakCheck(suite string, code int) int {
	if code != 0 {
		return code
	}
	err := goleak.Find(
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		// client-go's event broadcaster can leave its watch filter blocked on a send after
		// shutdown; it is not ours to stop.
		goleak.IgnoreTopFunction("k8s.io/apimachinery/pkg/watch.(*filteredWatch).loop"),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: leaked goroutines: %v\n", suite, err)
		return 1
	}
	return 0
}
