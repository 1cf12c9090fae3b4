package hl7map

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/hl7"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// ContentType is the media type of ClinicalEvent.original for HL7 v2 input.
const ContentType = "x-application/hl7-v2+er7"

// Event kinds.
const (
	KindAppointment = "appointment"
	KindLabResult   = "lab_result"
	KindEncounter   = "encounter"
	KindPatient     = "patient"
)

// Options describe where and when a message was received.
type Options struct {
	// Source and Tenant are the configured sender (not PHI).
	Source, Tenant string
	// Received is when ingest received the message.
	Received time.Time
	// Location reads HL7 times sent without an offset; UTC when nil.
	Location *time.Location
}

// Result is what a message maps to.
type Result struct {
	// Type is the message type, e.g. "SIU^S12" (MSH-9.1^MSH-9.2).
	Type string
	// Supported is false for message types this package does not map;
	// they are accepted without an event.
	Supported bool
	// Events are the candidate events, in message order: what the
	// message gives without knowing the resource's last-seen state. The
	// ingest app compares each with that state and emits the real
	// transition, if any. A candidate with an empty Action only updates
	// the state (ADT^A04/A11/A13, ORU with OBR-25 P or X). None is normal
	// (an ADT^A04 without a visit number, an ORU with pending results).
	Events []*eventsv1.ClinicalEvent
	// Subjects[i] describes the resource of Events[i].
	Subjects []Subject
}

// Map maps m (whose bytes as received are raw) to events. An error is a
// *hl7.ParseError: the message is of a supported type but lacks what the
// mapping needs.
func Map(m *hl7.Message, raw []byte, o Options) (Result, error) {
	mt := m.Type()
	res := Result{Type: mt.String()}
	kind, action, supported := route(mt)
	if !supported {
		return res, nil
	}
	res.Supported = true
	if m.ControlID() == "" {
		return res, &hl7.ParseError{Segment: "MSH", SegIndex: 1, Field: 10, Code: hl7.CodeRequiredFieldMissing, Msg: "message control id missing"}
	}
	sent, err := m.Time(o.Location)
	if err != nil {
		return res, err
	}
	patient, err := readPatient(m, o.Location)
	if err != nil {
		return res, err
	}
	b := builder{m: m, raw: raw, o: o, sent: sent, patient: patient, typ: mt.String()}
	switch kind {
	case KindAppointment:
		ev, sub, ok, err := b.appointment(mt.Trigger, action)
		if err != nil || !ok {
			return res, err
		}
		res.add(ev, sub)
	case KindLabResult:
		evs, subs, err := b.labResults()
		if err != nil {
			return res, err
		}
		res.Events, res.Subjects = evs, subs
	case KindEncounter:
		ev, sub, ok, err := b.encounter(mt.Trigger, action)
		if err != nil || !ok {
			return res, err
		}
		res.add(ev, sub)
	case KindPatient:
		ev := b.event(KindPatient, action, "Patient/"+patient.GetId())
		res.add(ev, patientSubject(m))
	}
	return res, nil
}

func (r *Result) add(ev *eventsv1.ClinicalEvent, sub Subject) {
	r.Events = append(r.Events, ev)
	r.Subjects = append(r.Subjects, sub)
}

// Supported reports whether messages of type t are mapped to events (the
// others are accepted without one).
func Supported(t hl7.MessageType) bool {
	_, _, ok := route(t)
	return ok
}

// route gives the kind and action of a message type; the action of
// ORU^R01 depends on OBR-25 and is decided later.
func route(t hl7.MessageType) (kind, action string, ok bool) {
	switch t.Code + "^" + t.Trigger {
	case "SIU^S12":
		return KindAppointment, "booked", true
	case "SIU^S13", "SIU^S14":
		return KindAppointment, "rescheduled", true
	case "SIU^S15", "SIU^S17":
		return KindAppointment, "cancelled", true
	case "SIU^S26":
		return KindAppointment, "noshow", true
	case "ORU^R01":
		return KindLabResult, "", true
	case "ADT^A01":
		return KindEncounter, "admitted", true
	case "ADT^A03":
		return KindEncounter, "discharged", true
	case "ADT^A04", "ADT^A11", "ADT^A13":
		// Registration, cancel admit, cancel discharge: state only.
		return KindEncounter, "", true
	case "ADT^A08", "ADT^A31":
		return KindPatient, "updated", true
	}
	return "", "", false
}

type builder struct {
	m       *hl7.Message
	raw     []byte
	o       Options
	sent    hl7.TS
	patient *eventsv1.Patient
	typ     string
}

