package fhirnotify

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// parametersJSON is the R4 backport's subscription status, a Parameters
// resource (profile backport-subscription-status-r4).
type parametersJSON struct {
	Parameter []parameterJSON `json:"parameter"`
}

// parameterJSON is one Parameters.parameter (or part), with the value[x]
// types the status profile uses, and a few more that servers send.
type parameterJSON struct {
	Name             string          `json:"name"`
	ValueReference   *referenceJSON  `json:"valueReference"`
	ValueCanonical   *string         `json:"valueCanonical"`
	ValueURI         *string         `json:"valueUri"`
	ValueURL         *string         `json:"valueUrl"`
	ValueString      *string         `json:"valueString"`
	ValueCode        *string         `json:"valueCode"`
	ValueInstant     *string         `json:"valueInstant"`
	ValueDateTime    *string         `json:"valueDateTime"`
	ValueInteger64   *flexInt        `json:"valueInteger64"`
	ValueUnsignedInt *flexInt        `json:"valueUnsignedInt"`
	ValueInteger     *flexInt        `json:"valueInteger"`
	ValuePositiveInt *flexInt        `json:"valuePositiveInt"`
	Part             []parameterJSON `json:"part"`
}

// flexInt is an integer sent as a JSON number or as a string of digits
// (FHIR's integer64, and the Backport IG's valueString counters).
type flexInt struct{ n int64 }

// UnmarshalJSON reads a number or a string of digits.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return safeError("expected a non-negative integer (a number or a string of digits)")
	}
	f.n = n
	return nil
}

// first returns the first non-nil string among vs.
func first(vs ...*string) (string, bool) {
	for _, v := range vs {
		if v != nil {
			return *v, true
		}
	}
	return "", false
}

// count reads a counter from valueString, valueInteger64, valueUnsignedInt,
// valueInteger or valuePositiveInt.
func (p parameterJSON) count(expr string) (int64, error) {
	for _, v := range []*flexInt{p.ValueInteger64, p.ValueUnsignedInt, p.ValueInteger, p.ValuePositiveInt} {
		if v != nil {
			return v.n, nil
		}
	}
	if p.ValueString == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(*p.ValueString), 10, 64)
	if err != nil || n < 0 {
		return 0, unprocessable(ReasonInvalidStatus, IssueInvalid, expr+".valueString", "expected a non-negative integer")
	}
	return n, nil
}

// readParameters reads the status from an R4 backport Parameters resource.
func (n *Notification) readParameters(raw json.RawMessage) error {
	const base = "Bundle.entry[0].resource"
	var p parametersJSON
	if err := json.Unmarshal(raw, &p); err != nil {
		return decodeError(raw, reflect.TypeFor[parametersJSON](), base, ReasonInvalidStatus, true, err)
	}
	sawType := false
	for i, prm := range p.Parameter {
		expr := fmt.Sprintf("%s.parameter[%d]", base, i)
		switch prm.Name {
		case "type":
			v, _ := first(prm.ValueCode, prm.ValueString)
			n.Type, sawType = Type(v), true
			n.typeExpr = expr + ".valueCode"
		case "subscription":
			if prm.ValueReference != nil {
				n.Subscription = prm.ValueReference.Reference
			} else {
				n.Subscription, _ = first(prm.ValueURI, prm.ValueString)
			}
		case "topic":
			n.Topic, _ = first(prm.ValueCanonical, prm.ValueURI, prm.ValueURL, prm.ValueString)
		case "events-since-subscription-start":
			c, err := prm.count(expr)
			if err != nil {
				return err
			}
			n.EventsSinceStart = c
		case "notification-event":
			ev, err := readEventParts(prm.Part, expr)
			if err != nil {
				return err
			}
			n.Events = append(n.Events, ev)
		}
	}
	if !sawType {
		return unprocessable(ReasonInvalidStatus, IssueRequired, base+".parameter",
			"the subscription status has no parameter named type (handshake, heartbeat, event-notification, query-status or query-event)")
	}
	return nil
}

// readEventParts reads a notification-event parameter's parts.
func readEventParts(parts []parameterJSON, expr string) (Event, error) {
	var ev Event
	for j, part := range parts {
		pexpr := fmt.Sprintf("%s.part[%d]", expr, j)
		switch part.Name {
		case "event-number":
			c, err := part.count(pexpr)
			if err != nil {
				return ev, err
			}
			ev.Number = c
		case "timestamp":
			v, _ := first(part.ValueInstant, part.ValueDateTime)
			ev.Timestamp = parseInstant(v)
		case "focus":
			if part.ValueReference != nil {
				ev.Focus = part.ValueReference.Reference
				ev.FocusByIdentifier = ev.Focus == "" && part.ValueReference.Identifier != nil
				if ev.FocusByIdentifier {
					ev.FocusIdentifier = Identifier{System: part.ValueReference.Identifier.System, Value: part.ValueReference.Identifier.Value}
				}
			}
		}
	}
	return ev, nil
}
