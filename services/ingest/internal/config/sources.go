package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/carenotify/carenotify/pkg/bus"
)

// redacted is what a Token shows instead of its value.
const redacted = "[REDACTED]"

// Token is a plain bearer token (INGEST_SOURCES, INGEST_ADMIN_TOKEN). It
// prints, logs and marshals as "[REDACTED]"; use string(t) only to hash it.
type Token string

var (
	_ slog.LogValuer = Token("")
	_ fmt.Formatter  = Token("")
	_ fmt.Stringer   = Token("")
)

// String returns "[REDACTED]".
func (Token) String() string { return redacted }

// Format prints "[REDACTED]" for every verb, %#v included.
func (Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "[REDACTED]".
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[REDACTED]", so encoding/json hides it too.
func (Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// tokenHashPrefix starts a stored token hash: "sha256:<64 hex digits>".
const tokenHashPrefix = "sha256:"

// HashToken returns the stored form of a bearer token, "sha256:<hex>".
func HashToken(token string) string {
	d := sha256.Sum256([]byte(token))
	return tokenHashPrefix + hex.EncodeToString(d[:])
}

// parseTokenHash returns the digest of a "sha256:<64 hex digits>" string.
func parseTokenHash(s string) ([sha256.Size]byte, bool) {
	var d [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(s, tokenHashPrefix)
	if !ok || len(hexPart) != 2*sha256.Size {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(hexPart)); err != nil {
		return d, false
	}
	return d, true
}

// Auth methods of a source.
const (
	// AuthBearer: "Authorization: Bearer <token>", compared with the
	// stored SHA-256 of the token.
	AuthBearer = "bearer"
	// AuthHMAC: an X-Carenotify-Signature header with a timestamp and
	// HMAC-SHA256 signatures of "<t>.<raw body>" under the source's secret.
	AuthHMAC = "hmac"
)

// Source is a sender allowed to post to /fhir/{Name}/...
type Source struct {
	// Name is the path segment and the Cn-Source header; a NATS token
	// (the id of a sources-file entry).
	Name string
	// Tenant is the tenant its events belong to; a NATS token.
	Tenant string
	// Auth is the method the source authenticates with; AuthBearer when
	// empty.
	Auth string
	// Token is a plain bearer token, accepted only from the legacy
	// INGEST_SOURCES format (with a warning). Prefer TokenHash.
	Token Token
	// TokenHash is the bearer token's stored hash, "sha256:<hex>".
	TokenHash string
	// HMAC configures an AuthHMAC source.
	HMAC HMAC
	// MTLS is the certificate identity of an AuthMTLS source.
	MTLS MTLS
	// Limits are the source's rate and size limits.
	Limits Limits
}

// Method returns the source's auth method.
func (s Source) Method() string {
	if s.Auth == "" {
		return AuthBearer
	}
	return s.Auth
}

// BearerDigest returns the SHA-256 of the source's bearer token: the
// stored hash, else the hash of the plain token. ok is false for a source
// without either.
func (s Source) BearerDigest() (d [sha256.Size]byte, ok bool) {
	if s.TokenHash != "" {
		return parseTokenHash(s.TokenHash)
	}
	if s.Token != "" {
		return sha256.Sum256([]byte(string(s.Token))), true
	}
	return d, false
}

// Sources is a list of sources. As a variable (INGEST_SOURCES) it is
// written as name=tenant:token entries separated by commas or newlines,
// where token is either the plain token (deprecated: a warning at start)
// or its hash "sha256:<64 hex digits>".
type Sources []Source

// UnmarshalText parses name=tenant:token entries. The token is everything
// after the first ':' and may itself hold ':' or '='. Errors name the
// entry's position, never its text, since it holds a secret.
func (s *Sources) UnmarshalText(text []byte) error {
	var out Sources
	seen := map[string]bool{}
	fields := strings.FieldsFunc(string(text), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	n := 0
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n++
		name, rest, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("source entry %d: want name=tenant:token", n)
		}
		tenant, token, ok := strings.Cut(rest, ":")
		if !ok {
			return fmt.Errorf("source entry %d: want name=tenant:token", n)
		}
		name, tenant = strings.TrimSpace(name), strings.TrimSpace(tenant)
		switch {
		case !bus.ValidToken(name):
			return fmt.Errorf("source entry %d: name must be 1-64 letters, digits, '_' or '-'", n)
		case !bus.ValidToken(tenant):
			return fmt.Errorf("source entry %d: tenant must be 1-64 letters, digits, '_' or '-'", n)
		case token == "":
			return fmt.Errorf("source entry %d: token is empty", n)
		case seen[name]:
			return fmt.Errorf("source entry %d: source name repeats an earlier entry", n)
		}
		seen[name] = true
		src := Source{Name: name, Tenant: tenant, Auth: AuthBearer}
		if strings.HasPrefix(token, tokenHashPrefix) {
			if _, ok := parseTokenHash(token); !ok {
				return fmt.Errorf("source entry %d: a token starting with %q must be a hash: sha256:<64 hex digits>", n, tokenHashPrefix)
			}
			src.TokenHash = token
		} else {
			src.Token = Token(token)
		}
		out = append(out, src)
	}
	*s = out
	return nil
}

// plainTokenWarnings returns a warning per source configured with a
// plain token in variable.
func plainTokenWarnings(variable string, sources Sources) []string {
	var out []string
	for _, s := range sources {
		if s.Token != "" {
			out = append(out, fmt.Sprintf("%s: source %q has a plain bearer token in the configuration; store only its hash "+
				"(name=tenant:sha256:<hex>, printed by `ingest -hash-token`)", variable, s.Name))
		}
	}
	return out
}
