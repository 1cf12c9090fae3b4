package app

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	t9  = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	t10 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	t11 = time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC)
)

// step is one arrival in a sequence: what it says and the action (or
// Unchanged* reason, prefixed "-") it must give.
type step struct {
	give Observation
	want string
}

func fhirAppt(version, status string, start time.Time) Observation {
	return Observation{Kind: KindAppointment, Source: "epic-fhir", SubjectRef: "Appointment/a1",
		Version: SourceVersion{VersionID: version}, Status: status, Start: start}
}

func siu(control, trigger, status string, sent, start time.Time) Observation {
	return Observation{Kind: KindAppointment, Source: "epic-hl7", SubjectRef: "Appointment/12345", Trigger: trigger,
		Version: SourceVersion{ControlID: control, Time: sent}, Status: status, Start: start}
}

func fhirEnc(version, status string, inpatient bool) Observation {
	return Observation{Kind: KindEncounter, Source: "epic-fhir", SubjectRef: "Encounter/e1",
		Version: SourceVersion{VersionID: version}, Status: status, Inpatient: inpatient}
}

func adt(control, trigger string, sent time.Time) Observation {
	return Observation{Kind: KindEncounter, Source: "epic-hl7", SubjectRef: "Encounter/V1", Trigger: trigger,
		Version: SourceVersion{ControlID: control, Time: sent}, Status: encounterStatusOf(trigger)}
}

func encounterStatusOf(trigger string) string {
	return map[string]string{"A01": "in-progress", "A03": "finished", "A04": "arrived", "A11": "cancelled", "A13": "in-progress"}[trigger]
}

func lab(version, status string) Observation {
	return Observation{Kind: KindLabResult, Source: "lab", SubjectRef: "DiagnosticReport/r1",
		Version: SourceVersion{VersionID: version}, Status: status}
}

func patient(version, hash string) Observation {
	return Observation{Kind: KindPatient, Source: "epic-fhir", SubjectRef: "Patient/p1",
		Version: SourceVersion{VersionID: version}, ContactHash: hash}
}

