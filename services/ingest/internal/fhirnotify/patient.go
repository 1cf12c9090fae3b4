package fhirnotify

import (
	"cmp"
	"reflect"
	"slices"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// Patient reads the patient a reference points to. When the Bundle holds
// the Patient, it is read in full; otherwise only the logical id from the
// reference is known and included reports false. Errors are *Error
// (422-class) pointing at the element that is wrong.
func (n *Collection) Patient(ref string, now time.Time) (p *eventsv1.Patient, included bool, err error) {
	e, ok := n.Resolve(ref)
	if !ok || e.ResourceType != "Patient" {
		return &eventsv1.Patient{Id: RefID(ref)}, false, nil
	}
	r, err := fhir.UnmarshalPatient(e.Raw)
	if err != nil && n.R5 {
		// An R5 Patient the R4 model cannot read (an R5-only code or
		// shape): keep the id; the raw resource travels in the event.
		return &eventsv1.Patient{Id: cmp.Or(e.ID, RefID(ref))}, true, nil
	}
	if err != nil {
		return nil, false, decodeError(e.Raw, reflect.TypeFor[fhir.Patient](), e.Expression(), ReasonInvalidResource, false, err)
	}
	return patientOf(r, RefID(ref), now), true, nil
}

// patientOf normalises r; id is its logical id when r has none.
func patientOf(r fhir.Patient, id string, now time.Time) *eventsv1.Patient {
	p := &eventsv1.Patient{
		Id:        cmp.Or(deref(r.Id), id),
		BirthDate: deref(r.BirthDate),
		Language:  language(r.Communication),
		TimeZone:  patientZone(r, now),
	}
	for _, id := range r.Identifier {
		if v := deref(id.Value); v != "" {
			p.Identifiers = append(p.Identifiers, &eventsv1.Identifier{System: deref(id.System), Value: v})
		}
	}
	if name := usableName(r.Name, now); name != nil {
		p.FamilyName = deref(name.Family)
		p.GivenNames = append([]string(nil), name.Given...)
	}
	p.Emails, p.Phones = contacts(r.Telecom, now)
	return p
}

// usableName returns the official name if there is a current one, else
// the first current name that has a family or given name. Old and maiden
// names, and names whose period has ended, are not current.
func usableName(names []fhir.HumanName, now time.Time) *fhir.HumanName {
	var firstUsable *fhir.HumanName
	for i := range names {
		n := &names[i]
		if n.Family == nil && len(n.Given) == 0 {
			continue
		}
		if n.Use != nil && (*n.Use == fhir.NameUseOld || *n.Use == fhir.NameUseMaiden) || ended(n.Period, now) {
			continue
		}
		if n.Use != nil && *n.Use == fhir.NameUseOfficial {
			return n
		}
		if firstUsable == nil {
			firstUsable = n
		}
	}
	return firstUsable
}

// contacts returns the current email addresses, by rank, and phone numbers
// (system phone or sms), mobile first and then by rank. Ranked contact
// points come before unranked ones; ties keep the EHR's order.
func contacts(telecom []fhir.ContactPoint, now time.Time) (emails, phones []string) {
	type cp struct {
		value  string
		rank   int
		mobile bool
	}
	var es, ps []cp
	for _, t := range telecom {
		if t.System == nil || deref(t.Value) == "" || ended(t.Period, now) {
			continue
		}
		use := fhir.ContactPointUseHome
		if t.Use != nil {
			use = *t.Use
			if use == fhir.ContactPointUseOld {
				continue
			}
		}
		rank := int(^uint(0) >> 1) // unranked: last
		if t.Rank != nil && *t.Rank > 0 {
			rank = *t.Rank
		}
		c := cp{value: *t.Value, rank: rank}
		switch *t.System {
		case fhir.ContactPointSystemEmail:
			es = append(es, c)
		case fhir.ContactPointSystemPhone, fhir.ContactPointSystemSms:
			c.mobile = (t.Use != nil && use == fhir.ContactPointUseMobile) || *t.System == fhir.ContactPointSystemSms
			ps = append(ps, c)
		}
	}
	slices.SortStableFunc(es, func(a, b cp) int { return cmp.Compare(a.rank, b.rank) })
	slices.SortStableFunc(ps, func(a, b cp) int {
		if a.mobile != b.mobile {
			if a.mobile {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.rank, b.rank)
	})
	for _, e := range es {
		emails = append(emails, e.value)
	}
	for _, p := range ps {
		phones = append(phones, p.value)
	}
	return emails, phones
}

// language returns the code of the preferred communication language, or of
// the first one when none is marked preferred.
func language(comms []fhir.PatientCommunication) string {
	code := func(c fhir.PatientCommunication) string {
		for _, cd := range c.Language.Coding {
			if v := deref(cd.Code); v != "" {
				return v
			}
		}
		return ""
	}
	for _, c := range comms {
		if deref(c.Preferred) {
			if v := code(c); v != "" {
				return v
			}
		}
	}
	for _, c := range comms {
		if v := code(c); v != "" {
			return v
		}
	}
	return ""
}

// ended reports whether period has an end before now. FHIR dateTimes may
// be partial ("2014", "2014-06"); an end that cannot be read does not end
// anything.
func ended(p *fhir.Period, now time.Time) bool {
	if p == nil || p.End == nil {
		return false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, *p.End); err == nil {
			return t.Before(now)
		}
	}
	return false
}

// PatientResource is a Patient that is itself the resource an input
// reports as changed (not only referenced by another resource).
type PatientResource struct {
	Header
	// Patient is the patient as events carry it.
	Patient *eventsv1.Patient
	// Deceased is true when deceasedBoolean is true or deceasedDateTime
	// is given.
	Deceased bool
}

// PatientResource reads the Patient in entry e. ok is false for an R5
// Patient the R4 model cannot read: its contact details are then unknown.
// Errors are *Error (422-class) pointing at the element that is wrong.
func (n *Collection) PatientResource(e Entry, now time.Time) (pr *PatientResource, ok bool, err error) {
	r, err := fhir.UnmarshalPatient(e.Raw)
	if err != nil && n.R5 {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, decodeError(e.Raw, reflect.TypeFor[fhir.Patient](), e.Expression(), ReasonInvalidResource, false, err)
	}
	h := Header{Entry: e, Type: "Patient", ID: deref(r.Id)}
	if h.ID == "" {
		return nil, false, unprocessable(ReasonInvalidResource, IssueRequired, e.Expression()+".id", "the Patient needs its logical id")
	}
	if r.Meta != nil {
		h.VersionID = deref(r.Meta.VersionId)
		h.LastUpdated = deref(r.Meta.LastUpdated)
		if h.LastUpdatedTime, err = instant(r.Meta.LastUpdated, e.Expression()+".meta.lastUpdated"); err != nil {
			return nil, false, err
		}
	}
	p := patientOf(r, h.ID, now)
	h.Identifiers = p.GetIdentifiers()
	return &PatientResource{Header: h, Patient: p, Deceased: deref(r.DeceasedBoolean) || r.DeceasedDateTime != nil}, true, nil
}
