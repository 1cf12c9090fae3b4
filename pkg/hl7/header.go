package hl7

import (
	"strconv"
	"strings"
	"time"
)

// MessageType is MSH-9: message code, trigger event and structure.
type MessageType struct {
	// Code is MSH-9.1, e.g. "SIU".
	Code string
	// Trigger is MSH-9.2, e.g. "S12".
	Trigger string
	// Structure is MSH-9.3, e.g. "SIU_S12"; often empty before v2.3.1.
	Structure string
}

// String returns "CODE^TRIGGER", e.g. "SIU^S12" ("SIU" without a trigger).
func (t MessageType) String() string {
	if t.Trigger == "" {
		return t.Code
	}
	return t.Code + "^" + t.Trigger
}

// Type returns MSH-9, upper-cased.
func (m *Message) Type() MessageType {
	f := m.MSH().Field(9)
	return MessageType{
		Code:      strings.ToUpper(strings.TrimSpace(f.Comp(1).String())),
		Trigger:   strings.ToUpper(strings.TrimSpace(f.Comp(2).String())),
		Structure: strings.ToUpper(strings.TrimSpace(f.Comp(3).String())),
	}
}

// ControlID returns MSH-10, the message control id.
func (m *Message) ControlID() string { return strings.TrimSpace(m.MSH().Field(10).String()) }

// Version returns MSH-12.1, e.g. "2.5.1".
func (m *Message) Version() string { return strings.TrimSpace(m.MSH().Field(12).Comp(1).String()) }

// AcceptAckType returns MSH-15 (AL, NE, ER, SU); "" means original
// acknowledgement mode.
func (m *Message) AcceptAckType() string {
	return strings.ToUpper(strings.TrimSpace(m.MSH().Field(15).String()))
}

// Time returns MSH-7, the time the message was created. A time without an
// offset is read in loc.
func (m *Message) Time(loc *time.Location) (TS, error) {
	v := m.MSH().Field(7).Comp(1).String()
	ts, err := ParseTS(v, loc)
	if err != nil {
		return TS{}, &ParseError{Segment: "MSH", SegIndex: 1, Field: 7, Code: CodeDataType, Msg: "not an HL7 date/time"}
	}
	return ts, nil
}

// Precision is how much of a date/time was sent.
type Precision int

// Precisions of a TS/DTM value.
const (
	PrecisionNone Precision = iota
	PrecisionYear
	PrecisionMonth
	PrecisionDay
	PrecisionHour
	PrecisionMinute
	PrecisionSecond
	PrecisionFraction
)

// TS is an HL7 date/time (TS/DTM/DT).
type TS struct {
	// Time is the instant; the parts beyond Precision are zero.
	Time time.Time
	// Precision says which parts were sent.
	Precision Precision
	// HasOffset reports whether an offset (+hhmm/-hhmm) was sent; without
	// one, Time is in the location ParseTS was given.
	HasOffset bool
}

// IsZero reports whether no time was sent.
func (t TS) IsZero() bool { return t.Precision == PrecisionNone }

// Date returns the date as YYYY, YYYY-MM or YYYY-MM-DD, by precision.
func (t TS) Date() string {
	switch t.Precision {
	case PrecisionNone:
		return ""
	case PrecisionYear:
		return t.Time.Format("2006")
	case PrecisionMonth:
		return t.Time.Format("2006-01")
	}
	return t.Time.Format("2006-01-02")
}

// ParseTS parses YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. An empty
// string gives the zero TS. A time without an offset is read in loc (UTC
// when nil). A trailing ^precision component (pre-v2.5 TS) is ignored.
func ParseTS(s string, loc *time.Location) (TS, error) {
	if i := strings.IndexByte(s, '^'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return TS{}, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	var ts TS
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		off := s[i:]
		s = s[:i]
		if len(off) != 5 || !allDigits(off[1:]) {
			return TS{}, errBadTS
		}
		h, _ := strconv.Atoi(off[1:3])
		mi, _ := strconv.Atoi(off[3:5])
		if h > 14 || mi > 59 {
			return TS{}, errBadTS
		}
		secs := h*3600 + mi*60
		if off[0] == '-' {
			secs = -secs
		}
		loc = time.FixedZone("", secs)
		ts.HasOffset = true
	}
	frac := ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		frac = s[i+1:]
		s = s[:i]
		if len(s) != 14 || frac == "" || len(frac) > 9 || !allDigits(frac) {
			return TS{}, errBadTS
		}
	}
	if !allDigits(s) {
		return TS{}, errBadTS
	}
	parts := []int{0, 1, 1, 0, 0, 0}
	widths := []int{4, 2, 2, 2, 2, 2}
	pos := 0
	for k, w := range widths {
		if pos == len(s) {
			break
		}
		if pos+w > len(s) {
			return TS{}, errBadTS
		}
		parts[k], _ = strconv.Atoi(s[pos : pos+w])
		pos += w
		ts.Precision = Precision(k + 1)
	}
	if pos != len(s) {
		return TS{}, errBadTS
	}
	nsec := 0
	if frac != "" {
		nsec, _ = strconv.Atoi((frac + "000000000")[:9])
		ts.Precision = PrecisionFraction
	}
	if parts[1] < 1 || parts[1] > 12 || parts[2] < 1 || parts[2] > 31 || parts[3] > 23 || parts[4] > 59 || parts[5] > 59 {
		return TS{}, errBadTS
	}
	t := time.Date(parts[0], time.Month(parts[1]), parts[2], parts[3], parts[4], parts[5], nsec, loc)
	if t.Day() != parts[2] {
		return TS{}, errBadTS // e.g. February 30
	}
	ts.Time = t
	return ts, nil
}

type tsError struct{}

func (tsError) Error() string { return "hl7: not an HL7 date/time" }

var errBadTS error = tsError{}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
