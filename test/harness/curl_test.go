package harness

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// TestCurlUpload uses an HTTP target as its own forward proxy: it reads the absolute-form
// request curl sends to a proxy, and answers it.
func TestCurlUpload(t *testing.T) {
	up, down := RandomBytes(30<<10), RandomBytes(40<<10)
	tg := StartHTTPTarget(t, down)
	CurlUpload(t, "http://"+tg.Addr(), "http://target.test/upload", up, down, "-H", "X-Test: 1")
	if h := <-tg.Got(); h != sha256.Sum256(up) {
		t.Error("the target received another body")
	}
	if head := <-tg.Heads(); head.RequestURI != "http://target.test/upload" || head.Header.Get("X-Test") != "1" {
		t.Errorf("head %q %v, want the absolute URL and X-Test", head.RequestURI, head.Header)
	}

	wrong := append([]byte{down[0] ^ 1}, down[1:]...)
	tg = StartHTTPTarget(t, down)
	f := runTB(t, func(tb testing.TB) { CurlUpload(tb, "http://"+tg.Addr(), "http://target.test/", up, wrong) })
	if !f.failed || !strings.Contains(f.msg, "differ") {
		t.Errorf("wrong download: failed %v, %q", f.failed, f.msg)
	}
}
