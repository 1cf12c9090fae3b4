package app

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/hl7map"
)

func TestHL7System(t *testing.T) {
	systems := IdentifierSystems{"GHH": "https://ghh.example.org/appt", "@placer": "https://ghh.example.org/placer",
		"2.16.840.1.1": "https://ghh.example.org/visits"}
	tests := []struct {
		name string
		give hl7map.EI
		want string
	}{
		{name: "configured namespace", give: hl7map.EI{Role: "filler", Value: "1", Namespace: "GHH"}, want: "https://ghh.example.org/appt"},
		{name: "configured universal id", give: hl7map.EI{Role: "visit", Value: "1", Namespace: "X", UniversalID: "2.16.840.1.1", UniversalIDType: "ISO"}, want: "https://ghh.example.org/visits"},
		{name: "ISO OID", give: hl7map.EI{Role: "filler", Value: "1", UniversalID: "1.2.3", UniversalIDType: "ISO"}, want: "urn:oid:1.2.3"},
		{name: "UUID", give: hl7map.EI{Role: "filler", Value: "1", UniversalID: "A0B1", UniversalIDType: "UUID"}, want: "urn:uuid:a0b1"},
		{name: "URI", give: hl7map.EI{Role: "filler", Value: "1", UniversalID: "https://x.example/ids", UniversalIDType: "URI"}, want: "https://x.example/ids"},
		{name: "unmapped namespace", give: hl7map.EI{Role: "filler", Value: "1", Namespace: "LAB"}, want: "LAB"},
		{name: "no authority, configured role", give: hl7map.EI{Role: "placer", Value: "1"}, want: "https://ghh.example.org/placer"},
		{name: "no authority, default", give: hl7map.EI{Role: "filler", Value: "1"}, want: "urn:carenotify:hl7v2:epic-hl7:filler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hl7System(systems, "epic-hl7", tt.give); got != tt.want {
				t.Errorf("hl7System() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFHIRKeys(t *testing.T) {
	got := fhirKeys("epic", "Appointment/a1", []*eventsv1.Identifier{{System: "s", Value: "1"}, {System: "s", Value: "1"}, {System: "t", Value: ""}})
	want := []ResourceKey{{Type: KeyLogical, Scope: "epic", Value: "Appointment/a1"}, {Type: KeyBusiness, Scope: "s", Value: "1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}
