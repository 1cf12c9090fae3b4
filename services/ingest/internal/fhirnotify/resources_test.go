package fhirnotify_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// pushOne parses body as a single pushed resource of type typ.
func pushOne(t *testing.T, typ string, body []byte) (*fhirnotify.Push, fhirnotify.Entry) {
	t.Helper()
	p, err := fhirnotify.ParsePush(body, typ)
	if err != nil {
		t.Fatalf("ParsePush() error = %v", err)
	}
	return p, p.Entries[0]
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// r5Encounter is the corpus inpatient Encounter rewritten the R5 way:
// class a list of CodeableConcepts, hospitalization renamed admission and
// status an R5-only code.
func r5Encounter(t *testing.T, status string) map[string]any {
	t.Helper()
	enc := fhirnotifytest.Resource(t, fhirnotifytest.EncounterAdmitted)
	enc["status"] = status
	enc["class"] = []any{map[string]any{"coding": []any{enc["class"]}}}
	enc["admission"] = map[string]any{"dischargeDisposition": map[string]any{"text": "home"}}
	delete(enc, "hospitalization")
	return enc
}

func TestEncounter(t *testing.T) {
	type want struct {
		Ref, Status                     string
		Inpatient, DischargeDisposition bool
		PatientRef                      string
	}
	tests := []struct {
		name string
		give []byte
		want want
	}{
		{name: "corpus emerg, in-progress inpatient", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EncounterAdmitted),
			want: want{Ref: "Encounter/emerg", Status: "in-progress", Inpatient: true, PatientRef: "Patient/example"}},
		{name: "corpus f001, finished with discharge disposition", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EncounterDischarged),
			want: want{Ref: "Encounter/f001", Status: "finished", DischargeDisposition: true, PatientRef: "Patient/f001"}},
		{name: "corpus f201, finished ambulatory", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EncounterAmbulatory),
			want: want{Ref: "Encounter/f201", Status: "finished", PatientRef: "Patient/f201"}},
		{name: "R5 completed, class list, admission", give: mustJSON(t, r5Encounter(t, "completed")),
			want: want{Ref: "Encounter/emerg", Status: "completed", Inpatient: true, DischargeDisposition: true, PatientRef: "Patient/example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, e := pushOne(t, "Encounter", tt.give)
			enc, err := p.Encounter(e)
			if err != nil {
				t.Fatalf("Encounter() error = %v", err)
			}
			got := want{Ref: enc.Ref(), Status: enc.Status, Inpatient: enc.Inpatient, DischargeDisposition: enc.DischargeDisposition, PatientRef: enc.PatientRef}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Encounter() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestR5CodesNeedRawReading shows why R5 resources are read from raw JSON:
// the R4 models reject them.
func TestR5CodesNeedRawReading(t *testing.T) {
	if _, err := fhir.UnmarshalEncounter(mustJSON(t, r5Encounter(t, "completed"))); err == nil {
		t.Error("the R4 model read an R5 Encounter status; the raw reading is no longer needed")
	}
	if _, err := fhir.UnmarshalAppointment(mustJSON(t, fhirnotifytest.R5Appointment(t, "booked"))); err == nil {
		t.Error("the R4 model read an R5 Appointment (participant.required boolean)")
	}
}

func TestR5Appointment(t *testing.T) {
	body := fhirnotifytest.R5Notification(t, "event-notification", 3,
		fhirnotifytest.R5Appointment(t, "cancelled"), fhirnotifytest.Resource(t, fhirnotifytest.PatientFile))
	n, e := parseOne(t, body)
	got, err := n.Appointment(e)
	if err != nil {
		t.Fatalf("Appointment() error = %v", err)
	}
	wantFacts := &eventsv1.AppointmentFacts{
		Status:       "cancelled",
		Start:        timestamppb.New(time.Date(2013, 12, 9, 9, 0, 0, 0, time.UTC)),
		End:          timestamppb.New(time.Date(2013, 12, 9, 11, 0, 0, 0, time.UTC)),
		ServiceType:  "General Discussion",
		Participants: []string{"Dr Adam Careful", "Luigi Maas", "Phone Call"},
		Description:  "Discussion about Peter Chalmers MRI results",
	}
	if got.Status != "cancelled" || got.PatientRef != "Patient/example" || got.ResourceVersion() != "Appointment/2docs/_history/3" {
		t.Errorf("Appointment() = status %q, patient %q, version %q", got.Status, got.PatientRef, got.ResourceVersion())
	}
	if diff := cmp.Diff(wantFacts, got.Facts, protocmp.Transform()); diff != "" {
		t.Errorf("facts mismatch (-want +got):\n%s", diff)
	}
}

func TestDiagnosticReport(t *testing.T) {
	p, e := pushOne(t, "DiagnosticReport", fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport))
	dr, err := p.DiagnosticReport(e)
	if err != nil {
		t.Fatalf("DiagnosticReport() error = %v", err)
	}
	if dr.Ref() != "DiagnosticReport/f201" || dr.Status != "final" || dr.PatientRef != "Patient/f201" || dr.Issued.IsZero() {
		t.Errorf("DiagnosticReport() = %s %s %s issued %v", dr.Ref(), dr.Status, dr.PatientRef, dr.Issued)
	}
}

func TestResourceErrors(t *testing.T) {
	tests := []struct {
		name, typ, give string
		want            wantError
	}{
		{name: "encounter without status", typ: "Encounter", give: `{"resourceType":"Encounter","id":"x"}`,
			want: wantError{Reason: "invalid_resource", Code: "required", Expression: "Encounter.status"}},
		{name: "encounter without id", typ: "Encounter", give: `{"resourceType":"Encounter","status":"finished"}`,
			want: wantError{Reason: "invalid_resource", Code: "required", Expression: "Encounter.id"}},
		{name: "encounter class a string", typ: "Encounter", give: `{"resourceType":"Encounter","id":"x","status":"finished","class":"IMP"}`,
			want: wantError{Reason: "invalid_resource", Code: "structure", Expression: "Encounter.class"}},
		{name: "report status not a code, not echoed", typ: "DiagnosticReport", give: `{"resourceType":"DiagnosticReport","id":"x","status":"Peter Chalmers"}`,
			want: wantError{Reason: "invalid_resource", Code: "invalid", Expression: "DiagnosticReport.status", Diagnostics: "expected a lowercase FHIR code"}},
		{name: "report subject a string", typ: "DiagnosticReport", give: `{"resourceType":"DiagnosticReport","id":"x","status":"final","subject":"Patient/1"}`,
			want: wantError{Reason: "invalid_resource", Code: "structure", Expression: "DiagnosticReport.subject", Diagnostics: "expected an object"}},
		{name: "report issued not an instant", typ: "DiagnosticReport", give: `{"resourceType":"DiagnosticReport","id":"x","status":"final","issued":"2020"}`,
			want: wantError{Reason: "invalid_resource", Code: "invalid", Expression: "DiagnosticReport.issued"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, e := pushOne(t, tt.typ, []byte(tt.give))
			var err error
			if tt.typ == "Encounter" {
				_, err = p.Encounter(e)
			} else {
				_, err = p.DiagnosticReport(e)
			}
			fe, ok := err.(*fhirnotify.Error)
			if !ok {
				t.Fatalf("error = %v, want an *Error", err)
			}
			got := wantError{Malformed: fe.Malformed, Reason: fe.Reason, Code: fe.Code, Expression: fe.Expression, Diagnostics: tt.want.Diagnostics}
			if diff := cmp.Diff(tt.want, got); diff != "" || !contains(fe.Diagnostics, tt.want.Diagnostics) {
				t.Errorf("error mismatch (-want +got):\n%s\ndiagnostics %q", diff, fe.Diagnostics)
			}
		})
	}
}

func TestParsePushErrors(t *testing.T) {
	tests := []struct {
		name, typ, give string
		want            wantError
	}{
		{name: "type differs from URL", typ: "Encounter", give: `{"resourceType":"Patient"}`,
			want: wantError{Malformed: true, Reason: "invalid_resource", Code: "invalid", Expression: "resourceType", Diagnostics: "differs"}},
		{name: "resource at base", typ: "", give: `{"resourceType":"Encounter"}`,
			want: wantError{Reason: "invalid_resource", Code: "invalid", Expression: "resourceType", Diagnostics: "takes a Bundle"}},
		{name: "history bundle", typ: "", give: `{"resourceType":"Bundle","type":"history"}`,
			want: wantError{Reason: "invalid_resource", Code: "not-supported", Expression: "Bundle.type", Diagnostics: "notifications"}},
		{name: "searchset bundle", typ: "", give: `{"resourceType":"Bundle","type":"searchset"}`,
			want: wantError{Reason: "invalid_resource", Code: "not-supported", Expression: "Bundle.type", Diagnostics: "got searchset"}},
		{name: "not JSON", typ: "", give: `{"resourceType":`,
			want: wantError{Malformed: true, Reason: "malformed_json", Code: "structure", Diagnostics: "byte offset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fhirnotify.ParsePush([]byte(tt.give), tt.typ)
			fe, ok := err.(*fhirnotify.Error)
			if !ok {
				t.Fatalf("error = %v, want an *Error", err)
			}
			got := wantError{Malformed: fe.Malformed, Reason: fe.Reason, Code: fe.Code, Expression: fe.Expression, Diagnostics: tt.want.Diagnostics}
			if diff := cmp.Diff(tt.want, got); diff != "" || !contains(fe.Diagnostics, tt.want.Diagnostics) {
				t.Errorf("error mismatch (-want +got):\n%s\ndiagnostics %q", diff, fe.Diagnostics)
			}
		})
	}
}

func contains(s, sub string) bool {
	return strings.Contains(s, sub)
}
