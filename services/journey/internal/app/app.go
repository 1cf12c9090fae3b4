package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/log"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/expr"
)

// Outcomes of a step, the outcome label of journey_sends_total.
const (
	outcomeSent         = "sent"          // the channel stored the message
	outcomeDuplicate    = "duplicate"     // the channel had it already (same idempotency key)
	outcomeNoContact    = "no_contact"    // the patient has no contact point on the channel; the step falls back
	outcomeRenderFailed = "render_failed" // the template failed for this event; not retried
	outcomeRejected     = "rejected"      // the channel refused the message; not retried
	outcomeRetry        = "retry"         // the channel failed or was unreachable; the event is retried
	outcomeNoConsent    = "no_consent"    // the patient's consent does not allow it
	outcomeQuietHours   = "quiet_hours"   // inside the journey's quiet hours: deferred to their end
	outcomeUnreachable  = "unreachable"   // no usable contact point on the step's channel(s): not sent
)

// Outcomes of a journey start, the outcome label of journey_starts_total.
const (
	startStarted        = "started"         // the journey's first step ran
	startConditionFalse = "condition_false" // its when: condition was false
	startConditionError = "condition_error" // its when: condition failed for this event
)

// Service runs journeys for clinical events.
type Service struct {
	// set is the running journeys and templates (see Replace).
	set atomic.Pointer[catalog.Set]
	// versions keeps every version of every journey; nil when not
	// configured.
	versions JourneyVersions
	email    EmailSender
	// smsCh is the SMS channel (see WithSMS).
	smsCh  smsDeps
	audit  Auditor
	timers Timers
	// consents keeps consent records and sent-message mappings.
	consents ConsentStore
	// consentLog, when set, gets every consent change before consents.
	consentLog ConsentLog
	// waits keeps the markers of instances waiting for an event; nil
	// when not configured.
	waits Waits
	// contacts keeps patients' contact points, language and time zone;
	// nil when not configured (events are then used as they come).
	contacts ContactStore
	// caps counts sends for frequency caps; nil when not configured.
	caps FrequencyCaps
	// trail reads the audit trail for Trace; nil when not configured.
	trail  AuditTrail
	logger *slog.Logger
	now    func() time.Time
	loc    *time.Location
	// zones finds each patient's time zone (see zoneFor).
	zones  zones
	sends  *prometheus.CounterVec
	starts *prometheus.CounterVec
	timerC *prometheus.CounterVec
	conds  *prometheus.CounterVec
	// blocked counts messages the outbound scan stopped.
	blocked *prometheus.CounterVec
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock waits are planned with (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Service) { s.now = now }
}

// WithLocation sets the time zone quiet hours are in for patients without
// one of their own and tenants without a default (default UTC).
func WithLocation(loc *time.Location) Option {
	return func(s *Service) { s.loc = loc }
}

