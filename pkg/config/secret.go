package config

import "log/slog"

// Secret is a configuration value that must never be printed (a password,
// an API token): it formats as "[SECRET]" through fmt, encoding/json and
// slog. Convert it with string() where the value is needed.
type Secret string

// String returns a placeholder, never the secret.
func (Secret) String() string { return "[SECRET]" }

// GoString returns a placeholder, never the secret.
func (Secret) GoString() string { return "[SECRET]" }

// MarshalText returns a placeholder, never the secret.
func (Secret) MarshalText() ([]byte, error) { return []byte("[SECRET]"), nil }

// LogValue returns a placeholder, never the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("[SECRET]") }
