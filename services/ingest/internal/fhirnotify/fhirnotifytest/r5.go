package fhirnotifytest

import (
	"encoding/json"
	"testing"
)

// Corpus files of the R4B-style draft (Argonaut) notifications and the
// resources pushed in tests.
const (
	ArgonautHandshake = "fhir/subscriptions/r4b-style-draft/argonaut/Bundle-notification-handshake.json"
	ArgonautHeartbeat = "fhir/subscriptions/r4b-style-draft/argonaut/Bundle-notification-heartbeat.json"
	ArgonautEmpty     = "fhir/subscriptions/r4b-style-draft/argonaut/Bundle-notification-empty.json"
	ArgonautError     = "fhir/subscriptions/r4b-style-draft/argonaut/Bundle-notification-error.json"
	ArgonautMulti     = "fhir/subscriptions/r4b-style-draft/argonaut/Bundle-notification-multi-resource.json"
	// EncounterAdmitted is an in-progress inpatient (IMP) Encounter of
	// Patient/example.
	EncounterAdmitted = "fhir/r4/Encounter/Encounter-emerg.json"
	// EncounterDischarged is a finished Encounter with a discharge
	// disposition, of Patient/f001.
	EncounterDischarged = "fhir/r4/Encounter/Encounter-f001.json"
	// EncounterAmbulatory is a finished ambulatory Encounter with no
	// discharge disposition: no event.
	EncounterAmbulatory = "fhir/r4/Encounter/Encounter-f201.json"
	// LabReport is a final DiagnosticReport of Patient/f201.
	LabReport = "fhir/r4/DiagnosticReport/DiagnosticReport-f201.json"
)

// Resource reads a corpus resource as a map, for tests that change it.
func Resource(tb testing.TB, rel string) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(ReadCorpus(tb, rel), &m); err != nil {
		tb.Fatalf("corpus: %s: %v", rel, err)
	}
	return m
}

// R5Appointment returns the corpus Appointment "2docs" rewritten the R5
// way: status as given, meta.versionId "3", serviceType as a
// CodeableReference (concept) and participant.required as a boolean,
// which the R4 models reject.
func R5Appointment(tb testing.TB, status string) map[string]any {
	tb.Helper()
	a := Resource(tb, AppointmentFile)
	a["status"] = status
	a["meta"] = map[string]any{"versionId": "3", "lastUpdated": "2026-01-10T08:00:00Z"}
	if st, ok := a["serviceType"].([]any); ok {
		for i, cc := range st {
			st[i] = map[string]any{"concept": cc}
		}
	}
	for _, p := range a["participant"].([]any) {
		p.(map[string]any)["required"] = true
	}
	return a
}

// Fixed values of R5Notification.
const (
	R5Subscription = Base + "/Subscription/r5-appointments"
	R5Topic        = "http://example.org/topics/appointment-changed"
)

// R5Notification builds an R5 subscription-notification Bundle of type
// typ, whose one notificationEvent (number eventNumber, when typ carries
// events) has the first resource as its focus; every resource is an entry
// with fullUrl Base/<type>/<id>.
func R5Notification(tb testing.TB, typ string, eventNumber int, resources ...map[string]any) []byte {
	tb.Helper()
	status := map[string]any{
		"resourceType":                 "SubscriptionStatus",
		"id":                           "r5-status",
		"status":                       "active",
		"type":                         typ,
		"eventsSinceSubscriptionStart": eventNumber,
		"subscription":                 map[string]any{"reference": R5Subscription},
		"topic":                        R5Topic,
	}
	entries := []any{map[string]any{"fullUrl": "urn:uuid:7d1f0c2e-0000-4000-8000-000000000005", "resource": status}}
	for i, r := range resources {
		url := Base + "/" + r["resourceType"].(string) + "/" + r["id"].(string)
		if i == 0 && (typ == "event-notification" || typ == "query-event") {
			status["notificationEvent"] = []any{map[string]any{
				"eventNumber": eventNumber, "timestamp": "2026-01-10T08:00:05Z",
				"focus": map[string]any{"reference": url},
			}}
		}
		entries = append(entries, map[string]any{"fullUrl": url, "resource": r})
	}
	b, err := json.MarshalIndent(map[string]any{
		"resourceType": "Bundle", "id": "r5-notification", "type": "subscription-notification",
		"timestamp": "2026-01-10T08:00:06Z", "entry": entries,
	}, "", "  ")
	if err != nil {
		tb.Fatalf("build R5 notification: %v", err)
	}
	return b
}

// PushBundle builds a Bundle of type typ (transaction, batch, collection,
// message) with one entry per resource, each a POST (or PUT when the
// resource has an id) in transactions and batches.
func PushBundle(tb testing.TB, typ string, resources ...map[string]any) []byte {
	tb.Helper()
	var entries []any
	for _, r := range resources {
		rt, _ := r["resourceType"].(string)
		id, _ := r["id"].(string)
		e := map[string]any{"fullUrl": Base + "/" + rt + "/" + id, "resource": r}
		if typ == "transaction" || typ == "batch" {
			e["request"] = map[string]any{"method": "PUT", "url": rt + "/" + id}
		}
		entries = append(entries, e)
	}
	b, err := json.MarshalIndent(map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries}, "", "  ")
	if err != nil {
		tb.Fatalf("build %s Bundle: %v", typ, err)
	}
	return b
}
