package fhirnotifytest

import (
	"github.com/carenotify/carenotify/pkg/corpus"

	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// CorpusDir returns the shared test corpus (<repo>/../shared/corpus),
// failing the test when it is missing.
func CorpusDir(tb testing.TB) string {
	tb.Helper()
	return corpus.Dir(tb)
}

// ReadCorpus returns the corpus file at rel (slash-separated, relative to
// the corpus directory).
func ReadCorpus(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(CorpusDir(tb), filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return b
}

// Corpus file paths used by ingest's tests.
const (
	HandshakeBundle = "fhir/subscriptions/r4-backport/inferno/handshake_bundle_example.json"
	HeartbeatBundle = "fhir/subscriptions/r4-backport/inferno/heartbeat_bundle_example.json"
	EmptyBundle     = "fhir/subscriptions/r4-backport/inferno/empty_notification_bundle_example.json"
	AthenaIDOnly    = "fhir/subscriptions/vendor/athenahealth/appointment-notification.json"
	AppointmentFile = "fhir/r4/Appointment/Appointment-2docs.json"
	PatientFile     = "fhir/r4/Patient/Patient-example.json"
	// InfernoExpected holds the Inferno full-resource notification (an
	// Encounter) as a JSON string; see InfernoFullResourceBundle.
	InfernoExpected = "fhir/subscriptions/conformance/inferno-expected/subscriptions_r4_full_resource_with_commands_client_expected.json"
)

// InfernoFullResourceBundle returns the full-resource notification Bundle
// the Inferno subscriptions test kit sends: the value of the input named
// notification_bundle of the first test in InfernoExpected.
func InfernoFullResourceBundle(tb testing.TB) []byte {
	tb.Helper()
	var runs []struct {
		Inputs []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(ReadCorpus(tb, InfernoExpected), &runs); err != nil {
		tb.Fatalf("corpus: %s: %v", InfernoExpected, err)
	}
	if len(runs) > 0 {
		for _, in := range runs[0].Inputs {
			if s, ok := in.Value.(string); ok && in.Name == "notification_bundle" {
				return []byte(s)
			}
		}
	}
	tb.Fatalf("corpus: %s: no notification_bundle input in the first element", InfernoExpected)
	return nil
}

// readObject reads a corpus file holding a JSON object, keeping its key
// order.
func readObject(tb testing.TB, rel string) *object {
	tb.Helper()
	v, err := parseOrdered(ReadCorpus(tb, rel))
	o, ok := v.(*object)
	if err != nil || !ok {
		tb.Fatalf("corpus: %s: not a JSON object: %v", rel, err)
	}
	return o
}
