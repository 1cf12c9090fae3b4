package adminauth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Role is what a token may do.
type Role string

// Roles.
const (
	RoleViewer       Role = "viewer"
	RoleEditor       Role = "editor"
	RoleConsentAdmin Role = "consent-admin"
)

// Roles lists every role, in the order the documentation gives them.
var Roles = []Role{RoleViewer, RoleEditor, RoleConsentAdmin}

// Principal is who a token belongs to and what it may do.
type Principal struct {
	// ID names the principal in logs and in the audit trail.
	ID    string
	Roles []Role
}

// Has reports whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

// Tokens are the configured tokens, by hash.
type Tokens struct {
	byHash map[[sha256.Size]byte]Principal
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// ErrUnknownToken is returned by Authenticate for a token not configured.
var ErrUnknownToken = errors.New("unknown token")

// Authenticate returns the principal of token.
func (t *Tokens) Authenticate(token string) (Principal, error) {
	if t == nil || token == "" {
		return Principal{}, ErrUnknownToken
	}
	p, ok := t.byHash[sha256.Sum256([]byte(token))]
	if !ok {
		return Principal{}, ErrUnknownToken
	}
	return p, nil
}

// HashLine is the configuration line for a token: principal, roles and
// the token's hash.
func HashLine(principal string, roles []Role, token string) string {
	sum := sha256.Sum256([]byte(token))
	rs := make([]string, len(roles))
	for i, r := range roles {
		rs[i] = string(r)
	}
	return principal + " " + strings.Join(rs, ",") + " sha256:" + hex.EncodeToString(sum[:])
}

var (
	principalRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hashRE      = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// ValidPrincipal reports whether id can name a principal.
func ValidPrincipal(id string) bool { return principalRE.MatchString(id) }

// ParseRoles parses a comma-separated list of roles.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, r := range strings.Split(s, ",") {
		role := Role(strings.TrimSpace(r))
		if !slices.Contains(Roles, role) {
			return nil, fmt.Errorf("role %q is not one of viewer, editor, consent-admin", role)
		}
		if !slices.Contains(out, role) {
			out = append(out, role)
		}
	}
	return out, nil
}

// Load reads the tokens of file (if not empty) and of env (lines separated
// by newlines or ';'). Every problem is reported, with the file (or
// "JOURNEY_ADMIN_TOKENS") and line, never the line's content past the
// principal.
func Load(file, env string) (*Tokens, error) {
	t := &Tokens{byHash: map[[sha256.Size]byte]Principal{}}
	var errs []error
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("JOURNEY_ADMIN_TOKENS_FILE: %w", err)
		}
		errs = append(errs, t.parse(file, strings.Split(string(b), "\n"))...)
	}
	if env != "" {
		errs = append(errs, t.parse("JOURNEY_ADMIN_TOKENS", strings.FieldsFunc(env, func(r rune) bool { return r == '\n' || r == ';' }))...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("admin tokens: %w", errors.Join(errs...))
	}
	return t, nil
}

func (t *Tokens) parse(source string, lines []string) []error {
	var errs []error
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(msg string) { errs = append(errs, fmt.Errorf("%s:%d: %s", source, i+1, msg)) }
		f := strings.Fields(line)
		if len(f) != 3 {
			bad("want three fields: principal, roles (comma-separated), sha256:<hex of the token's SHA-256>")
			continue
		}
		if !ValidPrincipal(f[0]) {
			bad("principal: letters, digits, '.', '_' and '-', at most 64 (it is written to the audit trail)")
			continue
		}
		roles, err := ParseRoles(f[1])
		if err != nil {
			bad(err.Error())
			continue
		}
		if !hashRE.MatchString(f[2]) {
			bad("token hash: want sha256: and 64 lowercase hex digits (never the token itself)")
			continue
		}
		var h [sha256.Size]byte
		_, _ = hex.Decode(h[:], []byte(f[2][len("sha256:"):]))
		if other, ok := t.byHash[h]; ok {
			bad(fmt.Sprintf("the same token is configured for %s already", other.ID))
			continue
		}
		t.byHash[h] = Principal{ID: f[0], Roles: roles}
	}
	return errs
}
