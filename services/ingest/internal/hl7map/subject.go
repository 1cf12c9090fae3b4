package hl7map

import (
	"strings"

	"github.com/carenotify/carenotify/pkg/hl7"
)

// Roles of an EI: the field a business identifier came from.
const (
	// RolePlacer is a placer appointment id (SCH-1) or placer order
	// number (OBR-2).
	RolePlacer = "placer"
	// RoleFiller is a filler appointment id (SCH-2) or filler order
	// number (OBR-3).
	RoleFiller = "filler"
	// RoleVisit is a visit number (PV1-19).
	RoleVisit = "visit"
	// RolePatient is a patient identifier (PID-3).
	RolePatient = "patient"
)

// EI is a business identifier as HL7 v2 sends it: an EI (entity
// identifier) or the id and assigning authority of a CX.
type EI struct {
	// Role is the field it came from (Role* constants).
	Role string
	// Value is EI-1 or CX-1. PHI.
	Value string
	// Namespace is EI-2, or CX-4.1 (the assigning authority's namespace
	// id).
	Namespace string
	// UniversalID and UniversalIDType are EI-3 and EI-4, or CX-4.2 and
	// CX-4.3 (e.g. an OID and "ISO").
	UniversalID, UniversalIDType string
}

// Subject is what a message says about the state of the resource a
// candidate event is about.
type Subject struct {
	// Identifiers are its business identifiers, the one that names the
	// subject_ref first.
	Identifiers []EI
	// Status is the FHIR status code the message means: Appointment
	// (booked, cancelled, noshow), Encounter (in-progress, finished,
	// arrived, cancelled) or DiagnosticReport (final, corrected,
	// preliminary, cancelled); "" for a patient.
	Status string
	// Inpatient is true when PV1-2 (patient class) is I.
	Inpatient bool
	// Deceased is true when PID-30 is Y or PID-29 (death date) is set.
	Deceased bool
}

// ei reads an EI field.
func ei(role string, v hl7.Value) EI {
	return EI{Role: role, Value: strings.TrimSpace(v.Comp(1).String()), Namespace: strings.TrimSpace(v.Comp(2).String()),
		UniversalID: strings.TrimSpace(v.Comp(3).String()), UniversalIDType: strings.TrimSpace(v.Comp(4).String())}
}

// cx reads a CX field's id and assigning authority (CX-4, an HD).
func cx(role string, v hl7.Value) EI {
	aa := v.Comp(4)
	return EI{Role: role, Value: strings.TrimSpace(v.Comp(1).String()), Namespace: strings.TrimSpace(aa.Sub(1).String()),
		UniversalID: strings.TrimSpace(aa.Sub(2).String()), UniversalIDType: strings.TrimSpace(aa.Sub(3).String())}
}

// eis keeps the identifiers that have a value, in order.
func eis(ids ...EI) []EI {
	var out []EI
	for _, e := range ids {
		if e.Value != "" {
			out = append(out, e)
		}
	}
	return out
}

// patientSubject describes the patient of an ADT^A08/A31: PID-3
// identifiers and whether PID-29/30 say the patient died.
func patientSubject(m *hl7.Message) Subject {
	var sub Subject
	pid := m.Segment("PID")
	if pid == nil {
		return sub
	}
	for _, rep := range pid.Field(3).Reps() {
		sub.Identifiers = append(sub.Identifiers, eis(cx(RolePatient, rep))...)
	}
	sub.Deceased = strings.EqualFold(strings.TrimSpace(pid.Field(30).String()), "Y") ||
		strings.TrimSpace(pid.Field(29).Comp(1).String()) != ""
	return sub
}
