package app

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/expr"
)

// Outcomes of a timer, the outcome label of journey_timers_total, and the
// audit reasons of steps they suppress.
const (
	timerScheduled  = "scheduled"   // a wait was planned
	timerFired      = "fired"       // a timer fired and its journey resumed
	timerTimePassed = "time_passed" // the wait's time had passed when planned: its steps are skipped
	timerCancelled  = "cancelled"   // a cancel_on event removed a pending timer
	timerStale      = "stale"       // a timer fired for a journey or step that no longer exists
)

// Resume continues the journey instance of a fired timer at its step,
// with the event that started it. Errors are as for HandleEvent.
func (s *Service) Resume(ctx context.Context, t Timer) error {
	j, ok := s.catalog().Journey(t.Journey)
	if !ok || t.Step > len(j.Steps) {
		// The journey was removed or shortened since the timer was set.
		s.timerC.WithLabelValues(timerLabel(j, t.Journey), timerStale).Inc()
		s.logger.WarnContext(ctx, "journey timer for a journey or step that no longer exists",
			"tenant", t.Tenant, "journey", t.Journey, "journeyVersion", t.Version, "step", t.Step)
		return nil
	}
	if j.Version != t.Version {
		s.logger.InfoContext(ctx, "journey file changed since the timer was set; resuming with the current version",
			"tenant", t.Tenant, "journey", t.Journey, "timerVersion", t.Version, "journeyVersion", j.Version, "step", t.Step)
	}
	// The patient's contacts may have changed since the timer was set.
	ev, err := s.withContacts(ctx, t.Event, false)
	if err != nil {
		return fmt.Errorf("journey %s: %w", j.ID, err)
	}
	t.Event = ev
	s.timerC.WithLabelValues(j.ID, timerFired).Inc()
	var errs outcomes
	if t.Step < len(j.Steps) && j.Steps[t.Step].Kind == catalog.StepWaitFor {
		errs.add(t.Event, j, s.timedOut(ctx, t, j))
		return errs.err()
	}
	errs.add(t.Event, j, s.run(ctx, t.Event, j, t.Step))
	return errs.err()
}

// timerLabel bounds the journey label to loaded journeys.
func timerLabel(j *catalog.Journey, id string) string {
	if j == nil {
		return "unknown"
	}
	return id
}

// dueTime is when wait step st ends, planned at now, rounded up to a
// whole second: timers fire at whole-second precision, and never early.
func dueTime(st catalog.Step, ev *eventsv1.ClinicalEvent, now time.Time) (time.Time, error) {
	var due time.Time
	switch st.Kind {
	case catalog.StepWait:
		due = now.Add(st.Wait)
	case catalog.StepWaitUntil:
		t, err := st.WaitUntil.Time(expr.VarsOf(ev, now))
		if err != nil {
			return time.Time{}, err
		}
		due = t
	default:
		return time.Time{}, fmt.Errorf("step kind %s is not a wait", st.Kind)
	}
	return roundUp(due), nil
}

// skipPassed records that the send steps after wait step i, up to the
// next wait, are skipped because the wait's time had passed when it was
// planned (they are never sent late), and returns the index of that next
// wait, or len(j.Steps).
func (s *Service) skipPassed(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, i int) (int, error) {
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	next := i + 1
	for ; next < len(j.Steps) && j.Steps[next].Kind == catalog.StepSend; next++ {
		step := audit.Object{Type: "JourneyStep", ID: instance + "/" + strconv.Itoa(next)}
		if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, timerTimePassed); err != nil {
			return 0, err
		}
	}
	s.timerC.WithLabelValues(j.ID, timerTimePassed).Inc()
	s.logger.InfoContext(ctx, "journey wait already passed; steps skipped", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", i, "skipped", next-i-1)
	return next, nil
}

// cancel removes the pending timers of j's instance for ev.
func (s *Service) cancel(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey) error {
	key := InstanceKey(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	n, err := s.timers.Cancel(ctx, ev.GetTenant(), j.ID, key)
	if err != nil {
		return fmt.Errorf("cancel timers: %w", err)
	}
	if s.waits != nil && slices.ContainsFunc(j.Steps, func(st catalog.Step) bool { return st.Kind == catalog.StepWaitFor }) {
		// An instance waiting for an event no longer does.
		if err := s.waits.Done(ctx, ev.GetTenant(), j.ID, key); err != nil {
			return fmt.Errorf("cancel waiting: %w", err)
		}
	}
	if n == 0 {
		return nil
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	if err := s.decided(ctx, ev, j, audit.Object{Type: "JourneyInstance", ID: instance}, audit.OutcomeSuppressed, timerCancelled); err != nil {
		return err
	}
	s.timerC.WithLabelValues(j.ID, timerCancelled).Add(float64(n))
	s.logger.InfoContext(ctx, "journey timers cancelled", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "timers", n)
	return nil
}
