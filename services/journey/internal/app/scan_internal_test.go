package app

import (
	"testing"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

func TestFindIdentifier(t *testing.T) {
	ev := &eventsv1.ClinicalEvent{Patient: &eventsv1.Patient{Identifiers: []*eventsv1.Identifier{
		{System: "mrn", Value: "A77120"}, {System: "short", Value: "12"}, {System: "empty"},
	}}}
	tests := []struct {
		name     string
		give     string
		wantKind string
	}{
		{name: "ssn", give: "ssn 219-44-7081.", wantKind: identifierSSN},
		{name: "ssn at the end", give: "219-44-7081", wantKind: identifierSSN},
		{name: "ssn after a word and a hyphen", give: "SSN-219-44-7081", wantKind: identifierSSN},
		{name: "ssn next to an excluded one", give: "000-00-0000 219-44-7081", wantKind: identifierSSN},
		{name: "area 000", give: "000-12-3456"},
		{name: "area 666", give: "666-12-3456"},
		{name: "area 9xx", give: "912-12-3456"},
		{name: "group 00", give: "123-00-3456"},
		{name: "serial 0000", give: "123-45-0000"},
		{name: "inside a longer number", give: "1123-45-67890"},
		{name: "joined to a number by a hyphen", give: "1-219-44-7081 and 219-44-7081-2"},
		{name: "phone number", give: "call 555-123-4567"},
		{name: "date and time", give: "2031-05-06 15:45"},
		{name: "mrn, another case", give: "record a77120 please", wantKind: identifierPatient},
		{name: "mrn in html", give: "<b>A77120</b>", wantKind: identifierPatient},
		{name: "mrn inside a longer token", give: "XA77120 A771201"},
		{name: "short identifiers are not looked for", give: "room 12"},
		{name: "nothing", give: "Your appointment is on Tuesday."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, where, ok := findIdentifier(ev, part{"text", "Hello. " + tt.give})
			if kind != tt.wantKind || ok != (tt.wantKind != "") || (ok && where != "text") {
				t.Errorf("findIdentifier(%q) = %q, %q, %t; want %q", tt.give, kind, where, ok, tt.wantKind)
			}
		})
	}
}
