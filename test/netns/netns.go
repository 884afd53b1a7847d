// Package netns emulates a Kubernetes pod for tests: a network namespace joined to the
// host by a veth pair, with loopback up and a default route through the host end.
//
// Addresses come from 10.200.N.0/30 and fd00:200:N::/64, where N is the first index no
// host interface uses yet. They exist only on the veth pairs made here; tests must send
// traffic only to them and to loopback.
//
// Everything needs root (ip netns, veth, iptables). Without it, tests skip with a loud
// message; under CI=true they fail instead.
package netns

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// NS is one emulated pod.
type NS struct {
	Name     string     // as given to `ip netns`
	HostIP   netip.Addr // host end of the veth (IPv4)
	PodIP    netip.Addr // pod end of the veth (IPv4)
	HostIP6  netip.Addr
	PodIP6   netip.Addr
	hostLink string
}

// commandTimeout bounds every command a helper runs.
const commandTimeout = 30 * time.Second

// RequireRoot skips the test unless it runs as root with the tools namespaces need,
// and fails it instead under CI=true, where the tests must run.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range append([]string{"ip", "setpriv"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("SKIPPING network namespace test %s: needs %s", t.Name(), strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// subnets serialises index picking among the tests of one process; other processes
// are told apart by the addresses and names already in use.
var subnets sync.Mutex

// New creates a namespace for name and removes it when the test ends.
func New(t testing.TB, name string) *NS {
	t.Helper()
	RequireRoot(t)
	subnets.Lock()
	defer subnets.Unlock()
	used := hostAddrs(t)
	for n := 0; n < 256; n++ {
		prefix := fmt.Sprintf("10.200.%d.", n)
		if strings.Contains(used, prefix) {
			continue
		}
		ns := &NS{
			Name:     fmt.Sprintf("pc-%s-%d", name, n),
			HostIP:   netip.MustParseAddr(prefix + "1"),
			PodIP:    netip.MustParseAddr(prefix + "2"),
			HostIP6:  netip.MustParseAddr(fmt.Sprintf("fd00:200:%x::1", n)),
			PodIP6:   netip.MustParseAddr(fmt.Sprintf("fd00:200:%x::2", n)),
			hostLink: "pcv" + strconv.Itoa(n) + "h",
		}
		if err := ip("netns", "add", ns.Name); err != nil {
			continue // taken by a concurrent run; try the next index
		}
		t.Cleanup(ns.remove)
		ns.setup(t, "pcv"+strconv.Itoa(n)+"p")
		return ns
	}
	t.Fatal("netns: no free 10.200.N.0/30 subnet")
	return nil
}

func (ns *NS) setup(t testing.TB, podLink string) {
	t.Helper()
	in := func(args ...string) []string { return append([]string{"-n", ns.Name}, args...) }
	steps := [][]string{
		in("link", "set", "lo", "up"),
		{"link", "add", ns.hostLink, "type", "veth", "peer", "name", podLink, "netns", ns.Name},
		// nodad: the addresses are usable at once instead of after duplicate detection.
		{"addr", "add", ns.HostIP.String() + "/30", "dev", ns.hostLink},
		{"-6", "addr", "add", ns.HostIP6.String() + "/64", "dev", ns.hostLink, "nodad"},
		{"link", "set", ns.hostLink, "up"},
		in("addr", "add", ns.PodIP.String()+"/30", "dev", podLink),
		in("-6", "addr", "add", ns.PodIP6.String()+"/64", "dev", podLink, "nodad"),
		in("link", "set", podLink, "up"),
		in("route", "add", "default", "via", ns.HostIP.String()),
		in("-6", "route", "add", "default", "via", ns.HostIP6.String()),
	}
	for _, step := range steps {
		if err := ip(step...); err != nil {
			t.Fatalf("netns %s: %v", ns.Name, err)
		}
	}
}

func (ns *NS) remove() {
	ip("netns", "del", ns.Name) // takes the veth pair with it
	ip("link", "del", ns.hostLink)
	os.RemoveAll(ns.etcDir())
}

// AddHostIP6 gives the host end a second IPv6 address, fd00:200:N::3, and returns it: a
// host the pod reaches on its link that is not HostIP6. (The IPv4 /30 has no room.)
func (ns *NS) AddHostIP6(t testing.TB) netip.Addr {
	t.Helper()
	addr := ns.PodIP6.Next()
	// Removed with the veth pair.
	if err := ip("-6", "addr", "add", addr.String()+"/128", "dev", ns.hostLink, "nodad"); err != nil {
		t.Fatalf("netns %s: %v", ns.Name, err)
	}
	return addr
}

// etcDir holds files `ip netns exec` bind-mounts over /etc inside the namespace.
func (ns *NS) etcDir() string { return filepath.Join("/etc/netns", ns.Name) }

// WriteEtc gives commands run in the namespace their own /etc/<file> (hosts,
// resolv.conf), so a test can name its targets without any DNS traffic.
func (ns *NS) WriteEtc(t testing.TB, file, content string) {
	t.Helper()
	if err := os.MkdirAll(ns.etcDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ns.etcDir(), file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Command returns cmd to run inside the namespace as uid (and the same gid), with no
// supplementary groups. uid 0 runs as root, like an init container with NET_ADMIN.
func (ns *NS) Command(ctx context.Context, uid int, cmd ...string) *exec.Cmd {
	args := []string{"netns", "exec", ns.Name}
	if uid != 0 {
		id := strconv.Itoa(uid)
		args = append(args, "setpriv", "--reuid="+id, "--regid="+id, "--clear-groups", "--")
	}
	return exec.CommandContext(ctx, "ip", append(args, cmd...)...)
}

// Run runs cmd inside ns as uid and returns its combined output; the error is the
// command's exit status. It is bounded by commandTimeout.
func Run(t testing.TB, ns *NS, uid int, cmd ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := ns.Command(ctx, uid, cmd...).CombinedOutput()
	return string(out), err
}

// hostAddrs lists the host's addresses and link names, to find a free index.
func hostAddrs(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show: %v: %s", err, out)
	}
	return string(out)
}

func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
