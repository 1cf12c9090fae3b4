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
