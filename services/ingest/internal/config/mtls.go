package config

import (
	"crypto/x509"
	"errors"
	"strings"
)

// AuthMTLS: a TLS client certificate verified against
// INGEST_TLS_CLIENT_CA_FILE whose identity is the one configured.
const AuthMTLS = "mtls"

// MTLS is the certificate identity an mTLS source is bound to: exactly
// one of a DNS name in the SAN, a URI in the SAN, or the subject CN.
type MTLS struct {
	// DNS is a subjectAltName dNSName (compared case-insensitively).
	DNS string `yaml:"dns"`
	// URI is a subjectAltName URI, e.g. spiffe://hospital.example/mirth.
	URI string `yaml:"uri"`
	// CN is the subject common name (for CAs that issue no SANs).
	CN string `yaml:"cn"`
}

// Matches reports whether the verified leaf certificate c carries the
// identity.
func (m MTLS) Matches(c *x509.Certificate) bool {
	if c == nil {
		return false
	}
	switch {
	case m.DNS != "":
		for _, d := range c.DNSNames {
			if strings.EqualFold(d, m.DNS) {
				return true
			}
		}
	case m.URI != "":
		for _, u := range c.URIs {
			if u.String() == m.URI {
				return true
			}
		}
	case m.CN != "":
		return c.Subject.CommonName == m.CN
	}
	return false
}

func (m MTLS) validate() []string {
	n := 0
	for _, v := range []string{m.DNS, m.URI, m.CN} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return []string{"auth mtls needs exactly one of mtls.dns, mtls.uri or mtls.cn"}
	}
	return nil
}

// validateTLS checks the INGEST_TLS_* variables against the sources.
func (c *Config) validateTLS() []error {
	var errs []error
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("set both INGEST_TLS_CERT_FILE and INGEST_TLS_KEY_FILE, or neither"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" && c.MLLPTLSCertFile == "" {
		errs = append(errs, errors.New("INGEST_TLS_CLIENT_CA_FILE needs TLS: set INGEST_TLS_CERT_FILE (HTTP) or INGEST_MLLP_TLS_CERT_FILE (MLLP)"))
	}
	for _, s := range c.AllSources() {
		if s.Method() == AuthMTLS && c.TLSClientCAFile == "" {
			errs = append(errs, errors.New("source "+`"`+s.Name+`"`+" uses auth mtls: set INGEST_TLS_CLIENT_CA_FILE (and INGEST_TLS_CERT_FILE or INGEST_MLLP_TLS_CERT_FILE)"))
		}
	}
	return errs
}

// HasMTLSSources reports whether a source authenticates by certificate.
func (c *Config) HasMTLSSources() bool {
	for _, s := range c.AllSources() {
		if s.Method() == AuthMTLS {
			return true
		}
	}
	return false
}
