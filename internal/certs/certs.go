// Package certs gives the manager's admission webhooks a serving certificate without
// cert-manager: a self-signed CA and a serving certificate for the webhook Service,
// kept in a Secret so every replica serves the same pair, written to the directory
// controller-runtime's webhook server reloads from, and the CA patched into the webhook
// configurations' caBundle. Certificates are renewed at two thirds of their lifetime.
//
// The functions in this file are pure: time comes in as an argument, so tests can
// issue, age and renew certificates without waiting.
package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Default lifetimes: a CA rarely replaced, a serving certificate replaced yearly.
const (
	DefaultCALifetime      = 10 * 365 * 24 * time.Hour
	DefaultServingLifetime = 365 * 24 * time.Hour
	// backdate tolerates clocks behind the manager's.
	backdate = time.Hour
)

// Keys of the Secret holding a Bundle. tls.crt and tls.key are also the file names the
// webhook server reads.
const (
	KeyCACert     = "ca.crt"
	KeyCAKey      = "ca.key"
	KeyPreviousCA = "ca-previous.crt"
	KeyCert       = "tls.crt"
	KeyKey        = "tls.key"
)

// Bundle is the CA and the serving certificate, PEM-encoded.
type Bundle struct {
	CACert, CAKey []byte
	// PreviousCA is the CA that signed the serving certificates of replicas that have
	// not picked up a renewal yet; it stays in the caBundle until it expires.
	PreviousCA []byte
	Cert, Key  []byte
}

// Lifetimes are how long new certificates are valid.
type Lifetimes struct {
	CA, Serving time.Duration
}

