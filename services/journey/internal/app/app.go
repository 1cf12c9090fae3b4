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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/log"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Outcomes of a step, the outcome label of journey_sends_total.
const (
	outcomeSent         = "sent"          // the channel stored the message
	outcomeDuplicate    = "duplicate"     // the channel had it already (same idempotency key)
	outcomeNoContact    = "no_contact"    // the patient has no contact point on the channel
	outcomeRenderFailed = "render_failed" // the template failed for this event; not retried
	outcomeRejected     = "rejected"      // the channel refused the message; not retried
	outcomeRetry        = "retry"         // the channel failed or was unreachable; the event is retried
)

// Service runs journeys for clinical events.
type Service struct {
	set    *catalog.Set
	email  EmailSender
	audit  Auditor
	logger *slog.Logger
	sends  *prometheus.CounterVec
}

// New returns a Service running the journeys in set, sending email through
// email, recording every decision with auditor, with its metrics registered
// on reg.
func New(set *catalog.Set, email EmailSender, auditor Auditor, logger *slog.Logger, reg prometheus.Registerer) *Service {
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_sends_total",
		Help: "Journey steps that tried to send a message, by journey id, channel and outcome " +
			"(sent, duplicate, no_contact, render_failed, rejected, retry).",
	}, []string{"journey", "channel", "outcome"})
	reg.MustRegister(sends)
	return &Service{set: set, email: email, audit: auditor, logger: logger, sends: sends}
}

// Journeys returns the loaded journeys that run for tenant (all of them
// when tenant is empty), ordered by id. They must not be modified.
func (s *Service) Journeys(tenant string) []*catalog.Journey {
	all := s.set.Journeys()
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

// Result says what HandleEvent did with an event.
type Result struct {
	// Journeys is how many journeys the event triggered.
	Journeys int
}

// HandleEvent runs every journey that ev triggers. Each journey runs its
// steps in order and stops at the first that fails; the other journeys
// still run. The error is nil when every step sent its message or had to
// be skipped (no contact point); it is [Permanent] when only retrying
// could not help; otherwise the event should be retried, which is safe
// because each step's idempotency key makes the channel drop what it
// already has. Errors carry no PHI.
func (s *Service) HandleEvent(ctx context.Context, ev *eventsv1.ClinicalEvent) (Result, error) {
	if ev.GetTenant() == "" {
		return Result{}, Permanent(fmt.Errorf("event %s has no tenant", ev.GetEventId()))
	}
	journeys := s.set.Match(ev.GetTenant(), ev.GetKind()+"."+ev.GetAction())
	if len(journeys) == 0 {
		return Result{}, nil
	}
	res := Result{Journeys: len(journeys)}
	if ev.GetSubjectRef() == "" {
		return res, Permanent(fmt.Errorf("event %s has no subject_ref, which journeys need as their instance key", ev.GetEventId()))
	}
	data := templateData(ev)
	var retry, permanent []error
	for _, j := range journeys {
		for i, st := range j.Steps {
			err := s.sendEmail(ctx, ev, j, i, st, data)
			if err == nil {
				continue
			}
			err = fmt.Errorf("event %s: journey %s step %d: %w", ev.GetEventId(), j.ID, i, err)
			if IsPermanent(err) {
				permanent = append(permanent, err)
			} else {
				retry = append(retry, err)
			}
			break
		}
	}
	switch {
	case len(retry) > 0:
		// The permanent failures, if any, fail again on the retry and are
		// reported then.
		return res, errors.Join(retry...)
	case len(permanent) > 0:
		return res, Permanent(errors.Join(permanent...))
	}
	return res, nil
}

// sendEmail runs send step i of journey j.
func (s *Service) sendEmail(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, i int, st catalog.Step, data catalog.Data) error {
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	attrs := []any{"tenant", ev.GetTenant(), "eventId", ev.GetEventId(), "journey", j.ID, "instance", instance, "step", i}
	var to string
	if emails := ev.GetPatient().GetEmails(); len(emails) > 0 {
		to = strings.TrimSpace(emails[0])
	}
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + strconv.Itoa(i)}
	if to == "" {
		if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeNoContact); err != nil {
			return err
		}
		s.count(j, outcomeNoContact)
		s.logger.InfoContext(ctx, "no email contact point", attrs...)
		return nil
	}
	tmpl, ok := s.set.Template(st.Template)
	if !ok { // Load checks every step's template; this is a bug.
		s.count(j, outcomeRenderFailed)
		return Permanent(fmt.Errorf("template %s is not loaded", st.Template))
	}
	msg, err := tmpl.Render(data)
	if err != nil {
		if aerr := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRenderFailed); aerr != nil {
			return aerr
		}
		s.count(j, outcomeRenderFailed)
		return Permanent(err)
	}
	res, err := s.email.SendEmail(ctx, Email{
		Tenant:          ev.GetTenant(),
		IdempotencyKey:  IdempotencyKey(ev.GetTenant(), j.ID, ev.GetSubjectRef(), i),
		To:              log.PHI(to),
		Subject:         log.PHI(msg.Subject),
		HTML:            log.PHI(msg.HTML),
		Text:            log.PHI(msg.Text),
		Security:        st.Security,
		JourneyInstance: instance,
		Step:            strconv.Itoa(i),
	})
	switch {
	case IsPermanent(err):
		if aerr := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRejected); aerr != nil {
			return aerr
		}
		s.count(j, outcomeRejected)
		return err
	case err != nil:
		s.count(j, outcomeRetry)
		return err
	}
	reason := outcomeSent
	if res.Duplicate {
		reason = outcomeDuplicate
	}
	if err := s.decided(ctx, ev, j, audit.Object{Type: "EmailMessage", ID: res.MessageID}, audit.OutcomeSuccess, reason); err != nil {
		return err
	}
	switch {
	case res.Duplicate:
		s.count(j, outcomeDuplicate)
		s.logger.InfoContext(ctx, "email already queued", append(attrs, "messageId", res.MessageID)...)
	default:
		s.count(j, outcomeSent)
		s.logger.InfoContext(ctx, "email queued", append(attrs, "messageId", res.MessageID, "template", tmpl.ID, "templateVersion", tmpl.Version)...)
	}
	return nil
}

