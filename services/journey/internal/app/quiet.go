package app

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// quiet defers send step i of j when now falls inside the journey's quiet
// hours (in the patient's time zone, see zoneFor): it sets a timer that resumes the
// instance at step i itself when the window ends, audits the deferral
// (suppressed quiet_hours) and returns true. Critical steps are not
// deferred, except in marketing journeys, which never bypass quiet hours.
// Consent is checked when the step finally sends, not here.
func (s *Service) quiet(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, i int, st catalog.Step) (bool, error) {
	if j.QuietHours == nil || (st.Critical && j.Purpose != catalog.PurposeMarketing) {
		return false, nil
	}
	now := s.now().In(s.zoneFor(ev))
	if !j.QuietHours.Contains(now) {
		return false, nil
	}
	due := j.QuietHours.EndAfter(now).UTC()
	if r := due.Truncate(1e9); !r.Equal(due) {
		due = r.Add(1e9)
	}
	t := Timer{
		Tenant: ev.GetTenant(), Journey: j.ID, Version: j.Version,
		Instance: InstanceKey(ev.GetTenant(), j.ID, ev.GetSubjectRef()), Step: i, Due: due, Event: ev,
	}
	if err := s.timers.Schedule(ctx, t); err != nil {
		return false, fmt.Errorf("step %d: defer for quiet hours: %w", i, err)
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + strconv.Itoa(i)}
	if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeQuietHours, "until", due.Format(time.RFC3339)); err != nil {
		return false, fmt.Errorf("step %d: %w", i, err)
	}
	s.count(j, outcomeQuietHours)
	s.timerC.WithLabelValues(j.ID, timerScheduled).Inc()
	s.logger.InfoContext(ctx, "quiet hours; step deferred", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", i, "until", due)
	return true, nil
}
