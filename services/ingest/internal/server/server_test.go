package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/envelope"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// appointmentJSON returns the raw JSON of the Appointment in entry 1 of a
// built notification, as ingest must keep it.
func appointmentJSON(t *testing.T, body []byte) []byte {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Entry) < 2 {
		t.Fatalf("notification: %v", err)
	}
	return b.Entry[1].Resource
}

func TestBookedAppointmentPublishesOneEvent(t *testing.T) {
	e := newEnv(t)
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)

	// The second post is a retry: the same version, no transition.
	for i, want := range []string{"accepted 1 event(s)", "accepted 0 event(s); 1 resource(s) made no transition from their last-seen state"} {
		got := e.post(t, demo(body))
		if got.status != 200 || got.outcome.Issue[0].Severity != "information" || got.outcome.Issue[0].Diagnostics != want {
			t.Fatalf("post #%d = %d %+v, want 200 %s", i+1, got.status, got.outcome, want)
		}
	}

	msgs := e.messages(t, "EHR_EVENTS")
	if len(msgs) != 1 {
		t.Fatalf("EHR_EVENTS holds %d messages, want 1", len(msgs))
	}
	msg := msgs[0]
	gotHeaders := map[string]string{}
	for _, k := range []string{"Nats-Msg-Id", "Cn-Tenant", "Cn-Kind", "Cn-Action", "Cn-Source", "Cn-Event-Time"} {
		gotHeaders[k] = msg.Header.Get(k)
	}
	// sha256("state|demo|appointment|<record>|1|booked"), first 32 hex
	// digits; the record is the keyed hash of the logical id.
	wantID := e.eventID("demo", "demo", "appointment", "Appointment/2docs", 1, "booked")
	wantHeaders := map[string]string{
		"Nats-Msg-Id": wantID, "Cn-Tenant": "demo", "Cn-Kind": "appointment", "Cn-Action": "booked",
		"Cn-Source": "demo", "Cn-Event-Time": "2026-01-15T12:00:00Z",
	}
	if msg.Subject != "ehr.demo.appointment.booked" {
		t.Errorf("subject = %q, want ehr.demo.appointment.booked", msg.Subject)
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("headers mismatch (-want +got):\n%s", diff)
	}

	// PHI rests sealed: the stored bytes hold none of the patient's identifiers.
	for _, id := range []string{"Chalmers", "Peter", "1974-12-25"} {
		if bytes.Contains(msg.Data, []byte(id)) {
			t.Errorf("stored event holds %q in clear", id)
		}
	}
	var got eventsv1.ClinicalEvent
	if err := proto.Unmarshal(e.open(t, msg, envelope.KindEHREvent), &got); err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.ClinicalEvent{
		EventId:    wantID,
		Tenant:     "demo",
		Kind:       "appointment",
		Action:     "booked",
		OccurredAt: timestamppb.New(time.Date(2013, 12, 1, 10, 0, 0, 0, time.UTC)),
		ReceivedAt: timestamppb.New(receivedAt),
		Source: &eventsv1.Source{
			Name:            "demo",
			Protocol:        eventsv1.Protocol_PROTOCOL_FHIR_SUBSCRIPTION_R4_BACKPORT,
			Subscription:    fhirnotifytest.Base + "/Subscription/appointments",
			Topic:           "http://fhirserver.org/topics/appointment-booked",
			EventNumber:     1,
			ResourceVersion: "Appointment/2docs/_history/1",
		},
		Patient: &eventsv1.Patient{
			Id:          "example",
			Identifiers: []*eventsv1.Identifier{{System: "urn:oid:1.2.36.146.595.217.0.1", Value: "12345"}},
			GivenNames:  []string{"Peter", "James"},
			FamilyName:  "Chalmers",
			BirthDate:   "1974-12-25",
			Emails:      []string{fhirnotifytest.CanaryEmail},
			Phones:      []string{"(03) 3410 5613", "(03) 5555 6473"},
		},
		SubjectRef: "Appointment/2docs",
		Facts: &eventsv1.ClinicalEvent_Appointment{Appointment: &eventsv1.AppointmentFacts{
			Status:       "booked",
			Start:        timestamppb.New(time.Date(2013, 12, 9, 9, 0, 0, 0, time.UTC)),
			End:          timestamppb.New(time.Date(2013, 12, 9, 11, 0, 0, 0, time.UTC)),
			ServiceType:  "General Discussion",
			Participants: []string{"Dr Adam Careful", "Luigi Maas", "Phone Call"},
			Description:  "Discussion about Peter Chalmers MRI results",
		}},
		Original:            appointmentJSON(t, body),
		OriginalContentType: "application/fhir+json",
	}
	if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
		t.Errorf("ClinicalEvent mismatch (-want +got):\n%s", diff)
	}
	if n := len(e.messages(t, "EHR_DEAD")); n != 0 {
		t.Errorf("EHR_DEAD holds %d messages, want 0", n)
	}
}

