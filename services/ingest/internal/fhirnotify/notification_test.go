package fhirnotify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// summary is what the tests compare of a parsed notification.
type summary struct {
	Version          fhirnotify.Version
	Shape            fhirnotify.Shape
	Type             fhirnotify.Type
	Subscription     string
	Topic            string
	EventsSinceStart int64
	Payload          fhirnotify.Payload
	Resources        []string
	Events           []fhirnotify.Event
}

func summarise(n *fhirnotify.Notification) summary {
	s := summary{Version: n.Version, Shape: n.Shape, Type: n.Type, Subscription: n.Subscription, Topic: n.Topic,
		EventsSinceStart: n.EventsSinceStart, Payload: n.Payload(), Events: n.Events}
	for _, e := range n.Entries {
		s.Resources = append(s.Resources, e.ResourceType+"/"+e.ID)
	}
	return s
}

func TestParseNotificationCorpus(t *testing.T) {
	ts := time.Date(2020, 5, 29, 11, 44, 13, 188243200, time.FixedZone("", -5*3600))
	tests := []struct {
		name string
		give []byte
		want summary
	}{
		{
			name: "inferno handshake",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.HandshakeBundle),
			want: summary{Version: fhirnotify.VersionR4Backport, Shape: fhirnotify.ShapeParameters, Type: fhirnotify.TypeHandshake,
				Subscription: "https://fhirserver.org/fhir/Subscription/123", Topic: "http://fhirserver.org/topics/patient-admission",
				Payload: fhirnotify.PayloadNone},
		},
		{
			name: "inferno heartbeat",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.HeartbeatBundle),
			want: summary{Version: fhirnotify.VersionR4Backport, Shape: fhirnotify.ShapeParameters, Type: fhirnotify.TypeHeartbeat,
				Subscription: "https://fhirserver.org/fhir/Subscription/123", Topic: "http://fhirserver.org/topics/patient-admission",
				EventsSinceStart: 2, Payload: fhirnotify.PayloadNone},
		},
		{
			name: "inferno empty",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.EmptyBundle),
			want: summary{Version: fhirnotify.VersionR4Backport, Shape: fhirnotify.ShapeParameters, Type: fhirnotify.TypeEventNotification,
				Subscription: "https://fhirserver.org/fhir/Subscription/123", Topic: "http://fhirserver.org/topics/patient-admission",
				EventsSinceStart: 1, Payload: fhirnotify.PayloadEmpty,
				Events: []fhirnotify.Event{{Number: 1, Timestamp: ts}}},
		},
		{
			name: "inferno full resource encounter",
			give: fhirnotifytest.InfernoFullResourceBundle(t),
			want: summary{Version: fhirnotify.VersionR4Backport, Shape: fhirnotify.ShapeParameters, Type: fhirnotify.TypeEventNotification,
				Subscription: "https://example.org/fhir/Subscription/admission", Topic: "http://hl7.org/SubscriptionTopic/admission",
				EventsSinceStart: 1, Payload: fhirnotify.PayloadFullResource,
				Resources: []string{"Encounter/86009987-eabe-42bf-8c02-b112b18cb616"},
				Events: []fhirnotify.Event{{Number: 1, Timestamp: ts,
					Focus: "https://example.org/fhir/Encounter/86009987-eabe-42bf-8c02-b112b18cb616"}}},
		},
		{
			name: "athenahealth R4B-style status, focus by identifier",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.AthenaIDOnly),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeEventNotification,
				Subscription:     "Subscription/62865e96-3fe4-3f6f-b476-b8eb87b90892",
				Topic:            "https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/Appointment.schedule",
				EventsSinceStart: 1, Payload: fhirnotify.PayloadIDOnly,
				Resources: []string{"AuditEvent/0901fb5b-6858-33f2-994f-6680c0c6aadb"},
				Events: []fhirnotify.Event{{Number: 1, Timestamp: time.Date(2023, 4, 14, 9, 22, 56, 0, time.UTC),
					FocusByIdentifier: true, FocusIdentifier: fhirnotify.Identifier{System: "urn:athenahealth:athenanet:appointment:195900", Value: "2"}}}},
		},
		{
			name: "athenahealth patient, focus not in bundle",
			give: fhirnotifytest.ReadCorpus(t, "fhir/subscriptions/vendor/athenahealth/patient-notification.json"),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeEventNotification,
				Subscription:     "Subscription/b9f6db63-4883-41bb-9fef-97372cbd3fcd",
				Topic:            "https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/Patient.update",
				EventsSinceStart: 1, Payload: fhirnotify.PayloadIDOnly,
				Resources: []string{"AuditEvent/ead73c9e-ab6e-4db5-9b73-1f73cb243682"},
				Events: []fhirnotify.Event{{Number: 1, Timestamp: time.Date(2023, 4, 14, 9, 22, 56, 0, time.UTC),
					Focus: "Patient/a-195900.E-1"}}},
		},
		{
			name: "built appointment notification",
			give: fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions),
			want: summary{Version: fhirnotify.VersionR4Backport, Shape: fhirnotify.ShapeParameters, Type: fhirnotify.TypeEventNotification,
				Subscription: fhirnotifytest.Base + "/Subscription/appointments", Topic: "http://fhirserver.org/topics/appointment-booked",
				EventsSinceStart: 1, Payload: fhirnotify.PayloadFullResource,
				Resources: []string{"Appointment/2docs", "Patient/example"},
				Events:    []fhirnotify.Event{{Number: 1, Timestamp: ts, Focus: fhirnotifytest.Base + "/Appointment/2docs"}}},
		},
		{
			name: "argonaut handshake",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautHandshake),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeHandshake,
				Subscription: "https://example.org/fhir/r4/Subscription/admission", Topic: "http://hl7.org/SubscriptionTopic/admission",
				Payload: fhirnotify.PayloadNone},
		},
		{
			name: "argonaut heartbeat",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautHeartbeat),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeHeartbeat,
				Subscription: "https://example.org/fhir/r4/Subscription/admission", Topic: "http://hl7.org/SubscriptionTopic/admission",
				EventsSinceStart: 2, Payload: fhirnotify.PayloadNone},
		},
		{
			name: "argonaut empty",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautEmpty),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeEventNotification,
				Subscription: "https://example.org/fhir/r4/Subscription/admission", Topic: "http://hl7.org/SubscriptionTopic/admission",
				EventsSinceStart: 2, Payload: fhirnotify.PayloadEmpty},
		},
		{
			name: "argonaut error (query-status)",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautError),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeQueryStatus,
				Subscription: "https://example.org/fhir/r4/Subscription/admission", Topic: "http://hl7.org/SubscriptionTopic/admission",
				EventsSinceStart: 10, Payload: fhirnotify.PayloadNone},
		},
		{
			name: "argonaut multi-resource event",
			give: fhirnotifytest.ReadCorpus(t, fhirnotifytest.ArgonautMulti),
			want: summary{Version: fhirnotify.VersionR4B, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeEventNotification,
				Subscription: "https://example.org/fhir/r4/Subscription/admission", Topic: "http://hl7.org/SubscriptionTopic/admission",
				EventsSinceStart: 2, Payload: fhirnotify.PayloadFullResource,
				Resources: []string{"Encounter/551683b3-1477-41d1-b58e-32fe8b0047b0", "Patient/46db3334-dbf5-43f3-868f-93ae0883cce1"},
				Events: []fhirnotify.Event{{Number: 2, Timestamp: ts,
					Focus: "https://example.org/fhir/r4/Encounter/551683b3-1477-41d1-b58e-32fe8b0047b0"}}},
		},
		{
			name: "R5 event notification",
			give: fhirnotifytest.R5Notification(t, "event-notification", 7, fhirnotifytest.R5Appointment(t, "booked"), fhirnotifytest.Resource(t, fhirnotifytest.PatientFile)),
			want: summary{Version: fhirnotify.VersionR5, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeEventNotification,
				Subscription: fhirnotifytest.R5Subscription, Topic: fhirnotifytest.R5Topic,
				EventsSinceStart: 7, Payload: fhirnotify.PayloadFullResource,
				Resources: []string{"Appointment/2docs", "Patient/example"},
				Events: []fhirnotify.Event{{Number: 7, Timestamp: time.Date(2026, 1, 10, 8, 0, 5, 0, time.UTC),
					Focus: fhirnotifytest.Base + "/Appointment/2docs"}}},
		},
		{
			name: "R5 heartbeat",
			give: fhirnotifytest.R5Notification(t, "heartbeat", 7),
			want: summary{Version: fhirnotify.VersionR5, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeHeartbeat,
				Subscription: fhirnotifytest.R5Subscription, Topic: fhirnotifytest.R5Topic,
				EventsSinceStart: 7, Payload: fhirnotify.PayloadNone},
		},
		{
			name: "R5 handshake",
			give: fhirnotifytest.R5Notification(t, "handshake", 0),
			want: summary{Version: fhirnotify.VersionR5, Shape: fhirnotify.ShapeSubscriptionStatus, Type: fhirnotify.TypeHandshake,
				Subscription: fhirnotifytest.R5Subscription, Topic: fhirnotifytest.R5Topic, Payload: fhirnotify.PayloadNone},
		},
		{
			name: "byte order mark",
			give: append([]byte{0xEF, 0xBB, 0xBF}, fhirnotifytest.ReadCorpus(t, fhirnotifytest.HandshakeBundle)...),
			want: summary{Version: fhirnotify.VersionR4Backport, Shape: fhirnotify.ShapeParameters, Type: fhirnotify.TypeHandshake,
				Subscription: "https://fhirserver.org/fhir/Subscription/123", Topic: "http://fhirserver.org/topics/patient-admission",
				Payload: fhirnotify.PayloadNone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := fhirnotify.ParseNotification(tt.give)
			if err != nil {
				t.Fatalf("ParseNotification() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, summarise(n)); diff != "" {
				t.Errorf("ParseNotification() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// wantError is what the tests compare of an *Error; Diagnostics is a
// substring.
type wantError struct {
	Malformed   bool
	Reason      string
	Code        string
	Expression  string
	Diagnostics string
}

func TestParseNotificationErrors(t *testing.T) {
	handshake := string(fhirnotifytest.ReadCorpus(t, fhirnotifytest.HandshakeBundle))
	tests := []struct {
		name string
		give string
		want wantError
	}{
		{name: "empty body", give: "",
			want: wantError{Malformed: true, Reason: "malformed_json", Code: "structure", Diagnostics: "byte offset 0"}},
		{name: "truncated", give: `{"resourceType":"Bundle",`,
			want: wantError{Malformed: true, Reason: "malformed_json", Code: "structure", Diagnostics: "byte offset 25"}},
		{name: "garbage after bom", give: "\xEF\xBB\xBF{x",
			want: wantError{Malformed: true, Reason: "malformed_json", Code: "structure", Diagnostics: "byte offset 5"}},
		{name: "array", give: `[1,2]`,
			want: wantError{Malformed: true, Reason: "invalid_structure", Code: "structure", Diagnostics: "not an object"}},
		{name: "no resourceType", give: `{"type":"history"}`,
			want: wantError{Malformed: true, Reason: "not_a_notification", Code: "required", Diagnostics: "resourceType is missing"}},
		{name: "patient", give: `{"resourceType":"Patient","name":[{"family":"Chalmers"}]}`,
			want: wantError{Reason: "not_a_notification", Code: "invalid", Diagnostics: "got resourceType Patient"}},
		{name: "odd resourceType not echoed", give: `{"resourceType":"Peter Chalmers"}`,
			want: wantError{Reason: "not_a_notification", Code: "invalid", Diagnostics: "got resourceType another value"}},
		{name: "transaction bundle", give: `{"resourceType":"Bundle","type":"transaction","entry":[]}`,
			want: wantError{Reason: "not_a_notification", Code: "invalid", Expression: "Bundle.type", Diagnostics: "got transaction"}},
		{name: "R5 notification without entries", give: `{"resourceType":"Bundle","type":"subscription-notification","entry":[]}`,
			want: wantError{Reason: "not_a_notification", Code: "required", Expression: "Bundle.entry"}},
		{name: "R5 notification with a Parameters status", give: `{"resourceType":"Bundle","type":"subscription-notification","entry":[{"resource":{"resourceType":"Parameters","parameter":[]}}]}`,
			want: wantError{Reason: "not_a_notification", Code: "invalid", Expression: "Bundle.entry[0].resource", Diagnostics: "holds a SubscriptionStatus, got Parameters"}},
		{name: "R5 event number not a number", give: `{"resourceType":"Bundle","type":"subscription-notification","entry":[{"resource":{"resourceType":"SubscriptionStatus","type":"event-notification","notificationEvent":[{"eventNumber":"x"}]}}]}`,
			want: wantError{Malformed: true, Reason: "invalid_status", Code: "invalid", Expression: "Bundle.entry[0].resource.notificationEvent[0].eventNumber", Diagnostics: "non-negative integer"}},
		{name: "no entries", give: `{"resourceType":"Bundle","type":"history"}`,
			want: wantError{Reason: "not_a_notification", Code: "required", Expression: "Bundle.entry"}},
		{name: "entry not array", give: `{"resourceType":"Bundle","type":"history","entry":{"a":1}}`,
			want: wantError{Malformed: true, Reason: "invalid_structure", Code: "structure", Expression: "Bundle.entry", Diagnostics: "expected an array"}},
		{name: "fullUrl a number", give: `{"resourceType":"Bundle","type":"history","entry":[{"fullUrl":5}]}`,
			want: wantError{Malformed: true, Reason: "invalid_structure", Code: "structure", Expression: "Bundle.entry[0].fullUrl", Diagnostics: "expected a string"}},
		{name: "first entry a patient", give: `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Patient"}}]}`,
			want: wantError{Reason: "not_a_notification", Code: "invalid", Expression: "Bundle.entry[0].resource", Diagnostics: "got Patient"}},
		{name: "resource not an object", give: `{"resourceType":"Bundle","type":"history","entry":[{"resource":"x"}]}`,
			want: wantError{Malformed: true, Reason: "invalid_structure", Code: "structure", Expression: "Bundle.entry[0].resource"}},
		{name: "status without type", give: `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[]}}]}`,
			want: wantError{Reason: "invalid_status", Code: "required", Expression: "Bundle.entry[0].resource.parameter"}},
		{name: "unknown type", give: strings.Replace(handshake, `"valueCode": "handshake"`, `"valueCode": "hello"`, 1),
			want: wantError{Reason: "invalid_status", Code: "invalid", Expression: "Bundle.entry[0].resource.parameter[3].valueCode", Diagnostics: "unknown notification type"}},
		{name: "bad counter", give: strings.Replace(handshake, `"valueString": "0"`, `"valueString": "zero"`, 1),
			want: wantError{Reason: "invalid_status", Code: "invalid", Expression: "Bundle.entry[0].resource.parameter[4].valueString"}},
		{name: "parameter wrong type", give: strings.Replace(handshake, `"valueCode": "handshake"`, `"valueCode": 7`, 1),
			want: wantError{Malformed: true, Reason: "invalid_status", Code: "structure", Expression: "Bundle.entry[0].resource.parameter[3].valueCode"}},
		{name: "subscription status without type", give: `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"SubscriptionStatus"}}]}`,
			want: wantError{Reason: "invalid_status", Code: "required", Expression: "Bundle.entry[0].resource.type"}},
		{name: "entry without resourceType", give: `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"id":"x"}}]}`,
			want: wantError{Malformed: true, Reason: "invalid_structure", Code: "required", Expression: "Bundle.entry[0].resource.resourceType"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fhirnotify.ParseNotification([]byte(tt.give))
			fe, ok := err.(*fhirnotify.Error)
			if !ok {
				t.Fatalf("ParseNotification() error = %v, want *Error", err)
			}
			got := wantError{Malformed: fe.Malformed, Reason: fe.Reason, Code: fe.Code, Expression: fe.Expression, Diagnostics: tt.want.Diagnostics}
			if !strings.Contains(fe.Diagnostics, tt.want.Diagnostics) {
				got.Diagnostics = fe.Diagnostics
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseNotification() error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefTail(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "relative", give: "Patient/example", want: "Patient/example"},
		{name: "absolute", give: "https://fhirserver.org/fhir/Patient/example", want: "Patient/example"},
		{name: "versioned", give: "https://x/fhir/Appointment/2docs/_history/3", want: "Appointment/2docs"},
		{name: "urn", give: "urn:uuid:9e41ff6d-5be6-4e6a-8b85-abd4e7f58400", want: ""},
		{name: "contained", give: "#p1", want: ""},
		{name: "bare id", give: "example", want: ""},
		{name: "lower-case type", give: "https://x/fhir/patient/example", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fhirnotify.RefTail(tt.give); got != tt.want {
				t.Errorf("RefTail(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}
