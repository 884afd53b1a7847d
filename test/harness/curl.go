package harness

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CurlUpload has curl POST up to url through the proxy at proxyURL (any scheme curl's -x
// takes), with args added to its command line, and checks by sha256 that the response
// body is exactly down. The test fails if curl fails or the body differs, and is skipped
// or fails as RequirePeer says when curl is missing. The server's side (what arrived,
// what was dialed) is for the caller to check, typically on a StartHTTPTarget.
func CurlUpload(t testing.TB, proxyURL, url string, up, down []byte, args ...string) {
	t.Helper()
	curl := RequirePeer(t, "curl")
	dir := t.TempDir()
	upFile, downFile := filepath.Join(dir, "up"), filepath.Join(dir, "down")
	if err := os.WriteFile(upFile, up, 0o600); err != nil {
		t.Fatalf("harness: curl upload: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bytesTimeout)
	defer cancel()
	cmdArgs := append([]string{"-sS", "--fail", "--noproxy", "", "-x", proxyURL,
		"--data-binary", "@" + upFile, "-o", downFile}, args...)
	out, err := exec.CommandContext(ctx, curl, append(cmdArgs, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("harness: curl: %v\n%s", err, out)
	}
	got, err := os.ReadFile(downFile)
	if err != nil {
		t.Fatalf("harness: curl download: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(down) {
		t.Fatalf("harness: curl received %d bytes that differ from the origin's %d", len(got), len(down))
	}
}
