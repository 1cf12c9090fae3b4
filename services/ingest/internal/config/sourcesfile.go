package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/carenotify/carenotify/pkg/bus"
)

// sourcesFile is the YAML document of INGEST_SOURCES_FILE.
type sourcesFile struct {
	Sources []fileSource `yaml:"sources"`
}

// fileSource is one entry of the sources file. Unknown keys are errors.
type fileSource struct {
	ID     string `yaml:"id"`
	Tenant string `yaml:"tenant"`
	Auth   string `yaml:"auth"`
	// TokenHash is "sha256:<hex>" of the bearer token (auth: bearer).
	TokenHash string `yaml:"token_hash"`
	// Token is refused: only hashes are stored. It is a field so that the
	// error can say so instead of "unknown field".
	Token any `yaml:"token"`
	// HMAC configures auth: hmac.
	HMAC *HMAC `yaml:"hmac"`
	// MTLS configures auth: mtls.
	MTLS *MTLS `yaml:"mtls"`
	// Limits are the source's rate and size limits.
	Limits Limits `yaml:"limits"`
}

// LoadSourcesFile reads the sources file at path (INGEST_SOURCES_FILE).
// A YAML mapping with a "sources" list is the per-tenant format; anything
// else is read as the legacy name=tenant:token lines. Errors name the
// file, the entry (position and id) and what is wrong, never a secret;
// warnings are for the log and -check-config.
func LoadSourcesFile(path string) (Sources, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("INGEST_SOURCES_FILE: %w", err)
	}
	where := "INGEST_SOURCES_FILE " + path
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		// The legacy format: not YAML, or YAML that is not a mapping.
		var s Sources
		if err := s.UnmarshalText(b); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (neither a YAML mapping with a sources list nor name=tenant:token lines)", where, err)
		}
		if len(s) == 0 {
			return nil, nil, fmt.Errorf("%s: no sources", where)
		}
		return s, plainTokenWarnings(where, s), nil
	}
	var f sourcesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%s: %s", where, yamlProblem(err))
	}
	if len(f.Sources) == 0 {
		return nil, nil, fmt.Errorf("%s: sources: list at least one source", where)
	}
	var (
		out  Sources
		errs []error
		seen = map[string]bool{}
		ids  = map[MTLS]string{}
	)
	for i, fs := range f.Sources {
		name := fmt.Sprintf("source %d", i+1)
		if bus.ValidToken(fs.ID) {
			name += fmt.Sprintf(" (%q)", fs.ID)
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s: "+format, append([]any{where, name}, args...)...))
		}
		switch {
		case fs.ID == "":
			bad("id is required")
		case !bus.ValidToken(fs.ID):
			bad("id must be 1-64 letters, digits, '_' or '-'")
		case seen[fs.ID]:
			bad("id repeats an earlier source")
		}
		seen[fs.ID] = true
		if !bus.ValidToken(fs.Tenant) {
			bad("tenant is required: 1-64 letters, digits, '_' or '-'")
		}
		src := Source{Name: fs.ID, Tenant: fs.Tenant, Auth: fs.Auth}
		if src.Auth == "" {
			src.Auth = AuthBearer
		}
		if fs.Token != nil {
			bad("token: plain tokens are not accepted; set token_hash: sha256:<hex> (`ingest -hash-token` prints it) and remove token")
		}
		if fs.HMAC != nil && src.Auth != AuthHMAC {
			bad("hmac is set but auth is %s", src.Auth)
		}
		for _, p := range fs.Limits.validate() {
			bad("%s", p)
		}
		src.Limits = fs.Limits
		if fs.MTLS != nil && src.Auth != AuthMTLS {
			bad("mtls is set but auth is %s", src.Auth)
		}
		switch src.Auth {
		case AuthMTLS:
			if fs.TokenHash != "" {
				bad("token_hash is set but auth is mtls")
			}
			if fs.MTLS == nil {
				bad("auth mtls needs an mtls block with dns, uri or cn")
				break
			}
			for _, p := range fs.MTLS.validate() {
				bad("%s", p)
			}
			if other, dup := ids[*fs.MTLS]; dup {
				bad("mtls identity repeats source %q: a certificate must name one source", other)
			}
			ids[*fs.MTLS] = fs.ID
			src.MTLS = *fs.MTLS
		case AuthHMAC:
			if fs.TokenHash != "" {
				bad("token_hash is set but auth is hmac")
			}
			if fs.HMAC == nil {
				bad("auth hmac needs an hmac block with secret_file or secret_env")
				break
			}
			for _, p := range fs.HMAC.validate() {
				bad("%s", p)
			}
			src.HMAC = *fs.HMAC
		case AuthBearer:
			switch _, ok := parseTokenHash(fs.TokenHash); {
			case fs.TokenHash == "":
				if fs.Token == nil {
					bad("auth bearer needs token_hash: sha256:<hex> (`ingest -hash-token` prints it)")
				}
			case !ok:
				bad("token_hash must be sha256:<64 hex digits>")
			default:
				src.TokenHash = strings.ToLower(fs.TokenHash)
			}
		default:
			bad("auth must be %s, %s or %s", AuthBearer, AuthHMAC, AuthMTLS)
		}
		out = append(out, src)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, nil, nil
}

// quoted matches what yaml error messages quote from the input.
var quoted = regexp.MustCompile("`[^`]*`")

// yamlProblem returns a YAML decoding error without the input it quotes
// (the value might be a secret put in the wrong place).
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = quoted.ReplaceAllString(m, "a value")
		}
		return strings.Join(msgs, "; ")
	}
	return quoted.ReplaceAllString(err.Error(), "a value")
}
