package app

import (
	"context"
	"fmt"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// outcomeFrequencyCapped: the patient got the journey's frequency cap of
// messages of its purpose already; the step is suppressed, not deferred.
const outcomeFrequencyCapped = "frequency_capped"

// FrequencyCaps counts the messages each patient was sent per purpose,
// across journeys, for frequency caps. Keys hold a keyed hash of the
// patient, never the id.
type FrequencyCaps interface {
	// SentSince returns how many messages of purpose were sent to
	// patient at or after since, and whether the message with
	// idempotencyKey is one of them (a retry of a counted send).
	SentSince(ctx context.Context, tenant, patient string, purpose catalog.Purpose, since time.Time, idempotencyKey string) (int, bool, error)
	// CountSent counts the message with idempotencyKey, sent at at;
	// counting the same key again changes nothing.
	CountSent(ctx context.Context, tenant, patient string, purpose catalog.Purpose, idempotencyKey string, at time.Time) error
}

// WithFrequencyCaps sets where sends are counted for frequency caps.
// Without it, a journey with frequency_cap fails its send steps
// (permanently); sends are counted only with it.
func WithFrequencyCaps(c FrequencyCaps) Option {
	return func(s *Service) { s.caps = c }
}

// capped reports whether a send step of j for ev is over j's frequency
// cap; if so it audits and counts the suppression. Critical steps are
// exempt. An unanswered count fails closed: the step is retried.
func (s *Service) capped(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, st catalog.Step, key string, step audit.Object) (bool, error) {
	if j.FrequencyCap == nil || st.Critical {
		return false, nil
	}
	if s.caps == nil {
		return false, Permanent(fmt.Errorf("frequency_cap needs a counter, and none is configured"))
	}
	n, counted, err := s.caps.SentSince(ctx, ev.GetTenant(), ev.GetPatient().GetId(), j.Purpose, s.now().Add(-j.FrequencyCap.Per), key)
	if err != nil {
		s.count(j, outcomeRetry)
		return false, fmt.Errorf("frequency cap: %w", err)
	}
	if counted || n < j.FrequencyCap.Max {
		return false, nil
	}
	if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeFrequencyCapped); err != nil {
		return false, err
	}
	s.count(j, outcomeFrequencyCapped)
	s.logger.InfoContext(ctx, "frequency cap reached; step suppressed", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "step", step.ID, "purpose", string(j.Purpose))
	return true, nil
}

// countSent counts a message sent, for frequency caps.
func (s *Service) countSent(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, key string) error {
	if s.caps == nil || ev.GetPatient().GetId() == "" {
		return nil
	}
	if err := s.caps.CountSent(ctx, ev.GetTenant(), ev.GetPatient().GetId(), j.Purpose, key, s.now()); err != nil {
		return fmt.Errorf("count sent: %w", err)
	}
	return nil
}
