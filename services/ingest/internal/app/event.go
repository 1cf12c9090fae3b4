package app

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// KindAppointment is the event kind of appointment events.
const KindAppointment = "appointment"

// ContentTypeFHIRJSON is the media type of ClinicalEvent.original for FHIR
// input.
const ContentTypeFHIRJSON = "application/fhir+json"

// appointmentAction maps Appointment.status to an event action. Statuses
// that trigger no patient message (entered-in-error above all) give false.
func appointmentAction(status string) (string, bool) {
	switch status {
	case "booked", "cancelled", "noshow":
		return status, true
	}
	return "", false
}

// eventFor builds the event for one Bundle entry; false when the entry
// gives none.
func eventFor(src Source, n *fhirnotify.Notification, e fhirnotify.Entry, received time.Time) (*eventsv1.ClinicalEvent, bool, error) {
	if e.ResourceType != "Appointment" {
		return nil, false, nil
	}
	ap, err := n.Appointment(e)
	if err != nil {
		return nil, false, err
	}
	action, ok := appointmentAction(ap.Status)
	if !ok {
		return nil, false, nil
	}
	var patient *eventsv1.Patient
	if ap.PatientRef != "" {
		if patient, _, err = n.Patient(ap.PatientRef, received); err != nil {
			return nil, false, err
		}
	}
	nev, hasEvent := n.EventFor(e)
	number := n.EventsSinceStart
	if hasEvent && nev.Number > 0 {
		number = nev.Number
	}
	occurred := firstNonZero(ap.LastUpdatedTime, n.Timestamp, nev.Timestamp)
	versionKey := ap.VersionID
	if versionKey == "" {
		versionKey = ap.LastUpdated
	}
	if versionKey == "" {
		sum := sha256.Sum256(e.Raw)
		versionKey = hex.EncodeToString(sum[:])
	}
	ev := &eventsv1.ClinicalEvent{
		EventId:    EventID(src.Name, ap.Ref(), versionKey, action),
		Tenant:     src.Tenant,
		Kind:       KindAppointment,
		Action:     action,
		ReceivedAt: timestamppb.New(received),
		Source: &eventsv1.Source{
			Name:            src.Name,
			Protocol:        eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R4_BACKPORT,
			Subscription:    n.Subscription,
			Topic:           n.Topic,
			EventNumber:     number,
			ResourceVersion: ap.ResourceVersion(),
		},
		Patient:             patient,
		SubjectRef:          ap.Ref(),
		Facts:               &eventsv1.ClinicalEvent_Appointment{Appointment: ap.Facts},
		Original:            append([]byte(nil), e.Raw...),
		OriginalContentType: ContentTypeFHIRJSON,
	}
	if !occurred.IsZero() {
		ev.OccurredAt = timestamppb.New(occurred)
	}
	return ev, true, nil
}

// EventID derives the deterministic, PHI-free id of a FHIR-sourced event:
// the first 32 hex digits of the SHA-256 of
// "fhir|<source>|<Type/id>|<version key>|<action>", where the version key
// is meta.versionId, else meta.lastUpdated, else the SHA-256 of the raw
// resource. A re-sent notification gives the same id, which JetStream
// then drops as a duplicate.
func EventID(source, ref, versionKey, action string) string {
	sum := sha256.Sum256([]byte("fhir|" + source + "|" + ref + "|" + versionKey + "|" + action))
	return hex.EncodeToString(sum[:16])
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