// TestTransitionsFromLastSeenState posts versions of one appointment:
// only real transitions become events, each with the id of its place in
// the resource's history.
func TestTransitionsFromLastSeenState(t *testing.T) {
	e := newEnv(t)
	posts := []struct {
		give fhirnotifytest.Options
		want string // "kind.action" or "unchanged"
	}{
		{fhirnotifytest.BookedOptions, "appointment.booked"},
		{fhirnotifytest.BookedOptions, "unchanged"},                                                // the same version again
		{fhirnotifytest.Options{VersionID: "2", LastUpdated: "2013-12-02T10:00:00Z"}, "unchanged"}, // a new version, same state
		{fhirnotifytest.Options{VersionID: "3", Start: "2013-12-10T09:00:00Z"}, "appointment.rescheduled"},
		{fhirnotifytest.Options{VersionID: "2", Status: "cancelled"}, "unchanged"}, // older than 3: out of order
		{fhirnotifytest.Options{VersionID: "4", Status: "cancelled", Start: "2013-12-10T09:00:00Z"}, "appointment.cancelled"},
		{fhirnotifytest.Options{VersionID: "5", Status: "entered-in-error"}, "unchanged"}, // never messages patients
		{fhirnotifytest.Options{VersionID: "6", Status: "noshow"}, "appointment.noshow"},
		{fhirnotifytest.Options{VersionID: "7", Status: "fulfilled"}, "unchanged"},
	}
	for i, p := range posts {
		got := e.post(t, demo(fhirnotifytest.AppointmentNotification(t, p.give)))
		if got.status != 200 {
			t.Fatalf("post %d = %d %+v", i+1, got.status, got.outcome)
		}
		outcome := "unchanged"
		if !strings.Contains(got.outcome.Issue[0].Diagnostics, "1 resource(s) made no transition") {
			outcome = "event"
		}
		if (p.want == "unchanged") != (outcome == "unchanged") {
			t.Errorf("post %d: %q, want %s", i+1, got.outcome.Issue[0].Diagnostics, p.want)
		}
	}
	var got, ids []string
	for _, m := range e.messages(t, "EHR_EVENTS") {
		got = append(got, m.Subject)
		ids = append(ids, m.Header.Get("Nats-Msg-Id"))
	}
	want := []string{
		"ehr.demo.appointment.booked", "ehr.demo.appointment.rescheduled",
		"ehr.demo.appointment.cancelled", "ehr.demo.appointment.noshow",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EHR_EVENTS subjects mismatch (-want +got):\n%s", diff)
	}
	wantIDs := []string{
		e.eventID("demo", "demo", "appointment", "Appointment/2docs", 1, "booked"),
		e.eventID("demo", "demo", "appointment", "Appointment/2docs", 2, "rescheduled"),
		e.eventID("demo", "demo", "appointment", "Appointment/2docs", 3, "cancelled"),
		e.eventID("demo", "demo", "appointment", "Appointment/2docs", 4, "noshow"),
	}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("event ids mismatch (-want +got):\n%s", diff)
	}
	if n := len(e.messages(t, "EHR_DEAD")); n != 0 {
		t.Errorf("EHR_DEAD holds %d messages, want 0: no change is not an error", n)
	}
}

