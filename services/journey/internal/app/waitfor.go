package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Waits keeps the markers of journey instances that wait for an event
// (wait_for), so that the event, when it comes, finds them. Key names
// carry only the instance hash ([InstanceKey]); the continuation event is
// PHI and stored sealed.
type Waits interface {
	// Wait marks w's instance as waiting at w.Step, for ttl. It returns
	// false, and marks nothing, when the wait at that step was already
	// answered (see Claim) in an earlier run of the instance.
	Wait(ctx context.Context, w Waiting, ttl time.Duration) (bool, error)
	// Waiting returns the marker of an instance, or [ErrNotFound].
	Waiting(ctx context.Context, tenant, journey, instanceKey string) (Waiting, error)
	// Claim answers the wait at step once, for by ([WaitArrived] or
	// [WaitTimedOut]): it returns true when by is the first to claim it,
	// or claimed it before (a retry), and false when the other did.
	Claim(ctx context.Context, tenant, journey, instanceKey string, step int, by string, ttl time.Duration) (bool, error)
	// Done removes the marker of an instance; none is not an error.
	Done(ctx context.Context, tenant, journey, instanceKey string) error
}

// Waiting is the marker of an instance waiting for an event.
type Waiting struct {
	// Tenant, Journey and Instance ([InstanceKey]) name the instance.
	Tenant, Journey, Instance string
	// Step is the 0-based index of the wait_for step.
	Step int
	// Event is the instance's event, which the journey continues with.
	// PHI.
	Event *eventsv1.ClinicalEvent
}

// Who answers a wait, for [Waits.Claim]; also audit reasons and outcomes
// of journey_timers_total.
const (
	WaitArrived  = "arrived"   // the awaited event came first
	WaitTimedOut = "timed_out" // the timeout passed first
)

// ActionJourneyWait is the audit action recording how a wait_for ended.
const ActionJourneyWait = "journey.wait"

// waitGrace is how long markers and claims outlive the timeout: as long
// as a fired timer stays on its stream.
const waitGrace = 7 * 24 * time.Hour

// WithWaits sets where wait_for markers are kept. Without it, a journey
// reaching a wait_for step fails (permanently).
func WithWaits(w Waits) Option {
	return func(s *Service) { s.waits = w }
}

var errNoWaits = errors.New("wait_for needs a wait store, and none is configured")