// New returns a Service running the journeys in set, sending email through
// email, keeping waits with timers, checking consent in consents before
// every send, recording every decision with auditor, with its metrics
// registered on reg.
func New(set *catalog.Set, email EmailSender, timers Timers, consents ConsentStore, auditor Auditor, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) *Service {
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_sends_total",
		Help: "Journey steps that tried to send a message, by journey id, channel and outcome " +
			"(sent, duplicate, no_contact, unreachable, no_consent, quiet_hours, frequency_capped, render_failed, rejected, retry, fallback, blocked_identifier).",
	}, []string{"journey", "channel", "outcome"})
	starts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_starts_total",
		Help: "Journeys an event triggered, by journey id and outcome (started, condition_false, condition_error).",
	}, []string{"journey", "outcome"})
	timerC := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_timers_total",
		Help: "Journey waits, by journey id and outcome (scheduled, fired, time_passed, cancelled, stale, replanned, arrived, timed_out).",
	}, []string{"journey", "outcome"})
	conds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_step_conditions_total",
		Help: "Step if: conditions evaluated, by journey id and outcome (true, false, error).",
	}, []string{"journey", "outcome"})
	blocked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_outbound_blocked_total",
		Help: "Messages not sent because their rendered content held an identifier, by journey id, channel and identifier (ssn, patient_identifier).",
	}, []string{"journey", "channel", "identifier"})
	reg.MustRegister(sends, starts, timerC, conds, blocked)
	s := &Service{
		email: email, timers: timers, consents: consents, audit: auditor, logger: logger,
		now: time.Now, loc: time.UTC, sends: sends, starts: starts, timerC: timerC, conds: conds, blocked: blocked,
	}
	s.set.Store(set)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Journeys returns the loaded journeys that run for tenant (all of them
// when tenant is empty), ordered by id. They must not be modified.
func (s *Service) Journeys(tenant string) []*catalog.Journey {
	all := s.catalog().Journeys()
	if tenant == "" {
		return all
	}
	out := all[:0]
	for _, j := range all {
		if j.Tenant == "" || j.Tenant == tenant {
			out = append(out, j)
		}
	}
	return out
}

// CheckJourney checks one journey file against the loaded templates
// without loading it (see [catalog.Set.CheckJourney]).
func (s *Service) CheckJourney(name string, b []byte) (*catalog.Journey, []catalog.Problem) {
	return s.catalog().CheckJourney(name, b)
}

// Result says what HandleEvent did with an event.
type Result struct {
	// Journeys is how many journeys the event triggered (whether or not
	// their condition held).
	Journeys int
	// Cancels is how many journeys list the event in cancel_on.
	Cancels int
	// Replans is how many journeys list the event in replan_on.
	Replans int
	// Waits is how many journeys have a wait_for step for the event.
	Waits int
}

// HandleEvent first brings the patient's contact points, language and
// time zone up to date (see WithContacts: the store learns from ev, and ev
// is completed from the store), then cancels the pending timers of every journey instance
// that lists ev in cancel_on, re-plans those of every instance that lists
// it in replan_on, continues every instance waiting for it (wait_for),
// then runs every journey that ev triggers
// and whose when: condition holds. Each journey runs its steps in order
// until a wait, which sets a timer, and stops at the first step that
// fails; the other journeys still run. The error is nil when every step
// sent its message, was skipped or set its timer; it is [Permanent] when
// only retrying could not help; otherwise the event should be retried,
// which is safe because each step's idempotency key makes the channel
// drop what it already has and a timer set again replaces the first.
// Errors carry no PHI.
func (s *Service) HandleEvent(ctx context.Context, ev *eventsv1.ClinicalEvent) (Result, error) {
	if ev.GetTenant() == "" {
		return Result{}, Permanent(fmt.Errorf("event %s has no tenant", ev.GetEventId()))
	}
	// Before anything else, so that a patient.updated no journey reacts
	// to still updates what later events and timers use.
	current, err := s.withContacts(ctx, ev, true)
	if err != nil {
		return Result{}, fmt.Errorf("event %s: %w", ev.GetEventId(), err)
	}
	ev = current
	trigger := ev.GetKind() + "." + ev.GetAction()
	cancels := s.catalog().CancelledBy(ev.GetTenant(), trigger)
	replans := s.catalog().ReplannedBy(ev.GetTenant(), trigger)
	waiting := s.catalog().WaitingFor(ev.GetTenant(), trigger)
	journeys := s.catalog().Match(ev.GetTenant(), trigger)
	res := Result{Journeys: len(journeys), Cancels: len(cancels), Replans: len(replans), Waits: len(waiting)}
	if len(journeys)+len(cancels)+len(replans)+len(waiting) == 0 {
		return res, nil
	}
	if ev.GetSubjectRef() == "" {
		return res, Permanent(fmt.Errorf("event %s has no subject_ref, which journeys need as their instance key", ev.GetEventId()))
	}
	var errs outcomes
	for _, j := range cancels {
		errs.add(ev, j, s.cancel(ctx, ev, j))
	}
	for _, j := range replans {
		errs.add(ev, j, s.replan(ctx, ev, j))
	}
	for _, j := range waiting {
		errs.add(ev, j, s.arrived(ctx, ev, j))
	}
	vars := expr.VarsOf(ev, s.now())
	for _, j := range journeys {
		ok, err := s.condition(ctx, ev, j, vars)
		if err == nil && ok {
			err = s.run(ctx, ev, j, 0)
		}
		errs.add(ev, j, err)
	}
	return res, errs.err()
}

// outcomes sorts per-journey errors into retry and permanent ones.
type outcomes struct{ retry, permanent []error }

func (o *outcomes) add(ev *eventsv1.ClinicalEvent, j *catalog.Journey, err error) {
	if err == nil {
		return
	}
	err = fmt.Errorf("event %s: journey %s: %w", ev.GetEventId(), j.ID, err)
	if IsPermanent(err) {
		o.permanent = append(o.permanent, err)
	} else {
		o.retry = append(o.retry, err)
	}
}

func (o *outcomes) err() error {
	switch {
	case len(o.retry) > 0:
		// The permanent failures, if any, fail again on the retry and are
		// reported then.
		return errors.Join(o.retry...)
	case len(o.permanent) > 0:
		return Permanent(errors.Join(o.permanent...))
	}
	return nil
}

// condition evaluates j's when: condition for ev. False is audited and
// counted; an evaluation error is logged (without the CEL message, which
// may quote PHI) and is permanent for this journey.
func (s *Service) condition(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, vars expr.Vars) (bool, error) {
	instance := audit.Object{Type: "JourneyInstance", ID: Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())}
	if j.When == nil {
		if err := s.record(ctx, ev, j, ActionJourneyStarted, instance, audit.OutcomeSuccess, startStarted); err != nil {
			return false, err
		}
		s.starts.WithLabelValues(j.ID, startStarted).Inc()
		return true, nil
	}
	ok, err := j.When.Bool(vars)
	switch {
	case err != nil:
		if aerr := s.decided(ctx, ev, j, instance, audit.OutcomeFailure, startConditionError, "condition", "when"); aerr != nil {
			return false, aerr
		}
		s.starts.WithLabelValues(j.ID, startConditionError).Inc()
		s.logger.WarnContext(ctx, "journey condition failed for this event", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
			"journey", j.ID, "journeyVersion", j.Version, "instance", instance.ID)
		return false, Permanent(fmt.Errorf("when: %w", err))
	case !ok:
		if aerr := s.decided(ctx, ev, j, instance, audit.OutcomeSuppressed, startConditionFalse, "condition", "when"); aerr != nil {
			return false, aerr
		}
		s.starts.WithLabelValues(j.ID, startConditionFalse).Inc()
		s.logger.DebugContext(ctx, "journey condition false", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(), "journey", j.ID, "instance", instance.ID)
		return false, nil
	}
	if err := s.record(ctx, ev, j, ActionJourneyStarted, instance, audit.OutcomeSuccess, startStarted, "condition", "when"); err != nil {
		return false, err
	}
	s.starts.WithLabelValues(j.ID, startStarted).Inc()
	return true, nil
}

