package app

import (
	"maps"
	"strconv"
	"time"
)

// Observation is what one input says about one real-world resource: the
// state that matters for transitions, where it came from, and the keys it
// can be found by. It holds PHI (identifiers, times).
type Observation struct {
	// Kind is the event kind (KindAppointment, ...).
	Kind string
	// Source is the configured source that sent it.
	Source string
	// Keys find the resource's state, in order of preference.
	Keys []ResourceKey
	// SubjectRef is the reference the input names, e.g. "Appointment/123".
	SubjectRef string
	// Version is the input's version of the resource.
	Version SourceVersion
	// Trigger is the HL7 v2 trigger event ("S13", "A11", ...), "" for FHIR.
	Trigger string
	// Status is the FHIR status code (HL7 triggers mapped to one).
	Status string
	// Start, End and ServiceType are an appointment's.
	Start, End  time.Time
	ServiceType string
	// Inpatient and DischargeDisposition describe an encounter.
	Inpatient, DischargeDisposition bool
	// ContactHash is a patient's hash of telecom, communication and
	// deceased (see contactHash).
	ContactHash string
}

// Reasons an observation gives no event, as counted by
// Metrics.StateUnchanged. Bounded and PHI-free.
const (
	// UnchangedSameState: the state is the one already seen (or the
	// change is not patient-facing: a new service type, an S14 at the
	// same time, a status such as arrived or preliminary).
	UnchangedSameState = "no_change"
	// UnchangedSameVersion: the source sent this version before.
	UnchangedSameVersion = "same_version"
	// UnchangedOutOfOrder: the source sent a newer version before.
	UnchangedOutOfOrder = "out_of_order"
	// UnchangedEnteredInError: the resource was marked entered-in-error.
	UnchangedEnteredInError = "entered_in_error"
	// UnchangedFirstSeen: a first-seen Patient sets the baseline its
	// later changes are compared with.
	UnchangedFirstSeen = "first_seen"
)

// decision is the outcome of comparing an observation with the state.
type decision struct {
	// action is the event's action, "" for none.
	action string
	// next is the state to store; write is false when nothing is stored
	// (the same or an older version).
	next  ResourceState
	write bool
	// unchanged is the Unchanged* reason when action is "".
	unchanged string
}

// decide compares o with the last-seen state prev (found false: none)
// and returns the transition, if any, and the next state. It is pure:
// the same inputs always give the same decision, which is what makes a
// retry after a crash emit the same event id.
func decide(prev ResourceState, found bool, o Observation, now time.Time) decision {
	o.Version.Content = o.contentHash()
	if found {
		if last, ok := prev.Versions[o.Source]; ok {
			if older, same := compareVersions(last, o.Version); same {
				return decision{unchanged: UnchangedSameVersion}
			} else if older {
				return decision{unchanged: UnchangedOutOfOrder}
			}
		}
	}
	next := prev
	if !found {
		next = ResourceState{Kind: o.Kind, SubjectRef: o.SubjectRef}
	}
	next.Versions = maps.Clone(prev.Versions)
	if next.Versions == nil {
		next.Versions = map[string]SourceVersion{}
	}
	next.Versions[o.Source] = o.Version
	next.Updated = now
	d := decision{next: next, write: true}
	switch o.Kind {
	case KindAppointment:
		d.action, d.unchanged = decideAppointment(&d.next, o)
	case KindEncounter:
		d.action, d.unchanged = decideEncounter(&d.next, o)
	case KindLabResult:
		d.action, d.unchanged = decideLab(&d.next, o)
	case KindPatient:
		d.action, d.unchanged = decidePatient(&d.next, found, o)
	}
	return d
}

// compareVersions tells whether cur is older than, or the same as, last
// (both from one source). A version is the same only when its marker is
// and it carries the same facts (Content): a marker seen before with
// other facts is new content under a reused marker (an engine that
// reuses MSH-10, a server that does not bump versionId), taken as newer
// so that its transition is not lost. Records without Content compare
// by marker alone. FHIR markers: equal versionIds are the same version;
// numeric versionIds are compared as numbers; otherwise meta.lastUpdated
// decides. HL7: an earlier MSH-7 is older; the same MSH-7 and MSH-10 is
// the same message. Versions that cannot be compared are taken as newer.
func compareVersions(last, cur SourceVersion) (older, same bool) {
	older, same = compareMarkers(last, cur)
	if same && last.Content != "" && cur.Content != "" && last.Content != cur.Content {
		return false, false
	}
	return older, same
}

// compareMarkers is compareVersions on the version markers alone.
func compareMarkers(last, cur SourceVersion) (older, same bool) {
	if cur.ControlID != "" || last.ControlID != "" {
		if cur.ControlID == last.ControlID && cur.Time.Equal(last.Time) {
			return false, true
		}
		return !cur.Time.IsZero() && !last.Time.IsZero() && cur.Time.Before(last.Time), false
	}
	if cur.VersionID != "" && last.VersionID != "" {
		if cur.VersionID == last.VersionID {
			return false, true
		}
		c, cerr := strconv.ParseInt(cur.VersionID, 10, 64)
		l, lerr := strconv.ParseInt(last.VersionID, 10, 64)
		if cerr == nil && lerr == nil {
			return c < l, false
		}
	}
	if cur.Time.IsZero() || last.Time.IsZero() {
		return false, false
	}
	if cur.Time.Equal(last.Time) && cur.VersionID == "" && last.VersionID == "" {
		return false, true
	}
	return cur.Time.Before(last.Time), false
}

