package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// TestUnreachableThenStoredContacts: a patient with no usable contact on
// the step's channel nor its fallback is recorded as unreachable (audit,
// metric, Trace), not dropped; a patient.updated then brings an address,
// and the next booking, which carries no contacts (as an HL7 v2 message
// often does), goes to it.
func TestUnreachableThenStoredContacts(t *testing.T) {
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "sms.yaml"), []byte(smsJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const emailU = "unreachable.canary@example.org"

	ev := patientBooking("ev-u1", "Appointment/901", "")
	ev.Patient.Emails, ev.Patient.Phones = nil, []string{"ask at the desk"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.logs.String())
		}
	})
	h.waitSettled(t, h.publish(t, ev))
	if n := len(h.sms.callsTo("ask at the desk")) + len(h.email.callsTo(emailU)); n != 0 {
		t.Fatalf("%d sends to an unreachable patient", n)
	}
	rec := h.waitAudited(t, audit.ActionMessageDecided, audit.OutcomeSuppressed, "unreachable")
	if rec.Detail["channels"] != "sms+email" || rec.Detail["channel"] != "email" || !strings.HasSuffix(rec.Object.ID, "/0") {
		t.Errorf("unreachable record = %+v", rec)
	}
	var noContact bool
	for _, r := range h.audited(t, audit.ActionMessageDecided) {
		noContact = noContact || (r.Reason == "no_contact" && r.Detail["channel"] == "sms")
	}
	if !noContact {
		t.Error("no no_contact record for sms before the fallback")
	}
	m := h.metrics(t)
	for _, line := range []string{
		`journey_sends_total{channel="sms",journey="sms-confirmation",outcome="unreachable"} 1`,
		`journey_sends_total{channel="sms",journey="sms-confirmation",outcome="no_contact"} 1`,
		`journey_sends_total{channel="sms",journey="sms-confirmation",outcome="fallback"} 1`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s\n%s", line, grep(m, "journey_sends_total"))
		}
	}
	resp, err := h.admin(t).Trace(t.Context(), &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_PatientId{PatientId: canaryPatient}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range resp.GetEntries() {
		found = found || e.GetSummary() == "suppressed: unreachable, the patient has no usable contact point on sms or email; not sent (step 0 of sms-confirmation)"
	}
	if !found {
		b, _ := protojson.Marshal(resp)
		t.Errorf("trace does not show the patient unreachable:\n%s", b)
	}

	// The EHR updates the patient: an email address, no phone.
	upd := &eventsv1.ClinicalEvent{
		EventId: "ev-u2", Tenant: "demo", Kind: "patient", Action: "updated", SubjectRef: "Patient/" + canaryPatient,
		OccurredAt: timestamppb.New(start.Add(-47 * time.Hour)), ReceivedAt: timestamppb.New(start.Add(-47 * time.Hour)),
		Patient: &eventsv1.Patient{Id: canaryPatient, Emails: []string{emailU}, Language: "en"},
	}
	h.waitSettled(t, h.publish(t, upd))
	later := patientBooking("ev-u3", "Appointment/902", "")
	later.Patient.Emails, later.Patient.Phones, later.Patient.Language = nil, nil, ""
	later.OccurredAt = timestamppb.New(start.Add(-46 * time.Hour))
	h.waitSettled(t, h.publish(t, later))
	mails := h.email.callsTo(emailU)
	if len(mails) != 1 || mails[0].GetStep() != "0.fallback" {
		t.Fatalf("emails to the stored address = %v, want the fallback of Appointment/902", mails)
	}

	logs := h.logs.String()
	if !strings.Contains(logs, `"msg":"patient unreachable; step not sent"`) {
		t.Fatalf("no unreachable log line:\n%s", logs)
	}
	for _, canary := range []string{canaryPatient, emailU, "ask at the desk", canaryGiven, canaryFamily} {
		if strings.Contains(logs, canary) {
			t.Errorf("logs hold %q", canary)
		}
	}
}