// event builds a candidate event with the fields every kind shares; its
// id is the ingest app's to give, from the resource's state.
func (b *builder) event(kind, action, subject string) *eventsv1.ClinicalEvent {
	ev := &eventsv1.ClinicalEvent{
		Tenant:     b.o.Tenant,
		Kind:       kind,
		Action:     action,
		ReceivedAt: timestamppb.New(b.o.Received),
		Source: &eventsv1.Source{
			Name:        b.o.Source,
			Protocol:    eventsv1.Protocol_PROTOCOL_HL7V2_MLLP,
			MessageType: b.typ,
		},
		Patient:             b.patient,
		SubjectRef:          subject,
		Original:            append([]byte(nil), b.raw...),
		OriginalContentType: ContentType,
	}
	if !b.sent.IsZero() {
		ev.OccurredAt = timestamppb.New(b.sent.Time)
	}
	return ev
}

func segErr(s *hl7.Segment, name string, field int, code, msg string) *hl7.ParseError {
	e := &hl7.ParseError{Segment: name, Field: field, Code: code, Msg: msg}
	if s != nil {
		e.SegIndex = s.Index
	}
	return e
}

// missingSegment reports a required segment that is not there.
func missingSegment(name string) *hl7.ParseError {
	return &hl7.ParseError{Segment: name, Code: hl7.CodeSegmentSequence, Msg: "required segment " + name + " missing"}
}

// appointment maps an SIU message.
func (b *builder) appointment(trigger, action string) (*eventsv1.ClinicalEvent, Subject, bool, error) {
	sch := b.m.Segment("SCH")
	if sch == nil {
		return nil, Subject{}, false, missingSegment("SCH")
	}
	sub := Subject{Identifiers: eis(ei(RolePlacer, sch.Field(1)), ei(RoleFiller, sch.Field(2)))}
	if len(sub.Identifiers) == 0 {
		return nil, Subject{}, false, segErr(sch, "SCH", 1, hl7.CodeRequiredFieldMissing, "placer (SCH-1) and filler (SCH-2) appointment id both missing")
	}
	id := sub.Identifiers[0].Value
	facts := &eventsv1.AppointmentFacts{Status: map[string]string{
		"booked": "booked", "rescheduled": "booked", "cancelled": "cancelled", "noshow": "noshow"}[action]}
	sub.Status = facts.Status

	// Start and end: TQ1-7/8, else SCH-11.4/.5 (TQ, before v2.7), else AIS-4.
	start, end, startField, err := b.appointmentTimes(sch)
	if err != nil {
		return nil, Subject{}, false, err
	}
	if (trigger == "S13" || trigger == "S14") && startField == "" {
		// A modification without a start: nothing about the time is
		// known, so it only updates the state.
		action = ""
	}
	if !start.IsZero() {
		facts.Start = timestamppb.New(start.Time)
	}
	if !end.IsZero() {
		facts.End = timestamppb.New(end.Time)
	}
	if ais := b.m.Segment("AIS"); ais != nil {
		facts.ServiceType = text(ais.Field(3))
	}
	if facts.ServiceType == "" {
		facts.ServiceType = text(sch.Field(7))
	}
	for _, ail := range b.m.Segments("AIL") {
		if s := placeDisplay(ail.Field(3)); s != "" {
			facts.Participants = append(facts.Participants, s)
		}
	}
	for _, aip := range b.m.Segments("AIP") {
		if s := personDisplay(aip.Field(3)); s != "" {
			facts.Participants = append(facts.Participants, s)
		}
	}
	ev := b.event(KindAppointment, action, "Appointment/"+id)
	ev.Facts = &eventsv1.ClinicalEvent_Appointment{Appointment: facts}
	return ev, sub, true, nil
}

// appointmentTimes returns start and end, and which field gave the start
// ("" when none did).
func (b *builder) appointmentTimes(sch *hl7.Segment) (start, end hl7.TS, field string, err error) {
	parse := func(s *hl7.Segment, name string, f int, v hl7.Value) (hl7.TS, error) {
		ts, err := hl7.ParseTS(strings.TrimSpace(v.String()), b.o.Location)
		if err != nil {
			return hl7.TS{}, segErr(s, name, f, hl7.CodeDataType, "not an HL7 date/time")
		}
		return ts, nil
	}
	// TQ1 is the timing segment since v2.5; SCH-11 is kept only for
	// backward compatibility, and messages that carry both (the corpus has
	// such v2.8 messages) mean TQ1.
	if tq1 := b.m.Segment("TQ1"); tq1 != nil {
		if start, err = parse(tq1, "TQ1", 7, tq1.Field(7).Comp(1)); err != nil {
			return
		}
		if !start.IsZero() {
			end, err = parse(tq1, "TQ1", 8, tq1.Field(8).Comp(1))
			return start, end, "TQ1-7", err
		}
	}
	if start, err = parse(sch, "SCH", 11, sch.Field(11).Comp(4)); err != nil {
		return
	}
	if !start.IsZero() {
		end, err = parse(sch, "SCH", 11, sch.Field(11).Comp(5))
		return start, end, "SCH-11", err
	}
	if ais := b.m.Segment("AIS"); ais != nil {
		start, err = parse(ais, "AIS", 4, ais.Field(4).Comp(1))
	}
	return start, hl7.TS{}, "", err
}

