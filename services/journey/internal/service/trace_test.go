package service_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/audit/audittest"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// traceJourneys: a confirmation now, and a reminder 3 seconds later.
var traceJourneys = map[string]string{
	"confirm.yaml": "id: confirm\npurpose: treatment\ntrigger: appointment.booked\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n",
	"remind.yaml": "id: remind\npurpose: treatment\ntrigger: appointment.booked\nwhen: event.appointment.service_type != \"telehealth\"\n" +
		"steps:\n  - wait: 3s\n  - send: email\n    template: appointment-reminder\n",
}

// waitAudited polls journey's audit records until one with action,
// outcome and reason is there, failing after a generous bound.
func (h *harness) waitAudited(t *testing.T, action, outcome, reason string) audit.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range h.audited(t, action) {
			if r.Outcome == outcome && r.Reason == reason {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s %s %s audit record after 30s", action, outcome, reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTrace(t *testing.T) {
	jdir := t.TempDir()
	for name, content := range traceJourneys {
		if err := os.WriteFile(filepath.Join(jdir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, jdir)
	admin := h.admin(t)
	ctx := t.Context()
	const emailP = "trace.canary@example.org"

	// Booked: the confirmation goes now, the reminder is planned; consent
	// is revoked before the reminder is due, so it is not sent.
	booking := soonBooking("ev-t1", "Appointment/701", emailP)
	booking.Patient.Id = canaryPatient
	h.waitSettled(t, h.publish(t, booking))
	revoked, err := admin.SetConsent(ctx, &journeyv1.SetConsentRequest{
		Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment",
		State: "revoked", Source: "admin", EvidenceRef: canaryEvidence,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.waitAudited(t, audit.ActionMessageDecided, audit.OutcomeSuppressed, "no_consent")
	if n := len(h.email.callsWithKey(key("remind", "Appointment/701", 1))); n != 0 {
		t.Fatalf("reminder sent %d times after consent was revoked", n)
	}
	sentRecs := h.email.callsWithKey(key("confirm", "Appointment/701", 0))
	if len(sentRecs) != 1 {
		t.Fatalf("confirmation sent %d times, want 1", len(sentRecs))
	}
	msgID := "msg-1"

	// The email service records what it did with the message (as its
	// worker does): trace joins it by message id.
	ew, _ := audittest.Writer(t, h.js, "email")
	if err := ew.Record(ctx, audit.Entry{
		Tenant: "demo", Actor: audit.Actor{Type: audit.ActorService, ID: "email"},
		Action: audit.ActionMessageSent, Object: audit.Object{Type: "EmailMessage", ID: msgID},
		Outcome: audit.OutcomeSuccess, Reason: "sent",
	}); err != nil {
		t.Fatal(err)
	}

	revokedAt := revoked.GetConsent().GetChangedAt().AsTime().UTC().Format(time.RFC3339)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^journey confirm started by appointment\.booked$`),
		regexp.MustCompile(`^sent: email message msg-1 \(step 0 of confirm, template appointment-confirmation\), allowed: no consent record, and treatment messages go unless the patient opted out$`),
		regexp.MustCompile(`^delivery of msg-1: sent$`),
		regexp.MustCompile(`^journey remind started by appointment\.booked: its when: condition held$`),
		regexp.MustCompile(`^step 1 of remind planned for \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(wait\)$`),
		regexp.MustCompile(`^consent for email treatment messages revoked by admin at ` + regexp.QuoteMeta(revokedAt) + `$`),
		regexp.MustCompile(`^suppressed: consent revoked by admin at ` + regexp.QuoteMeta(revokedAt) + ` \(record [0-9a-f]{64}/email/treatment\) \(step 1 of remind\)$`),
	}
	check := func(t *testing.T, resp *journeyv1.TraceResponse) {
		t.Helper()
		var got []string
		for _, e := range resp.GetEntries() {
			got = append(got, e.GetSummary())
		}
		// Sent and planned come from one event; the delivery record was
		// written last but is about the confirmation: compare as sets in
		// order of the wanted patterns where times tie.
		for _, re := range want {
			found := false
			for _, g := range got {
				found = found || re.MatchString(g)
			}
			if !found {
				t.Errorf("trace lacks %s; got:\n%s", re, strings.Join(got, "\n"))
			}
		}
		for i := 1; i < len(resp.GetEntries()); i++ {
			if resp.GetEntries()[i].GetTime().AsTime().Before(resp.GetEntries()[i-1].GetTime().AsTime()) {
				t.Errorf("entries not in time order at %d", i)
			}
		}
		b, _ := protojson.Marshal(resp)
		for _, canary := range []string{canaryPatient, canaryEvidence, emailP, canaryGiven, canaryFamily, "Appointment/701"} {
			if strings.Contains(string(b), canary) {
				t.Errorf("trace holds %q", canary)
			}
		}
	}

	var ref string
	t.Run("by patient id", func(t *testing.T) {
		resp, err := admin.Trace(ctx, &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_PatientId{PatientId: canaryPatient}})
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
		for _, e := range resp.GetEntries() {
			t.Log(e.GetTime().AsTime().Format(time.RFC3339Nano), e.GetSummary())
		}
		ref = resp.GetPatientRef()
		if len(ref) != 64 {
			t.Errorf("patient ref = %q", ref)
		}
	})
	t.Run("by message id", func(t *testing.T) {
		resp, err := admin.Trace(ctx, &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_MessageId{MessageId: msgID}})
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
		if resp.GetPatientRef() != ref {
			t.Errorf("patient ref by message = %s, by patient %s", resp.GetPatientRef(), ref)
		}
	})
	t.Run("by patient ref over HTTP", func(t *testing.T) {
		code, body := h.httpDo(t, http.MethodPost, "/v1/trace", `{"tenant":"demo","patientRef":"`+ref+`"}`)
		if code != http.StatusOK {
			t.Fatalf("POST /v1/trace = %d %s", code, body)
		}
		var resp journeyv1.TraceResponse
		if err := protojson.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatal(err)
		}
		check(t, &resp)
	})
	t.Run("errors", func(t *testing.T) {
		_, err := admin.Trace(ctx, &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_MessageId{MessageId: "msg-unknown"}})
		if status.Code(err) != codes.NotFound {
			t.Errorf("Trace(unknown message) = %v, want NOT_FOUND", err)
		}
		_, err = admin.Trace(ctx, &journeyv1.TraceRequest{Tenant: "demo"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("Trace(no subject) = %v, want INVALID_ARGUMENT", err)
		}
		code, body := h.httpDo(t, http.MethodPost, "/v1/trace", `{"tenant":"demo","patientId":"Jane Canary"}`)
		if code != http.StatusBadRequest || !strings.Contains(body, `"field":"patient_id"`) || strings.Contains(body, "Jane") {
			t.Errorf("POST /v1/trace bad patient = %d %s", code, body)
		}
	})
}
