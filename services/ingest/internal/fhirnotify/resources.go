package fhirnotify

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// Header is what every mapped resource has: its identity and version.
type Header struct {
	// Entry is the Bundle entry it came from; Entry.Raw is its JSON.
	Entry Entry
	// Type and ID are resourceType and the logical id.
	Type, ID string
	// VersionID is meta.versionId, if given.
	VersionID string
	// LastUpdated is meta.lastUpdated as sent ("" if absent), and
	// LastUpdatedTime the same parsed.
	LastUpdated     string
	LastUpdatedTime time.Time
	// Identifiers are the resource's business identifiers (PHI): its
	// identifier list and, for a DiagnosticReport, the identifiers its
	// basedOn references carry (the placer order number).
	Identifiers []*eventsv1.Identifier
}

// Ref returns "<Type>/<id>".
func (h *Header) Ref() string { return h.Type + "/" + h.ID }

// ResourceVersion returns "<Type>/<id>/_history/<versionId>", or Ref()
// when the resource has no versionId.
func (h *Header) ResourceVersion() string {
	if h.VersionID == "" {
		return h.Ref()
	}
	return h.Ref() + "/_history/" + h.VersionID
}

// metaJSON is Resource.meta, as much as is read here.
type metaJSON struct {
	VersionID   string  `json:"versionId"`
	LastUpdated *string `json:"lastUpdated"`
}

// identifiers returns the identifiers that have a value.
func identifiers(ids ...[]identifierJSON) []*eventsv1.Identifier {
	var out []*eventsv1.Identifier
	for _, list := range ids {
		for _, id := range list {
			if v := strings.TrimSpace(id.Value); v != "" {
				out = append(out, &eventsv1.Identifier{System: strings.TrimSpace(id.System), Value: v})
			}
		}
	}
	return out
}

// codingJSON is a FHIR Coding.
type codingJSON struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

// codeableConceptJSON is a FHIR CodeableConcept.
type codeableConceptJSON struct {
	Coding []codingJSON `json:"coding"`
	Text   string       `json:"text"`
}

// header reads id, meta and a required status (a code) of a resource
// already decoded into id, meta and status, at expr.
func header(e Entry, typ, id string, meta *metaJSON, status *string) (Header, string, error) {
	expr := e.Expression()
	h := Header{Entry: e, Type: typ, ID: id}
	if status == nil || *status == "" {
		return h, "", unprocessable(ReasonInvalidResource, IssueRequired, expr+".status", "%s.status is required", typ)
	}
	if !codeRE.MatchString(*status) {
		return h, "", unprocessable(ReasonInvalidResource, IssueInvalid, expr+".status",
			"invalid code for %s.status: expected a lowercase FHIR code", typ)
	}
	if h.ID == "" {
		return h, "", unprocessable(ReasonInvalidResource, IssueRequired, expr+".id",
			"the %s needs its logical id", typ)
	}
	if meta != nil {
		h.VersionID = meta.VersionID
		h.LastUpdated = deref(meta.LastUpdated)
		var err error
		if h.LastUpdatedTime, err = instant(meta.LastUpdated, expr+".meta.lastUpdated"); err != nil {
			return h, "", err
		}
	}
	return h, *status, nil
}

// patientOf returns the reference of subject when it names a Patient (by
// its type, its declared type or the entry it resolves to), else "".
func (n *Collection) patientOf(subject *subjectJSON) string {
	if subject == nil {
		return ""
	}
	if n.isPatient(subject.Reference, subject.Type) {
		return subject.Reference
	}
	return ""
}

// subjectJSON is a Reference with its declared type.
type subjectJSON struct {
	Reference string `json:"reference"`
	Type      string `json:"type"`
}

// Encounter is an Encounter read from its raw JSON (R4 or R5: R5 changed
// class into a list of CodeableConcepts and the status codes).
type Encounter struct {
	Header
	// Status is Encounter.status (R4 or R5 codes).
	Status string
	// Inpatient is true when a class code is IMP (or its specialisations
	// ACUTE, NONAC) or "inpatient".
	Inpatient bool
	// DischargeDisposition is true when hospitalization (R4) or admission
	// (R5) names a discharge disposition.
	DischargeDisposition bool
	// PatientRef is Encounter.subject when it is a Patient, else "".
	PatientRef string
	// PeriodEnd is period.end as an instant, zero when absent or partial.
	PeriodEnd time.Time
}

