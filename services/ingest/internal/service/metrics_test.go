package service_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// TestMetricsPerSourceAndType sends FHIR notifications and corpus HL7 v2
// messages through the whole service and scrapes /metrics: received,
// published, duplicates, rejections by reason and the response latency
// histogram are counted per source, input path and message type, with
// no PHI in any label.
func TestMetricsPerSourceAndType(t *testing.T) {
	cfg := startBoth(t, &logtest.Buffer{}, func(*config.Config) {})
	body := booking(t, fhirnotifytest.Options{})
	for i, want := range []int{http.StatusOK, http.StatusOK} { // the second is a retry: same version
		if got := post(t, cfg, "demo-token", body); got != want {
			t.Fatalf("booking %d = %d", i, got)
		}
	}
	if got := post(t, cfg, "demo-token", `{"resourceType":`); got != http.StatusBadRequest {
		t.Fatalf("malformed = %d", got)
	}
	oru := hl7test.Read(t, "ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase1.hl7")
	for i, want := range []string{"AA ", "AA "} { // the second is a resend: the stored ACK
		if got := sendHL7(t, cfg, oru); got != want {
			t.Fatalf("ORU %d: ACK %q", i, got)
		}
	}
	if got := sendHL7(t, cfg, hl7test.Read(t, "malformed/nodehl7-misc-bad-phone-example.hl7")); got != "AE 100" {
		t.Fatalf("SIU without SCH: ACK %q", got)
	}

	_, text := get(t, cfg, "/metrics")
	for _, want := range []string{
		`ingest_received_total{input="fhir-notification",source="demo",type="event-notification"} 2`,
		`ingest_received_total{input="fhir-notification",source="demo",type="unknown"} 1`,
		`ingest_published_total{input="fhir-notification",source="demo",type="event-notification"} 1`,
		`ingest_duplicates_total{input="fhir-notification",reason="same_version",source="demo",type="event-notification"} 1`,
		`ingest_rejected_total{input="fhir-notification",reason="malformed_json",source="demo",type="unknown"} 1`,
		`ingest_received_total{input="hl7v2",source="demo-hl7",type="ORU^R01"} 2`,
		`ingest_published_total{input="hl7v2",source="demo-hl7",type="ORU^R01"} 1`,
		`ingest_duplicates_total{input="hl7v2",reason="resent_control_id",source="demo-hl7",type="ORU^R01"} 1`,
		`ingest_rejected_total{input="hl7v2",reason="hl7_unprocessable",source="demo-hl7",type="SIU^S12"} 1`,
		`ingest_response_seconds_count{input="fhir-notification",source="demo",type="event-notification"} 2`,
		`ingest_response_seconds_count{input="hl7v2",source="demo-hl7",type="ORU^R01"} 2`,
		`ingest_response_seconds_bucket{input="hl7v2",source="demo-hl7",type="ORU^R01",le="+Inf"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, `ingest_published_total{input="hl7v2",source="demo-hl7",type="SIU^S12"}`) {
		t.Error("a rejected message counted as published")
	}
	// Label values come from fixed sets: nothing from the messages'
	// patients, identifiers or control ids.
	for _, phi := range []string{"Johnson", "Philip", "9817566735", "9700123", "NIST-100929110701660", "12345", "PATID"} {
		if regexp.MustCompile(`\{[^}]*` + regexp.QuoteMeta(phi)).MatchString(text) {
			t.Errorf("/metrics labels hold %q", phi)
		}
	}
}
