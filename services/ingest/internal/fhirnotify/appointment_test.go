package fhirnotify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

var now = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// parseOne parses body and returns the notification and its first entry.
func parseOne(t *testing.T, body []byte) (*fhirnotify.Notification, fhirnotify.Entry) {
	t.Helper()
	n, err := fhirnotify.ParseNotification(body)
	if err != nil {
		t.Fatalf("ParseNotification() error = %v", err)
	}
	if len(n.Entries) == 0 {
		t.Fatal("no entries")
	}
	return n, n.Entries[0]
}

func TestAppointmentAndPatient(t *testing.T) {
	n, e := parseOne(t, fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions))
	got, err := n.Appointment(e)
	if err != nil {
		t.Fatalf("Appointment() error = %v", err)
	}
	want := &fhirnotify.Appointment{
		ID: "2docs", VersionID: "1", LastUpdated: "2013-12-01T10:00:00Z",
		LastUpdatedTime: time.Date(2013, 12, 1, 10, 0, 0, 0, time.UTC),
		Status:          "booked", PatientRef: "Patient/example",
		Facts: &eventsv1.AppointmentFacts{
			Status:       "booked",
			Start:        timestamppb.New(time.Date(2013, 12, 9, 9, 0, 0, 0, time.UTC)),
			End:          timestamppb.New(time.Date(2013, 12, 9, 11, 0, 0, 0, time.UTC)),
			ServiceType:  "General Discussion",
			Participants: []string{"Dr Adam Careful", "Luigi Maas", "Phone Call"},
			Description:  "Discussion about Peter Chalmers MRI results",
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(), cmpopts.IgnoreFields(fhirnotify.Appointment{}, "Entry")); diff != "" {
		t.Errorf("Appointment() mismatch (-want +got):\n%s", diff)
	}
	if got.ResourceVersion() != "Appointment/2docs/_history/1" {
		t.Errorf("ResourceVersion() = %q", got.ResourceVersion())
	}

	patient, included, err := n.Patient(got.PatientRef, now)
	if err != nil || !included {
		t.Fatalf("Patient() = %v, %v", included, err)
	}
	wantPatient := &eventsv1.Patient{
		Id:          "example",
		Identifiers: []*eventsv1.Identifier{{System: "urn:oid:1.2.36.146.595.217.0.1", Value: "12345"}},
		GivenNames:  []string{"Peter", "James"},
		FamilyName:  "Chalmers",
		BirthDate:   "1974-12-25",
		Emails:      []string{fhirnotifytest.CanaryEmail},
		// Mobile first, then by rank; the "old" number is left out.
		Phones: []string{"(03) 3410 5613", "(03) 5555 6473"},
	}
	if diff := cmp.Diff(wantPatient, patient, protocmp.Transform()); diff != "" {
		t.Errorf("Patient() mismatch (-want +got):\n%s", diff)
	}
}

func TestPatientNotInBundle(t *testing.T) {
	n, e := parseOne(t, fhirnotifytest.AppointmentNotification(t, fhirnotifytest.Options{WithoutPatient: true}))
	a, err := n.Appointment(e)
	if err != nil {
		t.Fatal(err)
	}
	if a.ResourceVersion() != "Appointment/2docs" {
		t.Errorf("ResourceVersion() = %q, want no _history without a versionId", a.ResourceVersion())
	}
	p, included, err := n.Patient(a.PatientRef, now)
	if err != nil || included {
		t.Fatalf("Patient() included = %v, err = %v", included, err)
	}
	if diff := cmp.Diff(&eventsv1.Patient{Id: "example"}, p, protocmp.Transform()); diff != "" {
		t.Errorf("Patient() mismatch (-want +got):\n%s", diff)
	}
}

