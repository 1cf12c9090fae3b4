package fhirnotify

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// Appointment is an Appointment a notification carries, read into the
// facts of a ClinicalEvent.
type Appointment struct {
	// Entry is the Bundle entry it came from; Entry.Raw is its JSON.
	Entry Entry
	// ID is the logical id.
	ID string
	// VersionID is meta.versionId, if given.
	VersionID string
	// LastUpdated is meta.lastUpdated as sent ("" if absent), and
	// LastUpdatedTime the same parsed.
	LastUpdated     string
	LastUpdatedTime time.Time
	// Status is Appointment.status, a code of the R4 AppointmentStatus
	// value set.
	Status string
	// PatientRef is the reference of the first participant that is a
	// Patient, "" when none is.
	PatientRef string
	// LocationRefs are the references of the participants that are
	// Locations, in order (their time zone stands in for the patient's
	// when the Patient has none).
	LocationRefs []string
	// Facts are the normalised facts.
	Facts *eventsv1.AppointmentFacts
	// Identifiers are Appointment.identifier (PHI).
	Identifiers []*eventsv1.Identifier
	// Replaces are the references ("Appointment/<id>") of the
	// appointments an R5 Appointment.replaces names.
	Replaces []string
}

// Ref returns "Appointment/<id>".
func (a *Appointment) Ref() string { return "Appointment/" + a.ID }

// ResourceVersion returns "Appointment/<id>/_history/<versionId>", or
// Ref() when the resource has no versionId.
func (a *Appointment) ResourceVersion() string {
	if a.VersionID == "" {
		return a.Ref()
	}
	return a.Ref() + "/_history/" + a.VersionID
}

// appointmentSniff reads what the R4 model cannot tell apart from its zero
// value.
type appointmentSniff struct {
	Status *json.RawMessage `json:"status"`
}

// Appointment reads the Appointment in entry e. Errors are *Error
// (422-class) pointing at the element that is wrong.
func (n *Collection) Appointment(e Entry) (*Appointment, error) {
	expr := e.Expression()
	if e.ResourceType != "Appointment" {
		return nil, unprocessable(ReasonInvalidResource, IssueInvalid, expr+".resourceType", "expected an Appointment")
	}
	if n.R5 {
		return n.appointmentR5(e)
	}
	r, err := fhir.UnmarshalAppointment(e.Raw)
	if err != nil {
		return nil, decodeError(e.Raw, reflect.TypeFor[fhir.Appointment](), expr, ReasonInvalidResource, false, err)
	}
	var sn appointmentSniff
	if err := json.Unmarshal(e.Raw, &sn); err != nil || sn.Status == nil {
		return nil, unprocessable(ReasonInvalidResource, IssueRequired, expr+".status", "Appointment.status is required")
	}
	a := &Appointment{Entry: e, ID: deref(r.Id), Status: r.Status.Code()}
	for _, id := range r.Identifier {
		if v := strings.TrimSpace(deref(id.Value)); v != "" {
			a.Identifiers = append(a.Identifiers, &eventsv1.Identifier{System: strings.TrimSpace(deref(id.System)), Value: v})
		}
	}
	if a.ID == "" {
		return nil, unprocessable(ReasonInvalidResource, IssueRequired, expr+".id",
			"the Appointment needs its logical id in a full-resource notification")
	}
	if r.Meta != nil {
		a.VersionID = deref(r.Meta.VersionId)
		a.LastUpdated = deref(r.Meta.LastUpdated)
		if a.LastUpdatedTime, err = instant(r.Meta.LastUpdated, expr+".meta.lastUpdated"); err != nil {
			return nil, err
		}
	}
	facts := &eventsv1.AppointmentFacts{Status: a.Status, Description: deref(r.Description)}
	if facts.Start, err = timestamp(r.Start, expr+".start"); err != nil {
		return nil, err
	}
	if facts.End, err = timestamp(r.End, expr+".end"); err != nil {
		return nil, err
	}
	if len(r.ServiceType) > 0 {
		st := r.ServiceType[0]
		if len(st.Coding) > 0 && deref(st.Coding[0].Display) != "" {
			facts.ServiceType = deref(st.Coding[0].Display)
		} else {
			facts.ServiceType = deref(st.Text)
		}
	}
	for _, p := range r.Participant {
		if p.Actor == nil {
			continue
		}
		ref := deref(p.Actor.Reference)
		if isLocation(ref, deref(p.Actor.Type)) {
			a.LocationRefs = append(a.LocationRefs, ref)
		}
		if n.isPatient(ref, deref(p.Actor.Type)) {
			if a.PatientRef == "" {
				a.PatientRef = ref
			}
			continue
		}
		if d := deref(p.Actor.Display); d != "" {
			facts.Participants = append(facts.Participants, d)
		}
	}
	a.Facts = facts
	return a, nil
}

// isPatient reports whether a participant's actor is a Patient: by its
// reference, its declared type, or the Bundle entry the reference resolves to.
func (n *Collection) isPatient(ref, typ string) bool {
	if ref == "" {
		return false
	}
	if RefType(ref) == "Patient" || typ == "Patient" {
		return true
	}
	e, ok := n.Resolve(ref)
	return ok && e.ResourceType == "Patient"
}

// instant parses an optional FHIR instant at expr.
func instant(s *string, expr string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, unprocessable(ReasonInvalidResource, IssueInvalid, expr,
			"expected a FHIR instant with a time zone (YYYY-MM-DDThh:mm:ss[.fff]Z or +hh:mm)")
	}
	return t, nil
}

// timestamp parses an optional FHIR instant at expr into a Timestamp, nil
// when absent.
func timestamp(s *string, expr string) (*timestamppb.Timestamp, error) {
	t, err := instant(s, expr)
	if err != nil || t.IsZero() {
		return nil, err
	}
	return timestamppb.New(t), nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