// run runs the steps of j for ev from step from until a wait (which sets
// a timer to resume after it), the end, or a failing step.
func (s *Service) run(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, from int) error {
	data := templateData(ev).In(s.zoneFor(ev))
	for i := from; i < len(j.Steps); i++ {
		st := j.Steps[i]
		run, deferred, err := s.stepCondition(ctx, ev, j, i, st)
		switch {
		case err != nil:
			return fmt.Errorf("step %d: %w", i, err)
		case deferred:
			return nil
		case !run:
			continue
		}
		if st.Kind == catalog.StepSend {
			if deferred, err := s.quiet(ctx, ev, j, i, st); err != nil || deferred {
				return err
			}
			if err := s.send(ctx, ev, j, strconv.Itoa(i), st, data); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
			continue
		}
		if st.Kind == catalog.StepWaitFor {
			if err := s.waitFor(ctx, ev, j, i, st); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
			return nil
		}
		now := s.now()
		due, err := dueTime(st, ev, now)
		if err != nil {
			s.logger.WarnContext(ctx, "journey wait_until failed for this event", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
				"journey", j.ID, "journeyVersion", j.Version, "instance", Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef()), "step", i)
			return Permanent(fmt.Errorf("step %d: wait_until: %w", i, err))
		}
		if !due.After(now) {
			next, err := s.skipPassed(ctx, ev, j, i)
			if err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
			i = next - 1
			continue
		}
		t := Timer{
			Tenant: ev.GetTenant(), Journey: j.ID, Version: j.Version,
			Instance: InstanceKey(ev.GetTenant(), j.ID, ev.GetSubjectRef()), Step: i + 1, Due: due, Event: ev,
		}
		if err := s.timers.Schedule(ctx, t); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		if err := s.planned(ctx, ev, j, i, due); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		s.timerC.WithLabelValues(j.ID, timerScheduled).Inc()
		s.logger.InfoContext(ctx, "journey timer set", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
			"journey", j.ID, "instance", Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef()), "step", i)
		return nil
	}
	return nil
}

