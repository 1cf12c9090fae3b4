package app

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
)

// AuditTrail reads the audit trail for [Service.Trace]. The service wires
// it to pkg/audit's Query over the AUDIT stream.
type AuditTrail interface {
	// Query returns the records matching f, oldest first.
	Query(ctx context.Context, f audit.Filter) ([]audit.Record, error)
	// PatientRef is the keyed hash a patient appears under in the trail.
	PatientRef(tenant, patient string) string
}

// WithAuditTrail sets where Trace reads the audit trail. Without it
// Trace fails.
func WithAuditTrail(t AuditTrail) Option {
	return func(s *Service) { s.trail = t }
}

// TraceQuery names whose decisions Trace returns: exactly one of Patient
// (a FHIR logical id, PHI), PatientRef (the trail's keyed hash) and
// MessageID (a channel's message id), in Tenant, optionally between
// Since and Until.
type TraceQuery struct {
	Tenant     string
	Patient    string
	PatientRef string
	MessageID  string
	Since      time.Time
	Until      time.Time
}

// TraceEntry is one decision about the patient, as the audit trail has
// it, with a plain-language Summary. It holds no PHI.
type TraceEntry struct {
	Time       time.Time
	Service    string
	Actor      audit.Actor
	Action     string
	Object     audit.Object
	Purpose    string
	Outcome    string
	Reason     string
	EventID    string
	Detail     map[string]string
	Summary    string
	PatientRef string
}

// Trace is the answer to "why did or didn't this patient get this?".
type Trace struct {
	// PatientRef is the keyed hash of the patient traced.
	PatientRef string
	// Entries are in time order.
	Entries []TraceEntry
}

// ErrTraceNotFound is returned by Trace when a message id is not in the
// trail.
var ErrTraceNotFound = errors.New("no journey message with this id in the audit trail")

var (
	patientRefRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	messageIDRE  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// ValidateTrace checks q, returning a *ValidationError.
func ValidateTrace(q TraceQuery) error {
	var v ValidationError
	if !tenantRE.MatchString(q.Tenant) {
		v.Fields = append(v.Fields, FieldError{"tenant", "required; letters, digits, '_' and '-', at most 64"})
	}
	n := 0
	for _, s := range []string{q.Patient, q.PatientRef, q.MessageID} {
		if s != "" {
			n++
		}
	}
	switch {
	case n != 1:
		v.Fields = append(v.Fields, FieldError{"subject", "exactly one of patient_id, patient_ref and message_id is required"})
	case q.Patient != "" && !patientRE.MatchString(q.Patient):
		v.Fields = append(v.Fields, FieldError{"patient_id", "a FHIR logical id (letters, digits, '-' and '.', at most 64)"})
	case q.PatientRef != "" && !patientRefRE.MatchString(q.PatientRef):
		v.Fields = append(v.Fields, FieldError{"patient_ref", "64 lowercase hex digits, as the audit trail shows patients"})
	case q.MessageID != "" && !messageIDRE.MatchString(q.MessageID):
		v.Fields = append(v.Fields, FieldError{"message_id", "a message id (letters, digits, '.', '_', ':' and '-', at most 128)"})
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		v.Fields = append(v.Fields, FieldError{"until", "must be after since"})
	}
	if len(v.Fields) > 0 {
		return &v
	}
	return nil
}

// Trace returns every decision about one patient in the audit trail, in
// time order: the events ingest received, the journeys they started or
// did not (and why), the steps planned, the messages sent (with the
// consent record that allowed them) or suppressed (with the reason), and
// what the channel did with each message. A message id is traced to the
// patient journey sent it to. It reads the whole of the tenant's trail
// in the time range (the trail has no index by patient).
func (s *Service) Trace(ctx context.Context, q TraceQuery) (Trace, error) {
	if err := ValidateTrace(q); err != nil {
		return Trace{}, err
	}
	if s.trail == nil {
		return Trace{}, errors.New("trace: no audit trail configured")
	}
	ref := q.PatientRef
	switch {
	case q.Patient != "":
		ref = s.trail.PatientRef(q.Tenant, q.Patient)
	case q.MessageID != "":
		recs, err := s.trail.Query(ctx, audit.Filter{Tenant: q.Tenant, Service: "journey", ObjectID: q.MessageID, Action: audit.ActionMessageDecided})
		if err != nil {
			return Trace{}, fmt.Errorf("trace: %w", err)
		}
		for _, r := range recs {
			if r.PatientRef != "" {
				ref = r.PatientRef
				break
			}
		}
		if ref == "" {
			return Trace{}, ErrTraceNotFound
		}
	}
	// Who was traced, and by whom, is itself a PHI read: recorded before
	// the trail is read, so a trace never goes unrecorded.
	if err := s.phiRead(ctx, audit.Entry{
		Tenant: q.Tenant, Object: audit.Object{Type: "PatientTrace", ID: ref}, Patient: q.Patient, PatientRef: ref,
		Reason: "trace", Detail: map[string]string{"api": "Trace"},
	}); err != nil {
		return Trace{}, err
	}
	recs, err := s.trail.Query(ctx, audit.Filter{Tenant: q.Tenant, PatientRef: ref, Since: q.Since, Until: q.Until})
	if err != nil {
		return Trace{}, fmt.Errorf("trace: %w", err)
	}
	// What the channels did with the messages sent: their records name
	// the message, not the patient.
	messages := map[string]bool{}
	kinds := map[string]string{} // event id → "kind.action", from journey's records
	for _, r := range recs {
		if r.Service == "journey" && strings.HasSuffix(r.Object.Type, "Message") && r.Outcome == audit.OutcomeSuccess {
			messages[r.Object.Type+"/"+r.Object.ID] = true
		}
		if ev := r.Detail["event"]; ev != "" && r.TraceID != "" {
			if _, ok := kinds[r.TraceID]; !ok {
				kinds[r.TraceID] = ev
			}
		}
	}
	if len(messages) > 0 {
		chs, err := s.trail.Query(ctx, audit.Filter{Tenant: q.Tenant, Since: q.Since, Until: q.Until})
		if err != nil {
			return Trace{}, fmt.Errorf("trace: %w", err)
		}
		for _, r := range chs {
			if r.Service != "journey" && r.PatientRef == "" && messages[r.Object.Type+"/"+r.Object.ID] {
				recs = append(recs, r)
			}
		}
	}
	out := Trace{PatientRef: ref}
	for _, r := range recs {
		if r.Action == audit.ActionCheckpoint {
			continue
		}
		e := TraceEntry{
			Time: r.Time, Service: r.Service, Actor: r.Actor, Action: r.Action, Object: r.Object,
			Purpose: r.Purpose, Outcome: r.Outcome, Reason: r.Reason, EventID: r.TraceID, Detail: r.Detail,
			PatientRef: r.PatientRef,
		}
		e.Summary = summarize(e, kinds)
		out.Entries = append(out.Entries, e)
	}
	sort.SliceStable(out.Entries, func(i, j int) bool { return out.Entries[i].Time.Before(out.Entries[j].Time) })
	return out, nil
}