type encounterJSON struct {
	ID              string                `json:"id"`
	Identifier      []identifierJSON      `json:"identifier"`
	Meta            *metaJSON             `json:"meta"`
	Status          *string               `json:"status"`
	Class           json.RawMessage       `json:"class"`
	Subject         *subjectJSON          `json:"subject"`
	Hospitalization *dischargeHolderJSON  `json:"hospitalization"`
	Admission       *dischargeHolderJSON  `json:"admission"`
	Period          *struct{ End string } `json:"period"`
}

type dischargeHolderJSON struct {
	DischargeDisposition *codeableConceptJSON `json:"dischargeDisposition"`
}

// inpatientClasses are the v3 ActCode encounter classes of a hospital stay.
var inpatientClasses = map[string]bool{"IMP": true, "ACUTE": true, "NONAC": true, "inpatient": true}

// Encounter reads the Encounter in entry e. Errors are *Error (422-class)
// pointing at the element that is wrong.
func (n *Collection) Encounter(e Entry) (*Encounter, error) {
	expr := e.Expression()
	var r encounterJSON
	if err := json.Unmarshal(e.Raw, &r); err != nil {
		return nil, decodeError(e.Raw, reflect.TypeFor[encounterJSON](), expr, ReasonInvalidResource, false, err)
	}
	h, status, err := header(e, "Encounter", r.ID, r.Meta, r.Status)
	if err != nil {
		return nil, err
	}
	h.Identifiers = identifiers(r.Identifier)
	enc := &Encounter{Header: h, Status: status, PatientRef: n.patientOf(r.Subject)}
	codes, ok := classCodes(r.Class)
	if !ok {
		return nil, unprocessable(ReasonInvalidResource, IssueStructure, expr+".class",
			"wrong JSON type: expected a Coding (R4) or an array of CodeableConcepts (R5)")
	}
	for _, c := range codes {
		enc.Inpatient = enc.Inpatient || inpatientClasses[c]
	}
	for _, d := range []*dischargeHolderJSON{r.Hospitalization, r.Admission} {
		if d != nil && d.DischargeDisposition != nil {
			enc.DischargeDisposition = true
		}
	}
	if r.Period != nil {
		enc.PeriodEnd = parseInstant(r.Period.End)
	}
	return enc, nil
}

// classCodes returns the codes of Encounter.class: an R4 Coding or an R5
// array of CodeableConcepts. ok is false for any other JSON.
func classCodes(raw json.RawMessage) (codes []string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	switch raw[0] {
	case '{':
		var c codingJSON
		if json.Unmarshal(raw, &c) != nil {
			return nil, false
		}
		return []string{c.Code}, true
	case '[':
		var ccs []codeableConceptJSON
		if json.Unmarshal(raw, &ccs) != nil {
			return nil, false
		}
		for _, cc := range ccs {
			for _, c := range cc.Coding {
				codes = append(codes, c.Code)
			}
		}
		return codes, true
	}
	return nil, false
}

// DiagnosticReport is a DiagnosticReport read from its raw JSON.
type DiagnosticReport struct {
	Header
	// Status is DiagnosticReport.status.
	Status string
	// PatientRef is DiagnosticReport.subject when it is a Patient, else "".
	PatientRef string
	// Issued is DiagnosticReport.issued, zero when absent.
	Issued time.Time
}

type diagnosticReportJSON struct {
	ID         string           `json:"id"`
	Identifier []identifierJSON `json:"identifier"`
	BasedOn    []struct {
		Identifier *identifierJSON `json:"identifier"`
	} `json:"basedOn"`
	Meta    *metaJSON    `json:"meta"`
	Status  *string      `json:"status"`
	Subject *subjectJSON `json:"subject"`
	Issued  *string      `json:"issued"`
}

