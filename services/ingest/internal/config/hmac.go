package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// DefaultHMACMaxSkew is how far a signature's timestamp may be from the
// receiver's clock, either way, unless a source says otherwise.
const DefaultHMACMaxSkew = 300 * time.Second

// minHMACSecretLen is the shortest HMAC secret accepted (bytes).
const minHMACSecretLen = 32

// HMAC configures a source that signs its requests. The secret is never in
// the configuration itself: it is read from the file or the environment
// variable named here.
type HMAC struct {
	// SecretFile holds the secret, or several, one per line (secret
	// rotation: a signature under any of them is accepted).
	SecretFile string `yaml:"secret_file"`
	// SecretEnv names an environment variable holding the secret (several
	// separated by newlines).
	SecretEnv string `yaml:"secret_env"`
	// MaxSkew is the largest difference between the signature's timestamp
	// and the receiver's clock; DefaultHMACMaxSkew when zero.
	MaxSkew time.Duration `yaml:"max_skew"`
}

// Skew returns the allowed timestamp difference.
func (h HMAC) Skew() time.Duration {
	if h.MaxSkew <= 0 {
		return DefaultHMACMaxSkew
	}
	return h.MaxSkew
}

// validate checks what can be checked without reading the secret.
func (h HMAC) validate() []string {
	var out []string
	switch {
	case h.SecretFile == "" && h.SecretEnv == "":
		out = append(out, "auth hmac needs hmac.secret_file or hmac.secret_env (the secret is never written in this file)")
	case h.SecretFile != "" && h.SecretEnv != "":
		out = append(out, "set hmac.secret_file or hmac.secret_env, not both")
	}
	if h.MaxSkew < 0 || (h.MaxSkew > 0 && h.MaxSkew < time.Second) || h.MaxSkew > time.Hour {
		out = append(out, "hmac.max_skew must be between 1s and 1h")
	}
	return out
}

// HMACSecrets reads source s's HMAC secrets: the lines of its secret file,
// or of the environment variable it names (looked up with lookupEnv).
// Errors name the source and the file or variable, never a secret.
func HMACSecrets(s Source, lookupEnv func(string) (string, bool)) ([][]byte, error) {
	var (
		text, where string
	)
	switch {
	case s.HMAC.SecretFile != "":
		where = "hmac.secret_file " + s.HMAC.SecretFile
		b, err := os.ReadFile(s.HMAC.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("source %q: %s: %w", s.Name, where, errors.Unwrap(err))
		}
		text = string(b)
	case s.HMAC.SecretEnv != "":
		where = "hmac.secret_env " + s.HMAC.SecretEnv
		v, ok := lookupEnv(s.HMAC.SecretEnv)
		if !ok {
			return nil, fmt.Errorf("source %q: %s: the variable is not set", s.Name, where)
		}
		text = v
	default:
		return nil, fmt.Errorf("source %q: no hmac secret configured", s.Name)
	}
	var out [][]byte
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) < minHMACSecretLen {
			return nil, fmt.Errorf("source %q: %s: secret %d is shorter than %d characters; use a random one, e.g. openssl rand -hex 32",
				s.Name, where, len(out)+1, minHMACSecretLen)
		}
		out = append(out, []byte(line))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source %q: %s: no secret in it", s.Name, where)
	}
	return out, nil
}

// AllHMACSecrets reads the secrets of every HMAC source, by source name.
func AllHMACSecrets(sources Sources, lookupEnv func(string) (string, bool)) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	var errs []error
	for _, s := range sources {
		if s.Method() != AuthHMAC {
			continue
		}
		secrets, err := HMACSecrets(s, lookupEnv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[s.Name] = secrets
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
