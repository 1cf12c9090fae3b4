package app

import (
	"context"
	"strings"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// unreachable records that send step stepID of j could not reach the
// patient: the channels it could use (tried, the step's own first, then
// its fallback) had no usable contact point for them. It is a decision
// like any other, never a silent drop: audited (message.decided,
// suppressed unreachable, detail channel = the last channel tried and
// channels = all of them joined by "+", e.g. "sms+email"), counted on the step's own channel
// (journey_sends_total outcome unreachable), shown by Trace and logged
// without PHI. The instance goes on with its next step.
func (s *Service) unreachable(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, stepID string, tried ...catalog.Channel) error {
	names := make([]string, len(tried))
	for i, ch := range tried {
		names[i] = string(ch)
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + stepID}
	if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeUnreachable,
		"channel", names[len(names)-1], "channels", strings.Join(names, "+")); err != nil {
		return err
	}
	s.countOn(j, tried[0], outcomeUnreachable)
	s.logger.InfoContext(ctx, "patient unreachable; step not sent", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", stepID, "channels", strings.Join(names, "+"))
	return nil
}
