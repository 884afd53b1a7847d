package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	names = DNSNames("proxychain-webhook-service", "proxychain-system")
	life  = Lifetimes{CA: DefaultCALifetime, Serving: DefaultServingLifetime}
)

func issue(t *testing.T, now time.Time) *Bundle {
	t.Helper()
	due := Check(&Bundle{}, names, now)
	if !due.CA || !due.Serving {
		t.Fatalf("empty bundle: got %+v, want CA and serving due", due)
	}
	b, err := Renew(&Bundle{}, due, names, now, life)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	c, err := parseCert(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verify checks the serving certificate the way the API server does: against the
// caBundle as roots, for the Service's name, at now.
func verify(t *testing.T, caBundle, cert []byte, now time.Time) error {
	t.Helper()
	return verifyFor(t, "proxychain-webhook-service.proxychain-system.svc", caBundle, cert, now)
}

func verifyFor(t *testing.T, dnsName string, caBundle, cert []byte, now time.Time) error {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatal("caBundle holds no certificate")
	}
	_, err := mustCert(t, cert).Verify(x509.VerifyOptions{
		Roots: roots, DNSName: dnsName,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func TestIssue(t *testing.T) {
	b := issue(t, t0)
	if due := Check(b, names, t0); due.Due() {
		t.Fatalf("fresh bundle: %+v", due)
	}
	if err := verify(t, b.CABundle(t0), b.Cert, t0); err != nil {
		t.Fatalf("serving certificate does not verify against the CA: %v", err)
	}

	ca, cert := mustCert(t, b.CACert), mustCert(t, b.Cert)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v MaxPathLenZero %v KeyUsage %v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if cert.IsCA || !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("serving: IsCA %v ExtKeyUsage %v", cert.IsCA, cert.ExtKeyUsage)
	}
	want := []string{"proxychain-webhook-service.proxychain-system.svc", "proxychain-webhook-service.proxychain-system.svc.cluster.local"}
	if !slices.Equal(cert.DNSNames, want) || len(cert.IPAddresses) != 0 || len(cert.URIs) != 0 {
		t.Errorf("SANs: DNS %v IP %v URI %v, want DNS %v only", cert.DNSNames, cert.IPAddresses, cert.URIs, want)
	}
	for _, c := range []*x509.Certificate{ca, cert} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject.CommonName, c.PublicKey)
		}
		if !c.NotBefore.Equal(t0.Add(-backdate)) {
			t.Errorf("%s: NotBefore %v, want %v", c.Subject.CommonName, c.NotBefore, t0.Add(-backdate))
		}
	}
	if !ca.NotAfter.Equal(t0.Add(life.CA)) || !cert.NotAfter.Equal(t0.Add(life.Serving)) {
		t.Errorf("NotAfter: CA %v serving %v", ca.NotAfter, cert.NotAfter)
	}
	if err := verify(t, b.CABundle(t0), b.Cert, t0.Add(life.Serving+time.Second)); err == nil {
		t.Error("an expired serving certificate verified")
	}

	// A Secret round trip keeps every byte.
	if got := FromData(b.Data()); !got.Equal(b) {
		t.Error("FromData(Data()) differs")
	}
	if _, ok := b.Data()[KeyPreviousCA]; ok {
		t.Error("a first bundle has a previous CA")
	}
}

func TestServingRenewsAtTwoThirds(t *testing.T) {
	b := issue(t, t0)
	cert := mustCert(t, b.Cert)
	at := cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)

	if due := Check(b, names, at.Add(-time.Second)); due.Due() {
		t.Fatalf("a second before two thirds: %+v", due)
	}
	due := Check(b, names, at)
	if due.CA || !due.Serving || !strings.Contains(due.Reason, "due for renewal") {
		t.Fatalf("at two thirds: %+v, want the serving certificate only", due)
	}
	next, err := Renew(b, due, names, at, life)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(next.CACert, b.CACert) || !bytes.Equal(next.CAKey, b.CAKey) || next.PreviousCA != nil {
		t.Error("renewing the serving certificate changed the CA")
	}
	if bytes.Equal(next.Cert, b.Cert) || bytes.Equal(next.Key, b.Key) {
		t.Error("the serving certificate or key was not replaced")
	}
	if due := Check(next, names, at); due.Due() {
		t.Errorf("after renewal: %+v", due)
	}
	if err := verify(t, next.CABundle(at), next.Cert, at); err != nil {
		t.Error(err)
	}
	// The caBundle did not change, so the configurations need no patch.
	if !bytes.Equal(next.CABundle(at), b.CABundle(at)) {
		t.Error("caBundle changed with the serving certificate")
	}
}