// sendEmail runs send step stepID of journey j: its index ("2"), or for a
// step inside on_timeout "<index>.timeout.<k>".
//
// It returns the step's outcome (outcomeSent, outcomeDuplicate,
// outcomeNoContact, outcomeNoConsent, outcomeRejected, ...) for the
// fallback decision; the error is the one HandleEvent sees.
func (s *Service) sendEmail(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, stepID string, st catalog.Step, data catalog.Data) (string, error) {
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	attrs := []any{"tenant", ev.GetTenant(), "eventId", ev.GetEventId(), "journey", j.ID, "instance", instance, "step", stepID}
	var to string
	if emails := ev.GetPatient().GetEmails(); len(emails) > 0 {
		to = strings.TrimSpace(emails[0])
	}
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + stepID}
	if to == "" { // recorded by send: a fallback, or unreachable
		s.logger.InfoContext(ctx, "no email contact point", attrs...)
		return outcomeNoContact, nil
	}
	ok, why, err := s.consented(ctx, ev, j, step)
	if err != nil {
		return "", err
	}
	if !ok {
		return outcomeNoConsent, nil
	}
	key := stepKey(ev.GetTenant(), j.ID, ev.GetSubjectRef(), stepID)
	if capped, err := s.capped(ctx, ev, j, st, key, step); err != nil || capped {
		return outcomeFrequencyCapped, err
	}
	// Remembered before the send, so every email journey sends can be
	// traced back by an unsubscribe through it.
	sentMsg := SentMessage{Patient: ev.GetPatient().GetId(), Purpose: j.Purpose, Journey: j.ID}
	if err := s.consents.RememberSent(ctx, ev.GetTenant(), key, sentMsg); err != nil {
		s.count(j, outcomeRetry)
		return "", fmt.Errorf("remember sent email: %w", err)
	}
	// The patient's language, else the tenant's default, which Load
	// makes sure every template a journey uses is written in.
	tmpl, ok := s.catalog().Select(st.Template, ev.GetTenant(), ev.GetPatient().GetLanguage())
	if !ok { // Load checks every step's template; this is a bug.
		s.count(j, outcomeRenderFailed)
		return "", Permanent(fmt.Errorf("template %s is not loaded", st.Template))
	}
	msg, err := tmpl.Render(data)
	if err != nil {
		if aerr := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRenderFailed); aerr != nil {
			return "", aerr
		}
		s.count(j, outcomeRenderFailed)
		return "", Permanent(err)
	}
	if blocked, err := s.blockIdentifiers(ctx, ev, j, step, catalog.ChannelEmail, tmpl.ID,
		part{"subject", msg.Subject}, part{"text", msg.Text}, part{"html", msg.HTML}); err != nil || blocked {
		return outcomeBlocked, err
	}
	res, err := s.email.SendEmail(ctx, Email{
		Tenant:          ev.GetTenant(),
		IdempotencyKey:  key,
		To:              log.PHI(to),
		Subject:         log.PHI(msg.Subject),
		HTML:            log.PHI(msg.HTML),
		Text:            log.PHI(msg.Text),
		Security:        st.Security,
		Purpose:         j.Purpose,
		JourneyInstance: instance,
		Step:            stepID,
	})
	switch {
	case errors.As(err, new(*SuppressedError)):
		return s.addressSuppressed(ctx, ev, j, step, err, attrs)
	case IsPermanent(err):
		if aerr := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRejected, "channel", string(catalog.ChannelEmail)); aerr != nil {
			return "", aerr
		}
		s.count(j, outcomeRejected)
		return outcomeRejected, err
	case err != nil:
		s.count(j, outcomeRetry)
		return "", err
	}
	// Counted after the send: a count that fails retries the event, and
	// the channel drops the second send as a duplicate.
	if err := s.countSent(ctx, ev, j, key); err != nil {
		return "", err
	}
	reason := outcomeSent
	if res.Duplicate {
		reason = outcomeDuplicate
	}
	sentDetail := append([]string{"channel", string(catalog.ChannelEmail), "step", step.ID, "template", tmpl.ID}, why...)
	if err := s.decided(ctx, ev, j, audit.Object{Type: "EmailMessage", ID: res.MessageID}, audit.OutcomeSuccess, reason, sentDetail...); err != nil {
		return "", err
	}
	switch {
	case res.Duplicate:
		s.count(j, outcomeDuplicate)
		s.logger.InfoContext(ctx, "email already queued", append(attrs, "messageId", res.MessageID)...)
	default:
		s.count(j, outcomeSent)
		s.logger.InfoContext(ctx, "email queued", append(attrs, "messageId", res.MessageID, "template", tmpl.ID, "templateVersion", tmpl.Version)...)
	}
	return reason, nil
}

