package app

import (
	"context"
	"fmt"
	"strconv"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Outcome of a re-planned timer (journey_timers_total) and audit reason.
const timerReplanned = "replanned"

// ActionJourneyReplanned is the audit action of a timer a replan_on event
// moved.
const ActionJourneyReplanned = "journey.replanned"

// replan re-plans the pending timers of j's instance for ev, an event that
// j lists in replan_on. Every pending timer then carries ev as its
// continuation. A timer resuming after a wait_until step is re-evaluated
// against ev: a new time in the future replaces the schedule; a new time
// already passed removes the timer, records the steps it guarded as
// skipped (time_passed) and plans the instance on from the next wait. A
// timer after a wait (a duration) or a quiet-hours deferral keeps its
// time. An instance with nothing pending is left alone.
func (s *Service) replan(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey) error {
	key := InstanceKey(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	pending, err := s.timers.Pending(ctx, ev.GetTenant(), j.ID, key)
	if err != nil {
		return fmt.Errorf("pending timers: %w", err)
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	for _, p := range pending {
		if p.Step < 0 || p.Step > len(j.Steps) {
			// The journey was shortened since the timer was set; it is
			// dropped when it fires.
			continue
		}
		due := p.Due
		waitFor := p.Step < len(j.Steps) && j.Steps[p.Step].Kind == catalog.StepWaitFor
		// A wait_for's timeout keeps its time; so does a wait's.
		reevaluated := !waitFor && p.Step > 0 && j.Steps[p.Step-1].Kind == catalog.StepWaitUntil
		now := s.now()
		if reevaluated {
			due, err = dueTime(j.Steps[p.Step-1], ev, now)
			if err != nil {
				s.logger.WarnContext(ctx, "journey wait_until failed for this event", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
					"journey", j.ID, "journeyVersion", j.Version, "instance", instance, "step", p.Step-1)
				return Permanent(fmt.Errorf("replan step %d: wait_until: %w", p.Step-1, err))
			}
		}
		if reevaluated && !due.After(now) {
			if err := s.timers.Remove(ctx, ev.GetTenant(), j.ID, key, p.Step); err != nil {
				return fmt.Errorf("replan step %d: remove timer: %w", p.Step-1, err)
			}
			if err := s.replanned(ctx, ev, j, instance, p.Step, audit.OutcomeSuppressed, timerTimePassed); err != nil {
				return err
			}
			// run re-evaluates the wait, finds it passed, records the
			// skipped steps and plans the next wait, if any.
			if err := s.run(ctx, ev, j, p.Step-1); err != nil {
				return err
			}
			continue
		}
		if waitFor && s.waits != nil {
			// The instance continues with the new event when the awaited
			// one comes, too.
			if _, err := s.waits.Wait(ctx, Waiting{Tenant: ev.GetTenant(), Journey: j.ID, Instance: key, Step: p.Step, Event: ev},
				j.Steps[p.Step].Timeout+waitGrace); err != nil {
				return fmt.Errorf("replan step %d: mark waiting: %w", p.Step, err)
			}
		}
		t := Timer{Tenant: ev.GetTenant(), Journey: j.ID, Version: j.Version, Instance: key, Step: p.Step, Due: due, Event: ev}
		if err := s.timers.Schedule(ctx, t); err != nil {
			return fmt.Errorf("replan step %d: %w", p.Step, err)
		}
		if err := s.replanned(ctx, ev, j, instance, p.Step, audit.OutcomeSuccess, timerReplanned); err != nil {
			return err
		}
		s.timerC.WithLabelValues(j.ID, timerReplanned).Inc()
		s.logger.InfoContext(ctx, "journey timer re-planned", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
			"journey", j.ID, "instance", instance, "step", p.Step, "moved", !due.Equal(p.Due))
	}
	return nil
}

// replanned records what a replan_on event did to the timer resuming
// instance at step.
func (s *Service) replanned(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, instance string, step int, outcome, reason string) error {
	err := s.audit.Record(ctx, audit.Entry{
		Tenant: ev.GetTenant(), Actor: audit.Actor{Type: audit.ActorService, ID: "journey"},
		Action: ActionJourneyReplanned, Object: audit.Object{Type: "JourneyTimer", ID: instance + "/" + strconv.Itoa(step)},
		Patient: ev.GetPatient().GetId(), Purpose: string(j.Purpose), Outcome: outcome, Reason: reason, TraceID: ev.GetEventId(),
	})
	if err != nil {
		return fmt.Errorf("audit replan: %w", err)
	}
	return nil
}
