package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Continuation is what journey keeps of an SMS step with a fallback
// while the text is on its way, so that a later failure can still send
// the fallback: the journey, the step id and the event (PHI; stored
// sealed).
type Continuation struct {
	Journey, Step string
	Event         *eventsv1.ClinicalEvent
}

// Continuations keeps the Continuations of SMS steps by the message's
// idempotency key.
type Continuations interface {
	// RememberContinuation stores c under the tenant's idempotency key.
	RememberContinuation(ctx context.Context, tenant, idempotencyKey string, c Continuation) error
	// Continuation returns what RememberContinuation stored, or ErrNotFound.
	Continuation(ctx context.Context, tenant, idempotencyKey string) (Continuation, error)
}

// WithContinuations lets SMS steps fall back after the text failed at the
// provider (see SMSFailed).
func WithContinuations(c Continuations) Option {
	return func(s *Service) { s.smsCh.continuations = c }
}

// stepByID returns the step stepID ("2", "2.timeout.0", "2.else.1") of j.
func stepByID(j *catalog.Journey, stepID string) (catalog.Step, bool) {
	parts := strings.Split(stepID, ".")
	i, err := strconv.Atoi(parts[0])
	if err != nil || i < 0 || i >= len(j.Steps) {
		return catalog.Step{}, false
	}
	st := j.Steps[i]
	switch {
	case len(parts) == 1:
		return st, true
	case len(parts) == 3:
		k, err := strconv.Atoi(parts[2])
		var branch []catalog.Step
		switch parts[1] {
		case "timeout":
			branch = st.OnTimeout
		case "else":
			branch = st.Else
		}
		if err != nil || k < 0 || k >= len(branch) {
			return catalog.Step{}, false
		}
		return branch[k], true
	}
	return catalog.Step{}, false
}

// SMSFailed handles a text that the sms service could not deliver after
// it was queued (failed: refused by the provider, expired; undelivered:
// the carrier gave up), named by its idempotency key: when the step that
// sent it has a fallback, the fallback is sent now, as step
// "<step>.fallback" (the same key as a fallback decided at send time, so
// it is never sent twice). It returns false when there is nothing to
// fall back to (no continuation: no fallback, or not a journey text).
func (s *Service) SMSFailed(ctx context.Context, tenant, idempotencyKey, reason string) (bool, error) {
	if s.smsCh.continuations == nil {
		return false, nil
	}
	c, err := s.smsCh.continuations.Continuation(ctx, tenant, idempotencyKey)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	j, ok := s.catalog().Journey(c.Journey)
	if !ok {
		s.logger.WarnContext(ctx, "sms failed for a journey that no longer exists; no fallback", "tenant", tenant, "journey", c.Journey)
		return false, nil
	}
	st, ok := stepByID(j, c.Step)
	if !ok || st.Kind != catalog.StepSend || st.Fallback == "" {
		s.logger.WarnContext(ctx, "sms failed for a step that no longer has a fallback", "tenant", tenant, "journey", j.ID, "step", c.Step)
		return false, nil
	}
	ev, err := s.withContacts(ctx, c.Event, false)
	if err != nil {
		return false, err
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + c.Step}
	because := "failed"
	if reason != "" {
		because += ":" + reason
	}
	if err := s.decided(ctx, ev, j, step, audit.OutcomeSuccess, outcomeFallback,
		"from", string(st.Send), "channel", string(st.Fallback), "because", because, "template", st.FallbackTemplate); err != nil {
		return false, err
	}
	s.countOn(j, st.Send, outcomeFallback)
	s.logger.InfoContext(ctx, "sms failed after queueing; falling back", "tenant", tenant, "journey", j.ID,
		"instance", instance, "step", c.Step, "to", string(st.Fallback), "reason", reason)
	fb := st
	fb.Send, fb.Template, fb.Fallback, fb.FallbackTemplate = st.Fallback, st.FallbackTemplate, "", ""
	outcome, err := s.sendOn(ctx, ev, j, c.Step+".fallback", fb, templateData(ev).In(s.zoneFor(ev)))
	if outcome == outcomeNoContact {
		err = s.unreachable(ctx, ev, j, c.Step, st.Send, st.Fallback)
	}
	if err != nil {
		return false, fmt.Errorf("fallback: %w", err)
	}
	return true, nil
}
