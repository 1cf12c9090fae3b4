package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/audit"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// emailFirst is a journey whose email step falls back to SMS, next to one
// without a fallback.
const emailFirst = `id: email-first
purpose: treatment
trigger: appointment.booked
steps:
  - send: email
    template: appointment-confirmation
    fallback: sms
`

const emailOnly = `id: email-only
purpose: treatment
trigger: appointment.booked
steps:
  - send: email
    template: appointment-confirmation
`

func TestSuppressedAddressFallsBack(t *testing.T) {
	jdir := t.TempDir()
	for name, body := range map[string]string{"first.yaml": emailFirst, "only.yaml": emailOnly} {
		if err := os.WriteFile(filepath.Join(jdir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, jdir)
	const number = "+15555550123"

	h.waitSettled(t, h.publish(t, patientBooking("ev-sup1", "Appointment/801", emailSuppressed)))
	if n := len(h.email.callsTo(emailSuppressed)); n != 2 {
		t.Errorf("%d Sends to the suppressed address, want 2 (one per journey, each refused once)", n)
	}
	texts := h.sms.callsTo(number)
	if len(texts) != 1 || texts[0].GetStep() != "0.fallback" || !strings.Contains(texts[0].GetBody(), canaryGiven) {
		t.Fatalf("fallback texts = %v, want one for step 0.fallback of email-first", texts)
	}

	var suppressed, fallback int
	for _, r := range h.audited(t, audit.ActionMessageDecided) {
		switch {
		case r.Reason == "address_suppressed" && r.Outcome == audit.OutcomeSuppressed &&
			r.Detail["channel"] == "email" && r.Detail["suppression"] == "hard_bounce":
			suppressed++
		case r.Reason == "fallback" && r.Detail["journey"] == "email-first" && r.Detail["from"] == "email" &&
			r.Detail["channel"] == "sms" && r.Detail["because"] == "address_suppressed":
			fallback++
		}
	}
	if suppressed != 2 || fallback != 1 {
		t.Errorf("audit: %d address_suppressed records (want 2, one per journey), %d fallbacks because of it (want 1)", suppressed, fallback)
	}
	m := h.metrics(t)
	for _, line := range []string{
		`journey_sends_total{channel="email",journey="email-first",outcome="address_suppressed"} 1`,
		`journey_sends_total{channel="email",journey="email-first",outcome="fallback"} 1`,
		`journey_sends_total{channel="sms",journey="email-first",outcome="sent"} 1`,
		`journey_sends_total{channel="email",journey="email-only",outcome="address_suppressed"} 1`,
		// A suppressed address is a decision, not a failure: the event is handled.
		`journey_events_total{action="booked",kind="appointment",outcome="handled"} 1`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if strings.Contains(m, `outcome="rejected"`) {
		t.Errorf("a suppressed address counted as rejected:\n%s", grep(m, "journey_sends_total"))
	}
	resp, err := h.admin(t).Trace(t.Context(), &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_PatientId{PatientId: canaryPatient}})
	if err != nil {
		t.Fatal(err)
	}
	var summaries []string
	for _, e := range resp.GetEntries() {
		summaries = append(summaries, e.GetSummary())
	}
	all := strings.Join(summaries, "\n")
	for _, want := range []string{
		"suppressed: the email service refuses the patient's address (hard_bounce) (step 0 of email-only)",
		"fell back from email to sms because of address_suppressed (step 0 of email-first)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("trace lacks %q:\n%s", want, all)
		}
	}
	for _, s := range []string{emailSuppressed, number, canaryPatient, canaryGiven} {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("logs contain %q", s)
		}
	}
}
