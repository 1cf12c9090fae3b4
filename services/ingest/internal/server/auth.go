package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

// authenticator checks a source name and bearer token in constant time.
// Unknown sources and wrong tokens are indistinguishable to the caller.
type authenticator struct {
	sources map[string]credential
}

type credential struct {
	source app.Source
	method string
	// digest is the SHA-256 of the bearer token (configured as a hash, or
	// hashed at start from a legacy plain token): equal length for the
	// compare, and no plain token kept in memory.
	digest [sha256.Size]byte
	// hmac verifies an HMAC source's signatures.
	hmac *hmacVerifier
	// mtls is an mTLS source's certificate identity.
	mtls config.MTLS
	// limits are the source's rate and body limits.
	limits config.Limits
}

// newAuthenticator returns the authenticator of sources; hmacSecrets are
// the secrets of each HMAC source. A source whose credentials are missing
// is left out: it can never authenticate.
func newAuthenticator(sources config.Sources, hmacSecrets map[string][][]byte) *authenticator {
	a := &authenticator{sources: make(map[string]credential, len(sources))}
	for _, s := range sources {
		c := credential{source: app.Source{Name: s.Name, Tenant: s.Tenant}, method: s.Method(), limits: s.Limits}
		switch c.method {
		case config.AuthBearer:
			d, ok := s.BearerDigest()
			if !ok {
				continue
			}
			c.digest = d
		case config.AuthHMAC:
			secrets := hmacSecrets[s.Name]
			if len(secrets) == 0 {
				continue
			}
			c.hmac = &hmacVerifier{secrets: secrets, skew: s.HMAC.Skew()}
		case config.AuthMTLS:
			c.mtls = s.MTLS
		default:
			continue
		}
		a.sources[s.Name] = c
	}
	return a
}

// method returns the auth method of the source named name, "" when there
// is no such source.
func (a *authenticator) method(name string) (credential, bool) {
	c, ok := a.sources[name]
	return c, ok
}

// unknownDigest is compared against for unknown sources, so they take as
// long as known ones. No token hashes to it in practice.
var unknownDigest = sha256.Sum256([]byte("carenotify: no such source"))

// authenticate returns the source named name if authorization is
// "Bearer <its token>".
func (a *authenticator) authenticate(name, authorization string) (app.Source, bool) {
	token, hasToken := bearer(authorization)
	cred, known := a.sources[name]
	known = known && cred.method == config.AuthBearer
	want := unknownDigest
	if known {
		want = cred.digest
	}
	got := sha256.Sum256([]byte(token))
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	if !hasToken || !known || !match {
		return app.Source{}, false
	}
	return cred.source, true
}

// bearer returns the token of an "Authorization: Bearer <token>" header;
// the scheme is case-insensitive (RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// mtlsChallenge is the WWW-Authenticate value of an mTLS source's 401.
const mtlsChallenge = "Carenotify-mTLS"

// authenticateCert checks that the connection's client certificate was
// verified against the configured CA and carries the source's identity.
func authenticateCert(cred credential, cs *tls.ConnectionState) error {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return &requestError{status: http.StatusUnauthorized, code: "security", reason: "mtls_no_certificate", challenge: mtlsChallenge,
			diagnostics: "this source authenticates with a TLS client certificate: connect over TLS presenting the certificate issued for it by the configured CA"}
	}
	if !cred.mtls.Matches(cs.PeerCertificates[0]) {
		return &requestError{status: http.StatusUnauthorized, code: "security", reason: "mtls_wrong_identity", challenge: mtlsChallenge,
			diagnostics: "the client certificate is valid but is not the one configured for this source (its SAN DNS name, SAN URI or subject CN differs)"}
	}
	return nil
}