// TestDecideSequences runs sequences of arrivals of one resource through
// decide, carrying the state from one to the next as settle does.
func TestDecideSequences(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "booked, rescheduled, cancelled", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("2", "booked", t10), "rescheduled"},
			{fhirAppt("3", "cancelled", t10), "cancelled"},
		}},
		{name: "same version twice", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("1", "booked", t9), "-same_version"},
		}},
		{name: "new version, same state", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("2", "booked", t9), "-no_change"},
			{fhirAppt("3", "arrived", t9), "-no_change"},
			{fhirAppt("4", "fulfilled", t9), "-no_change"},
		}},
		{name: "out of order", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("3", "cancelled", t9), "cancelled"},
			{fhirAppt("2", "booked", t10), "-out_of_order"},
		}},
		{name: "entered-in-error, then the correction compared with what was announced", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("2", "entered-in-error", t9), "-entered_in_error"},
			{fhirAppt("3", "booked", t9), "-no_change"},
			{fhirAppt("4", "booked", t11), "rescheduled"},
		}},
		{name: "cancelled then booked again", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("2", "cancelled", t9), "cancelled"},
			{fhirAppt("3", "booked", t9), "booked"},
		}},
		{name: "pending then booked", steps: []step{
			{fhirAppt("1", "pending", t9), "-no_change"},
			{fhirAppt("2", "booked", t9), "booked"},
		}},
		{name: "first seen cancelled and noshow", steps: []step{
			{fhirAppt("1", "cancelled", t9), "cancelled"},
			{fhirAppt("2", "noshow", t9), "noshow"},
		}},
		{name: "SIU: S12, S14 same time, S13 new time, S13 resent, S15", steps: []step{
			{siu("M1", "S12", "booked", t9, t10), "booked"},
			{siu("M2", "S14", "booked", t9.Add(time.Minute), t10), "-no_change"},
			{siu("M3", "S13", "booked", t9.Add(2*time.Minute), t11), "rescheduled"},
			{siu("M3", "S13", "booked", t9.Add(2*time.Minute), t11), "-same_version"},
			{siu("M4", "S13", "booked", t9.Add(3*time.Minute), t11), "-no_change"},
			{siu("M5", "S15", "cancelled", t9.Add(4*time.Minute), t11), "cancelled"},
		}},
		{name: "SIU: a reused MSH-10 and MSH-7 with a new start is a reschedule, its resend nothing", steps: []step{
			{siu("M1", "S12", "booked", t9, t10), "booked"},
			{siu("M1", "S12", "booked", t9, t10), "-same_version"},
			{siu("M1", "S12", "booked", t9, t11), "rescheduled"},
			{siu("M1", "S12", "booked", t9, t11), "-same_version"},
			{siu("M1", "S15", "cancelled", t9, t11), "cancelled"},
		}},
		{name: "FHIR: a versionId seen before with a new status is not lost", steps: []step{
			{fhirAppt("1", "booked", t9), "booked"},
			{fhirAppt("1", "cancelled", t9), "cancelled"},
			{fhirAppt("1", "cancelled", t9), "-same_version"},
		}},
		{name: "SIU: first-seen S13 with a start", steps: []step{
			{siu("M1", "S13", "booked", t9, t10), "rescheduled"},
		}},
		{name: "SIU: first-seen S14 without a start, then S12", steps: []step{
			{siu("M1", "S14", "booked", t9, time.Time{}), "-no_change"},
			{siu("M2", "S12", "booked", t9.Add(time.Minute), t10), "booked"},
		}},
		{name: "SIU: older MSH-7 after a newer one", steps: []step{
			{siu("M2", "S15", "cancelled", t10, t10), "cancelled"},
			{siu("M1", "S12", "booked", t9, t10), "-out_of_order"},
		}},
		{name: "SIU: S13 after a cancellation does not rebook at the same time", steps: []step{
			{siu("M1", "S12", "booked", t9, t10), "booked"},
			{siu("M2", "S15", "cancelled", t9.Add(time.Minute), t10), "cancelled"},
			{siu("M3", "S14", "booked", t9.Add(2*time.Minute), t10), "-no_change"},
		}},
		{name: "encounter versions in progress give one admitted", steps: []step{
			{fhirEnc("1", "planned", true), "-no_change"},
			{fhirEnc("2", "in-progress", true), "admitted"},
			{fhirEnc("3", "in-progress", true), "-no_change"},
			{fhirEnc("4", "in-progress", true), "-no_change"},
			{fhirEnc("5", "finished", false), "discharged"},
			{fhirEnc("6", "finished", true), "-no_change"},
		}},
		{name: "ambulatory encounter gives nothing", steps: []step{
			{fhirEnc("1", "in-progress", false), "-no_change"},
			{fhirEnc("2", "finished", false), "-no_change"},
		}},
		{name: "encounter entered-in-error", steps: []step{
			{fhirEnc("1", "in-progress", true), "admitted"},
			{fhirEnc("2", "entered-in-error", true), "-entered_in_error"},
			{fhirEnc("3", "in-progress", true), "-no_change"},
		}},
		{name: "A01, A11, A01 again", steps: []step{
			{adt("M1", "A01", t9), "admitted"},
			{adt("M2", "A11", t9.Add(time.Minute)), "-no_change"},
			{adt("M3", "A01", t9.Add(2*time.Minute)), "admitted"},
		}},
		{name: "A03, A13, A03 again", steps: []step{
			{adt("M1", "A01", t9), "admitted"},
			{adt("M2", "A03", t10), "discharged"},
			{adt("M3", "A13", t10.Add(time.Minute)), "-no_change"},
			{adt("M4", "A03", t11), "discharged"},
		}},
		{name: "A04 registers without an event", steps: []step{
			{adt("M1", "A04", t9), "-no_change"},
			{adt("M2", "A01", t10), "admitted"},
			{adt("M3", "A01", t10.Add(time.Second)), "-no_change"},
		}},
		{name: "lab preliminary, final, final again, corrected", steps: []step{
			{lab("1", "preliminary"), "-no_change"},
			{lab("2", "final"), "final"},
			{lab("3", "final"), "-no_change"},
			{lab("4", "corrected"), "amended"},
			{lab("5", "amended"), "-no_change"},
			{lab("6", "entered-in-error"), "-entered_in_error"},
		}},
		{name: "patient: baseline, same, changed", steps: []step{
			{patient("1", "h1"), "-first_seen"},
			{patient("2", "h1"), "-no_change"},
			{patient("3", "h2"), "updated"},
			{patient("4", "h2"), "-no_change"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				st    ResourceState
				found bool
			)
			for i, s := range tt.steps {
				d := decide(st, found, s.give, t9)
				got := d.action
				if got == "" {
					got = "-" + d.unchanged
				}
				if got != s.want {
					t.Fatalf("step %d (%s %s): got %s, want %s", i+1, s.give.Trigger, s.give.Status, got, s.want)
				}
				if d.action != "" {
					d.next.Seq++
				}
				if d.write {
					st, found = d.next, true
				}
			}
		})
	}
}