// DNSNames are the names the API server may call the webhook Service by; it uses
// <service>.<namespace>.svc.
func DNSNames(service, namespace string) []string {
	return []string{
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// FromData reads a Bundle from a Secret's data; missing keys are left empty, and Check
// then says what to renew.
func FromData(data map[string][]byte) *Bundle {
	return &Bundle{
		CACert: data[KeyCACert], CAKey: data[KeyCAKey], PreviousCA: data[KeyPreviousCA],
		Cert: data[KeyCert], Key: data[KeyKey],
	}
}

// Data is the Bundle as a Secret's data.
func (b *Bundle) Data() map[string][]byte {
	d := map[string][]byte{KeyCACert: b.CACert, KeyCAKey: b.CAKey, KeyCert: b.Cert, KeyKey: b.Key}
	if len(b.PreviousCA) > 0 {
		d[KeyPreviousCA] = b.PreviousCA
	}
	return d
}

// CABundle is what the webhook configurations trust: the CA, and the previous one
// while it is still valid at now.
func (b *Bundle) CABundle(now time.Time) []byte {
	out := slices.Clone(b.CACert)
	if prev, err := parseCert(b.PreviousCA); err == nil && now.Before(prev.NotAfter) {
		out = append(out, b.PreviousCA...)
	}
	return out
}

// Renewal says what Check found due.
type Renewal struct {
	CA, Serving bool
	// Reason is why, for the log.
	Reason string
}

// Due reports whether anything needs renewing.
func (r Renewal) Due() bool { return r.CA || r.Serving }

// Check says what must be renewed at now for the serving certificate to be valid for
// dnsNames: a CA or certificate that is missing, does not parse, does not match its
// key, has reached two thirds of its lifetime, or (for the serving certificate) is not
// signed by the CA or does not name exactly dnsNames.
func Check(b *Bundle, dnsNames []string, now time.Time) Renewal {
	ca, err := parseKeyPair(b.CACert, b.CAKey)
	switch {
	case err != nil:
		return Renewal{CA: true, Serving: true, Reason: "CA: " + err.Error()}
	case !ca.IsCA:
		return Renewal{CA: true, Serving: true, Reason: "CA: not a CA certificate"}
	case !now.Before(renewAt(ca)):
		return Renewal{CA: true, Serving: true, Reason: fmt.Sprintf("CA: due for renewal since %s", renewAt(ca).Format(time.RFC3339))}
	}
	cert, err := parseKeyPair(b.Cert, b.Key)
	switch {
	case err != nil:
		return Renewal{Serving: true, Reason: "serving certificate: " + err.Error()}
	case cert.CheckSignatureFrom(ca) != nil:
		return Renewal{Serving: true, Reason: "serving certificate: not signed by the CA"}
	case !slices.Equal(cert.DNSNames, dnsNames):
		return Renewal{Serving: true, Reason: fmt.Sprintf("serving certificate: names %v, want %v", cert.DNSNames, dnsNames)}
	case !now.Before(renewAt(cert)):
		return Renewal{Serving: true, Reason: fmt.Sprintf("serving certificate: due for renewal since %s", renewAt(cert).Format(time.RFC3339))}
	}
	return Renewal{}
}

// renewAt is two thirds into the certificate's validity.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// Renew returns b with what r says renewed, issued at now: a new CA keeps the old one
// as PreviousCA, and a serving certificate is always reissued with a new CA.
func Renew(b *Bundle, r Renewal, dnsNames []string, now time.Time, life Lifetimes) (*Bundle, error) {
	next := *b
	if r.CA {
		certPEM, keyPEM, err := newCA(now, life.CA)
		if err != nil {
			return nil, err
		}
		next.PreviousCA = nil
		if _, err := parseCert(b.CACert); err == nil {
			next.PreviousCA = b.CACert
		}
		next.CACert, next.CAKey = certPEM, keyPEM
	}
	if r.CA || r.Serving {
		certPEM, keyPEM, err := newServing(next.CACert, next.CAKey, dnsNames, now, life.Serving)
		if err != nil {
			return nil, err
		}
		next.Cert, next.Key = certPEM, keyPEM
	}
	return &next, nil
}

func newCA(now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	tmpl, err := template(now, lifetime)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject = pkix.Name{CommonName: "proxychain webhook CA " + now.UTC().Format("2006-01-02")}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true // it signs serving certificates only
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.SubjectKeyId = keyID(&key.PublicKey)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	return encode(der, key)
}

func newServing(caCertPEM, caKeyPEM []byte, dnsNames []string, now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	ca, err := parseCert(caCertPEM)
	if err != nil {
		return nil, nil, err
	}
	caKey, err := parseKey(caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	tmpl, err := template(now, lifetime)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter // a certificate cannot outlive its issuer
	}
	tmpl.Subject = pkix.Name{CommonName: dnsNames[0]}
	tmpl.DNSNames = slices.Clone(dnsNames)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create serving certificate: %w", err)
	}
	return encode(der, key)
}

func template(now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-backdate).UTC().Truncate(time.Second),
		NotAfter:     now.Add(lifetime).UTC().Truncate(time.Second),
	}, nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for a P-256 key
	sum := sha256.Sum256(der)
	return sum[:20]
}

func encode(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

var (
	errNoPEM       = errors.New("no PEM block")
	errKeyMismatch = errors.New("key does not match the certificate")
)

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: certificate: %w", errNoPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return c, nil
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("certs: key: %w", errNoPEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("certs: key: %T is not ECDSA", k)
	}
	return ec, nil
}

func parseKeyPair(certPEM, keyPEM []byte) (*x509.Certificate, error) {
	c, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	k, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&k.PublicKey) {
		return nil, fmt.Errorf("certs: %w", errKeyMismatch)
	}
	return c, nil
}

// Equal reports whether two bundles hold the same bytes.
func (b *Bundle) Equal(o *Bundle) bool {
	return bytes.Equal(b.CACert, o.CACert) && bytes.Equal(b.CAKey, o.CAKey) &&
		bytes.Equal(b.PreviousCA, o.PreviousCA) && bytes.Equal(b.Cert, o.Cert) && bytes.Equal(b.Key, o.Key)
}
