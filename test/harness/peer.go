package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// peerNames are the binaries RequirePeer knows how to install.
var peerNames = map[string]bool{
	"ss-server": true,
	"ss-local":  true,
	"ss-tunnel": true,
	"v2ray":     true,
	"xray":      true,
	"curl":      true, // the client a user tries first; hack/install-peers.sh installs it too
}

// installTimeout bounds hack/install-peers.sh, which may build xray from source.
const installTimeout = 20 * time.Minute

var install struct {
	once   sync.Once
	output []byte
	err    error
}

// RequirePeer returns the path of a peer binary: "ss-server", "ss-local", "ss-tunnel",
// "v2ray", "xray" or "curl". The repository's bin/ is searched before PATH (xray is built there).
//
// If the peer is missing, RequirePeer runs hack/install-peers.sh, once per test binary.
// If it is still missing, the test fails under CI (CI=true) and is skipped, loudly,
// otherwise.
func RequirePeer(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return requirePeer(t, name,
		func(name string) (string, error) { return findPeer(root, name) },
		func() ([]byte, error) {
			install.once.Do(func() { install.output, install.err = runInstall(root) })
			return install.output, install.err
		})
}

// requirePeer is RequirePeer with the lookup and the installer passed in, so tests can
// take the missing-peer paths.
func requirePeer(t testing.TB, name string, find func(string) (string, error), installPeers func() ([]byte, error)) string {
	t.Helper()
	if !peerNames[name] {
		t.Fatalf("harness: unknown peer %q", name)
	}
	if path, err := find(name); err == nil {
		return path
	}
	output, installErr := installPeers()
	path, err := find(name)
	if err == nil {
		t.Logf("harness: installed %s with hack/install-peers.sh:\n%s", name, output)
		return path
	}
	msg := fmt.Sprintf("PEER MISSING: %s (%v); interop NOT verified; run hack/install-peers.sh", name, err)
	if installErr != nil {
		msg += fmt.Sprintf("\nhack/install-peers.sh failed: %v\n%s", installErr, output)
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func findPeer(root, name string) (string, error) {
	local := filepath.Join(root, "bin", name)
	if info, err := os.Stat(local); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
		return local, nil
	}
	return exec.LookPath(name)
}

func runInstall(root string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "install-peers.sh"))
	cmd.Dir = root
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// RepoRoot returns the proxychain checkout this test runs in: the nearest directory,
// walking up from the working directory, that holds go.mod and hack/install-peers.sh
// (hack/xray has a go.mod of its own).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: find repository root: %w", err)
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, "hack", "install-peers.sh")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoRepoRoot
		}
		dir = parent
	}
}

var errNoRepoRoot = errors.New("harness: no directory above the working directory holds go.mod and hack/install-peers.sh")

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}
