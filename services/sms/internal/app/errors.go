package app

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the use cases return. None of them contains PHI.
var (
	// ErrNotFound: no record of that message.
	ErrNotFound = errors.New("message not found")
	// ErrUnavailable: a dependency (Redis, NATS) failed and nothing was
	// stored, so the call is safe to retry with the same idempotency key.
	ErrUnavailable = errors.New("unavailable")
	// ErrInProgress: another call with the same idempotency key is still
	// queueing the message; retry shortly.
	ErrInProgress = errors.New("a send with this idempotency key is still being queued")
)

// FieldViolation names one invalid request field and what is wrong with
// it. Description never repeats the field's value.
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists every invalid field of a request.
type ValidationError struct {
	Violations []FieldViolation
}

// Error lists the violations; it holds field names and rules, no values.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// ProviderError is a failed attempt to hand a message to the provider,
// classified. Its text holds the reason, the HTTP status and the
// provider's error code, never a number or the provider's message text
// (Twilio's messages quote the number).
type ProviderError struct {
	// Permanent is true when retrying cannot help (a 4xx other than 429).
	Permanent bool
	// Reason is one of the Reason* codes.
	Reason string
	// HTTPStatus is the provider's HTTP status, 0 when there was none.
	HTTPStatus int
	// Code is the provider's error code (Twilio's "code"), 0 when none.
	Code int
	// Detail is a PHI-free description for operators (a network error).
	Detail string
}

// Error describes the failure by reason, status, code and Detail only.
func (e *ProviderError) Error() string {
	var b strings.Builder
	if e.Permanent {
		b.WriteString("provider refused: ")
	} else {
		b.WriteString("provider deferred: ")
	}
	b.WriteString(e.Reason)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (http %d", e.HTTPStatus)
		if e.Code != 0 {
			fmt.Fprintf(&b, ", code %d", e.Code)
		}
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// ErrPermanent marks a worker outcome after which the outbox message must
// not be redelivered (failed, expired, undecodable).
var ErrPermanent = errors.New("permanent")

// permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }
