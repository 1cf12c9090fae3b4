package app

import (
	"context"
	"fmt"
	"strconv"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/expr"
)

// Outcomes of a step's if: condition, the outcome label of
// journey_step_conditions_total; false and error are also audit reasons
// (condition_false, condition_error) of the JourneyStep.
const (
	condTrue  = "true"
	condFalse = "false"
	condError = "error"
)

// stepCondition evaluates the if: of step i when it comes up. It returns
// true when the step runs. When the condition is false, the step's else
// steps run instead (they may be deferred by quiet hours: deferred is
// then true and the instance resumes at step i, which evaluates the
// condition again) and the step is audited suppressed condition_false.
// An evaluation error is logged without CEL's message, audited failure
// condition_error, and permanent.
func (s *Service) stepCondition(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, i int, st catalog.Step) (run, deferred bool, err error) {
	if st.If == nil {
		return true, false, nil
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	obj := audit.Object{Type: "JourneyStep", ID: instance + "/" + strconv.Itoa(i)}
	ok, err := st.If.Bool(expr.VarsOf(ev, s.now()))
	switch {
	case err != nil:
		if aerr := s.decided(ctx, ev, j, obj, audit.OutcomeFailure, startConditionError, "condition", "if"); aerr != nil {
			return false, false, aerr
		}
		s.conds.WithLabelValues(j.ID, condError).Inc()
		s.logger.WarnContext(ctx, "journey step condition failed for this event", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
			"journey", j.ID, "journeyVersion", j.Version, "instance", instance, "step", i)
		return false, false, Permanent(fmt.Errorf("if: %w", err))
	case ok:
		s.conds.WithLabelValues(j.ID, condTrue).Inc()
		return true, false, nil
	}
	if err := s.decided(ctx, ev, j, obj, audit.OutcomeSuppressed, startConditionFalse, "condition", "if"); err != nil {
		return false, false, err
	}
	s.conds.WithLabelValues(j.ID, condFalse).Inc()
	s.logger.DebugContext(ctx, "journey step condition false", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", i, "else", len(st.Else))
	data := templateData(ev)
	for k, sub := range st.Else {
		if deferred, err := s.quiet(ctx, ev, j, i, sub); err != nil || deferred {
			return false, deferred, err
		}
		if err := s.send(ctx, ev, j, strconv.Itoa(i)+".else."+strconv.Itoa(k), sub, data); err != nil {
			return false, false, fmt.Errorf("else step %d: %w", k, err)
		}
	}
	return false, false, nil
}