// waitFor runs wait_for step i: it marks the instance as waiting and sets
// the timeout timer, which resumes the instance at step i itself.
func (s *Service) waitFor(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, i int, st catalog.Step) error {
	if s.waits == nil {
		return Permanent(errNoWaits)
	}
	key := InstanceKey(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	// The marker first: an event that comes before the timer is set
	// finds the instance, and the timer then finds the wait answered.
	ok, err := s.waits.Wait(ctx, Waiting{Tenant: ev.GetTenant(), Journey: j.ID, Instance: key, Step: i, Event: ev}, st.Timeout+waitGrace)
	if err != nil {
		return fmt.Errorf("mark waiting: %w", err)
	}
	if !ok {
		s.logger.InfoContext(ctx, "journey wait already answered; not waiting again", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
			"journey", j.ID, "instance", instance, "step", i)
		return nil
	}
	due := roundUp(s.now().Add(st.Timeout))
	t := Timer{Tenant: ev.GetTenant(), Journey: j.ID, Version: j.Version, Instance: key, Step: i, Due: due, Event: ev}
	if err := s.timers.Schedule(ctx, t); err != nil {
		return err
	}
	s.timerC.WithLabelValues(j.ID, timerScheduled).Inc()
	s.logger.InfoContext(ctx, "journey waiting for an event", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", i, "waitFor", st.WaitFor)
	return nil
}

// arrived continues j's instance for ev when it waits for ev's event: it
// claims the wait, removes the timeout timer and runs the steps after the
// wait_for with the event the instance was waiting with (the awaited
// event only answers it). An instance not waiting is left alone.
func (s *Service) arrived(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey) error {
	if s.waits == nil {
		return Permanent(errNoWaits)
	}
	key := InstanceKey(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	w, err := s.waits.Waiting(ctx, ev.GetTenant(), j.ID, key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read waiting: %w", err)
	}
	trigger := ev.GetKind() + "." + ev.GetAction()
	if w.Step >= len(j.Steps) || j.Steps[w.Step].Kind != catalog.StepWaitFor || j.Steps[w.Step].WaitFor != trigger {
		// The journey file changed since the instance started waiting.
		return nil
	}
	won, err := s.waits.Claim(ctx, ev.GetTenant(), j.ID, key, w.Step, WaitArrived, j.Steps[w.Step].Timeout+waitGrace)
	if err != nil {
		return fmt.Errorf("claim wait: %w", err)
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	if !won {
		s.logger.InfoContext(ctx, "journey wait timed out before the event came", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
			"journey", j.ID, "instance", instance, "step", w.Step)
		return nil
	}
	if err := s.timers.Remove(ctx, ev.GetTenant(), j.ID, key, w.Step); err != nil {
		return fmt.Errorf("remove wait timeout: %w", err)
	}
	if err := s.waitEnded(ctx, ev, j, instance, w.Step, WaitArrived); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "journey wait answered", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", w.Step)
	waiting, err := s.withContacts(ctx, w.Event, false)
	if err != nil {
		return err
	}
	if err := s.run(ctx, waiting, j, w.Step+1); err != nil {
		return err
	}
	if err := s.waits.Done(ctx, ev.GetTenant(), j.ID, key); err != nil {
		return fmt.Errorf("clear waiting: %w", err)
	}
	s.timerC.WithLabelValues(j.ID, WaitArrived).Inc()
	return nil
}

// timedOut runs the on_timeout steps of wait_for step i when its timeout
// fired before the event, then ends the instance.
func (s *Service) timedOut(ctx context.Context, t Timer, j *catalog.Journey) error {
	if s.waits == nil {
		return Permanent(errNoWaits)
	}
	ev, i := t.Event, t.Step
	instance := Instance(t.Tenant, j.ID, ev.GetSubjectRef())
	if _, err := s.waits.Waiting(ctx, t.Tenant, j.ID, t.Instance); errors.Is(err, ErrNotFound) {
		// Cancelled, or answered and done.
		s.timerC.WithLabelValues(j.ID, timerStale).Inc()
		s.logger.InfoContext(ctx, "journey wait timeout for an instance no longer waiting", "tenant", t.Tenant, "journey", j.ID, "instance", instance, "step", i)
		return nil
	} else if err != nil {
		return fmt.Errorf("read waiting: %w", err)
	}
	st := j.Steps[i]
	won, err := s.waits.Claim(ctx, t.Tenant, j.ID, t.Instance, i, WaitTimedOut, st.Timeout+waitGrace)
	if err != nil {
		return fmt.Errorf("claim wait: %w", err)
	}
	if !won {
		s.timerC.WithLabelValues(j.ID, timerStale).Inc()
		s.logger.InfoContext(ctx, "journey wait answered before its timeout", "tenant", t.Tenant, "journey", j.ID, "instance", instance, "step", i)
		return nil
	}
	if err := s.waitEnded(ctx, ev, j, instance, i, WaitTimedOut); err != nil {
		return err
	}
	data := templateData(ev)
	for k, sub := range st.OnTimeout {
		// A deferral re-sets the timeout timer to the end of quiet hours;
		// the branch then runs again, and what it sent already is a
		// duplicate for the channel.
		if deferred, err := s.quiet(ctx, ev, j, i, sub); err != nil || deferred {
			return err
		}
		if err := s.send(ctx, ev, j, strconv.Itoa(i)+".timeout."+strconv.Itoa(k), sub, data); err != nil {
			return fmt.Errorf("step %d: on_timeout step %d: %w", i, k, err)
		}
	}
	if err := s.waits.Done(ctx, t.Tenant, j.ID, t.Instance); err != nil {
		return fmt.Errorf("clear waiting: %w", err)
	}
	s.timerC.WithLabelValues(j.ID, WaitTimedOut).Inc()
	s.logger.InfoContext(ctx, "journey wait timed out; on_timeout steps ran, journey ended", "tenant", t.Tenant, "journey", j.ID, "instance", instance, "step", i)
	return nil
}

// waitEnded records how the wait at step ended (reason WaitArrived or
// WaitTimedOut).
func (s *Service) waitEnded(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, instance string, step int, reason string) error {
	err := s.audit.Record(ctx, audit.Entry{
		Tenant: ev.GetTenant(), Actor: audit.Actor{Type: audit.ActorService, ID: "journey"},
		Action: ActionJourneyWait, Object: audit.Object{Type: "JourneyStep", ID: instance + "/" + strconv.Itoa(step)},
		Patient: ev.GetPatient().GetId(), Purpose: string(j.Purpose), Outcome: audit.OutcomeSuccess, Reason: reason, TraceID: ev.GetEventId(),
	})
	if err != nil {
		return fmt.Errorf("audit wait: %w", err)
	}
	return nil
}

// roundUp rounds t up to a whole second: timers fire at whole seconds,
// and never early.
func roundUp(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