func TestCARenewalKeepsOldCATrusted(t *testing.T) {
	b := issue(t, t0)
	ca := mustCert(t, b.CACert)
	at := ca.NotBefore.Add(ca.NotAfter.Sub(ca.NotBefore) * 2 / 3)
	// The serving certificate was renewed along the way; that one is what a replica
	// that has not refreshed yet still serves.
	b, err := Renew(b, Renewal{Serving: true}, names, at.Add(-time.Hour), life)
	if err != nil {
		t.Fatal(err)
	}

	due := Check(b, names, at)
	if !due.CA || !due.Serving {
		t.Fatalf("at two thirds of the CA: %+v", due)
	}
	next, err := Renew(b, due, names, at, life)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(next.PreviousCA, b.CACert) || bytes.Equal(next.CACert, b.CACert) {
		t.Fatal("the old CA is not kept as the previous one")
	}
	bundle := next.CABundle(at)
	if err := verify(t, bundle, next.Cert, at); err != nil {
		t.Errorf("new serving certificate: %v", err)
	}
	if err := verify(t, bundle, b.Cert, at); err != nil {
		t.Errorf("old serving certificate, still served by a replica: %v", err)
	}
	if err := verify(t, next.CACert, b.Cert, at); err == nil {
		t.Error("the new CA alone verified a certificate of the old one")
	}
	// Once the old CA has expired it leaves the bundle.
	after := ca.NotAfter.Add(time.Second)
	if got := next.CABundle(after); !bytes.Equal(got, next.CACert) {
		t.Errorf("caBundle after the old CA expired holds %d bytes, want the new CA's %d", len(got), len(next.CACert))
	}
	if _, ok := next.Data()[KeyPreviousCA]; !ok {
		t.Error("previous CA not stored")
	}
}

func TestCheckFindsUnusableCertificates(t *testing.T) {
	b := issue(t, t0)
	other := issue(t, t0)
	flipped := func(data []byte) []byte {
		block, _ := pem.Decode(data)
		der := slices.Clone(block.Bytes)
		der[len(der)-5] ^= 1 // inside the signature
		return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
	}
	tests := []struct {
		name        string
		edit        func(*Bundle)
		dnsNames    []string
		wantCA      bool
		wantReason  string
		wantServing bool
	}{
		{"other service name", func(*Bundle) {}, DNSNames("other", "proxychain-system"), false, "names", true},
		{"signed by another CA", func(x *Bundle) { x.Cert, x.Key = other.Cert, other.Key }, names, false, "not signed by the CA", true},
		{"key of another certificate", func(x *Bundle) { x.Key = other.Key }, names, false, "key does not match", true},
		{"signature flipped", func(x *Bundle) { x.Cert = flipped(x.Cert) }, names, false, "not signed by the CA", true},
		{"serving certificate missing", func(x *Bundle) { x.Cert = nil }, names, false, "no PEM block", true},
		{"CA key of another CA", func(x *Bundle) { x.CAKey = other.CAKey }, names, true, "key does not match", true},
		{"CA garbage", func(x *Bundle) { x.CACert = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") }, names, true, "CA:", true},
		{"serving certificate as CA", func(x *Bundle) { x.CACert, x.CAKey = x.Cert, x.Key }, names, true, "not a CA", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := *b
			tt.edit(&x)
			due := Check(&x, tt.dnsNames, t0)
			if due.CA != tt.wantCA || due.Serving != tt.wantServing || !strings.Contains(due.Reason, tt.wantReason) {
				t.Fatalf("got %+v, want CA %v serving %v reason containing %q", due, tt.wantCA, tt.wantServing, tt.wantReason)
			}
			next, err := Renew(&x, due, tt.dnsNames, t0, life)
			if err != nil {
				t.Fatal(err)
			}
			if due := Check(next, tt.dnsNames, t0); due.Due() {
				t.Fatalf("after renewal: %+v", due)
			}
		})
	}
}

func TestServingNeverOutlivesCA(t *testing.T) {
	short := Lifetimes{CA: 400 * 24 * time.Hour, Serving: DefaultServingLifetime}
	b, err := Renew(&Bundle{}, Renewal{CA: true, Serving: true}, names, t0, short)
	if err != nil {
		t.Fatal(err)
	}
	// Near the end of the CA's life but before its renewal point, a new serving
	// certificate is clamped to the CA's NotAfter.
	at := t0.Add(250 * 24 * time.Hour)
	b, err = Renew(b, Renewal{Serving: true}, names, at, short)
	if err != nil {
		t.Fatal(err)
	}
	if ca, cert := mustCert(t, b.CACert), mustCert(t, b.Cert); !cert.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("serving NotAfter %v, CA NotAfter %v", cert.NotAfter, ca.NotAfter)
	}
}
