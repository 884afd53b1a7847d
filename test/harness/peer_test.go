package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeTB records how a helper ended or failed a test. Fatal and Skip stop the calling
// goroutine as testing.T's do, so the helper runs in a goroutine of its own (see runTB);
// Error records the failure and lets the helper go on.
type fakeTB struct {
	testing.TB
	mu              sync.Mutex
	failed, skipped bool
	msg             string
}

func (f *fakeTB) Helper()             {}
func (f *fakeTB) Logf(string, ...any) {}
func (f *fakeTB) Fatal(args ...any)   { f.end(&f.failed, fmt.Sprint(args...)) }
func (f *fakeTB) Skip(args ...any)    { f.end(&f.skipped, fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.end(&f.failed, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.end(&f.skipped, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any) {
	f.mu.Lock()
	f.failed, f.msg = true, fmt.Sprint(args...)
	f.mu.Unlock()
}

func (f *fakeTB) end(flag *bool, msg string) {
	f.mu.Lock()
	*flag, f.msg = true, msg
	f.mu.Unlock()
	runtime.Goexit()
}

func runTB(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

var errNotFound = errors.New("not found")

func TestRequirePeerFoundSkipsInstall(t *testing.T) {
	f := runTB(t, func(tb testing.TB) {
		path := requirePeer(tb, "v2ray",
			func(string) (string, error) { return "/opt/v2ray", nil },
			func() ([]byte, error) { t.Error("installer ran for a present peer"); return nil, nil })
		if path != "/opt/v2ray" {
			t.Errorf("path = %q, want /opt/v2ray", path)
		}
	})
	if f.failed || f.skipped {
		t.Fatalf("failed %v, skipped %v: %s", f.failed, f.skipped, f.msg)
	}
}

func TestRequirePeerInstalls(t *testing.T) {
	installed := 0
	f := runTB(t, func(tb testing.TB) {
		path := requirePeer(tb, "xray",
			func(string) (string, error) {
				if installed == 0 {
					return "", errNotFound
				}
				return "/repo/bin/xray", nil
			},
			func() ([]byte, error) { installed++; return nil, nil })
		if path != "/repo/bin/xray" {
			t.Errorf("path = %q, want /repo/bin/xray", path)
		}
	})
	if f.failed || f.skipped || installed != 1 {
		t.Fatalf("failed %v, skipped %v, installs %d: %s", f.failed, f.skipped, installed, f.msg)
	}
}

func TestRequirePeerMissing(t *testing.T) {
	missing := func(tb testing.TB) {
		requirePeer(tb, "ss-tunnel",
			func(string) (string, error) { return "", errNotFound },
			func() ([]byte, error) { return []byte("apt-get: no network"), errors.New("exit status 100") })
		t.Error("requirePeer returned for a missing peer")
	}
	for _, c := range []struct {
		ci         string
		wantFailed bool
	}{
		{"true", true},
		{"", false},
		{"false", false},
	} {
		t.Run("CI="+c.ci, func(t *testing.T) {
			t.Setenv("CI", c.ci)
			f := runTB(t, missing)
			if f.failed != c.wantFailed || f.skipped == c.wantFailed {
				t.Fatalf("failed %v, skipped %v; want failed %v", f.failed, f.skipped, c.wantFailed)
			}
			for _, want := range []string{"PEER MISSING: ss-tunnel", "interop NOT verified", "run hack/install-peers.sh", "exit status 100", "apt-get: no network"} {
				if !strings.Contains(f.msg, want) {
					t.Errorf("message %q lacks %q", f.msg, want)
				}
			}
		})
	}
}

func TestRequirePeerUnknown(t *testing.T) {
	f := runTB(t, func(tb testing.TB) {
		requirePeer(tb, "ss-redir",
			func(string) (string, error) { return "/usr/bin/ss-redir", nil },
			func() ([]byte, error) { return nil, nil })
	})
	if !f.failed || !strings.Contains(f.msg, `unknown peer "ss-redir"`) {
		t.Fatalf("failed %v: %s", f.failed, f.msg)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "harness", "peer.go")); err != nil {
		t.Fatalf("RepoRoot() = %s, which does not hold this package: %v", root, err)
	}
}

func TestFindPeerPrefersRepoBin(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(root, "bin", "sh")
	if err := os.WriteFile(local, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findPeer(root, "sh"); err != nil || got != local {
		t.Fatalf("findPeer = %q, %v; want %q", got, err, local)
	}
	onPath, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	if got, err := findPeer(t.TempDir(), "sh"); err != nil || got != onPath {
		t.Fatalf("findPeer without bin/ = %q, %v; want %q", got, err, onPath)
	}
}
