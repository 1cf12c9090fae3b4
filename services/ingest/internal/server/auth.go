package server

import (
	"crypto/sha256"
	"crypto/subtle"
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
	// digest is the SHA-256 of the bearer token (configured as a hash, or
	// hashed at start from a legacy plain token): equal length for the
	// compare, and no plain token kept in memory.
	digest [sha256.Size]byte
}

func newAuthenticator(sources config.Sources) *authenticator {
	a := &authenticator{sources: make(map[string]credential, len(sources))}
	for _, s := range sources {
		d, ok := s.BearerDigest()
		if !ok || s.Method() != config.AuthBearer {
			continue // validated config never has such a source
		}
		a.sources[s.Name] = credential{source: app.Source{Name: s.Name, Tenant: s.Tenant}, digest: d}
	}
	return a
}

// unknownDigest is compared against for unknown sources, so they take as
// long as known ones. No token hashes to it in practice.
var unknownDigest = sha256.Sum256([]byte("carenotify: no such source"))

// authenticate returns the source named name if authorization is
// "Bearer <its token>".
func (a *authenticator) authenticate(name, authorization string) (app.Source, bool) {
	token, hasToken := bearer(authorization)
	cred, known := a.sources[name]
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
