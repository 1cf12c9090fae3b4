package app

import (
	"errors"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// Kind classifies an Error for the transport, which maps each kind to a
// status in one place.
type Kind int

const (
	// KindInvalid: the input could not be parsed (HTTP 400).
	KindInvalid Kind = iota + 1
	// KindUnprocessable: the input was parsed but cannot be processed (422).
	KindUnprocessable
	// KindUnavailable: a dependency failed; the sender should retry (503).
	KindUnavailable
	// KindInternal: a bug; the input was kept for replay (500).
	KindInternal
)

// Reason codes of this package, beside the fhirnotify.Reason* codes. Like
// them they are bounded and PHI-free.
const (
	// ReasonPayloadNotSupported: an empty notification, or an id-only one
	// of a source without a FHIR server (or whose focus is an identifier
	// of a topic with no configured resource type), kept for replay.
	ReasonPayloadNotSupported = "payload_not_supported"
	// ReasonInternal: processing panicked.
	ReasonInternal = "internal_error"
	// ReasonPublishFailed: an event could not be stored.
	ReasonPublishFailed = "publish_failed"
	// ReasonDeadLetterFailed: rejected input could not be kept for replay.
	ReasonDeadLetterFailed = "dead_letter_failed"
	// ReasonAuditFailed: the audit record of stored input could not be written.
	ReasonAuditFailed = "audit_failed"
)

// Error is a failure of Ingest, described for an OperationOutcome issue and
// for logs. No field holds a value from the input.
type Error struct {
	// Kind decides the HTTP status.
	Kind Kind
	// Reason is a short machine code (a Reason* code here or in fhirnotify).
	Reason string
	// Code is the FHIR issue type code.
	Code string
	// Expression locates the problem in the input, if it is there.
	Expression string
	// Diagnostics says what is wrong, for the sender.
	Diagnostics string
	// HL7 locates the problem for an HL7 v2 acknowledgement (ERR
	// segments); set by IngestHL7 and IngestHL7Batch only.
	HL7 []*hl7.ParseError
	// Err is the underlying cause, for logs; it holds no PHI.
	Err error
}

// Error returns the reason, expression and diagnostics.
func (e *Error) Error() string {
	s := e.Reason
	if e.Expression != "" {
		s += " at " + e.Expression
	}
	s += ": " + e.Diagnostics
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// fromNotify converts a fhirnotify error into an Error.
func fromNotify(err error) *Error {
	var fe *fhirnotify.Error
	if !errors.As(err, &fe) {
		return &Error{Kind: KindInternal, Reason: ReasonInternal, Code: "exception",
			Diagnostics: "the notification could not be processed", Err: err}
	}
	kind := KindUnprocessable
	if fe.Malformed {
		kind = KindInvalid
	}
	return &Error{Kind: kind, Reason: fe.Reason, Code: fe.Code, Expression: fe.Expression, Diagnostics: fe.Diagnostics}
}
