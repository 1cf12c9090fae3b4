package log

import (
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what every piece of protected health information is replaced
// with before a log record leaves this package.
const Redacted = "[REDACTED]"

// PHI marks a value as protected health information. It always logs as
// [Redacted], whatever its key, and it also prints as [Redacted] through fmt
// (every verb), encoding/json and encoding (TextMarshaler), so it stays hidden
// when it sits in a struct field or an error message. Use string(p) where the
// real value is needed, never in a log call.
type PHI string

var (
	_ slog.LogValuer = PHI("")
	_ fmt.Formatter  = PHI("")
	_ fmt.Stringer   = PHI("")
)

// LogValue implements [slog.LogValuer]; it returns [Redacted].
func (PHI) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String returns [Redacted].
func (PHI) String() string { return Redacted }

// Format implements [fmt.Formatter] so that every verb, including %v, %d, %x
// and %#v, prints [Redacted].
func (PHI) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalText returns [Redacted]; encoding/json uses it too.
func (PHI) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
