package app

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// Gap statuses.
const (
	GapOpen      = "open"
	GapRecovered = "recovered"
)

// How a gap was recovered (Gap.Method, metric label).
const (
	// GapByEvents: Subscription/<id>/$events returned the missing events.
	GapByEvents = "events"
	// GapBySearch: a search by _lastUpdated over the gap's window, when
	// the EHR has no $events.
	GapBySearch = "search"
	// GapByLate: notifications carrying the missing numbers arrived late.
	GapByLate = "late"
)

// maxGapsKept bounds the gaps a subscription state remembers.
const maxGapsKept = 50

// DefaultHeartbeatPeriod is a subscription's heartbeat period when none
// is configured.
const DefaultHeartbeatPeriod = 10 * time.Minute

// SubscriptionState is what ingest knows about one subscription of a
// source. It holds no PHI: ids of the Subscription resource, numbers and
// times only.
type SubscriptionState struct {
	// Source is the configured source name.
	Source string `json:"source"`
	// Subscription is the Subscription resource's logical id.
	Subscription string `json:"subscription"`
	// LastEventNumber is the highest event number seen.
	LastEventNumber int64 `json:"lastEventNumber"`
	// LastContact is when any notification last arrived.
	LastContact time.Time `json:"lastContact"`
	// LastNotificationTime is the latest Bundle or event timestamp the
	// EHR sent (its clock): where a search for an empty payload starts.
	LastNotificationTime time.Time `json:"lastNotificationTime,omitzero"`
	// LastHeartbeat is when a heartbeat notification last arrived.
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
	// HeartbeatOverdue is true while no notification came for twice the
	// heartbeat period.
	HeartbeatOverdue bool `json:"heartbeatOverdue"`
	// Gaps are the most recent gaps in event numbers, oldest first.
	Gaps []Gap `json:"gaps,omitempty"`
}

// Gap is a run of event numbers that never arrived in order.
type Gap struct {
	// From and Until are the first and last missing event numbers.
	From  int64 `json:"from"`
	Until int64 `json:"until"`
	// Status is open or recovered.
	Status string `json:"status"`
	// Detected is when the gap was seen.
	Detected time.Time `json:"detected"`
	// Recovered is when the missing events were recovered.
	Recovered time.Time `json:"recovered,omitzero"`
	// Method is how: a Gap* method ("" while open).
	Method string `json:"method,omitempty"`
	// WindowStart and WindowEnd bound, on the EHR's clock, when the
	// missing events happened: the previous notification's latest time
	// and the earliest time of the one that revealed the gap (zero when
	// unknown). A recovery by search looks there.
	WindowStart time.Time `json:"windowStart,omitzero"`
	WindowEnd   time.Time `json:"windowEnd,omitzero"`
}

// Subscriptions tracks subscription states in memory and in a store. It
// is safe for concurrent use.
type Subscriptions struct {
	store  SubscriptionStore
	period func(source string) time.Duration

	mu     sync.Mutex
	states map[string]*SubscriptionState
}

// NewSubscriptions loads the stored states. period gives a source's
// heartbeat period; DefaultHeartbeatPeriod when nil or zero.
func NewSubscriptions(ctx context.Context, store SubscriptionStore, period func(source string) time.Duration) (*Subscriptions, error) {
	all, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load subscription states: %w", err)
	}
	s := &Subscriptions{store: store, period: period, states: map[string]*SubscriptionState{}}
	for _, st := range all {
		s.states[st.Source+"."+st.Subscription] = &st
	}
	return s, nil
}

func (s *Subscriptions) heartbeatPeriod(source string) time.Duration {
	if s.period != nil {
		if d := s.period(source); d > 0 {
			return d
		}
	}
	return DefaultHeartbeatPeriod
}

// States returns copies of the states, of every source when source is "".
func (s *Subscriptions) States(source string) []SubscriptionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []SubscriptionState{}
	for _, st := range s.states {
		if source == "" || st.Source == source {
			c := *st
			c.Gaps = slices.Clone(st.Gaps)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b SubscriptionState) int {
		if a.Source != b.Source {
			return compareStrings(a.Source, b.Source)
		}
		return compareStrings(a.Subscription, b.Subscription)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// advance records a notification carrying event numbers lo..hi (lo > hi
// when it carries none but reports hi as events since start) and
// returns the gap it reveals, if any, and how many open gaps it closed.
func (s *Subscriptions) advance(ctx context.Context, source, sub string, typ fhirnotify.Type, lo, hi int64, ehrEarliest, ehrTime, now time.Time) (*Gap, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := source + "." + sub
	st, known := s.states[key]
	if !known {
		st = &SubscriptionState{Source: source, Subscription: sub}
		s.states[key] = st
	}
	st.LastContact = now
	st.HeartbeatOverdue = false
	if typ == fhirnotify.TypeHeartbeat {
		st.LastHeartbeat = now
	}
	prevTime := st.LastNotificationTime
	if ehrTime.After(st.LastNotificationTime) {
		st.LastNotificationTime = ehrTime
	}
	// Events that arrive late, out of order, close the open gap they fill.
	closed := 0
	for i := range st.Gaps {
		if g := &st.Gaps[i]; g.Status == GapOpen && lo <= g.From && g.Until <= hi {
			g.Status, g.Recovered, g.Method = GapRecovered, now, GapByLate
			closed++
		}
	}
	var gap *Gap
	// The first notification seen sets the baseline: what came before
	// ingest knew the subscription is not a gap.
	if known && st.LastEventNumber > 0 && lo > st.LastEventNumber+1 {
		gap = &Gap{From: st.LastEventNumber + 1, Until: lo - 1, Status: GapOpen, Detected: now,
			WindowStart: prevTime, WindowEnd: ehrEarliest}
		st.Gaps = append(st.Gaps, *gap)
		if len(st.Gaps) > maxGapsKept {
			st.Gaps = st.Gaps[len(st.Gaps)-maxGapsKept:]
		}
	}
	if hi > st.LastEventNumber {
		st.LastEventNumber = hi
	}
	return gap, closed, s.store.Save(ctx, *st)
}

// lastSeen is the EHR time of the subscription's latest notification,
// zero when unknown.
func (s *Subscriptions) lastSeen(source, sub string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.states[source+"."+sub]; ok {
		return st.LastNotificationTime
	}
	return time.Time{}
}

// resolveGap marks the gap from..until recovered by method.
func (s *Subscriptions) resolveGap(ctx context.Context, source, sub string, from, until int64, method string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[source+"."+sub]
	if !ok {
		return nil
	}
	for i := range st.Gaps {
		if g := &st.Gaps[i]; g.From == from && g.Until == until && g.Status == GapOpen {
			g.Status, g.Recovered, g.Method = GapRecovered, now, method
		}
	}
	return s.store.Save(ctx, *st)
}

// overdue marks the states whose last contact is older than twice their
// heartbeat period and returns those newly or still overdue, and the
// count per source (every known source, zeros included).
func (s *Subscriptions) overdue(ctx context.Context, now time.Time) ([]SubscriptionState, map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubscriptionState
	counts := map[string]int{}
	var errs []error
	for _, st := range s.states {
		counts[st.Source] += 0
		late := now.Sub(st.LastContact) > 2*s.heartbeatPeriod(st.Source)
		if late {
			counts[st.Source]++
			out = append(out, *st)
		}
		if late != st.HeartbeatOverdue {
			st.HeartbeatOverdue = late
			if err := s.store.Save(ctx, *st); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return out, counts, fmt.Errorf("save subscription state: %w", errs[0])
	}
	return out, counts, nil
}
