package fhirnotify_test

import (
	"testing"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// The corpus has no timezone extension anywhere (checked: none of its
// Patients, Addresses or Locations carries one), so these tests add it to
// corpus resources: Appointment "examplereq" (participants Patient/example
// and Location/1), Patient "example" and Location "1".
func tzExt(code string) []any {
	return []any{map[string]any{"url": fhirnotify.TimezoneExtension, "valueCode": code}}
}

func TestTimeZones(t *testing.T) {
	const (
		appointmentFile = "fhir/r4/Appointment/Appointment-examplereq.json"
		patientFile     = "fhir/r4/Patient/Patient-example.json"
		locationFile    = "fhir/r4/Location/Location-1.json"
	)
	tests := []struct {
		name     string
		patient  func(map[string]any)
		location func(map[string]any)
		want     string
	}{
		{name: "none anywhere", want: ""},
		{
			name:    "on the patient",
			patient: func(p map[string]any) { p["extension"] = tzExt("America/Chicago") },
			want:    "America/Chicago",
		},
		{
			name: "on the patient's current address",
			patient: func(p map[string]any) {
				addrs := p["address"].([]any)
				addrs[0].(map[string]any)["extension"] = tzExt("Australia/Melbourne")
			},
			want: "Australia/Melbourne",
		},
		{
			name: "old address ignored, location used",
			patient: func(p map[string]any) {
				addrs := p["address"].([]any)
				addrs[0].(map[string]any)["use"] = "old"
				addrs[0].(map[string]any)["extension"] = tzExt("Australia/Melbourne")
			},
			location: func(l map[string]any) { l["extension"] = tzExt("Europe/Amsterdam") },
			want:     "Europe/Amsterdam",
		},
		{
			name:     "patient's zone wins over the location's",
			patient:  func(p map[string]any) { p["extension"] = tzExt("America/New_York") },
			location: func(l map[string]any) { l["extension"] = tzExt("Europe/Amsterdam") },
			want:     "America/New_York",
		},
		{
			name: "location address",
			location: func(l map[string]any) {
				l["address"].(map[string]any)["extension"] = tzExt("Europe/Amsterdam")
			},
			want: "Europe/Amsterdam",
		},
		{
			name:     "unknown codes are not guessed at",
			patient:  func(p map[string]any) { p["extension"] = tzExt("Mars/Olympus_Mons") },
			location: func(l map[string]any) { l["extension"] = tzExt("Local") },
			want:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fhirnotifytest.Resource(t, appointmentFile)
			p := fhirnotifytest.Resource(t, patientFile)
			l := fhirnotifytest.Resource(t, locationFile)
			if tt.patient != nil {
				tt.patient(p)
			}
			if tt.location != nil {
				tt.location(l)
			}
			push, err := fhirnotify.ParsePush(fhirnotifytest.PushBundle(t, "collection", a, p, l), "")
			if err != nil {
				t.Fatal(err)
			}
			ap, err := push.Appointment(push.Entries[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(ap.LocationRefs) != 1 || ap.LocationRefs[0] != "Location/1" {
				t.Fatalf("LocationRefs = %v, want [Location/1]", ap.LocationRefs)
			}
			patient, included, err := push.Patient(ap.PatientRef, now)
			if err != nil || !included {
				t.Fatalf("Patient() = %v, %v", included, err)
			}
			got := patient.GetTimeZone()
			if got == "" {
				got = push.LocationZone(ap.LocationRefs)
			}
			if got != tt.want {
				t.Errorf("zone = %q, want %q", got, tt.want)
			}
		})
	}
}
