package hl7map_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/hl7map"
)

var received = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

func opts() hl7map.Options {
	return hl7map.Options{Source: "demo", Tenant: "demo", Received: received}
}

// TestCorpus writes down the outcome of every corpus message: its events
// ("kind.action subject"), "none" (accepted without an event) or the
// location and code of the error.
func TestCorpus(t *testing.T) {
	want := map[string][]string{
		"ADT_A01/hapi-docs-ADT_A01.hl7":                          {"encounter.admitted Encounter/211004554"},
		"ADT_A01/lfh-sample_win.hl7":                             {"encounter.admitted Encounter/48390"},
		"ADT_A01/msconv-ADT-A01-01.hl7":                          {"encounter.admitted Encounter/40007716"},
		"ADT_A01/msconv-ADT01-23.hl7":                            {"encounter.admitted Encounter/40007716"},
		"ADT_A01/msconv-ADT01-28.hl7":                            {"error PV1[5]-19 101"},
		"ADT_A03/hapi-adt_a03.hl7":                               {"encounter.discharged Encounter/2008003369"},
		"ADT_A03/msconv-ADT-A03-02.hl7":                          {"encounter.discharged Encounter/40007716"},
		"ADT_A04/msconv-ADT-A04-01.hl7":                          {"encounter (state only) Encounter/40007716"},
		"ADT_A04/msconv-ADT04-23.hl7":                            {"encounter (state only) Encounter/0123456789"},
		"ADT_A04/msconv-ADT04-251.hl7":                           {"none"},
		"ADT_A08/msconv-ADT-A08-01.hl7":                          {"patient.updated Patient/PATID1234"},
		"ORU_R01/lfh-ORU-multiline-short-mixed.hl7":              {"lab_result.final DiagnosticReport/FON_0d70c6c8"},
		"ORU_R01/msconv-LAB-ORU-1.hl7":                           {"lab_result.final DiagnosticReport/82503246"},
		"ORU_R01/msconv-LAB-ORU-2.hl7":                           {"none"},
		"ORU_R01/msconv-ORU-R01-01.hl7":                          {"lab_result.final DiagnosticReport/986"},
		"ORU_R01/msconv-ORU-R01-RMGEAD.hl7":                      {"lab_result.final DiagnosticReport/1045813"},
		"ORU_R01/nodehl7-cerner-cerner_bordetella.hl7":           {"lab_result.final DiagnosticReport/2010273000016"},
		"ORU_R01/nodehl7-cerner-cerner_en.hl7":                   {"lab_result.final DiagnosticReport/2010273000016"},
		"ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase1.hl7": {"lab_result.final DiagnosticReport/9700123"},
		"ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase2.hl7": {"lab_result.final DiagnosticReport/9700123"},
		"ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase4.hl7": {"lab_result.final DiagnosticReport/8778324"},
		"ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase5.hl7": {"lab_result.final DiagnosticReport/7564832"},
		"ORU_R01/nodehl7-realm-realm-animal-rabies.hl7":          {"lab_result.final DiagnosticReport/9700123"},
		"ORU_R01/nodehl7-realm-realm-campylobacter-jejuni.hl7":   {"lab_result.final DiagnosticReport/9700123"},
		"ORU_R01/nodehl7-realm-realm-cj-joeslab.hl7":             {"lab_result.final DiagnosticReport/9700123", "lab_result.final DiagnosticReport/9700123"},
		"ORU_R01/nodehl7-realm-realm-hepatitis-c-virus.hl7":      {"lab_result.final DiagnosticReport/9700123"},
		"ORU_R01/pyhl7-sample_hl7.hl7":                           {"error PID[2]-7 102"}, // birth date 196203520
		"SIU_S12/msconv-SIU-S12-01.hl7":                          {"appointment.booked Appointment/12345"},
		"SIU_S12/msconv-SIU-S12_1.hl7":                           {"appointment.booked Appointment/12345"},
		"SIU_S12/msconv-SIU_12.hl7":                              {"none"}, // an ADT^A60 filed as SIU
		"SIU_S13/msconv-SIU-S13-01.hl7":                          {"appointment.rescheduled Appointment/12345"},
		"SIU_S14/msconv-SIU-S14-01.hl7":                          {"appointment.rescheduled Appointment/12345"},
		"SIU_S14/nodehl7-corepoint-health-siu-example.hl7":       {"appointment.rescheduled Appointment/00331839401"},
		"SIU_S15/msconv-SIU-S15-01.hl7":                          {"appointment.cancelled Appointment/12345"},
		"batch/pyhl7-sample_batch.hl7":                           {"none"},
		"batch/pyhl7-sample_batch2.hl7":                          {"none", "none"},
		"batch/pyhl7-sample_batch3.hl7":                          {"none"},
		"batch/pyhl7-sample_file.hl7":                            {"none"},
		"batch/pyhl7-sample_file1.hl7":                           {"none", "none", "none"},
		"batch/pyhl7-sample_file3.hl7":                           {"none"},
		"batch/pyhl7-sample_file4.hl7":                           {"none"},
		"batch/pyhl7-sample_file6.hl7":                           {"none"},
		"malformed/nodehl7-misc-bad-phone-example.hl7":           {"error SCH 100"},
		"malformed/pyhl7-sample_bad_batch1.hl7":                  {"batch error BHS[4] 100"},
		"malformed/pyhl7-sample_bad_file.hl7":                    {"batch error EVN[3] 100"},
		"malformed/pyhl7-sample_bad_file2.hl7":                   {"batch error FHS[5] 100"},
		"malformed/pyhl7-sample_bad_file3.hl7":                   {"batch error EVN[2] 100"},
		"multi/hapi-example_oml_o21.hl7": {"none", "none", "none", "none", "none", "none", "none", "none", "none",
			"error PID[2]-3 101", "none", "none", "none"},
		"other/efferent-Sample-ADT.hl7":              {"none"},
		"other/hapi-cv.04_001_chem.hl7":              {"none"},
		"other/hapi-segmentfinder_a24.hl7":           {"none"},
		"other/msconv-ADT-A11-01.hl7":                {"encounter (state only) Encounter/40007716"},
		"other/msconv-ADT-A40-01.hl7":                {"none"},
		"other/msconv-ORM-O01-01.hl7":                {"none"},
		"other/msconv-SIU-S26-01.hl7":                {"appointment.noshow Appointment/12345"},
		"other/nodehl7-mieweb-dft-example.hl7":       {"none", "none"},
		"other/nodehl7-mirthproject-mfn-example.hl7": {"none"},
		"other/pyhl7-sample_msh.hl7":                 {"encounter.admitted Encounter/01"},
	}
	files := hl7test.Files(t)
	if len(files) != len(want) {
		t.Errorf("corpus has %d files, the table %d", len(files), len(want))
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			if diff := cmp.Diff(want[rel], outcome(t, rel)); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

func outcome(t *testing.T, rel string) []string {
	b, err := hl7.SplitBatch(hl7test.Read(t, rel))
	if err != nil {
		return []string{"batch error " + location(err)}
	}
	var out []string
	for _, raw := range b.Messages {
		m, err := hl7.Parse(raw)
		if err != nil {
			out = append(out, "parse error "+location(err))
			continue
		}
		res, err := hl7map.Map(m, raw, opts())
		if err != nil {
			out = append(out, "error "+location(err))
			continue
		}
		if len(res.Events) == 0 {
			out = append(out, "none")
		}
		for _, ev := range res.Events {
			out = append(out, candidate(ev))
		}
	}
	return out
}

// candidate renders a candidate event: "kind.action subject", or "kind
// (state only) subject" for one that only updates the last-seen state.
func candidate(ev *eventsv1.ClinicalEvent) string {
	if ev.GetAction() == "" {
		return ev.GetKind() + " (state only) " + ev.GetSubjectRef()
	}
	return ev.GetKind() + "." + ev.GetAction() + " " + ev.GetSubjectRef()
}

func location(err error) string {
	var pe *hl7.ParseError
	if !errors.As(err, &pe) {
		return "not a ParseError: " + err.Error()
	}
	return fmt.Sprintf("%s %s", pe.Location(), pe.Code)
}

func TestMapAppointment(t *testing.T) {
	raw := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := hl7map.Map(m, raw, opts())
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("Map() = %d events, %v", len(res.Events), err)
	}
	zone := time.FixedZone("", 2*3600+15*60)
	want := &eventsv1.ClinicalEvent{
		Tenant: "demo", Kind: "appointment", Action: "booked",
		OccurredAt: tsp(time.Date(2021, 9, 14, 11, 20, 0, 0, zone)),
		ReceivedAt: tsp(received),
		Source:     &eventsv1.Source{Name: "demo", Protocol: eventsv1.Protocol_PROTOCOL_HL7V2_MLLP, MessageType: "SIU^S12"},
		Patient: &eventsv1.Patient{
			Id: "PATID1234",
			Identifiers: []*eventsv1.Identifier{
				{System: "test1", Value: "PATID1234"}, {System: "USSSA", Value: "123456789"},
			},
			// The legal name (XPN-7 L) is the second repetition; XTN-12 comes
			// before XTN-1; PID-15 holds ISO 639-2 "ara".
			FamilyName: "Josh", GivenNames: []string{"stanley"}, BirthDate: "1988-08-18",
			Phones: []string{"2222", "12121212"}, Language: "ar",
		},
		SubjectRef: "Appointment/12345",
		Facts: &eventsv1.ClinicalEvent_Appointment{Appointment: &eventsv1.AppointmentFacts{
			Status: "booked",
			// TQ1-7/8, not the older SCH-11 the message also carries.
			Start:        tsp(time.Date(2021, 9, 24, 9, 30, 0, 0, zone)),
			End:          tsp(time.Date(2021, 9, 24, 10, 20, 0, 0, zone)),
			ServiceType:  "Biopsy of colon (procedure)",
			Participants: []string{"055 Room01 GH Clinic", "Robert C GE"},
		}},
		Original:            raw,
		OriginalContentType: "x-application/hl7-v2+er7",
	}
	if diff := cmp.Diff(want, res.Events[0], protocmp.Transform()); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	wantSub := hl7map.Subject{Status: "booked", Identifiers: []hl7map.EI{{Role: "placer", Value: "12345"}, {Role: "filler", Value: "36996"}}}
	if diff := cmp.Diff(wantSub, res.Subjects[0]); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
}

func TestMapVariants(t *testing.T) {
	const msh = "MSH|^~\\&|A|FAC|C|D|20240101120000||"
	const pid = "PID|1||MRN9^^^HOSP^MR||Roe^Rita^M^^^^L||19700203|F|||||^PRN^CP^^1^555^7654321~^NET^Internet^rita@example.org||spa\r"
	tests := []struct {
		name string
		give string
		want []string
	}{
		{name: "S14 without a start", give: msh + "SIU^S14|1|P|2.5\rSCH|A1\r" + pid, want: []string{"appointment (state only) Appointment/A1"}},
		{name: "S14 with TQ1 start", give: msh + "SIU^S14|1|P|2.5\rSCH|A1\rTQ1|||||||20240105093000\r" + pid, want: []string{"appointment.rescheduled Appointment/A1"}},
		{name: "S17", give: msh + "SIU^S17|1|P|2.5\rSCH||F1\r" + pid, want: []string{"appointment.cancelled Appointment/F1"}},
		{name: "A31", give: msh + "ADT^A31|1|P|2.5\r" + pid, want: []string{"patient.updated Patient/MRN9"}},
		{name: "ORU corrected and preliminary", give: msh + "ORU^R01|1|P|2.5\r" + pid + "OBR|1|P1" + strings.Repeat("|", 23) + "C\rOBR|2|P2|F2" + strings.Repeat("|", 22) + "P\r", want: []string{"lab_result.amended DiagnosticReport/P1", "lab_result (state only) DiagnosticReport/F2"}},
		{name: "A13 with a visit number", give: msh + "ADT^A13|1|P|2.5\r" + pid + "PV1|1|I" + strings.Repeat("|", 17) + "V7^^^HOSP^VN\r", want: []string{"encounter (state only) Encounter/V7"}},
		{name: "A11 without PV1", give: msh + "ADT^A11|1|P|2.5\r" + pid, want: []string{"none"}},
		{name: "bad start", give: msh + "SIU^S12|1|P|2.5\rSCH|A1||||||||||^^^2024-01-05\r" + pid, want: []string{"error SCH[2]-11 102"}},
		{name: "no control id", give: msh + "SIU^S12||P|2.5\rSCH|A1\r" + pid, want: []string{"error MSH[1]-10 101"}},
		{name: "no appointment id", give: msh + "SIU^S12|1|P|2.5\rSCH|\r" + pid, want: []string{"error SCH[2]-1 101"}},
		{name: "no PID", give: msh + "SIU^S12|1|P|2.5\rSCH|A1\r", want: []string{"error PID 100"}},
		{name: "no OBR", give: msh + "ORU^R01|1|P|2.5\r" + pid, want: []string{"error OBR 100"}},
		{name: "bad MSH-7", give: "MSH|^~\\&|A|FAC|C|D|2024-01-01||ADT^A08|1|P|2.5\r" + pid, want: []string{"error MSH[1]-7 102"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := hl7.Parse([]byte(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			res, err := hl7map.Map(m, []byte(tt.give), opts())
			switch {
			case err != nil:
				got = []string{"error " + location(err)}
			case len(res.Events) == 0:
				got = []string{"none"}
			}
			for _, ev := range res.Events {
				got = append(got, candidate(ev))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	m, _ := hl7.Parse([]byte(msh + "ADT^A31|1|P|2.5\r" + pid))
	res, _ := hl7map.Map(m, nil, opts())
	wantPatient := &eventsv1.Patient{Id: "MRN9", Identifiers: []*eventsv1.Identifier{{System: "HOSP", Value: "MRN9"}},
		FamilyName: "Roe", GivenNames: []string{"Rita", "M"}, BirthDate: "1970-02-03",
		Emails: []string{"rita@example.org"}, Phones: []string{"+1 (555) 7654321"}, Language: "es"}
	if diff := cmp.Diff(wantPatient, res.Events[0].GetPatient(), protocmp.Transform()); diff != "" {
		t.Errorf("patient (-want +got):\n%s", diff)
	}
}
