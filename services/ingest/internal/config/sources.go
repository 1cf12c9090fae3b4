package config

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/carenotify/carenotify/pkg/bus"
)

// redacted is what a Token shows instead of its value.
const redacted = "[REDACTED]"

// Token is a source's bearer token. It prints, logs and marshals as
// "[REDACTED]"; use string(t) only to compare it.
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

// Source is a sender allowed to post notifications to
// /fhir/{Name}/notifications.
type Source struct {
	// Name is the path segment and the Cn-Source header; a NATS token.
	Name string
	// Tenant is the tenant its events belong to; a NATS token.
	Tenant string
	// Token is the bearer token the sender presents.
	Token Token
}

// Sources is a list of sources, written as name=tenant:token entries
// separated by commas (or newlines, for a secret file).
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
		out = append(out, Source{Name: name, Tenant: tenant, Token: Token(token)})
	}
	*s = out
	return nil
}
