// Package hl7map maps HL7 v2 messages (parsed by pkg/hl7) to candidate
// carenotify.events.v1.ClinicalEvent values and a Subject describing the
// resource each is about (business identifiers, status), following the
// "Canonical event" table of the architecture (HL7 v2 column):
//
//	SIU^S12          appointment booked
//	SIU^S13, S14     appointment booked at a (new) start; an S13/S14
//	                 without a start (TQ1-7, SCH-11.4, AIS-4) only updates
//	                 the state
//	SIU^S15, S17     appointment cancelled
//	SIU^S26          appointment noshow
//	ORU^R01          one lab result per OBR with OBR-25 F (final), C
//	                 (corrected), P (preliminary, state only) or X
//	                 (cancelled, state only); other statuses give none
//	ADT^A01          encounter admitted
//	ADT^A03          encounter discharged
//	ADT^A04, A11,    encounter registered, admission cancelled, discharge
//	A13              cancelled: state only; nothing without PV1-19
//	ADT^A08, A31     patient (PID-3 identifiers, PID-29/30 deceased)
//
// A candidate is what the message says, not yet an event: the ingest app
// compares it with the resource's last-seen state and emits the real
// transition (if any) with an id of its own. Every other message type is
// accepted without a candidate.
//
// Segment and field meanings follow HL7 v2.5.1 chapters 2 (MSH, data
// types), 3 (PID, PV1), 7 (OBR) and 10 (SCH, TQ1, AIS, AIL, AIP):
// https://www.hl7.org/implement/standards/product_brief.cfm?product_id=144.
// Errors are *hl7.ParseError values naming the segment and field, never a
// value.
package hl7map
