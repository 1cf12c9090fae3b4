package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// toSender records the recipient of every email.
type toSender struct {
	mu sync.Mutex
	to []string
}

func (f *toSender) SendEmail(_ context.Context, e app.Email) (app.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.to = append(f.to, string(e.To))
	return app.SendResult{MessageID: "m-" + e.Step}, nil
}

// TestStoredContacts: a patient.updated teaches journey the patient's
// address, language and zone; a booking that carries none of them uses
// them; a newer patient.updated between planning and sending changes the
// address the reminder goes to. Nothing of it is logged.
func TestStoredContacts(t *testing.T) {
	const (
		patient = "pcanary-contacts-1"
		email1  = "first.canary@example.org"
		email2  = "second.canary@example.org"
		phone   = "+1 555 010 4242"
	)
	set := load(t, map[string]string{
		"r.yaml": "id: r\npurpose: treatment\ntrigger: appointment.booked\nquiet_hours: {start: \"21:00\", end: \"08:00\"}\n" +
			"steps:\n  - send: email\n    template: t\n  - wait: 24h\n  - send: email\n    template: t\n",
	})
	// 15:00 UTC is 07:00 in Los Angeles (quiet) and 15:00 in the deployment's UTC.
	now := time.Date(2031, 1, 10, 15, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	sender, tm := &toSender{}, &fakeTimers{}
	svc := app.New(set, sender, tm, consents(t), auditor(t), slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		prometheus.NewRegistry(), app.WithClock(func() time.Time { return now }), app.WithContacts(consents(t)))
	updated := func(id string, at time.Time, emails ...string) *eventsv1.ClinicalEvent {
		return &eventsv1.ClinicalEvent{
			EventId: id, Tenant: "demo", Kind: "patient", Action: "updated", SubjectRef: "Patient/" + patient,
			OccurredAt: timestamppb.New(at),
			Patient:    &eventsv1.Patient{Id: patient, Emails: emails, Phones: []string{phone}, Language: "es", TimeZone: "America/Los_Angeles"},
		}
	}
	if _, err := svc.HandleEvent(t.Context(), updated("u1", now.Add(-time.Hour), email1)); err != nil {
		t.Fatal(err)
	}
	booking := event(func(e *eventsv1.ClinicalEvent) {
		e.Patient = &eventsv1.Patient{Id: patient} // an HL7-style event: no contacts
		e.OccurredAt = timestamppb.New(now)
	})
	if _, err := svc.HandleEvent(t.Context(), booking); err != nil {
		t.Fatal(err)
	}
	// The stored zone (Los Angeles, 07:00) defers the confirmation to 08:00 PST = 16:00 UTC.
	if len(sender.to) != 0 || len(tm.scheduled) != 1 || !tm.scheduled[0].Due.Equal(now.Add(time.Hour)) {
		t.Fatalf("sends %q, timers %+v; want the confirmation deferred to 16:00 UTC", sender.to, tm.scheduled)
	}
	now = now.Add(time.Hour)
	if err := svc.Resume(t.Context(), tm.scheduled[0]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{email1}, sender.to); diff != "" {
		t.Fatalf("confirmation to (-want +got):\n%s", diff)
	}
	// The 24h wait is planned; the patient's address changes meanwhile.
	if len(tm.scheduled) != 2 {
		t.Fatalf("timers %+v, want the wait", tm.scheduled)
	}
	if _, err := svc.HandleEvent(t.Context(), updated("u2", now.Add(time.Hour), email2)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(24 * time.Hour)
	if err := svc.Resume(t.Context(), tm.scheduled[1]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{email1, email2}, sender.to); diff != "" {
		t.Errorf("sends to (-want +got):\n%s", diff)
	}
	// An older update arriving late does not bring the first address back.
	if _, err := svc.HandleEvent(t.Context(), updated("u0", now.Add(-72*time.Hour), email1)); err != nil {
		t.Fatal(err)
	}
	again := event(func(e *eventsv1.ClinicalEvent) {
		e.SubjectRef = "Appointment/2"
		e.Patient = &eventsv1.Patient{Id: patient}
	})
	now = time.Date(2031, 1, 12, 20, 0, 0, 0, time.UTC) // 12:00 in Los Angeles
	if _, err := svc.HandleEvent(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{email1, email2, email2}, sender.to); diff != "" {
		t.Errorf("sends to after a late old update (-want +got):\n%s", diff)
	}
	if logs.Len() == 0 {
		t.Fatal("no logs captured")
	}
	for _, phi := range []string{patient, "first.canary", "second.canary", "555 010 4242", "5550104242", "Los_Angeles"} {
		if strings.Contains(logs.String(), phi) {
			t.Errorf("logs contain %q", phi)
		}
	}
}
