package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// Contacts is what journey keeps of how to reach a patient: contact
// points, preferred language and time zone, as the latest event that
// carried them said. Every field is PHI; the record is stored sealed and
// never logged.
type Contacts struct {
	// Emails are the patient's email addresses, preferred first.
	Emails []string
	// Phones are the patient's phone numbers as the EHR sent them, mobile
	// first.
	Phones []string
	// Language is the preferred language (BCP-47), "" when unknown.
	Language string
	// TimeZone is the patient's IANA time zone, "" when unknown.
	TimeZone string
	// AsOf is when the EHR said so: the occurred_at (else received_at) of
	// the newest event the record took something from.
	AsOf time.Time
}

// ContactStore keeps each patient's [Contacts]. Errors other than
// [ErrNotFound] mean the store could not answer: the event or timer is
// then retried (journey does not guess who to write to).
type ContactStore interface {
	// Contacts returns the tenant's record for patient, or ErrNotFound.
	Contacts(ctx context.Context, tenant, patient string) (Contacts, error)
	// PutContacts replaces the tenant's record for patient.
	PutContacts(ctx context.Context, tenant, patient string, c Contacts) error
}

// WithContacts keeps patients' contact points, language and time zone in
// cs, updated from every event, so that an event or timer without them
// still reaches the patient.
func WithContacts(cs ContactStore) Option {
	return func(s *Service) { s.contacts = cs }
}

// eventTime is when ev's facts were true: occurred_at, else received_at
// (zero when neither is set).
func eventTime(ev *eventsv1.ClinicalEvent) time.Time {
	if t := timeOf(ev.GetOccurredAt()); !t.IsZero() {
		return t
	}
	return timeOf(ev.GetReceivedAt())
}

// mergeContacts combines the stored record (found false: none) with what
// patient p of an event at time at says. Each part — the contact points
// (emails and phones together), the language, the time zone — is taken
// from the event when the event has it and is not older than the record
// (or the record lacks it), else kept. authoritative says the event is
// about the Patient itself (patient.updated): its contact points replace
// the stored ones even when it has none, so a removed address is
// forgotten. changed reports whether the result differs from the record.
func mergeContacts(stored Contacts, found bool, p *eventsv1.Patient, at time.Time, authoritative bool) (merged Contacts, changed bool) {
	newer := !found || at.IsZero() || !at.Before(stored.AsOf)
	merged = stored
	points := len(p.GetEmails())+len(p.GetPhones()) > 0
	if (points || authoritative) && (newer || len(stored.Emails)+len(stored.Phones) == 0) {
		merged.Emails, merged.Phones = slices.Clone(p.GetEmails()), slices.Clone(p.GetPhones())
	}
	if l := p.GetLanguage(); l != "" && (newer || stored.Language == "") {
		merged.Language = l
	}
	if z := p.GetTimeZone(); z != "" && (newer || stored.TimeZone == "") {
		merged.TimeZone = z
	}
	if newer && at.After(stored.AsOf) {
		merged.AsOf = at
	}
	changed = !found || !slices.Equal(merged.Emails, stored.Emails) || !slices.Equal(merged.Phones, stored.Phones) ||
		merged.Language != stored.Language || merged.TimeZone != stored.TimeZone || !merged.AsOf.Equal(stored.AsOf)
	return merged, changed
}

// withContacts returns ev with its patient's contact points, language and
// time zone as journey knows them now: the stored record merged with
// what ev says (see mergeContacts). When update is set (ev is a new
// event, not a timer's continuation) the merged record is stored if it
// changed. An event without a usable patient id, or a service without a
// contact store, is returned as it is. ev itself is not modified.
func (s *Service) withContacts(ctx context.Context, ev *eventsv1.ClinicalEvent, update bool) (*eventsv1.ClinicalEvent, error) {
	p := ev.GetPatient()
	if s.contacts == nil || !patientRE.MatchString(p.GetId()) || !tenantRE.MatchString(ev.GetTenant()) {
		return ev, nil
	}
	stored, err := s.contacts.Contacts(ctx, ev.GetTenant(), p.GetId())
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	merged, changed := mergeContacts(stored, found, p, eventTime(ev), ev.GetKind() == "patient")
	if update && changed {
		if err := s.contacts.PutContacts(ctx, ev.GetTenant(), p.GetId(), merged); err != nil {
			return nil, fmt.Errorf("store contacts: %w", err)
		}
		s.logger.DebugContext(ctx, "patient contacts stored", "tenant", ev.GetTenant(), "eventId", ev.GetEventId())
	}
	if slices.Equal(merged.Emails, p.GetEmails()) && slices.Equal(merged.Phones, p.GetPhones()) &&
		merged.Language == p.GetLanguage() && merged.TimeZone == p.GetTimeZone() {
		return ev, nil
	}
	out := proto.CloneOf(ev)
	out.Patient.Emails, out.Patient.Phones = merged.Emails, merged.Phones
	out.Patient.Language, out.Patient.TimeZone = merged.Language, merged.TimeZone
	return out, nil
}
