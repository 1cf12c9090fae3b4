package app

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// memStore is an in-memory SubscriptionStore.
type memStore struct {
	mu sync.Mutex
	m  map[string]SubscriptionState
}

func (s *memStore) Load(context.Context) ([]SubscriptionState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubscriptionState
	for _, st := range s.m {
		out = append(out, st)
	}
	return out, nil
}

func (s *memStore) Save(_ context.Context, st SubscriptionState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[st.Source+"."+st.Subscription] = st
	return nil
}

func TestSubscriptionsAdvance(t *testing.T) {
	t0 := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	type step struct{ lo, hi int64 }
	tests := []struct {
		name     string
		give     []step
		wantLast int64
		wantGaps []Gap
	}{
		{name: "in order", give: []step{{1, 1}, {2, 2}, {3, 4}}, wantLast: 4},
		{name: "first seen is the baseline", give: []step{{7, 7}, {8, 8}}, wantLast: 8},
		{name: "gap", give: []step{{1, 1}, {4, 4}}, wantLast: 4,
			wantGaps: []Gap{{From: 2, Until: 3, Status: GapOpen, Detected: t0}}},
		{name: "gap filled late", give: []step{{1, 1}, {4, 4}, {2, 3}}, wantLast: 4,
			wantGaps: []Gap{{From: 2, Until: 3, Status: GapRecovered, Detected: t0, Recovered: t0, Method: GapByLate}}},
		{name: "heartbeat reports more events", give: []step{{1, 1}, {4, 3}}, wantLast: 3,
			wantGaps: []Gap{{From: 2, Until: 3, Status: GapOpen, Detected: t0}}},
		{name: "resent events", give: []step{{1, 2}, {1, 2}}, wantLast: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{m: map[string]SubscriptionState{}}
			s, err := NewSubscriptions(t.Context(), store, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range tt.give {
				if _, _, err := s.advance(t.Context(), "demo", "sub-1", fhirnotify.TypeEventNotification, st.lo, st.hi, time.Time{}, time.Time{}, t0); err != nil {
					t.Fatal(err)
				}
			}
			got := store.m["demo.sub-1"]
			if got.LastEventNumber != tt.wantLast {
				t.Errorf("last = %d, want %d", got.LastEventNumber, tt.wantLast)
			}
			if diff := cmp.Diff(tt.wantGaps, got.Gaps); diff != "" {
				t.Errorf("gaps mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
