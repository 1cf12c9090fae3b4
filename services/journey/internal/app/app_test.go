package app_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// fakeSender answers SendEmail with the error set for the journey that
// produced the email, and records the journeys it was called for.
type fakeSender struct {
	mu    sync.Mutex
	errs  map[string]error // journey id → error
	calls []string         // journey id/step
}

func (f *fakeSender) SendEmail(_ context.Context, e app.Email) (app.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	journey, _, _ := strings.Cut(e.JourneyInstance, "/")
	f.calls = append(f.calls, journey+"/"+e.Step)
	if err := f.errs[journey]; err != nil {
		return app.SendResult{}, err
	}
	return app.SendResult{MessageID: "m"}, nil
}

// twoJourneys loads journeys "a" and "b", both on appointment.booked,
// "a" with two steps.
func twoJourneys(t *testing.T) *catalog.Set {
	t.Helper()
	jdir, tdir := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tdir, "t.yaml", "id: t\nchannel: email\nsubject: \"On {{date .Appointment.Start}}\"\ntext: Hi\nhtml: <p>Hi</p>\n")
	steps := "steps:\n  - send: email\n    template: t\n"
	write(jdir, "a.yaml", "id: a\npurpose: treatment\ntrigger: appointment.booked\n"+steps+"  - send: email\n    template: t\n")
	write(jdir, "b.yaml", "id: b\npurpose: operations\ntrigger: appointment.booked\n"+steps)
	set, err := catalog.Load(jdir, tdir, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func event(mod func(*eventsv1.ClinicalEvent)) *eventsv1.ClinicalEvent {
	ev := &eventsv1.ClinicalEvent{
		EventId: "e1", Tenant: "demo", Kind: "appointment", Action: "booked", SubjectRef: "Appointment/1",
		Patient: &eventsv1.Patient{Emails: []string{"x@example.org"}},
		Facts: &eventsv1.ClinicalEvent_Appointment{Appointment: &eventsv1.AppointmentFacts{
			Start: timestamppb.New(time.Date(2031, 1, 2, 9, 0, 0, 0, time.UTC)),
		}},
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

func TestHandleEvent(t *testing.T) {
	retryable := errors.New("unavailable")
	rejected := app.Permanent(errors.New("rejected"))
	tests := []struct {
		name          string
		give          *eventsv1.ClinicalEvent
		errs          map[string]error
		wantJourneys  int
		wantCalls     []string
		wantErr       bool
		wantPermanent bool
	}{
		{name: "all sent", give: event(nil), wantJourneys: 2, wantCalls: []string{"a/0", "a/1", "b/0"}},
		{name: "unmatched", give: event(func(e *eventsv1.ClinicalEvent) { e.Action = "cancelled" })},
		{name: "no email", give: event(func(e *eventsv1.ClinicalEvent) { e.Patient.Emails = nil }), wantJourneys: 2},
		{
			name: "a failing journey stops its steps, not other journeys", give: event(nil),
			errs: map[string]error{"a": retryable}, wantJourneys: 2, wantCalls: []string{"a/0", "b/0"}, wantErr: true,
		},
		{
			name: "retry wins over rejection", give: event(nil),
			errs: map[string]error{"a": rejected, "b": retryable}, wantJourneys: 2, wantCalls: []string{"a/0", "b/0"}, wantErr: true,
		},
		{
			name: "rejection only", give: event(nil),
			errs: map[string]error{"b": rejected}, wantJourneys: 2, wantCalls: []string{"a/0", "a/1", "b/0"}, wantErr: true, wantPermanent: true,
		},
		{
			name: "render failure", give: event(func(e *eventsv1.ClinicalEvent) { e.Facts = nil }),
			wantJourneys: 2, wantErr: true, wantPermanent: true,
		},
		{name: "no tenant", give: event(func(e *eventsv1.ClinicalEvent) { e.Tenant = "" }), wantErr: true, wantPermanent: true},
		{name: "no subject", give: event(func(e *eventsv1.ClinicalEvent) { e.SubjectRef = "" }), wantJourneys: 2, wantErr: true, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender := &fakeSender{errs: tt.errs}
			svc := app.New(twoJourneys(t), sender, auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			res, err := svc.HandleEvent(t.Context(), tt.give)
			if res.Journeys != tt.wantJourneys || (err != nil) != tt.wantErr || app.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("HandleEvent() = %+v, %v (permanent %t); want %d journeys, error %t, permanent %t",
					res, err, app.IsPermanent(err), tt.wantJourneys, tt.wantErr, tt.wantPermanent)
			}
			if diff := cmp.Diff(tt.wantCalls, sender.calls); diff != "" {
				t.Errorf("sends (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	got := []string{
		app.IdempotencyKey("demo", "a", "Appointment/1", 0),
		app.IdempotencyKey("demo", "a", "Appointment/1", 1),
		app.IdempotencyKey("demo", "b", "Appointment/1", 0),
		app.IdempotencyKey("other", "a", "Appointment/1", 0),
		app.IdempotencyKey("demo", "a", "Appointment/2", 0),
	}
	seen := map[string]bool{}
	for _, k := range got {
		if len(k) != 64 || seen[k] {
			t.Errorf("key %q is not 64 hex digits or repeats: %q", k, got)
		}
		seen[k] = true
	}
	if app.IdempotencyKey("demo", "a", "Appointment/1", 0) != got[0] {
		t.Error("key is not deterministic")
	}
	if inst := app.Instance("demo", "a", "Appointment/1"); !strings.HasPrefix(inst, "a/") || strings.Contains(inst, "Appointment") || len(inst) != 18 {
		t.Errorf("Instance() = %q, want a/<16 hex digits>", inst)
	}
}

func TestJourneysByTenant(t *testing.T) {
	svc := app.New(twoJourneys(t), &fakeSender{}, auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	var got []string
	for _, j := range svc.Journeys("demo") {
		got = append(got, j.ID)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("Journeys(demo) (-want +got):\n%s", diff)
	}
}

// auditor returns a real audit writer on an embedded JetStream server.
func auditor(t *testing.T) app.Auditor {
	t.Helper()
	_, js := bustest.Connect(t, bustest.Start(t))
	w, _ := audittest.Writer(t, js, "journey")
	return w
}