// labResults maps an ORU^R01: one candidate per OBR whose result status
// (OBR-25) is F (final), C (corrected), P (preliminary) or X (cannot be
// obtained, i.e. cancelled); the last two only update the state.
func (b *builder) labResults() ([]*eventsv1.ClinicalEvent, []Subject, error) {
	obrs := b.m.Segments("OBR")
	if len(obrs) == 0 {
		return nil, nil, missingSegment("OBR")
	}
	var (
		out  []*eventsv1.ClinicalEvent
		subs []Subject
	)
	for _, obr := range obrs {
		var action, status string
		switch strings.ToUpper(strings.TrimSpace(obr.Field(25).String())) {
		case "F":
			action, status = "final", "final"
		case "C":
			action, status = "amended", "corrected"
		case "P":
			status = "preliminary"
		case "X":
			status = "cancelled"
		default:
			continue
		}
		sub := Subject{Status: status, Identifiers: eis(ei(RoleFiller, obr.Field(3)), ei(RolePlacer, obr.Field(2)))}
		if len(sub.Identifiers) == 0 {
			return nil, nil, segErr(obr, "OBR", 3, hl7.CodeRequiredFieldMissing, "filler (OBR-3) and placer (OBR-2) order number both missing")
		}
		out = append(out, b.event(KindLabResult, action, "DiagnosticReport/"+sub.Identifiers[0].Value))
		subs = append(subs, sub)
	}
	return out, subs, nil
}

// encounterStatus is the FHIR Encounter.status an ADT trigger means.
var encounterStatus = map[string]string{
	"A01": "in-progress", // admit
	"A03": "finished",    // discharge
	"A04": "arrived",     // register an outpatient
	"A11": "cancelled",   // cancel admit
	"A13": "in-progress", // cancel discharge
}

// encounter maps ADT^A01/A03 (visit number required) and A04/A11/A13
// (state only: without a visit number they give nothing).
func (b *builder) encounter(trigger, action string) (*eventsv1.ClinicalEvent, Subject, bool, error) {
	pv1 := b.m.Segment("PV1")
	if pv1 == nil && action == "" {
		return nil, Subject{}, false, nil
	}
	if pv1 == nil {
		return nil, Subject{}, false, missingSegment("PV1")
	}
	sub := Subject{Status: encounterStatus[trigger], Identifiers: eis(cx(RoleVisit, pv1.Field(19))),
		Inpatient: strings.EqualFold(strings.TrimSpace(pv1.Field(2).Comp(1).String()), "I")}
	if len(sub.Identifiers) == 0 && action == "" {
		return nil, Subject{}, false, nil
	}
	if len(sub.Identifiers) == 0 {
		return nil, Subject{}, false, segErr(pv1, "PV1", 19, hl7.CodeRequiredFieldMissing, "visit number missing")
	}
	return b.event(KindEncounter, action, "Encounter/"+sub.Identifiers[0].Value), sub, true, nil
}

// text returns a CE/CWE's text (component 2), else its code.
func text(v hl7.Value) string {
	if s := strings.TrimSpace(v.Comp(2).String()); s != "" {
		return s
	}
	return strings.TrimSpace(v.Comp(1).String())
}

// placeDisplay returns a PL's description (PL-9), else its point of care,
// room, bed and facility joined by spaces.
func placeDisplay(v hl7.Value) string {
	if s := strings.TrimSpace(v.Comp(9).String()); s != "" {
		return s
	}
	var parts []string
	for _, c := range []hl7.Value{v.Comp(1), v.Comp(2), v.Comp(3), v.Comp(4).Sub(1)} {
		if s := strings.TrimSpace(c.String()); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// personDisplay returns an XCN's given and family names, else its id.
func personDisplay(v hl7.Value) string {
	var parts []string
	for _, c := range []hl7.Value{v.Comp(6), v.Comp(3), v.Comp(4), v.Comp(2).Sub(1)} {
		if s := strings.TrimSpace(c.String()); s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return strings.TrimSpace(v.Comp(1).String())
	}
	return strings.Join(parts, " ")
}