func TestNotificationsWithoutEvents(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		// want is severity and diagnostics of the 200 answer; wantDead the
		// number of dead letters.
		want     [2]string
		wantDead int
	}{
		{name: "handshake", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.HandshakeBundle),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "heartbeat", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.HeartbeatBundle),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "full resource encounter", give: fhirnotifytest.InfernoFullResourceBundle(t),
			want: [2]string{"information", "accepted 0 event(s); 1 resource(s) made no transition from their last-seen state"}},
		{name: "argonaut handshake", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautHandshake),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "argonaut heartbeat", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautHeartbeat),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "argonaut query-status error", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautError),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "argonaut virtual encounter", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautMulti),
			want: [2]string{"information", "accepted 0 event(s); 1 resource(s) made no transition from their last-seen state"}},
		{name: "R5 handshake", give: fhirnotifytest.R5Notification(t, "handshake", 0),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "R5 heartbeat", give: fhirnotifytest.R5Notification(t, "heartbeat", 4),
			want: [2]string{"information", "accepted 0 event(s)"}},
		{name: "R5 entered-in-error", give: fhirnotifytest.R5Notification(t, "event-notification", 4, fhirnotifytest.R5Appointment(t, "entered-in-error")),
			want: [2]string{"information", "accepted 0 event(s); 1 resource(s) made no transition from their last-seen state"}},
		{name: "argonaut empty payload", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautEmpty),
			want: [2]string{"warning", "empty notification payloads are not processed yet: accepted 0 event(s); the notification was kept for replay (reason payload_not_supported)"}, wantDead: 1},
		{name: "R5 empty payload", give: fhirnotifytest.R5Notification(t, "event-notification", 4),
			want: [2]string{"warning", "empty notification payloads are not processed yet: accepted 0 event(s); the notification was kept for replay (reason payload_not_supported)"}, wantDead: 1},
		{name: "empty payload", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EmptyBundle),
			want: [2]string{"warning", "empty notification payloads are not processed yet: accepted 0 event(s); the notification was kept for replay (reason payload_not_supported)"}, wantDead: 1},
		{name: "athenahealth id-only", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.AthenaIDOnly),
			want: [2]string{"warning", "id-only notification payloads are not processed yet: accepted 0 event(s); the notification was kept for replay (reason payload_not_supported)"}, wantDead: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.post(t, demo(tt.give))
			if got.status != 200 || got.outcome.Issue[0].Severity != tt.want[0] || got.outcome.Issue[0].Diagnostics != tt.want[1] {
				t.Errorf("post = %d %+v, want 200 %q", got.status, got.outcome, tt.want)
			}
			if n := len(e.messages(t, "EHR_EVENTS")); n != 0 {
				t.Errorf("EHR_EVENTS holds %d messages, want 0", n)
			}
			dead := e.messages(t, "EHR_DEAD")
			if len(dead) != tt.wantDead {
				t.Fatalf("EHR_DEAD holds %d messages, want %d", len(dead), tt.wantDead)
			}
			for _, m := range dead {
				if m.Subject != "dead.ehr.demo.demo" || m.Header.Get("Cn-Reason") != "payload_not_supported" || !bytes.Equal(e.open(t, m, envelope.KindEHRDead), tt.give) {
					t.Errorf("dead letter %s %v does not hold the body with reason payload_not_supported", m.Subject, m.Header)
				}
			}
		})
	}
}

