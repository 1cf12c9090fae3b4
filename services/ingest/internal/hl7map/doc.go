// Package hl7map maps HL7 v2 messages (parsed by pkg/hl7) to
// carenotify.events.v1.ClinicalEvent, following the "Canonical event"
// table of the architecture (HL7 v2 column):
//
//	SIU^S12          appointment.booked
//	SIU^S13          appointment.rescheduled
//	SIU^S14          appointment.rescheduled, only when it carries a start
//	                 (TQ1-7 or SCH-11.4); otherwise no event
//	SIU^S15, S17     appointment.cancelled
//	SIU^S26          appointment.noshow
//	ORU^R01          lab_result.final (OBR-25 F) / lab_result.amended (C),
//	                 one event per such OBR; other statuses give none
//	ADT^A01          encounter.admitted
//	ADT^A03          encounter.discharged
//	ADT^A08, A31     patient.updated
//
// Without the last-seen state of the appointment (kept by journey, not
// here) an S13 is always taken as a reschedule, and an S14
// ("modification") only when it names a start time. Every other message
// type is accepted without an event.
//
// Segment and field meanings follow HL7 v2.5.1 chapters 2 (MSH, data
// types), 3 (PID, PV1), 7 (OBR) and 10 (SCH, TQ1, AIS, AIL, AIP):
// https://www.hl7.org/implement/standards/product_brief.cfm?product_id=144.
// Errors are *hl7.ParseError values naming the segment and field, never a
// value.
package hl7map
