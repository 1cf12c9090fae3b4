package fhirnotify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// FuzzParseNotification feeds the parser, and the resource readers behind
// it, arbitrary bodies seeded with every subscription notification of the
// shared corpus. Nothing may panic, and every error must be an *Error.
func FuzzParseNotification(f *testing.F) {
	dir := filepath.Join(fhirnotifytest.CorpusDir(f), "fhir", "subscriptions")
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil {
			f.Add(b)
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fhirnotifytest.InfernoFullResourceBundle(f))
	f.Add(fhirnotifytest.AppointmentNotification(f, fhirnotifytest.BookedOptions))
	f.Add(fhirnotifytest.AppointmentNotification(f, fhirnotifytest.Options{Status: "cancelled", WithoutPatient: true}))
	f.Add(fhirnotifytest.R5Notification(f, "event-notification", 7, fhirnotifytest.R5Appointment(f, "booked"), fhirnotifytest.Resource(f, fhirnotifytest.PatientFile)))
	f.Add(fhirnotifytest.R5Notification(f, "heartbeat", 7))
	f.Add([]byte(`{"resourceType":"Bundle","type":"subscription-notification","entry":[{"resource":{"resourceType":"SubscriptionStatus","type":"event-notification","eventsSinceSubscriptionStart":"3","notificationEvent":[{"eventNumber":"3","focus":{"reference":"Encounter/e"}}]}},{"resource":{"resourceType":"Encounter","id":"e","status":"discharged","class":[{"coding":[{"code":"IMP"}]}],"subject":{"reference":"Patient/p"}}},{"resource":{"resourceType":"DiagnosticReport","id":"d","status":"amended","issued":"2026-01-01T00:00:00Z"}}]}`))
	f.Add([]byte("\xEF\xBB\xBF{}"))
	f.Add([]byte(`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"SubscriptionStatus","type":"event-notification","notificationEvent":[{"eventNumber":2,"focus":{"reference":"urn:uuid:a"}}]}},{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Appointment","id":"a","status":"noshow","participant":[{"actor":{"reference":"urn:uuid:p"},"status":"accepted"}]}},{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p"}}]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := fhirnotify.ParseNotification(body)
		if err != nil {
			if _, ok := err.(*fhirnotify.Error); !ok {
				t.Fatalf("error %T is not an *Error", err)
			}
			return
		}
		_ = n.Payload()
		for _, e := range n.Entries {
			_, _ = n.EventFor(e)
			readOthers(t, &n.Collection, e)
			if e.ResourceType != "Appointment" {
				continue
			}
			a, err := n.Appointment(e)
			if err != nil {
				if _, ok := err.(*fhirnotify.Error); !ok {
					t.Fatalf("Appointment error %T is not an *Error", err)
				}
				continue
			}
			_ = a.ResourceVersion()
			if _, _, err := n.Patient(a.PatientRef, now); err != nil {
				if _, ok := err.(*fhirnotify.Error); !ok {
					t.Fatalf("Patient error %T is not an *Error", err)
				}
			}
		}
	})
}

// readOthers reads an Encounter or DiagnosticReport entry; errors must be
// *Error.
func readOthers(t *testing.T, c *fhirnotify.Collection, e fhirnotify.Entry) {
	var err error
	switch e.ResourceType {
	case "Encounter":
		_, err = c.Encounter(e)
	case "DiagnosticReport":
		_, err = c.DiagnosticReport(e)
	case "Appointment":
		_, err = c.Appointment(e)
	default:
		return
	}
	if err != nil {
		if _, ok := err.(*fhirnotify.Error); !ok {
			t.Fatalf("%s error %T is not an *Error", e.ResourceType, err)
		}
	}
}

// FuzzParsePush feeds the push parser and the resource readers arbitrary
// bodies seeded with the corpus Encounters, DiagnosticReports and pushed
// Bundles. Nothing may panic, and every error must be an *Error.
func FuzzParsePush(f *testing.F) {
	for _, rel := range []string{fhirnotifytest.EncounterAdmitted, fhirnotifytest.EncounterDischarged,
		fhirnotifytest.EncounterAmbulatory, fhirnotifytest.LabReport, fhirnotifytest.AppointmentFile} {
		f.Add(fhirnotifytest.ReadCorpus(f, rel), "")
	}
	enc := fhirnotifytest.Resource(f, fhirnotifytest.EncounterAdmitted)
	rep := fhirnotifytest.Resource(f, fhirnotifytest.LabReport)
	for _, typ := range []string{"transaction", "batch", "collection", "message"} {
		f.Add(fhirnotifytest.PushBundle(f, typ, enc, rep), "")
	}
	f.Add(fhirnotifytest.ReadCorpus(f, fhirnotifytest.EncounterAdmitted), "Encounter")
	f.Add(fhirnotifytest.ReadCorpus(f, fhirnotifytest.LabReport), "DiagnosticReport")
	f.Add([]byte(`{"resourceType":"Bundle","type":"batch","entry":[{"resource":5},{"request":{"method":"DELETE"}},{"resource":{"resourceType":"Encounter","class":"x"}}]}`), "")

	f.Fuzz(func(t *testing.T, body []byte, pathType string) {
		p, err := fhirnotify.ParsePush(body, pathType)
		if err != nil {
			if _, ok := err.(*fhirnotify.Error); !ok {
				t.Fatalf("error %T is not an *Error", err)
			}
			return
		}
		for _, e := range p.Entries {
			readOthers(t, &p.Collection, e)
		}
	})
}
