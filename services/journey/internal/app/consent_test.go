package app_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

func TestConsentAtSendTime(t *testing.T) {
	sender := &fakeSender{}
	svc := app.New(twoJourneys(t), sender, &fakeTimers{}, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	set := func(purpose catalog.Purpose, state app.ConsentState) {
		t.Helper()
		if _, err := svc.SetConsent(t.Context(), app.Consent{
			Tenant: "demo", Patient: "p-1", Channel: "email", Purpose: purpose, State: state, Source: app.SourceAdmin, EvidenceRef: "ticket 12",
		}); err != nil {
			t.Fatal(err)
		}
	}
	// a is treatment, b operations.
	set(catalog.PurposeTreatment, app.ConsentDenied)
	if _, err := svc.HandleEvent(t.Context(), event(nil)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b/0"}, sender.calls); diff != "" {
		t.Errorf("sends with treatment denied (-want +got):\n%s", diff)
	}
	set(catalog.PurposeTreatment, app.ConsentGranted)
	set(catalog.PurposeOperations, app.ConsentRevoked)
	sender.calls = nil
	if _, err := svc.HandleEvent(t.Context(), event(func(e *eventsv1.ClinicalEvent) { e.SubjectRef = "Appointment/2" })); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a/0", "a/1"}, sender.calls); diff != "" {
		t.Errorf("sends with operations revoked (-want +got):\n%s", diff)
	}
	// Another patient has no record: everything goes.
	sender.calls = nil
	if _, err := svc.HandleEvent(t.Context(), event(func(e *eventsv1.ClinicalEvent) { e.Patient.Id = "p-2" })); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a/0", "a/1", "b/0"}, sender.calls); diff != "" {
		t.Errorf("sends without a record (-want +got):\n%s", diff)
	}
	got, err := svc.Consent(t.Context(), app.ConsentKey{Tenant: "demo", Patient: "p-1", Channel: "email", Purpose: catalog.PurposeOperations})
	if err != nil || got.State != app.ConsentRevoked || got.Source != app.SourceAdmin || got.EvidenceRef != "ticket 12" || got.Time.IsZero() {
		t.Errorf("Consent() = %+v, %v", got, err)
	}
	if _, err := svc.Consent(t.Context(), app.ConsentKey{Tenant: "demo", Patient: "p-9", Channel: "sms", Purpose: catalog.PurposeMarketing}); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Consent(missing) = %v, want ErrNotFound", err)
	}
}

func TestSetConsentValidation(t *testing.T) {
	svc := app.New(twoJourneys(t), &fakeSender{}, &fakeTimers{}, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	_, err := svc.SetConsent(t.Context(), app.Consent{
		Tenant: "demo x", Patient: "Jane Doe", Channel: "fax", Purpose: "sales", State: "maybe", Source: "web", EvidenceRef: "bad\x00ref",
	})
	var verr *app.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("SetConsent() = %v, want a ValidationError", err)
	}
	var fields []string
	for _, f := range verr.Fields {
		fields = append(fields, f.Field)
	}
	if diff := cmp.Diff([]string{"tenant", "patient_id", "channel", "purpose", "state", "source", "evidence_ref"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "Jane") || strings.Contains(err.Error(), "bad") {
		t.Errorf("error %q echoes a value", err)
	}
}

func TestQuietHours(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, 1, 1, 23, 0, 0, 0, ny)
	head := "purpose: treatment\ntrigger: appointment.booked\nquiet_hours: {start: \"21:00\", end: \"08:00\"}\nsteps:\n"
	set := load(t, map[string]string{
		"quiet.yaml":    "id: quiet\n" + head + "  - send: email\n    template: t\n",
		"critical.yaml": "id: critical\n" + head + "  - send: email\n    template: t\n    critical: true\n",
	})
	sender, tm := &fakeSender{}, &fakeTimers{}
	svc := app.New(set, sender, tm, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		app.WithClock(func() time.Time { return now }), app.WithLocation(ny))
	if _, err := svc.HandleEvent(t.Context(), event(nil)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"critical/0"}, sender.calls); diff != "" {
		t.Errorf("sends at 23:00 (-want +got):\n%s", diff)
	}
	if len(tm.scheduled) != 1 || tm.scheduled[0].Journey != "quiet" || tm.scheduled[0].Step != 0 ||
		!tm.scheduled[0].Due.Equal(time.Date(2031, 1, 2, 8, 0, 0, 0, ny)) {
		t.Fatalf("timers = %+v, want quiet step 0 at 08:00 the next morning", tm.scheduled)
	}
	now = time.Date(2031, 1, 2, 8, 0, 0, 0, ny)
	if err := svc.Resume(t.Context(), tm.scheduled[0]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"critical/0", "quiet/0"}, sender.calls); diff != "" {
		t.Errorf("sends after the window (-want +got):\n%s", diff)
	}
}
