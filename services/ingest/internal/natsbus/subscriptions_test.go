package natsbus_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
)

// A restarted ingest finds the subscription states it saved.
func TestSubscriptionStoreSurvivesRestart(t *testing.T) {
	ns := bustest.Start(t)
	_, js := bustest.Connect(t, ns)
	store, err := natsbus.NewSubscriptionStore(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.Load(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("Load() on an empty bucket = %v, %v", got, err)
	}
	at := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	want := []app.SubscriptionState{
		{Source: "demo", Subscription: "sub-1", LastEventNumber: 4, LastContact: at,
			Gaps: []app.Gap{{From: 2, Until: 3, Status: app.GapRecovered, Detected: at, Recovered: at}}},
		{Source: "epic-prod", Subscription: "a.b-2", LastEventNumber: 9, LastContact: at, LastHeartbeat: at},
	}
	for _, st := range want {
		if err := store.Save(t.Context(), st); err != nil {
			t.Fatal(err)
		}
	}
	again, err := natsbus.NewSubscriptionStore(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := app.NewSubscriptions(t.Context(), again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, subs.States("")); diff != "" {
		t.Errorf("states after restart mismatch (-want +got):\n%s", diff)
	}
}
