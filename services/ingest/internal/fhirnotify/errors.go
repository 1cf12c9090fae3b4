package fhirnotify

import "fmt"

// Reason codes say why input was rejected. They are short, bounded and
// PHI-free: they go into metric labels and the Cn-Reason header of dead
// letters.
const (
	// ReasonMalformedJSON: the body is not JSON.
	ReasonMalformedJSON = "malformed_json"
	// ReasonInvalidStructure: JSON, but an element has the wrong JSON type.
	ReasonInvalidStructure = "invalid_structure"
	// ReasonNotANotification: JSON, but not a subscription notification Bundle.
	ReasonNotANotification = "not_a_notification"
	// ReasonInvalidStatus: the subscription status entry is unusable.
	ReasonInvalidStatus = "invalid_status"
	// ReasonInvalidResource: a resource the notification carries is invalid.
	ReasonInvalidResource = "invalid_resource"
)

// FHIR issue type codes (https://hl7.org/fhir/R4/valueset-issue-type.html)
// used by this package.
const (
	// IssueStructure: the content could not be parsed.
	IssueStructure = "structure"
	// IssueInvalid: the content is not valid.
	IssueInvalid = "invalid"
	// IssueRequired: a required element is missing.
	IssueRequired = "required"
	// IssueNotSupported: the content is valid FHIR this endpoint does not read.
	IssueNotSupported = "not-supported"
)

// Error is a problem with a notification, described for an
// OperationOutcome issue. None of its fields holds a value from the input.
type Error struct {
	// Malformed is true when the body could not be parsed as FHIR JSON at
	// all (HTTP 400); otherwise it was parsed but cannot be processed (422).
	Malformed bool
	// Reason is one of the Reason* codes.
	Reason string
	// Code is a FHIR issue type code (Issue*).
	Code string
	// Expression locates the problem, e.g. "Bundle.entry[1].resource.status";
	// empty when it concerns the whole body.
	Expression string
	// Diagnostics says what is wrong and what was expected.
	Diagnostics string
}

// Error returns the expression and diagnostics.
func (e *Error) Error() string {
	if e.Expression == "" {
		return e.Diagnostics
	}
	return e.Expression + ": " + e.Diagnostics
}

// malformed returns a 400-class Error.
func malformed(reason, code, expr, format string, args ...any) *Error {
	return &Error{Malformed: true, Reason: reason, Code: code, Expression: expr, Diagnostics: fmt.Sprintf(format, args...)}
}

// unprocessable returns a 422-class Error.
func unprocessable(reason, code, expr, format string, args ...any) *Error {
	return &Error{Reason: reason, Code: code, Expression: expr, Diagnostics: fmt.Sprintf(format, args...)}
}
