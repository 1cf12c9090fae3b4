package devca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside the directory given to Ensure.
const (
	caCertName     = "ca.pem"
	caKeyName      = "ca-key.pem"
	serverCertName = "server.pem"
	serverKeyName  = "server-key.pem"
)

const (
	caCommonName     = "carenotify dev CA"
	serverCommonName = "carenotify dev server"

	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 365 * 24 * time.Hour
	// renewBefore reissues a server certificate this long before it
	// expires, so that a long-running devstack does not fail mid-session.
	renewBefore = 7 * 24 * time.Hour
	// backdate covers small clock differences between processes.
	backdate = time.Hour
)

// CA is a development certificate authority on disk together with a server
// certificate it has signed.
type CA struct {
	// CAFile is the path of the PEM CA certificate that clients trust.
	CAFile string
	// CertFile is the path of the PEM server certificate.
	CertFile string
	// KeyFile is the path of the PEM (PKCS #8) server private key.
	KeyFile string
	// Pool holds the CA certificate, ready for tls.Config.RootCAs.
	Pool *x509.CertPool
	// ServerTLS serves the server certificate with TLS 1.2 or later.
	ServerTLS *tls.Config
}

// Ensure creates, or loads when present, the CA and the server certificate in
// dir, creating dir (mode 0700) if needed. hosts are the names the server
// certificate must be valid for; entries that parse as IP addresses become IP
// subject alternative names, the others DNS names. The server certificate is
// reissued when it is missing, unreadable, not signed by the CA, expired or
// within a week of expiry, or does not cover every host. A CA with a file
// missing is replaced by a new one; an expired CA is an error, because
// replacing it silently would break every trust store that holds it.
func Ensure(dir string, hosts []string) (*CA, error) {
	return ensure(dir, hosts, time.Now())
}

func ensure(dir string, hosts []string, now time.Time) (*CA, error) {
	if len(hosts) == 0 {
		return nil, errors.New("devca: no hosts for the server certificate")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(dir, now)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	server, ok := loadServer(dir, pool, hosts, now)
	if !ok {
		server, err = issueServer(dir, caCert, caKey, hosts, now)
		if err != nil {
			return nil, fmt.Errorf("devca: %w", err)
		}
	}
	return &CA{
		CAFile:   filepath.Join(dir, caCertName),
		CertFile: filepath.Join(dir, serverCertName),
		KeyFile:  filepath.Join(dir, serverKeyName),
		Pool:     pool,
		ServerTLS: &tls.Config{
			Certificates: []tls.Certificate{server},
			MinVersion:   tls.VersionTLS12,
		},
	}, nil
}

// loadOrCreateCA loads the CA from dir, or creates a new one when either of
// its files is missing (a CA without its key, or a key without its
// certificate, cannot sign anything).
func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPath := filepath.Join(dir, caCertName)
	keyPath := filepath.Join(dir, caKeyName)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	if errors.Is(certErr, os.ErrNotExist) || errors.Is(keyErr, os.ErrNotExist) {
		return createCA(dir, now)
	}
	if err := errors.Join(certErr, keyErr); err != nil {
		return nil, nil, fmt.Errorf("load CA: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("load CA from %s: %w", dir, err)
	}
	cert := pair.Leaf
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, nil, fmt.Errorf("load CA: %s is not a CA certificate", certPath)
	}
	if !now.Before(cert.NotAfter) {
		return nil, nil, fmt.Errorf("load CA: %s expired on %s; delete %s and its keys to create a new CA",
			certPath, cert.NotAfter.Format(time.DateOnly), dir)
	}
	return cert, signer, nil
}

func createCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if err := writePair(dir, caCertName, caKeyName, der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// loadServer returns the server certificate in dir if it is usable as is.
func loadServer(dir string, roots *x509.CertPool, hosts []string, now time.Time) (tls.Certificate, bool) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, serverCertName), filepath.Join(dir, serverKeyName))
	if err != nil {
		return tls.Certificate{}, false
	}
	leaf := pair.Leaf
	if now.Add(renewBefore).After(leaf.NotAfter) {
		return tls.Certificate{}, false
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return tls.Certificate{}, false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return tls.Certificate{}, false
		}
	}
	return pair, true
}

func issueServer(dir string, caCert *x509.Certificate, caKey crypto.Signer, hosts []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	notAfter := now.Add(serverValidity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: serverCommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create server certificate: %w", err)
	}
	if err := writePair(dir, serverCertName, serverKeyName, der, key); err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// writePair writes a certificate (mode 0644) and its key (mode 0600), each
// through a temporary file and a rename so that a reader never sees half a
// file.
func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", keyName, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writeFile(dir, keyName, keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return writeFile(dir, certName, certPEM, 0o644)
}

func writeFile(dir, name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}