// decided records a send decision in the audit trail. When the record
// cannot be written the event is retried: the channel's idempotency key
// keeps the retry from sending twice.
// detail is key-value pairs for the record's Detail (see [journeyDetail]).
func (s *Service) decided(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, obj audit.Object, outcome, reason string, detail ...string) error {
	return s.record(ctx, ev, j, audit.ActionMessageDecided, obj, outcome, reason, detail...)
}

// record writes one audit record about journey j's instance for ev, with
// the journey, its version and the event's kind and action in Detail
// besides the key-value pairs in detail.
func (s *Service) record(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, action string, obj audit.Object, outcome, reason string, detail ...string) error {
	err := s.audit.Record(ctx, audit.Entry{
		Tenant: ev.GetTenant(), Actor: audit.Actor{Type: audit.ActorService, ID: "journey"},
		Action: action, Object: obj, Patient: ev.GetPatient().GetId(),
		Purpose: string(j.Purpose), Outcome: outcome, Reason: reason, TraceID: ev.GetEventId(),
		Detail: journeyDetail(ev, j, detail...),
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

func (s *Service) count(j *catalog.Journey, outcome string) {
	s.countOn(j, catalog.ChannelEmail, outcome)
}

func (s *Service) countOn(j *catalog.Journey, ch catalog.Channel, outcome string) {
	s.sends.WithLabelValues(j.ID, string(ch), outcome).Inc()
}

// IdempotencyKey is the key of step (0-based) of journey for the resource
// subjectRef: hex SHA-256 of "tenant|journey|subjectRef|step". It leaves
// out the event and the journey version on purpose, so the same
// appointment never gets the same step twice, even when the EHR sends the
// booking again or the journey file is edited.
func IdempotencyKey(tenant, journey, subjectRef string, step int) string {
	return stepKey(tenant, journey, subjectRef, strconv.Itoa(step))
}

// stepKey is [IdempotencyKey] for a step id: the index, or
// "<index>.timeout.<k>" for step k of a wait_for's on_timeout.
func stepKey(tenant, journey, subjectRef, stepID string) string {
	sum := sha256.Sum256([]byte(tenant + "|" + journey + "|" + subjectRef + "|" + stepID))
	return hex.EncodeToString(sum[:])
}

// Instance names the journey instance for subjectRef without revealing it:
// the journey id, "/", and 16 hex digits of SHA-256 of
// "tenant|journey|subjectRef". It is safe to log and to send as
// journey_instance.
func Instance(tenant, journey, subjectRef string) string {
	return journey + "/" + InstanceKey(tenant, journey, subjectRef)
}

// InstanceKey is the hash part of [Instance]: 16 hex digits of SHA-256 of
// "tenant|journey|subjectRef". It names timers (a NATS subject token)
// without revealing the resource.
func InstanceKey(tenant, journey, subjectRef string) string {
	sum := sha256.Sum256([]byte(tenant + "|" + journey + "|" + subjectRef))
	return hex.EncodeToString(sum[:8])
}

// templateData is what templates see of ev: only the fields they may use.
func templateData(ev *eventsv1.ClinicalEvent) catalog.Data {
	p := ev.GetPatient()
	d := catalog.Data{
		Tenant: ev.GetTenant(),
		Patient: catalog.Patient{
			FamilyName: p.GetFamilyName(),
			Language:   p.GetLanguage(),
		},
		Event: catalog.Event{Kind: ev.GetKind(), Action: ev.GetAction(), OccurredAt: timeOf(ev.GetOccurredAt())},
	}
	if given := p.GetGivenNames(); len(given) > 0 {
		d.Patient.GivenName = given[0]
	}
	if a := ev.GetAppointment(); a != nil {
		d.Appointment = &catalog.Appointment{
			Start:        timeOf(a.GetStart()),
			End:          timeOf(a.GetEnd()),
			ServiceType:  a.GetServiceType(),
			Description:  a.GetDescription(),
			Participants: a.GetParticipants(),
		}
	}
	return d
}

// timeOf is ts as a time, or the zero time when ts is not set.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