func TestRejections(t *testing.T) {
	booked := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	bookedX := bytes.Replace(booked, []byte(`"status": "booked"`), []byte(`"status": "bookedX"`), 1)
	type want struct {
		status     int
		code       string
		diagnostic string // substring
		expression string
		deadReason string // "" when the body must not be kept
	}
	tests := []struct {
		name string
		give request
		want want
	}{
		{name: "wrong token", give: request{source: "demo", token: "nope", contentType: "application/fhir+json", body: booked},
			want: want{status: 401, code: "login", diagnostic: "unknown source or wrong bearer token"}},
		{name: "unknown source", give: request{source: "someone", token: "demo-token", contentType: "application/fhir+json", body: booked},
			want: want{status: 401, code: "login", diagnostic: "unknown source or wrong bearer token"}},
		{name: "other source's token", give: request{source: "epic-prod", token: "demo-token", contentType: "application/fhir+json", body: booked},
			want: want{status: 401, code: "login", diagnostic: "unknown source or wrong bearer token"}},
		{name: "no authorization", give: request{source: "demo", contentType: "application/fhir+json", body: booked},
			want: want{status: 401, code: "login", diagnostic: "unknown source or wrong bearer token"}},
		{name: "xml", give: request{source: "demo", token: "demo-token", contentType: "application/fhir+xml", body: booked},
			want: want{status: 415, code: "not-supported", diagnostic: "application/fhir+json"}},
		{name: "latin-1", give: request{source: "demo", token: "demo-token", contentType: "application/json; charset=iso-8859-1", body: booked},
			want: want{status: 415, code: "not-supported", diagnostic: "charset"}},
		{name: "STU3", give: request{source: "demo", token: "demo-token", contentType: "application/fhir+json; fhirVersion=3.0", body: booked},
			want: want{status: 415, code: "not-supported", diagnostic: "fhirVersion"}},
		{name: "too large", give: demo(append(bytes.Repeat([]byte(" "), maxBody), booked...)),
			want: want{status: 413, code: "too-costly", diagnostic: "larger"}},
		{name: "malformed json", give: demo([]byte(`{"resourceType": "Bundle", "type": `)),
			want: want{status: 400, code: "structure", diagnostic: "byte offset 35", deadReason: "malformed_json"}},
		{name: "a patient", give: demo(fhirnotifytest.ReadCorpus(t, fhirnotifytest.PatientFile)),
			want: want{status: 422, code: "invalid", diagnostic: "expected a subscription notification Bundle, got resourceType Patient", deadReason: "not_a_notification"}},
		{name: "bad appointment status", give: demo(bookedX),
			want: want{status: 422, code: "invalid", diagnostic: "AppointmentStatus", expression: "Bundle.entry[1].resource.status", deadReason: "invalid_resource"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.post(t, tt.give)
			is := resp.outcome.Issue[0]
			got := want{status: resp.status, code: is.Code, diagnostic: tt.want.diagnostic, deadReason: tt.want.deadReason}
			if !strings.Contains(is.Diagnostics, tt.want.diagnostic) {
				got.diagnostic = is.Diagnostics
			}
			if len(is.Expression) > 0 {
				got.expression = is.Expression[0]
			}
			dead := e.messages(t, "EHR_DEAD")
			switch {
			case tt.want.deadReason == "" && len(dead) != 0:
				got.deadReason = "kept " + dead[0].Header.Get("Cn-Reason")
			case tt.want.deadReason != "" && len(dead) != 1:
				got.deadReason = "not kept"
			case tt.want.deadReason != "":
				m := dead[0]
				if m.Header.Get("Cn-Reason") != tt.want.deadReason || m.Subject != "dead.ehr.demo.demo" ||
					m.Header.Get("Cn-Tenant") != "demo" || m.Header.Get("Cn-Source") != "demo" || !bytes.Equal(e.open(t, m, envelope.KindEHRDead), tt.give.body) ||
					m.Header.Get("Nats-Msg-Id") != fmt.Sprintf("%x", sha256.Sum256(tt.give.body)) {
					got.deadReason = "kept as " + m.Subject + " " + m.Header.Get("Cn-Reason")
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
			if resp.status == 401 && resp.header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", resp.header.Get("WWW-Authenticate"))
			}
			if n := len(e.messages(t, "EHR_EVENTS")); n != 0 {
				t.Errorf("EHR_EVENTS holds %d messages, want 0", n)
			}
			if strings.Contains(is.Diagnostics, "bookedX") || strings.Contains(is.Diagnostics, "demo-token") {
				t.Errorf("diagnostics repeat input: %q", is.Diagnostics)
			}
		})
	}
}

func TestNATSDownAnswers503(t *testing.T) {
	tests := []struct {
		name string
		give []byte
	}{
		{name: "event", give: fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)},
		{name: "dead letter", give: []byte(`{"resourceType":"Patient"}`)},
		{name: "id-only", give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.AthenaIDOnly)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.ns.Shutdown()
			e.ns.WaitForShutdown()
			got := e.post(t, demo(tt.give))
			if got.status != 503 || got.outcome.Issue[0].Code != "transient" || got.header.Get("Retry-After") == "" {
				t.Errorf("post with NATS down = %d %+v, want 503 transient with Retry-After", got.status, got.outcome)
			}
		})
	}
}
