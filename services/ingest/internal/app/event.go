package app

import (
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

// Event kinds of FHIR resources besides appointments (ARCHITECTURE.md).
const (
	KindEncounter = "encounter"
	KindLabResult = "lab_result"
	KindPatient   = "patient"
)

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
	kind       string
	header     fhirnotify.Header
	patientRef string
	// locationRefs are the appointment's Location participants, whose
	// time zone stands in for a patient without one.
	locationRefs []string
	occurred     time.Time
	appointment  *eventsv1.AppointmentFacts
	// patient is the event's patient when the resource is the Patient.
	patient *eventsv1.Patient
	// obs is the observed state (Kind, Status and the resource's own
	// fields; keys, source and version are added by eventFor).
	obs Observation
}

// mapEntry reads entry e into its candidate event; false when its type
// gives none. patients says whether a Patient entry is itself reported as
// changed (else it is only there to be referenced).
func mapEntry(c *fhirnotify.Collection, e fhirnotify.Entry, received time.Time, patients bool) (mapped, bool, error) {
	switch e.ResourceType {
	case "Appointment":
		ap, err := c.Appointment(e)
		if err != nil {
			return mapped{}, false, err
		}
		m := mapped{kind: KindAppointment, patientRef: ap.PatientRef, locationRefs: ap.LocationRefs, occurred: ap.LastUpdatedTime,
			header: fhirnotify.Header{Entry: e, Type: "Appointment", ID: ap.ID, VersionID: ap.VersionID,
				LastUpdated: ap.LastUpdated, LastUpdatedTime: ap.LastUpdatedTime, Identifiers: ap.Identifiers},
			appointment: ap.Facts, obs: Observation{Kind: KindAppointment, Status: ap.Status, ServiceType: ap.Facts.GetServiceType()}}
		if ap.Facts.GetStart() != nil {
			m.obs.Start = ap.Facts.GetStart().AsTime()
		}
		if ap.Facts.GetEnd() != nil {
			m.obs.End = ap.Facts.GetEnd().AsTime()
		}
		return m, true, nil
	case "Encounter":
		enc, err := c.Encounter(e)
		if err != nil {
			return mapped{}, false, err
		}
		occurred := enc.LastUpdatedTime
		if enc.Status != "in-progress" && !enc.PeriodEnd.IsZero() {
			occurred = enc.PeriodEnd // a discharge happened when the stay ended
		}
		return mapped{kind: KindEncounter, header: enc.Header, patientRef: enc.PatientRef, occurred: occurred,
			obs: Observation{Kind: KindEncounter, Status: enc.Status, Inpatient: enc.Inpatient, DischargeDisposition: enc.DischargeDisposition}}, true, nil
	case "DiagnosticReport":
		dr, err := c.DiagnosticReport(e)
		if err != nil {
			return mapped{}, false, err
		}
		return mapped{kind: KindLabResult, header: dr.Header, patientRef: dr.PatientRef,
			occurred: firstNonZero(dr.Issued, dr.LastUpdatedTime), obs: Observation{Kind: KindLabResult, Status: dr.Status}}, true, nil
	case "Patient":
		if !patients {
			return mapped{}, false, nil
		}
		pr, ok, err := c.PatientResource(e, received)
		if err != nil || !ok {
			return mapped{}, false, err
		}
		p := pr.Patient
		return mapped{kind: KindPatient, header: pr.Header, patient: p, occurred: pr.LastUpdatedTime,
			obs: Observation{Kind: KindPatient, ContactHash: contactHash(p.GetEmails(), p.GetPhones(), p.GetLanguage(), pr.Deceased)}}, true, nil
	}
	return mapped{}, false, nil
}

// eventFor builds the candidate event of one entry; false when the entry
// gives none.
func eventFor(src Source, c *fhirnotify.Collection, e fhirnotify.Entry, received time.Time, o origin, patients bool) (candidate, bool, error) {
	m, ok, err := mapEntry(c, e, received, patients)
	if err != nil || !ok {
		return candidate{}, false, err
	}
	patient := m.patient
	if patient == nil && m.patientRef != "" {
		if patient, _, err = c.Patient(m.patientRef, received); err != nil {
			return candidate{}, false, err
		}
	}
	if patient != nil && patient.GetTimeZone() == "" {
		patient.TimeZone = c.LocationZone(m.locationRefs)
	}
	h := m.header
	// The id and action are settle's to decide.
	ev := &eventsv1.ClinicalEvent{
		Tenant:     src.Tenant,
		Kind:       m.kind,
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
	obs := m.obs
	obs.Source, obs.SubjectRef = src.Name, h.Ref()
	obs.Keys = fhirKeys(src.Name, h.Ref(), h.Identifiers)
	obs.Version = SourceVersion{VersionID: h.VersionID, Time: h.LastUpdatedTime}
	return candidate{ev: ev, obs: obs}, true, nil
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

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
