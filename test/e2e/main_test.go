package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/test/harness"
)

// proxychainBin is our binary, built by TestMain from this checkout, so the suite never
// runs a stale bin/proxychain.
var proxychainBin string

// lockPath serialises runs of this suite on one machine: the fixtures' ports are fixed.
const lockPath = "/tmp/proxychain-e2e.lock"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	unlock, err := lockSuite()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer unlock()
	dir, err := os.MkdirTemp("", "proxychain-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	proxychainBin = filepath.Join(dir, "proxychain")
	if err := buildProxychain(proxychainBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			code = 1
		}
	}
	return code
}

func buildProxychain(out string) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/proxychain")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build proxychain: %w\n%s", err, output)
	}
	return nil
}

// lockSuite takes an exclusive lock on lockPath, waiting (and saying so) if another run
// of the suite holds it.
func lockSuite() (unlock func(), err error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: another run holds %s; waiting for it\n", lockPath)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
	}
	return func() { f.Close() }, nil
}

// start runs a process for the rest of the test. Under setpriv, where the machine has
// it, the process is killed if the test binary dies without cleaning up (a go test
// timeout), so no orphan keeps one of the fixed ports bound for the next run.
func start(t *testing.T, bin string, args ...string) *harness.Process {
	t.Helper()
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		return harness.StartProcess(t, setpriv, append([]string{"--pdeathsig", "KILL", "--", bin}, args...)...)
	}
	return harness.StartProcess(t, bin, args...)
}

// startProxychain runs `proxychain run` on the given config files. Metrics and hot
// reload are off: several instances share the machine, and the configs never change.
func startProxychain(t *testing.T, configs ...string) *harness.Process {
	t.Helper()
	args := []string{"run", "-metrics-addr=", "-reload-interval=0"}
	for _, c := range configs {
		args = append(args, "-c", c)
	}
	return start(t, proxychainBin, args...)
}

// skipShort skips suites that start processes and move tens of MiB.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: starts real processes; skipped with -short")
	}
}