// TestDecideKeepsTheFirstSubject checks that events arriving by another
// protocol continue the subject reference the resource was first seen
// with, and that every source's version is kept apart.
func TestDecideKeepsTheFirstSubject(t *testing.T) {
	d := decide(ResourceState{}, false, fhirAppt("7", "booked", t9), t9)
	d2 := decide(d.next, true, siu("M1", "S13", "booked", t9, t10), t10)
	if d2.action != "rescheduled" || d2.next.SubjectRef != "Appointment/a1" {
		t.Fatalf("HL7 after FHIR = %q, subject %q; want rescheduled of Appointment/a1", d2.action, d2.next.SubjectRef)
	}
	want := map[string]SourceVersion{"epic-fhir": {VersionID: "7"}, "epic-hl7": {ControlID: "M1", Time: t9}}
	if diff := cmp.Diff(want, d2.next.Versions, cmpopts.IgnoreFields(SourceVersion{}, "Content")); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if d.next.Versions["epic-hl7"] != (SourceVersion{}) {
		t.Error("decide changed the previous state's versions")
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name        string
		last, cur   SourceVersion
		older, same bool
	}{
		{name: "numeric lower", last: SourceVersion{VersionID: "10"}, cur: SourceVersion{VersionID: "9"}, older: true},
		{name: "numeric higher", last: SourceVersion{VersionID: "9"}, cur: SourceVersion{VersionID: "10"}},
		{name: "same id", last: SourceVersion{VersionID: "a"}, cur: SourceVersion{VersionID: "a"}, same: true},
		{name: "opaque ids, older time", last: SourceVersion{VersionID: "b", Time: t10}, cur: SourceVersion{VersionID: "a", Time: t9}, older: true},
		{name: "no ids, same time", last: SourceVersion{Time: t10}, cur: SourceVersion{Time: t10}, same: true},
		{name: "no ids, no times", last: SourceVersion{}, cur: SourceVersion{}},
		{name: "hl7 same message", last: SourceVersion{ControlID: "1", Time: t9}, cur: SourceVersion{ControlID: "1", Time: t9}, same: true},
		{name: "hl7 same second, other message", last: SourceVersion{ControlID: "1", Time: t9}, cur: SourceVersion{ControlID: "2", Time: t9}},
		{name: "hl7 earlier", last: SourceVersion{ControlID: "2", Time: t10}, cur: SourceVersion{ControlID: "1", Time: t9}, older: true},
		{name: "hl7 same message, other content", last: SourceVersion{ControlID: "1", Time: t9, Content: "a"}, cur: SourceVersion{ControlID: "1", Time: t9, Content: "b"}},
		{name: "hl7 same message, same content", last: SourceVersion{ControlID: "1", Time: t9, Content: "a"}, cur: SourceVersion{ControlID: "1", Time: t9, Content: "a"}, same: true},
		{name: "hl7 same message, record without content", last: SourceVersion{ControlID: "1", Time: t9}, cur: SourceVersion{ControlID: "1", Time: t9, Content: "b"}, same: true},
		{name: "same id, other content", last: SourceVersion{VersionID: "a", Content: "a"}, cur: SourceVersion{VersionID: "a", Content: "b"}},
		{name: "older id, other content", last: SourceVersion{VersionID: "10", Content: "a"}, cur: SourceVersion{VersionID: "9", Content: "b"}, older: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			older, same := compareVersions(tt.last, tt.cur)
			if older != tt.older || same != tt.same {
				t.Errorf("compareVersions() = %v, %v; want %v, %v", older, same, tt.older, tt.same)
			}
		})
	}
}

func TestContactHash(t *testing.T) {
	a := contactHash([]string{"Rita@Example.org "}, []string{"(555) 765-4321", "+1 555 111"}, "es-MX", false)
	b := contactHash([]string{"rita@example.org"}, []string{"+1555111", "5557654321"}, "es", false)
	if a != b {
		t.Error("the same contact details written differently give different hashes")
	}
	if c := contactHash([]string{"rita@example.org"}, []string{"+1555111", "5557654321"}, "es", true); c == a {
		t.Error("a death does not change the hash")
	}
	if c := contactHash([]string{"rita@example.org"}, []string{"5557654321"}, "es", false); c == a {
		t.Error("a removed phone number does not change the hash")
	}
}

// TestContentHash checks that every fact that decides a transition
// changes the hash, and that what only says where the facts came from
// does not.
func TestContentHash(t *testing.T) {
	base := siu("M1", "S12", "booked", t9, t10)
	base.End, base.ServiceType = t11, "checkup"
	tests := []struct {
		name string
		give func(*Observation)
		same bool
	}{
		{name: "other control id, time, source, keys and subject", same: true, give: func(o *Observation) {
			o.Version, o.Source, o.SubjectRef = SourceVersion{ControlID: "M2", Time: t10}, "other", "Appointment/x"
			o.Keys = []ResourceKey{{Type: KeyBusiness, Scope: "s", Value: "v"}}
		}},
		{name: "the same start in another zone", same: true, give: func(o *Observation) { o.Start = t10.In(time.FixedZone("x", 7200)) }},
		{name: "start", give: func(o *Observation) { o.Start = t11 }},
		{name: "end", give: func(o *Observation) { o.End = t10 }},
		{name: "status", give: func(o *Observation) { o.Status = "cancelled" }},
		{name: "trigger", give: func(o *Observation) { o.Trigger = "S14" }},
		{name: "service type", give: func(o *Observation) { o.ServiceType = "other" }},
		{name: "inpatient", give: func(o *Observation) { o.Inpatient = true }},
		{name: "discharge disposition", give: func(o *Observation) { o.DischargeDisposition = true }},
		{name: "contact hash", give: func(o *Observation) { o.ContactHash = "h" }},
		{name: "kind", give: func(o *Observation) { o.Kind = KindEncounter }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.give(&o)
			if same := o.contentHash() == base.contentHash(); same != tt.same {
				t.Errorf("same hash = %v, want %v", same, tt.same)
			}
		})
	}
}
