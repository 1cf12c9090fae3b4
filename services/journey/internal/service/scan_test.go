package service_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

const (
	canarySSN = "219-44-7081"
	canaryMRN = "MRN88412977"
)

// TestOutboundScanBlocksIdentifiers seeds an SSN and the patient's MRN
// into what the example templates render (the EHR's service type, a
// given name) and checks that those messages are not sent, that the
// blocked steps are audited, counted and traced without the identifiers,
// and that a placeholder SSN and an unrelated number still go.
func TestOutboundScanBlocksIdentifiers(t *testing.T) {
	jdir := t.TempDir()
	for name, content := range map[string]string{"confirm.yaml": traceJourneys["confirm.yaml"], "sms.yaml": smsJourney} {
		if err := os.WriteFile(filepath.Join(jdir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, jdir)
	const emailP = "scan.canary@example.org"
	booking := func(id, subject, serviceType, given string) *eventsv1.ClinicalEvent {
		ev := patientBooking(id, subject, emailP)
		ev.Patient.Identifiers = []*eventsv1.Identifier{{System: "urn:oid:1.2.36.146.595.217.0.1", Value: canaryMRN}}
		ev.GetAppointment().ServiceType = serviceType
		ev.Patient.GivenNames = []string{given}
		return ev
	}
	// 1. An SSN in the EHR's service type: the email (which shows it) is
	// blocked; the text (which does not) goes.
	h.waitSettled(t, h.publish(t, booking("ev-x1", "Appointment/801", "Intake (SSN "+canarySSN+")", canaryGiven)))
	// 2. The patient's MRN in the given name, which both show: both blocked.
	h.waitSettled(t, h.publish(t, booking("ev-x2", "Appointment/802", "Physiotherapy", canaryGiven+" "+strings.ToLower(canaryMRN))))
	// 3. A placeholder SSN and a phone number: sent.
	h.waitSettled(t, h.publish(t, booking("ev-x3", "Appointment/803", "Intake 000-00-0000, call 1-800-555-0199", canaryGiven)))

	if got := len(h.email.callsWithKey(key("confirm", "Appointment/801", 0))); got != 0 {
		t.Errorf("email with an SSN sent %d times", got)
	}
	if got := len(h.sms.callsTo("+15555550123")); got != 2 {
		t.Errorf("%d texts, want 2 (bookings 1 and 3)", got)
	}
	if got := len(h.email.callsWithKey(key("confirm", "Appointment/802", 0))); got != 0 {
		t.Errorf("email with the MRN sent %d times", got)
	}
	if got := len(h.email.callsWithKey(key("confirm", "Appointment/803", 0))); got != 1 {
		t.Errorf("email with a placeholder SSN sent %d times, want 1", got)
	}
	for _, s := range h.sms.callsTo("+15555550123") {
		if strings.Contains(strings.ToLower(s.GetBody()), strings.ToLower(canaryMRN)) {
			t.Errorf("a text carried the MRN")
		}
	}

	type blocked struct{ Channel, Identifier, Part string }
	var got []blocked
	for _, r := range h.audited(t, audit.ActionMessageDecided) {
		if r.Reason == "blocked_identifier" && r.Outcome == audit.OutcomeSuppressed {
			got = append(got, blocked{r.Detail["channel"], r.Detail["identifier"], r.Detail["part"]})
		}
	}
	want := map[blocked]bool{{"email", "ssn", "text"}: true, {"sms", "patient_identifier", "text"}: true, {"email", "patient_identifier", "text"}: true}
	if len(got) != 3 {
		t.Errorf("blocked audit records = %v, want 3", got)
	}
	for _, b := range got {
		if !want[b] {
			t.Errorf("unexpected blocked record %v (want %v)", b, want)
		}
	}
	if err := anyContains(h.logs.String(), canarySSN, canaryMRN, strings.ToLower(canaryMRN)); err != "" {
		t.Errorf("logs hold %s", err)
	}
	m := h.metrics(t)
	for _, line := range []string{
		`journey_outbound_blocked_total{channel="email",identifier="ssn",journey="confirm"} 1`,
		`journey_outbound_blocked_total{channel="email",identifier="patient_identifier",journey="confirm"} 1`,
		`journey_outbound_blocked_total{channel="sms",identifier="patient_identifier",journey="sms-confirmation"} 1`,
		`journey_sends_total{channel="email",journey="confirm",outcome="blocked_identifier"} 2`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s", line)
		}
	}

	resp, err := h.admin(t).Trace(t.Context(), &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_PatientId{PatientId: canaryPatient}})
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^blocked: the rendered email message of step 0 of confirm \(template appointment-confirmation\) held something shaped like a Social Security number in its text; not sent$`)
	found := false
	for _, e := range resp.GetEntries() {
		found = found || re.MatchString(e.GetSummary())
	}
	if !found {
		t.Errorf("trace lacks %s", re)
	}
	b, _ := protojson.Marshal(resp)
	if err := anyContains(string(b), canarySSN, canaryMRN); err != "" {
		t.Errorf("trace holds %s", err)
	}
}

// anyContains returns the first of canaries in s, or "".
func anyContains(s string, canaries ...string) string {
	for _, c := range canaries {
		if strings.Contains(s, c) {
			return c
		}
	}
	return ""
}
