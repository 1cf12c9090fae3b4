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

// Event kinds of FHIR resources besides appointments (ARCHITECTURE.md).
const (
	KindEncounter = "encounter"
	KindLabResult = "lab_result"
)

// encounterAction maps an Encounter to an event action: in-progress with
// an inpatient class is an admission; finished (R4), completed or
// discharged (R5) is a discharge when the stay was inpatient or names a
// discharge disposition (an ambulatory visit that ends is no discharge).
// entered-in-error and everything else give false.
func encounterAction(e *fhirnotify.Encounter) (string, bool) {
	switch e.Status {
	case "in-progress":
		return "admitted", e.Inpatient
	case "discharged":
		return "discharged", true
	case "finished", "completed":
		return "discharged", e.Inpatient || e.DischargeDisposition
	}
	return "", false
}

// labAction maps DiagnosticReport.status to an event action.
func labAction(status string) (string, bool) {
	switch status {
	case "final":
		return "final", true
	case "amended", "corrected":
		return "amended", true
	}
	return "", false
}

// origin is how a resource arrived, for the event's Source.
type origin struct {
	protocol     eventsv1.Protocol
	subscription string
	topic        string
	eventNumber  int64
	// times are the fallbacks for occurred_at, in order, after the
	// resource's own time.
	times []time.Time
}

// mapped is the part of an event that depends on the resource type.
type mapped struct {
	kind, action string
	header       fhirnotify.Header
	patientRef   string
	occurred     time.Time
	appointment  *eventsv1.AppointmentFacts
}

// mapEntry reads entry e and decides its event; false when it gives none.
func mapEntry(c *fhirnotify.Collection, e fhirnotify.Entry) (mapped, bool, error) {
	switch e.ResourceType {
	case "Appointment":
		ap, err := c.Appointment(e)
		if err != nil {
			return mapped{}, false, err
		}
		action, ok := appointmentAction(ap.Status)
		return mapped{kind: KindAppointment, action: action, patientRef: ap.PatientRef, occurred: ap.LastUpdatedTime,
			header: fhirnotify.Header{Entry: e, Type: "Appointment", ID: ap.ID, VersionID: ap.VersionID,
				LastUpdated: ap.LastUpdated, LastUpdatedTime: ap.LastUpdatedTime},
			appointment: ap.Facts}, ok, nil
	case "Encounter":
		enc, err := c.Encounter(e)
		if err != nil {
			return mapped{}, false, err
		}
		action, ok := encounterAction(enc)
		occurred := enc.LastUpdatedTime
		if action == "discharged" && !enc.PeriodEnd.IsZero() {
			occurred = enc.PeriodEnd
		}
		return mapped{kind: KindEncounter, action: action, header: enc.Header, patientRef: enc.PatientRef, occurred: occurred}, ok, nil
	case "DiagnosticReport":
		dr, err := c.DiagnosticReport(e)
		if err != nil {
			return mapped{}, false, err
		}
		action, ok := labAction(dr.Status)
		return mapped{kind: KindLabResult, action: action, header: dr.Header, patientRef: dr.PatientRef,
			occurred: firstNonZero(dr.Issued, dr.LastUpdatedTime)}, ok, nil
	}
	return mapped{}, false, nil
}

// eventFor builds the event for one entry; false when the entry gives
// none.
func eventFor(src Source, c *fhirnotify.Collection, e fhirnotify.Entry, received time.Time, o origin) (*eventsv1.ClinicalEvent, bool, error) {
	m, ok, err := mapEntry(c, e)
	if err != nil || !ok {
		return nil, false, err
	}
	var patient *eventsv1.Patient
	if m.patientRef != "" {
		if patient, _, err = c.Patient(m.patientRef, received); err != nil {
			return nil, false, err
		}
	}
	h := m.header
	versionKey := h.VersionID
	if versionKey == "" {
		versionKey = h.LastUpdated
	}
	if versionKey == "" {
		sum := sha256.Sum256(e.Raw)
		versionKey = hex.EncodeToString(sum[:])
	}
	ev := &eventsv1.ClinicalEvent{
		EventId:    EventID(src.Name, h.Ref(), versionKey, m.action),
		Tenant:     src.Tenant,
		Kind:       m.kind,
		Action:     m.action,
		ReceivedAt: timestamppb.New(received),
		Source: &eventsv1.Source{
			Name:            src.Name,
			Protocol:        o.protocol,
			Subscription:    o.subscription,
			Topic:           o.topic,
			EventNumber:     o.eventNumber,
			ResourceVersion: h.ResourceVersion(),
		},
		Patient:             patient,
		SubjectRef:          h.Ref(),
		Original:            append([]byte(nil), e.Raw...),
		OriginalContentType: ContentTypeFHIRJSON,
	}
	if m.appointment != nil {
		ev.Facts = &eventsv1.ClinicalEvent_Appointment{Appointment: m.appointment}
	}
	if occurred := firstNonZero(append([]time.Time{m.occurred}, o.times...)...); !occurred.IsZero() {
		ev.OccurredAt = timestamppb.New(occurred)
	}
	return ev, true, nil
}

// notificationOrigin is the origin of entry e of notification n.
func notificationOrigin(n *fhirnotify.Notification, e fhirnotify.Entry) origin {
	nev, hasEvent := n.EventFor(e)
	number := n.EventsSinceStart
	if hasEvent && nev.Number > 0 {
		number = nev.Number
	}
	return origin{protocol: protocolOf(n.Version), subscription: n.Subscription, topic: n.Topic,
		eventNumber: number, times: []time.Time{n.Timestamp, nev.Timestamp}}
}

// protocolOf maps a notification's version to the event protocol.
func protocolOf(v fhirnotify.Version) eventsv1.Protocol {
	switch v {
	case fhirnotify.VersionR4B:
		return eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R4B
	case fhirnotify.VersionR5:
		return eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R5
	}
	return eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R4_BACKPORT
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
