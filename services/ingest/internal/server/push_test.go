package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/envelope"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// pushAnswer is a push response: an OperationOutcome or a
// transaction-/batch-response Bundle.
type pushAnswer struct {
	status int
	body   struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		outcome
		Entry []struct {
			Response struct {
				Status  string  `json:"status"`
				Outcome outcome `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
}

// entryStatuses returns each response entry's status and first issue's
// expression (or diagnostics when it has none).
func (a pushAnswer) entryStatuses() []string {
	var out []string
	for _, e := range a.body.Entry {
		s := e.Response.Status
		if is := e.Response.Outcome.Issue; len(is) > 0 && len(is[0].Expression) > 0 && strings.HasPrefix(s, "4") {
			s += " " + is[0].Expression[0]
		}
		out = append(out, s)
	}
	return out
}

func (e *env) push(t *testing.T, path string, body []byte) pushAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/fhir/demo"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer demo-token")
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := pushAnswer{status: resp.StatusCode}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Fatalf("Content-Type = %q; body %s", ct, b)
	}
	if err := json.Unmarshal(b, &out.body); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	out.body.outcome.ResourceType = out.body.ResourceType
	return out
}

// events returns the stored events, unsealed, in stream order.
func (e *env) events(t *testing.T) []*eventsv1.ClinicalEvent {
	t.Helper()
	var out []*eventsv1.ClinicalEvent
	for _, m := range e.messages(t, "EHR_EVENTS") {
		var ev eventsv1.ClinicalEvent
		if err := proto.Unmarshal(e.open(t, m, envelope.KindEHREvent), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, &ev)
	}
	return out
}

// eventSummary is what the push tests compare of an event.
type eventSummary struct {
	Kind, Action, Subject, Patient, Family string
	Protocol                               eventsv1.Protocol
	EventNumber                            int64
}

func summariseEvents(evs []*eventsv1.ClinicalEvent) []eventSummary {
	var out []eventSummary
	for _, ev := range evs {
		out = append(out, eventSummary{Kind: ev.GetKind(), Action: ev.GetAction(), Subject: ev.GetSubjectRef(),
			Patient: ev.GetPatient().GetId(), Family: ev.GetPatient().GetFamilyName(),
			Protocol: ev.GetSource().GetProtocol(), EventNumber: ev.GetSource().GetEventNumber()})
	}
	return out
}

// assertNoIdentifiers fails when the logs hold a patient or resource
// identifier of the corpus resources used here.
func (e *env) assertNoIdentifiers(t *testing.T) {
	t.Helper()
	logs := e.logs.String()
	for _, s := range []string{"Chalmers", "Peter", "1974-12-25", fhirnotifytest.CanaryEmail, "Patient/", "emerg", "f001", "f201", "Roel", "Heuvel"} {
		if strings.Contains(logs, s) {
			t.Errorf("logs hold %q:\n%s", s, logs)
		}
	}
}

func TestR5AndR4BNotificationEvents(t *testing.T) {
	patient := fhirnotifytest.Resource(t, fhirnotifytest.PatientFile)
	argonaut := bytes.Replace(fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautMulti), []byte(`"code": "VR"`), []byte(`"code": "IMP"`), 1)
	tests := []struct {
		name string
		give []byte
		want []eventSummary
	}{
		{name: "R5 appointment with R5-only shapes", give: fhirnotifytest.R5Notification(t, "event-notification", 7, fhirnotifytest.R5Appointment(t, "booked"), patient),
			want: []eventSummary{{Kind: "appointment", Action: "booked", Subject: "Appointment/2docs", Patient: "example", Family: "Chalmers",
				Protocol: eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R5, EventNumber: 7}}},
		{name: "R5 encounter with an R5-only status (completed)", give: fhirnotifytest.R5Notification(t, "event-notification", 8, r5Encounter(t, "completed"), patient),
			want: []eventSummary{{Kind: "encounter", Action: "discharged", Subject: "Encounter/emerg", Patient: "example", Family: "Chalmers",
				Protocol: eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R5, EventNumber: 8}}},
		{name: "argonaut multi-resource, inpatient", give: argonaut,
			want: []eventSummary{{Kind: "encounter", Action: "admitted", Subject: "Encounter/551683b3-1477-41d1-b58e-32fe8b0047b0",
				Patient: "46db3334-dbf5-43f3-868f-93ae0883cce1", Family: "Patient",
				Protocol: eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R4B, EventNumber: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.post(t, demo(tt.give))
			if got.status != 200 || got.outcome.Issue[0].Diagnostics != "accepted 1 event(s)" {
				t.Fatalf("post = %d %+v, want 200 accepted 1 event(s)", got.status, got.outcome)
			}
			if diff := cmp.Diff(tt.want, summariseEvents(e.events(t))); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
			e.assertNoIdentifiers(t)
		})
	}
}

// r5Encounter is the corpus inpatient Encounter written the R5 way (class
// a list, admission instead of hospitalization) with status as given.
func r5Encounter(t *testing.T, status string) map[string]any {
	enc := fhirnotifytest.Resource(t, fhirnotifytest.EncounterAdmitted)
	enc["status"] = status
	enc["class"] = []any{map[string]any{"coding": []any{enc["class"]}}}
	return enc
}

func TestPushSingleResources(t *testing.T) {
	tests := []struct {
		name, path string
		give       []byte
		wantStatus int
		wantDiag   string
		want       []eventSummary
	}{
		{name: "admitted encounter", path: "/Encounter", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EncounterAdmitted),
			wantStatus: 201, wantDiag: "accepted 1 event (encounter.admitted)",
			want: []eventSummary{{Kind: "encounter", Action: "admitted", Subject: "Encounter/emerg", Patient: "example", Protocol: eventsv1.Protocol_PROTOCOL_FHIR_REST}}},
		{name: "discharged encounter", path: "/Encounter", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EncounterDischarged),
			wantStatus: 201, wantDiag: "accepted 1 event (encounter.discharged)",
			want: []eventSummary{{Kind: "encounter", Action: "discharged", Subject: "Encounter/f001", Patient: "f001", Protocol: eventsv1.Protocol_PROTOCOL_FHIR_REST}}},
		{name: "final report", path: "/DiagnosticReport", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport),
			wantStatus: 201, wantDiag: "accepted 1 event (lab_result.final)",
			want: []eventSummary{{Kind: "lab_result", Action: "final", Subject: "DiagnosticReport/f201", Patient: "f201", Protocol: eventsv1.Protocol_PROTOCOL_FHIR_REST}}},
		{name: "corrected report", path: "/DiagnosticReport", give: bytes.Replace(fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport), []byte(`"status": "final"`), []byte(`"status": "corrected"`), 1),
			wantStatus: 201, wantDiag: "accepted 1 event (lab_result.amended)",
			want: []eventSummary{{Kind: "lab_result", Action: "amended", Subject: "DiagnosticReport/f201", Patient: "f201", Protocol: eventsv1.Protocol_PROTOCOL_FHIR_REST}}},
		{name: "report entered in error", path: "/DiagnosticReport", give: bytes.Replace(fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport), []byte(`"status": "final"`), []byte(`"status": "entered-in-error"`), 1),
			wantStatus: 200, wantDiag: "DiagnosticReport accepted; entered-in-error: no event"},
		{name: "ambulatory encounter", path: "/Encounter", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EncounterAmbulatory),
			wantStatus: 200, wantDiag: "Encounter accepted; no transition from its last-seen state: no event"},
		{name: "first-seen patient", path: "/Patient", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.PatientFile),
			wantStatus: 200, wantDiag: "Patient accepted; first seen: its state is kept to compare later versions with, no event"},
		{name: "unsupported type", path: "/Observation", give: fhirnotifytest.ReadCorpus(t, "fhir/r4/Observation/Observation-example.json"),
			wantStatus: 200, wantDiag: "Observation is not a supported resource type: accepted, no event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.push(t, tt.path, tt.give)
			if got.status != tt.wantStatus || got.body.ResourceType != "OperationOutcome" || got.body.Issue[0].Diagnostics != tt.wantDiag {
				t.Fatalf("push = %d %+v, want %d %q", got.status, got.body.outcome, tt.wantStatus, tt.wantDiag)
			}
			if diff := cmp.Diff(tt.want, summariseEvents(e.events(t))); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
			if tt.wantStatus == 201 { // a retry is deduplicated and answered 200
				if again := e.push(t, tt.path, tt.give); again.status != 200 || len(e.events(t)) != 1 {
					t.Errorf("retry = %d with %d events, want 200 and 1", again.status, len(e.events(t)))
				}
			}
			e.assertNoIdentifiers(t)
		})
	}
}

func TestPushBundles(t *testing.T) {
	encAdmitted := fhirnotifytest.Resource(t, fhirnotifytest.EncounterAdmitted)
	encDischarged := fhirnotifytest.Resource(t, fhirnotifytest.EncounterDischarged)
	report := fhirnotifytest.Resource(t, fhirnotifytest.LabReport)
	patient := fhirnotifytest.Resource(t, fhirnotifytest.PatientFile)
	badReport := fhirnotifytest.Resource(t, fhirnotifytest.LabReport)
	delete(badReport, "status")
	rest := eventsv1.Protocol_PROTOCOL_FHIR_REST
	admitted := eventSummary{Kind: "encounter", Action: "admitted", Subject: "Encounter/emerg", Patient: "example", Family: "Chalmers", Protocol: rest}
	discharged := eventSummary{Kind: "encounter", Action: "discharged", Subject: "Encounter/f001", Patient: "f001", Protocol: rest}
	final := eventSummary{Kind: "lab_result", Action: "final", Subject: "DiagnosticReport/f201", Patient: "f201", Protocol: rest}
	tests := []struct {
		name         string
		give         []byte
		wantStatus   int
		wantType     string   // Bundle type of the answer; "" for an OperationOutcome
		wantEntries  []string // per-entry status (and expression when rejected)
		wantIssue    string   // first issue's diagnostics (substring) or expression for OperationOutcomes
		wantEvents   []eventSummary
		wantDeadLets int
	}{
		{name: "transaction", give: fhirnotifytest.PushBundle(t, "transaction", encAdmitted, encDischarged, report, patient),
			wantStatus: 200, wantType: "transaction-response",
			wantEntries: []string{"201 Created", "201 Created", "201 Created", "200 OK"},
			wantEvents:  []eventSummary{admitted, discharged, final}},
		{name: "transaction with a bad entry publishes nothing", give: fhirnotifytest.PushBundle(t, "transaction", encAdmitted, badReport, patient),
			wantStatus: 400, wantIssue: "Bundle.entry[1].resource.status", wantDeadLets: 1},
		{name: "batch with a bad entry processes the others", give: fhirnotifytest.PushBundle(t, "batch", encAdmitted, badReport, report, patient),
			wantStatus: 200, wantType: "batch-response",
			wantEntries:  []string{"201 Created", "422 Unprocessable Entity Bundle.entry[1].resource.status", "201 Created", "200 OK"},
			wantEvents:   []eventSummary{admitted, final},
			wantDeadLets: 1},
		{name: "collection", give: fhirnotifytest.PushBundle(t, "collection", encDischarged, patient),
			wantStatus: 200, wantIssue: "accepted 1 event(s)", wantEvents: []eventSummary{discharged}},
		{name: "message", give: fhirnotifytest.PushBundle(t, "message", map[string]any{"resourceType": "MessageHeader", "id": "m1"}, report),
			wantStatus: 200, wantIssue: "accepted 1 event(s)", wantEvents: []eventSummary{final}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.push(t, "", tt.give)
			if got.status != tt.wantStatus {
				t.Fatalf("push = %d %+v", got.status, got.body)
			}
			if tt.wantType != "" {
				if got.body.ResourceType != "Bundle" || got.body.Type != tt.wantType {
					t.Errorf("answer is %s %s, want Bundle %s", got.body.ResourceType, got.body.Type, tt.wantType)
				}
				if diff := cmp.Diff(tt.wantEntries, got.entryStatuses()); diff != "" {
					t.Errorf("entry statuses mismatch (-want +got):\n%s", diff)
				}
			} else {
				is := got.body.Issue
				if got.body.ResourceType != "OperationOutcome" || len(is) == 0 ||
					!(strings.Contains(is[0].Diagnostics, tt.wantIssue) || len(is[0].Expression) > 0 && is[0].Expression[0] == tt.wantIssue) {
					t.Errorf("answer = %+v, want an OperationOutcome with %q", got.body.outcome, tt.wantIssue)
				}
			}
			if diff := cmp.Diff(tt.wantEvents, summariseEvents(e.events(t))); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
			if n := len(e.messages(t, "EHR_DEAD")); n != tt.wantDeadLets {
				t.Errorf("EHR_DEAD holds %d messages, want %d", n, tt.wantDeadLets)
			}
			e.assertNoIdentifiers(t)
		})
	}
}

func TestPushRejections(t *testing.T) {
	tests := []struct {
		name, path string
		give       []byte
		wantStatus int
		wantExpr   string
	}{
		{name: "type differs from URL", path: "/Encounter", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport), wantStatus: 400, wantExpr: "resourceType"},
		{name: "invalid single resource", path: "/Encounter", give: []byte(`{"resourceType":"Encounter","id":"x"}`), wantStatus: 422, wantExpr: "Encounter.status"},
		{name: "resource at base", path: "", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport), wantStatus: 422, wantExpr: "resourceType"},
		{name: "notification at base", path: "", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautHeartbeat), wantStatus: 422, wantExpr: "Bundle.type"},
		{name: "not a resource type", path: "/encounter", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.LabReport), wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.push(t, tt.path, tt.give)
			expr := ""
			if is := got.body.Issue; len(is) > 0 && len(is[0].Expression) > 0 {
				expr = is[0].Expression[0]
			}
			if got.status != tt.wantStatus || expr != tt.wantExpr || got.body.ResourceType != "OperationOutcome" {
				t.Errorf("push = %d %+v, want %d at %q", got.status, got.body.outcome, tt.wantStatus, tt.wantExpr)
			}
			if n := len(e.messages(t, "EHR_EVENTS")); n != 0 {
				t.Errorf("EHR_EVENTS holds %d messages, want 0", n)
			}
		})
	}
}