// decideAppointment: booked when first seen booked or back to booked from
// another announced status; rescheduled when the start changes while
// booked. An SIU^S13/S14 is rescheduled only when its start differs from
// the one last announced (a first-seen S13/S14 with a start is
// rescheduled: the sender says it moved), never booked. cancelled and
// noshow when the announced status was another.
// Statuses that tell the patient nothing new (pending, arrived,
// fulfilled, ...) and entered-in-error only update the state.
func decideAppointment(st *ResourceState, o Observation) (action, unchanged string) {
	st.Status = o.Status
	if !o.Start.IsZero() {
		st.Start, st.End = o.Start, o.End
	}
	if o.ServiceType != "" {
		st.ServiceType = o.ServiceType
	}
	switch o.Status {
	case "booked":
		moved := !o.Start.IsZero() && !o.Start.Equal(st.AnnouncedStart)
		switch {
		case o.Trigger == "S13" || o.Trigger == "S14":
			// A reschedule or modification: only a new start is news.
			if !moved {
				return "", UnchangedSameState
			}
			action = "rescheduled"
		case st.Announced != "booked":
			action = "booked"
		case moved:
			action = "rescheduled"
		default:
			return "", UnchangedSameState
		}
		st.Announced, st.AnnouncedStart = "booked", st.Start
		return action, ""
	case "cancelled", "noshow":
		if st.Announced == o.Status {
			return "", UnchangedSameState
		}
		st.Announced = o.Status
		return o.Status, ""
	case "entered-in-error":
		return "", UnchangedEnteredInError
	}
	return "", UnchangedSameState
}

// Encounter phases.
const (
	phaseAdmitted          = "admitted"
	phaseDischarged        = "discharged"
	phaseCancelled         = "cancelled"
	phaseDischargeCanceled = "discharge_cancelled"
	phaseError             = "entered-in-error"
)

// encounterPhase is what an encounter observation means: an admission
// (FHIR in-progress with an inpatient class; ADT^A01), a discharge
// (FHIR finished/completed of an inpatient stay or with a discharge
// disposition, R5 discharged; ADT^A03), a cancelled admission (FHIR
// cancelled; A11), a cancelled discharge (A13), entered-in-error, or ""
// (planned, arrived, an outpatient visit; A04).
func encounterPhase(o Observation, wasInpatient bool) string {
	switch o.Trigger {
	case "A01":
		return phaseAdmitted
	case "A03":
		return phaseDischarged
	case "A11":
		return phaseCancelled
	case "A13":
		return phaseDischargeCanceled
	case "A04":
		return ""
	}
	inpatient := o.Inpatient || wasInpatient
	switch o.Status {
	case "in-progress":
		if inpatient {
			return phaseAdmitted
		}
	case "discharged":
		return phaseDischarged
	case "finished", "completed":
		if inpatient || o.DischargeDisposition {
			return phaseDischarged
		}
	case "cancelled":
		return phaseCancelled
	case "entered-in-error":
		return phaseError
	}
	return ""
}

// decideEncounter: admitted once per stay, discharged once. A cancelled
// admission (A11, FHIR cancelled) and a cancelled discharge (A13) emit
// nothing but correct the state, so a following A01 or A03 is a real
// transition; an encounter that goes from discharged back to in-progress
// without an A13 is taken as a correction too (no second admitted).
func decideEncounter(st *ResourceState, o Observation) (action, unchanged string) {
	phase := encounterPhase(o, st.Inpatient)
	st.Status = o.Status
	st.Inpatient = st.Inpatient || o.Inpatient
	switch phase {
	case phaseAdmitted:
		if st.Announced != "" {
			return "", UnchangedSameState
		}
		st.Announced = "admitted"
		return "admitted", ""
	case phaseDischarged:
		if st.Announced == "discharged" {
			return "", UnchangedSameState
		}
		st.Announced = "discharged"
		return "discharged", ""
	case phaseCancelled:
		st.Announced = ""
	case phaseDischargeCanceled:
		if st.Announced == "discharged" {
			st.Announced = "admitted"
		}
	case phaseError:
		return "", UnchangedEnteredInError
	}
	return "", UnchangedSameState
}

// decideLab: final when a report first becomes final, amended when it
// becomes amended/corrected/appended. preliminary, partial, registered
// and cancelled only update the state. A second correction that keeps
// the status amended gives nothing: only the status is compared.
func decideLab(st *ResourceState, o Observation) (action, unchanged string) {
	st.Status = o.Status
	switch o.Status {
	case "final":
		if st.Announced != "" {
			return "", UnchangedSameState
		}
		st.Announced = "final"
		return "final", ""
	case "amended", "corrected", "appended":
		if st.Announced == "amended" {
			return "", UnchangedSameState
		}
		st.Announced = "amended"
		return "amended", ""
	case "entered-in-error":
		return "", UnchangedEnteredInError
	}
	return "", UnchangedSameState
}

// decidePatient: updated when the hash of telecom, communication and
// deceased differs from the last one seen. A first-seen Patient (or
// ADT^A08/A31) sets the baseline and gives nothing: ingest cannot tell
// what changed, and the first contact with every existing patient would
// otherwise message them all.
func decidePatient(st *ResourceState, found bool, o Observation) (action, unchanged string) {
	prevHash := st.ContactHash
	st.ContactHash = o.ContactHash
	switch {
	case !found || prevHash == "":
		return "", UnchangedFirstSeen
	case prevHash == o.ContactHash:
		return "", UnchangedSameState
	}
	st.Announced = "updated"
	return "updated", ""
}
