package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/phone"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// SMSSender hands a text message to the sms channel, which stores it
// durably before it answers. A rejection that retrying cannot fix is
// returned marked with [Permanent]; any other error is worth retrying
// with the same idempotency key.
type SMSSender interface {
	SendSMS(ctx context.Context, m SMS) (SendResult, error)
}

// SMS is one text message to one patient. Its PHI fields are [log.PHI].
type SMS struct {
	// Tenant the message is sent for.
	Tenant string
	// IdempotencyKey is unique per journey instance, step and channel.
	IdempotencyKey string
	// To is the patient's number in E.164 form. PHI.
	To log.PHI
	// Body is the rendered text. PHI.
	Body log.PHI
	// JourneyInstance and Step identify what produced it. Not PHI.
	JourneyInstance, Step string
}

// LogValue logs the message's identifiers only.
func (m SMS) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", m.Tenant),
		slog.String("idempotencyKey", m.IdempotencyKey),
		slog.String("instance", m.JourneyInstance),
		slog.String("step", m.Step),
	)
}

// Numbers keeps which patients journey texted at a number, by the
// number's keyed hash (pkg/phone), so that a STOP from that number can be
// traced back to them. Patient ids are stored sealed.
type Numbers interface {
	// RememberNumber records that patient was texted at the number whose
	// keyed hash is numberHash.
	RememberNumber(ctx context.Context, tenant, numberHash, patient string) error
	// PatientsByNumber returns the patients RememberNumber recorded for
	// numberHash (none is not an error).
	PatientsByNumber(ctx context.Context, tenant, numberHash string) ([]string, error)
}

// NumberHasher is the keyed hash of a number; *phone.Hasher is one.
type NumberHasher interface {
	Hash(tenant, number string) string
}

// smsDeps is what the SMS channel needs; sender is nil when journey has
// no sms service to talk to.
type smsDeps struct {
	sender      SMSSender
	numbers     Numbers
	hasher      NumberHasher
	countryCode string
	// continuations, when set, keep SMS steps with a fallback for a
	// later failure (see SMSFailed).
	continuations Continuations
}

// WithSMS lets journeys send: sms through sender, remembering numbers in
// numbers under hasher's keyed hash; countryCode (digits, e.g. "1") is
// given to national numbers from the EHR.
func WithSMS(sender SMSSender, numbers Numbers, hasher NumberHasher, countryCode string) Option {
	return func(s *Service) {
		c := s.smsCh.continuations
		s.smsCh = smsDeps{sender: sender, numbers: numbers, hasher: hasher, countryCode: countryCode, continuations: c}
	}
}

// fallbackOn are the outcomes after which a step with a fallback channel
// sends on it instead: no usable contact point, no consent, the channel
// refused the message, or the email service refused the address as
// suppressed (bounced or complained before).
var fallbackOn = map[string]bool{outcomeNoContact: true, outcomeNoConsent: true, outcomeRejected: true, outcomeAddressSuppressed: true}

// outcomeFallback is the audit reason of a step that falls back.
const outcomeFallback = "fallback"

// send runs a send step on its channel and, when the outcome calls for
// it and the step has a fallback, on the fallback channel as step
// "<stepID>.fallback" with the fallback template. The fallback decision
// is audited (reason "fallback", detail from/channel/because).
//
// A channel without a usable contact point for the patient is recorded
// as no_contact when the step falls back, and as unreachable when it was
// the last channel the step could use (see unreachable).
func (s *Service) send(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, stepID string, st catalog.Step, data catalog.Data) error {
	outcome, err := s.sendOn(ctx, ev, j, stepID, st, data)
	if outcome == outcomeNoContact && st.Fallback == "" {
		return s.unreachable(ctx, ev, j, stepID, st.Send)
	}
	if st.Fallback == "" || !fallbackOn[outcome] || (err != nil && !IsPermanent(err)) {
		return err
	}
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + stepID}
	if outcome == outcomeNoContact {
		if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeNoContact, "channel", string(st.Send)); err != nil {
			return err
		}
		s.countOn(j, st.Send, outcomeNoContact)
	}
	if aerr := s.decided(ctx, ev, j, step, audit.OutcomeSuccess, outcomeFallback,
		"from", string(st.Send), "channel", string(st.Fallback), "because", outcome, "template", st.FallbackTemplate); aerr != nil {
		return aerr
	}
	s.countOn(j, st.Send, outcomeFallback)
	s.logger.InfoContext(ctx, "falling back to another channel", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "instance", instance, "step", stepID, "from", string(st.Send), "to", string(st.Fallback), "because", outcome)
	fb := st
	fb.Send, fb.Template, fb.Fallback, fb.FallbackTemplate = st.Fallback, st.FallbackTemplate, "", ""
	if outcome, err = s.sendOn(ctx, ev, j, stepID+".fallback", fb, data); outcome == outcomeNoContact {
		return s.unreachable(ctx, ev, j, stepID, st.Send, st.Fallback)
	}
	return err
}

// sendOn runs st on its channel.
func (s *Service) sendOn(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, stepID string, st catalog.Step, data catalog.Data) (string, error) {
	if st.Send == catalog.ChannelSMS {
		return s.sendSMS(ctx, ev, j, stepID, st, data)
	}
	return s.sendEmail(ctx, ev, j, stepID, st, data)
}

// smsKey is the idempotency key of an SMS step: the step key of
// "<stepID>/sms", so it differs from the key an email on the same step
// had (an edited journey, a fallback) while staying stable across
// retries and redeliveries.
func smsKey(tenant, journey, subjectRef, stepID string) string {
	return stepKey(tenant, journey, subjectRef, stepID+"/sms")
}

// smsContact returns the first of the patient's phone numbers (mobile
// first, as ingest orders them) that normalises to E.164.
func (s *Service) smsContact(ev *eventsv1.ClinicalEvent) string {
	for _, raw := range ev.GetPatient().GetPhones() {
		if n, ok := phone.Normalize(raw, s.smsCh.countryCode); ok {
			return n
		}
	}
	return ""
}

// sendSMS runs SMS send step stepID of journey j, as sendEmail does for
// email: contact point, consent (channel sms), frequency cap, number
// index, render (the template's text), send, audit.
func (s *Service) sendSMS(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, stepID string, st catalog.Step, data catalog.Data) (string, error) {
	ch := catalog.ChannelSMS
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	attrs := []any{"tenant", ev.GetTenant(), "eventId", ev.GetEventId(), "journey", j.ID, "instance", instance, "step", stepID}
	step := audit.Object{Type: "JourneyStep", ID: instance + "/" + stepID}
	to := s.smsContact(ev)
	if to == "" { // recorded by send: a fallback, or unreachable
		s.logger.InfoContext(ctx, "no usable phone number", attrs...)
		return outcomeNoContact, nil
	}
	ok, why, err := s.consentedOn(ctx, ev, j, step, ch)
	if err != nil {
		return "", err
	}
	if !ok {
		return outcomeNoConsent, nil
	}
	if s.smsCh.sender == nil {
		if err := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRejected, "channel", string(ch)); err != nil {
			return "", err
		}
		s.countOn(j, ch, outcomeRejected)
		return outcomeRejected, Permanent(errors.New("the journey sends sms and no sms service is configured (JOURNEY_SMS_ADDR)"))
	}
	key := smsKey(ev.GetTenant(), j.ID, ev.GetSubjectRef(), stepID)
	if capped, err := s.capped(ctx, ev, j, st, key, step); err != nil || capped {
		return outcomeFrequencyCapped, err
	}
	// Remembered before the send, so a STOP from this number always finds
	// the patient, and the message can be traced back like an email.
	if p := ev.GetPatient().GetId(); p != "" {
		if err := s.smsCh.numbers.RememberNumber(ctx, ev.GetTenant(), s.smsCh.hasher.Hash(ev.GetTenant(), to), p); err != nil {
			s.countOn(j, ch, outcomeRetry)
			return "", fmt.Errorf("remember number: %w", err)
		}
	}
	if err := s.consents.RememberSent(ctx, ev.GetTenant(), key, SentMessage{Patient: ev.GetPatient().GetId(), Purpose: j.Purpose, Journey: j.ID}); err != nil {
		s.countOn(j, ch, outcomeRetry)
		return "", fmt.Errorf("remember sent sms: %w", err)
	}
	if st.Fallback != "" && s.smsCh.continuations != nil {
		c := Continuation{Journey: j.ID, Step: stepID, Event: ev}
		if err := s.smsCh.continuations.RememberContinuation(ctx, ev.GetTenant(), key, c); err != nil {
			s.countOn(j, ch, outcomeRetry)
			return "", fmt.Errorf("remember continuation: %w", err)
		}
	}
	tmpl, ok := s.catalog().Select(st.Template, ev.GetTenant(), ev.GetPatient().GetLanguage())
	if !ok { // Load checks every step's template; this is a bug.
		s.countOn(j, ch, outcomeRenderFailed)
		return "", Permanent(fmt.Errorf("template %s is not loaded", st.Template))
	}
	msg, err := tmpl.Render(data)
	if err != nil {
		if aerr := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRenderFailed, "channel", string(ch)); aerr != nil {
			return "", aerr
		}
		s.countOn(j, ch, outcomeRenderFailed)
		return "", Permanent(err)
	}
	if blocked, err := s.blockIdentifiers(ctx, ev, j, step, ch, tmpl.ID, part{"text", msg.Text}); err != nil || blocked {
		return outcomeBlocked, err
	}
	res, err := s.smsCh.sender.SendSMS(ctx, SMS{
		Tenant: ev.GetTenant(), IdempotencyKey: key, To: log.PHI(to), Body: log.PHI(msg.Text),
		JourneyInstance: instance, Step: stepID,
	})
	switch {
	case IsPermanent(err):
		if aerr := s.decided(ctx, ev, j, step, audit.OutcomeFailure, outcomeRejected, "channel", string(ch)); aerr != nil {
			return "", aerr
		}
		s.countOn(j, ch, outcomeRejected)
		return outcomeRejected, err
	case err != nil:
		s.countOn(j, ch, outcomeRetry)
		return "", err
	}
	if err := s.countSent(ctx, ev, j, key); err != nil {
		return "", err
	}
	reason := outcomeSent
	if res.Duplicate {
		reason = outcomeDuplicate
	}
	detail := append([]string{"channel", string(ch), "step", step.ID, "template", tmpl.ID}, why...)
	if err := s.decided(ctx, ev, j, audit.Object{Type: "SMSMessage", ID: res.MessageID}, audit.OutcomeSuccess, reason, detail...); err != nil {
		return "", err
	}
	s.countOn(j, ch, reason)
	s.logger.InfoContext(ctx, "sms "+map[bool]string{true: "already queued", false: "queued"}[res.Duplicate],
		append(attrs, "messageId", res.MessageID, "template", tmpl.ID, "templateVersion", tmpl.Version)...)
	return reason, nil
}

// SMSKeyword applies a STOP (optIn false) or START (optIn true) texted
// from the number whose keyed hash is numberHash, evidenced by the
// inbound message providerID: for every patient journey texted at that
// number, SMS consent is revoked for every purpose, or granted again for
// treatment and operations (marketing needs an explicit authorization,
// which a START is not). It returns how many patients it changed.
func (s *Service) SMSKeyword(ctx context.Context, tenant, numberHash string, optIn bool, providerID string) (int, error) {
	if s.smsCh.numbers == nil {
		return 0, Permanent(errors.New("sms keyword: no number index configured"))
	}
	patients, err := s.smsCh.numbers.PatientsByNumber(ctx, tenant, numberHash)
	if err != nil {
		return 0, err
	}
	state, purposes := ConsentRevoked, []catalog.Purpose{catalog.PurposeTreatment, catalog.PurposeOperations, catalog.PurposeMarketing}
	if optIn {
		state, purposes = ConsentGranted, []catalog.Purpose{catalog.PurposeTreatment, catalog.PurposeOperations}
	}
	for _, p := range patients {
		for _, purpose := range purposes {
			_, err := s.SetConsent(ctx, Consent{
				Tenant: tenant, Patient: p, Channel: string(catalog.ChannelSMS), Purpose: purpose,
				State: state, Source: SourceSMSKeyword, EvidenceRef: "sms-message:" + providerID,
			})
			var verr *ValidationError
			if errors.As(err, &verr) {
				return 0, Permanent(err)
			}
			if err != nil {
				return 0, err
			}
		}
	}
	return len(patients), nil
}
