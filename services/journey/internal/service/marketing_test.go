package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// promoJourney is a marketing journey without waits, capped at one
// message a day.
const promoJourney = `id: promo
purpose: marketing
trigger: encounter.discharged
frequency_cap: {max: 1, per: 24h}
steps:
  - send: email
    template: wellness-newsletter
    security: no-phi
`

// discharged is an encounter.discharged event for canaryPatient.
func discharged(eventID, subjectRef, email string) *eventsv1.ClinicalEvent {
	ev := patientBooking(eventID, subjectRef, email)
	ev.Kind, ev.Action, ev.Facts = "encounter", "discharged", nil
	ev.OccurredAt = timestamppb.New(time.Now())
	return ev
}

func TestMarketingNeedsAnExplicitGrant(t *testing.T) {
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "promo.yaml"), []byte(promoJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	admin := h.admin(t)
	ctx := t.Context()
	const emailP = "promo.canary@example.org"
	setConsent := func(purpose, state string) {
		t.Helper()
		if _, err := admin.SetConsent(ctx, &journeyv1.SetConsentRequest{
			Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: purpose,
			State: state, Source: "admin", EvidenceRef: canaryEvidence,
		}); err != nil {
			t.Fatal(err)
		}
	}

	// No record at all: nothing goes (treatment would).
	h.waitSettled(t, h.publish(t, discharged("ev-m1", "Encounter/901", emailP)))
	// A treatment grant is not a marketing authorization.
	setConsent("treatment", "granted")
	h.waitSettled(t, h.publish(t, discharged("ev-m2", "Encounter/902", emailP)))
	if n := len(h.email.callsTo(emailP)); n != 0 {
		t.Fatalf("%d marketing emails without a marketing grant, want 0", n)
	}
	var none int
	for _, r := range h.audited(t, audit.ActionMessageDecided) {
		if r.Reason == "no_consent" && r.Purpose == "marketing" && r.Detail["consent"] == "none" {
			none++
		}
	}
	if none != 2 {
		t.Errorf("%d no_consent records with no marketing record, want 2", none)
	}

	// With the grant it goes, as marketing (the email service adds
	// List-Unsubscribe by purpose).
	setConsent("marketing", "granted")
	h.waitSettled(t, h.publish(t, discharged("ev-m3", "Encounter/903", emailP)))
	got := h.email.callsTo(emailP)
	if len(got) != 1 || got[0].GetPurpose() != emailv1.Purpose_PURPOSE_MARKETING || got[0].GetSecurity() != emailv1.Security_SECURITY_NO_PHI ||
		!strings.Contains(got[0].GetTextBody(), "wellness") {
		t.Fatalf("marketing emails = %v, want one with purpose marketing", got)
	}

	// The frequency cap applies: a second one the same day is suppressed.
	h.waitSettled(t, h.publish(t, discharged("ev-m4", "Encounter/904", emailP)))
	if n := len(h.email.callsTo(emailP)); n != 1 {
		t.Errorf("%d marketing emails after the cap, want 1", n)
	}
	// Revoked: nothing again.
	setConsent("marketing", "revoked")
	h.waitSettled(t, h.publish(t, discharged("ev-m5", "Encounter/905", emailP)))
	if n := len(h.email.callsTo(emailP)); n != 1 {
		t.Errorf("%d marketing emails after the revocation, want 1", n)
	}
	m := h.metrics(t)
	for _, line := range []string{
		`journey_sends_total{channel="email",journey="promo",outcome="no_consent"} 3`,
		`journey_sends_total{channel="email",journey="promo",outcome="sent"} 1`,
		`journey_sends_total{channel="email",journey="promo",outcome="frequency_capped"} 1`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s:\n%s", line, grep(m, "journey_sends_total"))
		}
	}
}
