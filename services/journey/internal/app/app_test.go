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

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/consent"
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

// fakeTimers records the timers set and cancelled.
type fakeTimers struct {
	mu        sync.Mutex
	scheduled []app.Timer
	cancelled []string // journey/instance
	pending   int      // what Cancel reports
}

func (f *fakeTimers) Schedule(_ context.Context, t app.Timer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduled = append(f.scheduled, t)
	return nil
}

func (f *fakeTimers) Cancel(_ context.Context, _, journey, instance string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, journey+"/"+instance)
	return f.pending, nil
}

func (f *fakeTimers) Pending(context.Context, string, string, string) ([]app.PendingTimer, error) {
	return nil, nil
}

func (f *fakeTimers) Remove(context.Context, string, string, string, int) error { return nil }

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
	write(tdir, "t.yaml", "id: t\nchannel: email\nfields: [event.appointment.start]\nsubject: \"On {{date .Appointment.Start}}\"\ntext: Hi\nhtml: <p>Hi</p>\n")
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
		Patient: &eventsv1.Patient{Id: "p-1", Emails: []string{"x@example.org"}},
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
			svc := app.New(twoJourneys(t), sender, &fakeTimers{}, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
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
	svc := app.New(twoJourneys(t), &fakeSender{}, &fakeTimers{}, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
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

// load loads the given journeys with template "t".
func load(t *testing.T, journeys map[string]string) *catalog.Set {
	t.Helper()
	jdir, tdir := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tdir, "t.yaml", "id: t\nchannel: email\nfields: [event.appointment.start]\nsubject: \"On {{date .Appointment.Start}}\"\ntext: Hi\nhtml: <p>Hi</p>\n")
	for name, content := range journeys {
		write(jdir, name, content)
	}
	set, err := catalog.Load(jdir, tdir, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestConditionsAndWaits(t *testing.T) {
	now := time.Date(2031, 1, 1, 9, 0, 0, 500_000_000, time.UTC) // appointment is on 2031-01-02 09:00
	head := "purpose: treatment\ntrigger: appointment.booked\n"
	send := "  - send: email\n    template: t\n"
	set := load(t, map[string]string{
		"adult.yaml":  "id: adult\n" + head + "when: patient.age >= 18\nsteps:\n" + send,
		"minor.yaml":  "id: minor\n" + head + "when: patient.age < 18\nsteps:\n" + send,
		"broken.yaml": "id: broken\n" + head + "when: int(patient.language) > 0\nsteps:\n" + send,
		"wait.yaml":   "id: wait\n" + head + "cancel_on: [appointment.cancelled]\nsteps:\n" + send + "  - wait: 90m\n" + send,
		"passed.yaml": "id: passed\n" + head + "steps:\n  - wait_until: event.appointment.start - duration(\"48h\")\n" + send + send + "  - wait_until: event.appointment.start - duration(\"1h\")\n" + send,
	})
	sender, tm := &fakeSender{}, &fakeTimers{pending: 1}
	svc := app.New(set, sender, tm, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry(), app.WithClock(func() time.Time { return now }))
	ev := event(func(e *eventsv1.ClinicalEvent) { e.Patient.BirthDate = "1990-01-01"; e.Patient.Language = "en" })

	res, err := svc.HandleEvent(t.Context(), ev)
	if res.Journeys != 5 || !app.IsPermanent(err) || !strings.Contains(err.Error(), "journey broken: when: expression failed for this event") {
		t.Errorf("HandleEvent() = %+v, %v; want 5 journeys and broken's permanent error", res, err)
	}
	if diff := cmp.Diff([]string{"adult/0", "wait/0"}, sender.calls); diff != "" {
		t.Errorf("sends (-want +got):\n%s", diff)
	}
	type planned struct {
		Journey string
		Step    int
		Due     time.Time
	}
	var got []planned
	for _, tt := range tm.scheduled {
		got = append(got, planned{tt.Journey, tt.Step, tt.Due})
	}
	want := []planned{
		{"passed", 4, time.Date(2031, 1, 2, 8, 0, 0, 0, time.UTC)},
		{"wait", 2, time.Date(2031, 1, 1, 10, 30, 1, 0, time.UTC)}, // rounded up to a whole second
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timers (-want +got):\n%s", diff)
	}

	// The timer resumes after the wait, with the same idempotency keys.
	if err := svc.Resume(t.Context(), tm.scheduled[1]); err != nil {
		t.Fatalf("Resume() = %v", err)
	}
	if diff := cmp.Diff([]string{"adult/0", "wait/0", "wait/2"}, sender.calls); diff != "" {
		t.Errorf("sends after resume (-want +got):\n%s", diff)
	}
	// A timer of a removed journey is dropped.
	if err := svc.Resume(t.Context(), app.Timer{Tenant: "demo", Journey: "gone", Step: 1, Event: ev}); err != nil {
		t.Errorf("Resume(removed journey) = %v", err)
	}

	// cancel_on cancels the instance's timers and nothing else runs.
	res, err = svc.HandleEvent(t.Context(), event(func(e *eventsv1.ClinicalEvent) { e.Action = "cancelled" }))
	if err != nil || res.Cancels != 1 || res.Journeys != 0 {
		t.Errorf("HandleEvent(cancelled) = %+v, %v", res, err)
	}
	if diff := cmp.Diff([]string{"wait/" + app.InstanceKey("demo", "wait", "Appointment/1")}, tm.cancelled); diff != "" {
		t.Errorf("cancelled (-want +got):\n%s", diff)
	}
}

// consents returns a consent store on a real redis-server, sealing with a
// real keyring.
func consents(t *testing.T) *consent.Store {
	t.Helper()
	pk, _ := audittest.Keys(t)
	key, err := audit.LoadPseudonymKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return consent.New(storetest.Client(t), envelopetest.Sealer(t), key)
}