func TestPatientNameAndContactChoice(t *testing.T) {
	body := `{"resourceType":"Bundle","type":"history","entry":[
	 {"resource":{"resourceType":"Parameters","parameter":[{"name":"type","valueCode":"event-notification"}]}},
	 {"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient","id":"p1",
	  "name":[{"use":"old","family":"Old"},{"given":["Ana"],"family":"Usual"},{"use":"official","family":"Ended","period":{"end":"2001"}}],
	  "telecom":[{"system":"email","value":"b@example.org"},{"system":"email","value":"a@example.org","rank":1},
	   {"system":"phone","value":"1","use":"home"},{"system":"sms","value":"2"},{"system":"phone","value":"3","use":"mobile","rank":1}],
	  "communication":[{"language":{"coding":[{"code":"en"}]}},{"language":{"coding":[{"code":"es-MX"}]},"preferred":true}]}}]}`
	n, _ := parseOne(t, []byte(body))
	got, included, err := n.Patient("urn:uuid:p1", now)
	if err != nil || !included {
		t.Fatalf("Patient() = %v, %v", included, err)
	}
	want := &eventsv1.Patient{
		Id: "p1", GivenNames: []string{"Ana"}, FamilyName: "Usual", Language: "es-MX",
		Emails: []string{"a@example.org", "b@example.org"},
		Phones: []string{"3", "2", "1"},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Patient() mismatch (-want +got):\n%s", diff)
	}
}

func TestAppointmentErrors(t *testing.T) {
	booked := string(fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions))
	tests := []struct {
		name string
		give string
		want wantError
		// secret must not appear in the diagnostics.
		secret string
	}{
		{
			name:   "unknown status code",
			give:   strings.Replace(booked, `"status": "booked"`, `"status": "bookedX"`, 1),
			want:   wantError{Reason: "invalid_resource", Code: "invalid", Expression: "Bundle.entry[1].resource.status", Diagnostics: "AppointmentStatus codes (proposed, pending, booked,"},
			secret: "bookedX",
		},
		{
			name: "status missing",
			give: strings.Replace(booked, `"status": "booked"`, `"statusX": "booked"`, 1),
			want: wantError{Reason: "invalid_resource", Code: "required", Expression: "Bundle.entry[1].resource.status", Diagnostics: "required"},
		},
		{
			name:   "participant status",
			give:   strings.Replace(booked, `"status": "accepted"`, `"status": "Peter Chalmers"`, 1),
			want:   wantError{Reason: "invalid_resource", Code: "invalid", Expression: "Bundle.entry[1].resource.participant[0].status", Diagnostics: "ParticipationStatus"},
			secret: "Chalmers",
		},
		{
			name:   "wrong JSON type",
			give:   strings.Replace(booked, `"priority": 5`, `"priority": "Peter"`, 1),
			want:   wantError{Reason: "invalid_resource", Code: "structure", Expression: "Bundle.entry[1].resource.priority", Diagnostics: "expected a number"},
			secret: "Peter",
		},
		{
			name:   "start not an instant",
			give:   strings.Replace(booked, `"start": "2013-12-09T09:00:00Z"`, `"start": "1974-12-25"`, 1),
			want:   wantError{Reason: "invalid_resource", Code: "invalid", Expression: "Bundle.entry[1].resource.start", Diagnostics: "FHIR instant"},
			secret: "1974",
		},
		{
			name: "no id",
			give: strings.Replace(booked, `"id": "2docs"`, `"idX": "2docs"`, 1),
			want: wantError{Reason: "invalid_resource", Code: "required", Expression: "Bundle.entry[1].resource.id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, e := parseOne(t, []byte(tt.give))
			_, err := n.Appointment(e)
			fe, ok := err.(*fhirnotify.Error)
			if !ok {
				t.Fatalf("Appointment() error = %v, want *Error", err)
			}
			got := wantError{Malformed: fe.Malformed, Reason: fe.Reason, Code: fe.Code, Expression: fe.Expression, Diagnostics: tt.want.Diagnostics}
			if !strings.Contains(fe.Diagnostics, tt.want.Diagnostics) {
				got.Diagnostics = fe.Diagnostics
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Appointment() error mismatch (-want +got):\n%s", diff)
			}
			if tt.secret != "" && strings.Contains(fe.Error(), tt.secret) {
				t.Errorf("error %q repeats the input value %q", fe.Error(), tt.secret)
			}
		})
	}
}

func TestPatientError(t *testing.T) {
	booked := string(fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions))
	n, e := parseOne(t, []byte(strings.Replace(booked, `"gender": "male"`, `"gender": "Chalmers"`, 1)))
	a, err := n.Appointment(e)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = n.Patient(a.PatientRef, now)
	fe, ok := err.(*fhirnotify.Error)
	if !ok || fe.Expression != "Bundle.entry[2].resource.gender" || strings.Contains(fe.Error(), "Chalmers") {
		t.Errorf("Patient() error = %v, want one at Bundle.entry[2].resource.gender without the value", err)
	}
}
