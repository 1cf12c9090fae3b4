package timers_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/timers"
)

const canary = "Zebulonia"

func setup(t *testing.T) (*timers.Store, jetstream.JetStream) {
	t.Helper()
	_, js := bustest.Connect(t, bustest.Start(t))
	if err := bus.EnsureStreams(t.Context(), js, bus.JourneyTimers(1)); err != nil {
		t.Fatal(err)
	}
	// Declaring it again changes nothing (the server adds no setting of its own).
	if err := bus.EnsureStreams(t.Context(), js, bus.JourneyTimers(1)); err != nil {
		t.Fatal(err)
	}
	return timers.New(js, envelopetest.Sealer(t)), js
}

func timer(step int, due time.Time) app.Timer {
	return app.Timer{
		Tenant: "demo", Journey: "reminder", Instance: "0123456789abcdef", Version: "v1", Step: step, Due: due,
		Event: &eventsv1.ClinicalEvent{
			EventId: "e1", Tenant: "demo", Kind: "appointment", Action: "booked", SubjectRef: "Appointment/1",
			OccurredAt: timestamppb.Now(), Original: []byte("original " + canary),
			Patient: &eventsv1.Patient{Id: "p-1", GivenNames: []string{canary}, Identifiers: []*eventsv1.Identifier{{System: "mrn", Value: "MRN-1"}}},
		},
	}
}

// fired waits for the next message on journey.fire.> and returns it.
func fired(t *testing.T, js jetstream.JetStream, within time.Duration) jetstream.Msg {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(t.Context(), timers.Stream, jetstream.ConsumerConfig{
		Durable: "test", FilterSubject: timers.FireFilter, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(within))
	if err != nil {
		t.Fatalf("no fired timer within %s: %v", within, err)
	}
	_ = msg.Ack()
	return msg
}

func TestStreamName(t *testing.T) {
	if got := bus.JourneyTimers(1).Name; got != timers.Stream {
		t.Errorf("bus.JourneyTimers().Name = %q, want %q", got, timers.Stream)
	}
}

// The schedule fires on its target subject in the same stream, at a whole
// second, not before its time; the fired body opens to the timer, without
// what Schedule leaves out.
func TestScheduleFires(t *testing.T) {
	store, js := setup(t)
	due := time.Now().Add(2 * time.Second).Truncate(time.Second)
	if err := store.Schedule(t.Context(), timer(2, due)); err != nil {
		t.Fatalf("Schedule() = %v", err)
	}
	msg := fired(t, js, 10*time.Second)
	now := time.Now()
	if now.Before(due) {
		t.Errorf("fired %s before its time", due.Sub(now))
	}
	t.Logf("fired %s after its due time", now.Sub(due))
	if want := "journey.fire.demo.reminder.0123456789abcdef.2"; msg.Subject() != want {
		t.Errorf("fired on %q, want %q", msg.Subject(), want)
	}
	got, err := store.Open(t.Context(), msg.Subject(), msg.Data())
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	if got.Step != 2 || got.Version != "v1" || got.Event.GetEventId() != "e1" || got.Event.GetOriginal() != nil || got.Event.GetPatient().GetIdentifiers() != nil {
		t.Errorf("Open() = %+v, event %v", got, got.Event)
	}
	if _, err := store.Open(t.Context(), "journey.fire.demo.reminder.0123456789abcdef.3", msg.Data()); err == nil {
		t.Error("a body moved to another step's subject opened")
	}
	// The schedule removed itself.
	st, _ := js.Stream(t.Context(), timers.Stream)
	if _, err := st.GetLastMsgForSubject(t.Context(), "journey.timers.demo.reminder.0123456789abcdef.2"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("schedule still stored after firing: %v", err)
	}
}

// Publishing again on the same subject replaces the schedule; Cancel
// purges it and says how many it removed; the stored schedule is sealed.
func TestReplaceAndCancel(t *testing.T) {
	store, js := setup(t)
	far := time.Now().Add(time.Hour)
	for range 2 {
		if err := store.Schedule(t.Context(), timer(1, far)); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := js.Stream(t.Context(), timers.Stream)
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages after scheduling twice, want 1", info.State.Msgs)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), "journey.timers.demo.reminder.0123456789abcdef.1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Data, []byte(canary)) || bytes.Contains(raw.Data, []byte("Appointment/1")) {
		t.Error("stored schedule holds the event in clear")
	}
	n, err := store.Cancel(t.Context(), "demo", "reminder", "0123456789abcdef")
	if err != nil || n != 1 {
		t.Errorf("Cancel() = %d, %v; want 1", n, err)
	}
	if n, err := store.Cancel(t.Context(), "demo", "reminder", "0123456789abcdef"); err != nil || n != 0 {
		t.Errorf("Cancel() again = %d, %v; want 0", n, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := store.Open(ctx, "journey.fire.demo.reminder.0123456789abcdef.1", []byte("not sealed")); err == nil || errors.Is(err, envelope.ErrUnknownKey) {
		t.Errorf("Open(unsealed) = %v, want an integrity error", err)
	}
}

func TestPendingAndRemove(t *testing.T) {
	s, _ := setup(t)
	due1 := time.Now().Add(time.Hour).Truncate(time.Second)
	due3 := due1.Add(24 * time.Hour)
	for _, tm := range []app.Timer{timer(3, due3), timer(1, due1.Add(-time.Minute)), timer(1, due1)} {
		if err := s.Schedule(t.Context(), tm); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Pending(t.Context(), "demo", "reminder", "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	// The second schedule for step 1 replaced the first.
	want := []app.PendingTimer{{Step: 1, Due: due1.UTC()}, {Step: 3, Due: due3.UTC()}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Pending() (-want +got):\n%s", diff)
	}
	if err := s.Remove(t.Context(), "demo", "reminder", "0123456789abcdef", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(t.Context(), "demo", "reminder", "0123456789abcdef", 7); err != nil {
		t.Errorf("Remove(nothing pending) = %v", err)
	}
	got, err = s.Pending(t.Context(), "demo", "reminder", "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]app.PendingTimer{{Step: 3, Due: due3.UTC()}}, got); diff != "" {
		t.Errorf("Pending() after Remove (-want +got):\n%s", diff)
	}
	if got, err := s.Pending(t.Context(), "demo", "reminder", "fedcba9876543210"); err != nil || len(got) != 0 {
		t.Errorf("Pending(other instance) = %v, %v; want none", got, err)
	}
}
