package hl7

import (
	"strconv"
	"strings"
)

// Error codes of HL7 table 0357 (message error condition codes) that this
// package and its callers use.
const (
	CodeSegmentSequence      = "100" // Segment sequence error.
	CodeRequiredFieldMissing = "101" // Required field missing.
	CodeDataType             = "102" // Data type error.
	CodeTableValueNotFound   = "103" // Table value not found.
	CodeUnsupportedMessage   = "200" // Unsupported message type.
	CodeUnsupportedEvent     = "201" // Unsupported event code.
	CodeInternal             = "207" // Application internal error.
)

// ParseError is a problem at a location in a message. It never holds a
// value from the message (values may be PHI), only the location, a table
// 0357 code and a fixed description.
type ParseError struct {
	// Segment is the segment id, e.g. "PID"; "" when the problem is not in
	// a segment (an empty message).
	Segment string
	// SegIndex is the 1-based position of the segment in the message (or
	// in the batch); 0 when unknown.
	SegIndex int
	// Field is the 1-based field position; 0 for the whole segment.
	Field int
	// Component is the 1-based component position; 0 for the whole field.
	Component int
	// Code is the HL7 table 0357 code, e.g. "101".
	Code string
	// Msg describes the problem without quoting the message.
	Msg string
}

// Location renders the location as "PID[2]-5.1" (segment, its position,
// field and component), or "message" when there is none.
func (e *ParseError) Location() string {
	if e.Segment == "" {
		return "message"
	}
	var b strings.Builder
	b.WriteString(e.Segment)
	if e.SegIndex > 0 {
		b.WriteString("[" + strconv.Itoa(e.SegIndex) + "]")
	}
	if e.Field > 0 {
		b.WriteString("-" + strconv.Itoa(e.Field))
		if e.Component > 0 {
			b.WriteString("." + strconv.Itoa(e.Component))
		}
	}
	return b.String()
}

// Error returns "hl7: <location>: <code>: <msg>".
func (e *ParseError) Error() string {
	return "hl7: " + e.Location() + ": " + e.Code + ": " + e.Msg
}
