package waits_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/waits"
)

const canary = "Zebulonia"

func TestStore(t *testing.T) {
	c := storetest.Client(t)
	s := waits.New(c, envelopetest.Sealer(t))
	ctx := t.Context()
	const tenant, journey, instance = "waits-store", "intake", "0123456789abcdef"
	w := app.Waiting{Tenant: tenant, Journey: journey, Instance: instance, Step: 2, Event: &eventsv1.ClinicalEvent{
		EventId: "e1", Tenant: tenant, SubjectRef: "Appointment/1", Original: []byte(canary),
		Patient: &eventsv1.Patient{Id: "p-1", GivenNames: []string{canary}, Identifiers: []*eventsv1.Identifier{{System: "mrn", Value: "MRN-1"}}},
	}}
	if _, err := s.Waiting(ctx, tenant, journey, instance); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("Waiting(none) = %v, want ErrNotFound", err)
	}
	if ok, err := s.Wait(ctx, w, time.Hour); err != nil || !ok {
		t.Fatalf("Wait() = %v, %v", ok, err)
	}
	got, err := s.Waiting(ctx, tenant, journey, instance)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 2 || got.Event.GetEventId() != "e1" || got.Event.GetOriginal() != nil || got.Event.GetPatient().GetIdentifiers() != nil {
		t.Errorf("Waiting() = step %d, event %v", got.Step, got.Event)
	}
	keys, err := c.Keys(ctx, "cn:{"+tenant+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, _ := c.Get(ctx, k).Result()
		if strings.Contains(k+v, canary) || strings.Contains(k, "Appointment") {
			t.Errorf("key %s or its value holds PHI in clear", k)
		}
	}

	// The event and the timeout race: one wins, and a retry of the
	// winner still wins.
	if ok, err := s.Claim(ctx, tenant, journey, instance, 2, app.WaitArrived, time.Hour); err != nil || !ok {
		t.Fatalf("Claim(arrived) = %v, %v; want true", ok, err)
	}
	if ok, err := s.Claim(ctx, tenant, journey, instance, 2, app.WaitTimedOut, time.Hour); err != nil || ok {
		t.Errorf("Claim(timed_out) after arrived = %v, %v; want false", ok, err)
	}
	if ok, err := s.Claim(ctx, tenant, journey, instance, 2, app.WaitArrived, time.Hour); err != nil || !ok {
		t.Errorf("Claim(arrived) again = %v, %v; want true", ok, err)
	}
	// An answered wait is not waited for again.
	if ok, err := s.Wait(ctx, w, time.Hour); err != nil || ok {
		t.Errorf("Wait() after answer = %v, %v; want false", ok, err)
	}
	if err := s.Done(ctx, tenant, journey, instance); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Waiting(ctx, tenant, journey, instance); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Waiting(done) = %v, want ErrNotFound", err)
	}
}
