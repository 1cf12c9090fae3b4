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
	// ErrClaimLost: a message's idempotency key no longer names it (its
	// pending claim expired before the message was committed); it must not
	// be delivered, another Send may own the key.
	ErrClaimLost = errors.New("idempotency key no longer names the message")
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

// DeliveryError is a failed delivery attempt, classified. Its text holds
// reason, reply codes and, for connection and TLS failures, the network
// error, never an address or a server's reply text (replies often echo the
// recipient).
type DeliveryError struct {
	// Permanent is true when retrying cannot help (a 5xx from the relay).
	Permanent bool
	// Reason is one of the Reason* codes.
	Reason string
	// Code is the SMTP reply code, 0 when there was none.
	Code int
	// EnhancedCode is the RFC 3463 status code ("5.1.1"), if the relay sent one.
	EnhancedCode string
	// Stage is the SMTP command of the transaction that was refused ("MAIL
	// FROM", StageRcpt, "DATA", "end of DATA"), "" outside a transaction.
	Stage string
	// Detail is a PHI-free description for operators (network or TLS error).
	Detail string
	// NextHop is the host name of the hop that failed, when one was
	// reached. Not PHI.
	NextHop string
}

// Error describes the failure by reason, reply codes and Detail only.
func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("delivery ")
	if e.Permanent {
		b.WriteString("refused: ")
	} else {
		b.WriteString("deferred: ")
	}
	b.WriteString(e.Reason)
	if e.Code != 0 {
		fmt.Fprintf(&b, " (smtp %d", e.Code)
		if e.EnhancedCode != "" {
			b.WriteString(" " + e.EnhancedCode)
		}
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// ErrPermanent marks a worker outcome after which the outbox message must
// not be redelivered (bounced, expired, undecodable). The record and the
// DELIVERY event already tell the outcome.
var ErrPermanent = errors.New("permanent")

// permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }
