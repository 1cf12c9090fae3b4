package app

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// ConsentState is a patient's decision about one channel and purpose.
type ConsentState string

// Consent states.
const (
	ConsentGranted ConsentState = "granted"
	ConsentDenied  ConsentState = "denied"
	ConsentRevoked ConsentState = "revoked"
)

// ConsentSource is where a consent decision came from.
type ConsentSource string

// Consent sources.
const (
	SourceAdmin            ConsentSource = "admin"
	SourceFHIRConsent      ConsentSource = "fhir-consent"
	SourceSMSKeyword       ConsentSource = "sms-keyword"
	SourceEmailUnsubscribe ConsentSource = "email-unsubscribe"
)

// Consent is one consent record: a patient's decision about messages on
// one channel for one purpose. It is stored sealed: Patient and
// EvidenceRef may be PHI and are never logged.
type Consent struct {
	// Tenant the patient belongs to.
	Tenant string
	// Patient is the patient's logical id. PHI (an identifier).
	Patient string
	// Channel is "email" or "sms".
	Channel string
	// Purpose is treatment, operations or marketing.
	Purpose catalog.Purpose
	// State is the decision.
	State ConsentState
	// Source is where it came from.
	Source ConsentSource
	// Time is when it was recorded.
	Time time.Time
	// EvidenceRef identifies the evidence (a FHIR Consent id, a message
	// id, a ticket number). Free text; may be PHI.
	EvidenceRef string
}

// ConsentKey names one consent record.
type ConsentKey struct {
	Tenant, Patient, Channel string
	Purpose                  catalog.Purpose
}

// SentMessage is what journey remembers of an email it handed to the
// channel, so an unsubscribe through that email can be traced back to the
// patient and purpose. Stored sealed (Patient is PHI).
type SentMessage struct {
	Patient string
	Purpose catalog.Purpose
	Journey string
}

// ErrNotFound is returned by a [ConsentStore] for a missing record.
var ErrNotFound = errors.New("not found")

// ConsentStore keeps consent records and sent-message mappings. Errors
// other than [ErrNotFound] mean the store could not answer (unreachable,
// or a record that does not open): journey then does not send.
type ConsentStore interface {
	// Consent returns the record for k, or ErrNotFound.
	Consent(ctx context.Context, k ConsentKey) (Consent, error)
	// PutConsent stores c, replacing the record for its key.
	PutConsent(ctx context.Context, c Consent) error
	// ConsentRef is the keyed hash that names k's record without revealing
	// the patient (safe to log and audit).
	ConsentRef(k ConsentKey) string
	// RememberSent stores m under the tenant's idempotency key.
	RememberSent(ctx context.Context, tenant, idempotencyKey string, m SentMessage) error
	// Sent returns what RememberSent stored, or ErrNotFound.
	Sent(ctx context.Context, tenant, idempotencyKey string) (SentMessage, error)
}

// FieldError is a request field that failed validation. Its message names
// the field and the rule, never the value.
type FieldError struct {
	Field, Description string
}

// ValidationError lists the fields of a request that failed validation.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	msg := "invalid request:"
	for i, f := range e.Fields {
		if i > 0 {
			msg += ";"
		}
		msg += " " + f.Field + ": " + f.Description
	}
	return msg
}

var (
	tenantRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	patientRE = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`) // a FHIR logical id
)

// maxEvidence is the longest evidence reference, in bytes.
const maxEvidence = 256

// ValidateKey checks a consent key, returning a *ValidationError.
func ValidateKey(k ConsentKey) error {
	var v ValidationError
	validateKey(&v, k)
	if len(v.Fields) > 0 {
		return &v
	}
	return nil
}

func validateKey(v *ValidationError, k ConsentKey) {
	if !tenantRE.MatchString(k.Tenant) {
		v.Fields = append(v.Fields, FieldError{"tenant", "required; letters, digits, '_' and '-', at most 64"})
	}
	if !patientRE.MatchString(k.Patient) {
		v.Fields = append(v.Fields, FieldError{"patient_id", "required; a FHIR logical id (letters, digits, '-' and '.', at most 64)"})
	}
	if k.Channel != "email" && k.Channel != "sms" {
		v.Fields = append(v.Fields, FieldError{"channel", "must be email or sms"})
	}
	switch k.Purpose {
	case catalog.PurposeTreatment, catalog.PurposeOperations, catalog.PurposeMarketing:
	default:
		v.Fields = append(v.Fields, FieldError{"purpose", "must be treatment, operations or marketing"})
	}
}

// validateConsent checks a consent change.
func validateConsent(c Consent) error {
	var v ValidationError
	validateKey(&v, ConsentKey{c.Tenant, c.Patient, c.Channel, c.Purpose})
	switch c.State {
	case ConsentGranted, ConsentDenied, ConsentRevoked:
	default:
		v.Fields = append(v.Fields, FieldError{"state", "must be granted, denied or revoked"})
	}
	switch c.Source {
	case SourceAdmin, SourceFHIRConsent, SourceSMSKeyword, SourceEmailUnsubscribe:
	default:
		v.Fields = append(v.Fields, FieldError{"source", "must be admin, fhir-consent, sms-keyword or email-unsubscribe"})
	}
	if len(c.EvidenceRef) > maxEvidence || !printable(c.EvidenceRef) {
		v.Fields = append(v.Fields, FieldError{"evidence_ref", fmt.Sprintf("at most %d bytes of printable text", maxEvidence)})
	}
	if len(v.Fields) > 0 {
		return &v
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Consent returns the consent record for k: ErrNotFound when there is
// none, a *ValidationError for a bad key.
//
// Every answer (found or not) is a PHI read, audited as phi.read by the
// actor of ctx ([WithActor]) before it is returned.
func (s *Service) Consent(ctx context.Context, k ConsentKey) (Consent, error) {
	if err := ValidateKey(k); err != nil {
		return Consent{}, err
	}
	c, err := s.consents.Consent(ctx, k)
	reason := "found"
	switch {
	case errors.Is(err, ErrNotFound):
		reason = "not_found"
	case err != nil:
		return Consent{}, err
	}
	if aerr := s.phiRead(ctx, audit.Entry{
		Tenant: k.Tenant, Object: audit.Object{Type: "Consent", ID: s.consents.ConsentRef(k)},
		Patient: k.Patient, Purpose: string(k.Purpose), Reason: reason,
		Detail: map[string]string{"api": "GetConsent"},
	}); aerr != nil {
		return Consent{}, aerr
	}
	return c, err
}

// SetConsent records a consent decision (its Time is set to now):
// published to the consent log (WithConsentLog) and acknowledged there
// before the consent store is written; then it audits the change (consent.changed, reason = the new state). It
// returns the stored record; a *ValidationError for a bad request.
func (s *Service) SetConsent(ctx context.Context, c Consent) (Consent, error) {
	if err := validateConsent(c); err != nil {
		return Consent{}, err
	}
	c.Time = s.now().UTC().Round(0).Truncate(time.Millisecond)
	// Durable first: a change on the consent log can rebuild a lost or
	// failed Redis write (RebuildConsent); a retry publishes it again.
	if s.consentLog != nil {
		if err := s.consentLog.Publish(ctx, c, actorOf(ctx)); err != nil {
			return Consent{}, err
		}
	}
	if err := s.consents.PutConsent(ctx, c); err != nil {
		return Consent{}, err
	}
	k := ConsentKey{c.Tenant, c.Patient, c.Channel, c.Purpose}
	err := s.audit.Record(ctx, audit.Entry{
		Time: c.Time, Tenant: c.Tenant, Actor: actorOf(ctx),
		Action: ActionConsentChanged, Object: audit.Object{Type: "Consent", ID: s.consents.ConsentRef(k)},
		Patient: c.Patient, Purpose: string(c.Purpose), Outcome: audit.OutcomeSuccess, Reason: string(c.State),
		Detail: map[string]string{"channel": c.Channel, "consentSource": string(c.Source)},
	})
	if err != nil {
		return Consent{}, fmt.Errorf("audit consent change: %w", err)
	}
	s.logger.InfoContext(ctx, "consent changed", "tenant", c.Tenant, "consent", s.consents.ConsentRef(k),
		"channel", c.Channel, "purpose", string(c.Purpose), "state", string(c.State), "source", string(c.Source))
	return c, nil
}

// ActionConsentChanged is the audit action of a consent change.
const ActionConsentChanged = "consent.changed"

// allowed decides whether a message for purpose may go, given the
// patient's record (found false: none). Treatment and operations go
// unless the patient denied or revoked them; marketing only with an
// explicit grant.
func allowed(purpose catalog.Purpose, c Consent, found bool) bool {
	if purpose == catalog.PurposeMarketing {
		return found && c.State == ConsentGranted
	}
	return !found || c.State == ConsentGranted
}

// OptOut handles a one-click unsubscribe from the email with idempotency
// key: it revokes email consent for the purpose of the journey that sent
// it. It returns false when journey has no record of that email (it was
// not sent by journey, or more than 90 days ago).
func (s *Service) OptOut(ctx context.Context, tenant, idempotencyKey, messageID string) (bool, error) {
	m, err := s.consents.Sent(ctx, tenant, idempotencyKey)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = s.SetConsent(ctx, Consent{
		Tenant: tenant, Patient: m.Patient, Channel: "email", Purpose: m.Purpose,
		State: ConsentRevoked, Source: SourceEmailUnsubscribe, EvidenceRef: "email-message:" + messageID,
	})
	var verr *ValidationError
	if errors.As(err, &verr) {
		return false, Permanent(err)
	}
	return err == nil, err
}

// consented checks, at send time, whether the patient's consent allows
// step of j on email. A denial is audited (suppressed no_consent),
// counted and logged, and returns false with no error. A store that
// cannot answer returns an error that retries the event or timer: journey
// never sends without knowing (fail closed).
//
// why is the consent evidence for the audit record's Detail: the record
// that allowed or stopped the send, or that there was none.
func (s *Service) consented(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, step audit.Object) (ok bool, why []string, err error) {
	return s.consentedOn(ctx, ev, j, step, catalog.ChannelEmail)
}

// consentedOn is consented for channel ch.
func (s *Service) consentedOn(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, step audit.Object, ch catalog.Channel) (ok bool, why []string, err error) {
	k := ConsentKey{Tenant: ev.GetTenant(), Patient: ev.GetPatient().GetId(), Channel: string(ch), Purpose: j.Purpose}
	var (
		c     Consent
		found bool
	)
	if ValidateKey(k) == nil {
		var err error
		c, err = s.consents.Consent(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			s.countOn(j, ch, outcomeRetry)
			return false, nil, fmt.Errorf("check consent: %w", err)
		default:
			found = true
		}
		why = s.consentDetail(k, c, found)
	} else {
		// Without a usable patient id no record can be found, and none can
		// be kept: only a grant could allow marketing, and an opt-out could
		// never be honoured. Do not send.
		found, c = true, Consent{State: ConsentDenied}
		why = []string{"consent", consentNoPatient}
	}
	if allowed(j.Purpose, c, found) {
		return true, why, nil
	}
	if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeNoConsent, append([]string{"channel", k.Channel}, why...)...); err != nil {
		return false, nil, err
	}
	s.countOn(j, ch, outcomeNoConsent)
	s.logger.InfoContext(ctx, "no consent; step not sent", "tenant", ev.GetTenant(), "eventId", ev.GetEventId(),
		"journey", j.ID, "step", step.ID, "purpose", string(j.Purpose), "consent", s.consents.ConsentRef(k))
	return false, why, nil
}

// Values of the "consent" Detail entry when no record decided.
const (
	consentNone      = "none"       // no record: the default rule of the purpose decided
	consentNoPatient = "no_patient" // the event names no usable patient id
)

// consentDetail describes, for an audit record's Detail, the consent
// record (found) that decided a send, or that there was none: its keyed
// reference, state, source and time. No PHI: the evidence reference
// stays in the sealed record.
func (s *Service) consentDetail(k ConsentKey, c Consent, found bool) []string {
	if !found {
		return []string{"consent", consentNone}
	}
	d := []string{"consent", s.consents.ConsentRef(k), "consentState", string(c.State), "consentSource", string(c.Source)}
	if !c.Time.IsZero() {
		d = append(d, "consentAt", c.Time.UTC().Format(time.RFC3339Nano))
	}
	return d
}