// DiagnosticReport reads the DiagnosticReport in entry e. Errors are
// *Error (422-class) pointing at the element that is wrong.
func (n *Collection) DiagnosticReport(e Entry) (*DiagnosticReport, error) {
	expr := e.Expression()
	var r diagnosticReportJSON
	if err := json.Unmarshal(e.Raw, &r); err != nil {
		return nil, decodeError(e.Raw, reflect.TypeFor[diagnosticReportJSON](), expr, ReasonInvalidResource, false, err)
	}
	h, status, err := header(e, "DiagnosticReport", r.ID, r.Meta, r.Status)
	if err != nil {
		return nil, err
	}
	var basedOn []identifierJSON
	for _, b := range r.BasedOn {
		if b.Identifier != nil {
			basedOn = append(basedOn, *b.Identifier)
		}
	}
	h.Identifiers = identifiers(r.Identifier, basedOn)
	dr := &DiagnosticReport{Header: h, Status: status, PatientRef: n.patientOf(r.Subject)}
	if dr.Issued, err = instant(r.Issued, expr+".issued"); err != nil {
		return nil, err
	}
	return dr, nil
}

// appointmentR5JSON is an R5 Appointment, as much as is read here.
// serviceType is a CodeableReference in R5 (concept) and a CodeableConcept
// in R4: both are read. participant.required is a boolean in R5 and a code
// in R4, which is why the R4 model cannot read R5 Appointments.
type appointmentR5JSON struct {
	ID         string           `json:"id"`
	Identifier []identifierJSON `json:"identifier"`
	Replaces   []struct {
		Reference string `json:"reference"`
	} `json:"replaces"`
	Meta        *metaJSON `json:"meta"`
	Status      *string   `json:"status"`
	Description string    `json:"description"`
	Start       *string   `json:"start"`
	End         *string   `json:"end"`
	ServiceType []struct {
		Concept *codeableConceptJSON `json:"concept"`
		Coding  []codingJSON         `json:"coding"`
		Text    string               `json:"text"`
	} `json:"serviceType"`
	Subject     *subjectJSON `json:"subject"`
	Participant []struct {
		Actor *struct {
			Reference string `json:"reference"`
			Type      string `json:"type"`
			Display   string `json:"display"`
		} `json:"actor"`
	} `json:"participant"`
}

// appointmentR5 reads an R5 Appointment from its raw JSON.
func (n *Collection) appointmentR5(e Entry) (*Appointment, error) {
	expr := e.Expression()
	var r appointmentR5JSON
	if err := json.Unmarshal(e.Raw, &r); err != nil {
		return nil, decodeError(e.Raw, reflect.TypeFor[appointmentR5JSON](), expr, ReasonInvalidResource, false, err)
	}
	h, status, err := header(e, "Appointment", r.ID, r.Meta, r.Status)
	if err != nil {
		return nil, err
	}
	a := &Appointment{Entry: e, ID: h.ID, VersionID: h.VersionID, LastUpdated: h.LastUpdated,
		LastUpdatedTime: h.LastUpdatedTime, Status: status, Identifiers: identifiers(r.Identifier)}
	for _, rp := range r.Replaces {
		if RefType(rp.Reference) == "Appointment" && RefID(rp.Reference) != "" {
			a.Replaces = append(a.Replaces, "Appointment/"+RefID(rp.Reference))
		}
	}
	facts := &eventsv1.AppointmentFacts{Status: status, Description: r.Description}
	if facts.Start, err = timestamp(r.Start, expr+".start"); err != nil {
		return nil, err
	}
	if facts.End, err = timestamp(r.End, expr+".end"); err != nil {
		return nil, err
	}
	if len(r.ServiceType) > 0 {
		st := r.ServiceType[0]
		cc := codeableConceptJSON{Coding: st.Coding, Text: st.Text}
		if st.Concept != nil {
			cc = *st.Concept
		}
		if len(cc.Coding) > 0 && cc.Coding[0].Display != "" {
			facts.ServiceType = cc.Coding[0].Display
		} else {
			facts.ServiceType = cc.Text
		}
	}
	for _, p := range r.Participant {
		if p.Actor == nil {
			continue
		}
		if isLocation(p.Actor.Reference, p.Actor.Type) {
			a.LocationRefs = append(a.LocationRefs, p.Actor.Reference)
		}
		if n.isPatient(p.Actor.Reference, p.Actor.Type) {
			if a.PatientRef == "" {
				a.PatientRef = p.Actor.Reference
			}
			continue
		}
		if d := strings.TrimSpace(p.Actor.Display); d != "" {
			facts.Participants = append(facts.Participants, p.Actor.Display)
		}
	}
	if a.PatientRef == "" {
		a.PatientRef = n.patientOf(r.Subject) // R5 adds Appointment.subject
	}
	a.Facts = facts
	return a, nil
}