// decided records a send decision in the audit trail. When the record
// cannot be written the event is retried: the channel's idempotency key
// keeps the retry from sending twice.
func (s *Service) decided(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, obj audit.Object, outcome, reason string) error {
	err := s.audit.Record(ctx, audit.Entry{
		Tenant: ev.GetTenant(), Actor: audit.Actor{Type: audit.ActorService, ID: "journey"},
		Action: audit.ActionMessageDecided, Object: obj, Patient: ev.GetPatient().GetId(),
		Purpose: string(j.Purpose), Outcome: outcome, Reason: reason, TraceID: ev.GetEventId(),
	})
	if err != nil {
		return fmt.Errorf("audit send decision: %w", err)
	}
	return nil
}

func (s *Service) count(j *catalog.Journey, outcome string) {
	s.sends.WithLabelValues(j.ID, string(catalog.ChannelEmail), outcome).Inc()
}

// IdempotencyKey is the key of step (0-based) of journey for the resource
// subjectRef: hex SHA-256 of "tenant|journey|subjectRef|step". It leaves
// out the event and the journey version on purpose, so the same
// appointment never gets the same step twice, even when the EHR sends the
// booking again or the journey file is edited.
func IdempotencyKey(tenant, journey, subjectRef string, step int) string {
	sum := sha256.Sum256([]byte(tenant + "|" + journey + "|" + subjectRef + "|" + strconv.Itoa(step)))
	return hex.EncodeToString(sum[:])
}

// Instance names the journey instance for subjectRef without revealing it:
// the journey id, "/", and 16 hex digits of SHA-256 of
// "tenant|journey|subjectRef". It is safe to log and to send as
// journey_instance.
func Instance(tenant, journey, subjectRef string) string {
	sum := sha256.Sum256([]byte(tenant + "|" + journey + "|" + subjectRef))
	return journey + "/" + hex.EncodeToString(sum[:8])
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
