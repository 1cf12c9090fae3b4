package service_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

func TestSimulate(t *testing.T) {
	h := startService(t) // the example journeys: confirmation, and a reminder 24h before with quiet hours
	ctx := t.Context()
	at := time.Date(2031, time.May, 3, 14, 0, 0, 0, time.UTC) // 10:00 in New York
	cancelled := booked("ev-s3", "Appointment/900", emailOK)
	cancelled.Action = "cancelled"
	lateNight := booked("ev-s4", "Appointment/901", emailOK)
	// Starts 23:30 New York time: 24h before is inside quiet hours.
	lateNight.GetAppointment().Start = timestamppb.New(time.Date(2031, time.May, 7, 3, 30, 0, 0, time.UTC))
	past := booked("ev-s5", "Appointment/902")
	past.GetAppointment().Start = timestamppb.New(at.Add(-time.Hour))
	req := &journeyv1.SimulateRequest{Events: []*eventsv1.ClinicalEvent{booked("ev-s1", "Appointment/900", emailOK), cancelled, lateNight, past}, At: timestamppb.New(at)}

	resp, err := h.adminAs(t, tokenViewer).Simulate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ts := timestamppb.New
	want := &journeyv1.SimulateResponse{Events: []*journeyv1.SimulatedEvent{
		{EventId: "ev-s1", Event: "appointment.booked", Journeys: []*journeyv1.SimulatedJourney{
			{Journey: "appointment-confirmation", Started: true, Outcome: "started", Messages: []*journeyv1.SimulatedMessage{
				{Step: "0", Channel: "email", Template: "appointment-confirmation", SendAt: ts(at)},
			}},
			{Journey: "appointment-reminder", Started: true, Outcome: "started", Messages: []*journeyv1.SimulatedMessage{
				{Step: "1", Channel: "email", Template: "appointment-reminder", SendAt: ts(start.Add(-24 * time.Hour))},
			}},
		}},
		{EventId: "ev-s3", Event: "appointment.cancelled", Journeys: []*journeyv1.SimulatedJourney{
			{Journey: "appointment-reminder", Outcome: "cancels the pending steps of this resource's instance, if one runs"},
		}},
		{EventId: "ev-s4", Event: "appointment.booked", Journeys: []*journeyv1.SimulatedJourney{
			{Journey: "appointment-confirmation", Started: true, Outcome: "started", Messages: []*journeyv1.SimulatedMessage{
				{Step: "0", Channel: "email", Template: "appointment-confirmation", SendAt: ts(at)},
			}},
			{Journey: "appointment-reminder", Started: true, Outcome: "started", Messages: []*journeyv1.SimulatedMessage{
				// 23:30 the day before, New York (EDT): deferred to 08:00 = 12:00 UTC.
				{Step: "1", Channel: "email", Template: "appointment-reminder", SendAt: ts(time.Date(2031, time.May, 6, 12, 0, 0, 0, time.UTC)), Note: "deferred by quiet hours to their end"},
			}},
		}},
		{EventId: "ev-s5", Event: "appointment.booked", Journeys: []*journeyv1.SimulatedJourney{
			{Journey: "appointment-confirmation", Started: true, Outcome: "started", Messages: []*journeyv1.SimulatedMessage{
				{Step: "0", Channel: "email", Template: "appointment-confirmation", SendAt: ts(at), Note: "the patient has no email address: it would be recorded as unreachable, not sent"},
			}},
			{Journey: "appointment-reminder", Outcome: "not started: its when: condition is false for this event"},
		}},
	}}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Errorf("Simulate() (-want +got):\n%s", diff)
	}

	// Over HTTP, the same; the answer holds no PHI.
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	code, out := h.httpAs(t, tokenViewer, http.MethodPost, "/v1/journeys:simulate", string(body))
	if code != http.StatusOK || !strings.Contains(out, `"template":"appointment-reminder"`) {
		t.Errorf("POST /v1/journeys:simulate = %d %s", code, out)
	}
	for _, canary := range []string{canaryGiven, canaryFamily, emailOK, "Appointment/90", "+15555550123"} {
		if strings.Contains(out, canary) {
			t.Errorf("simulate answer holds %q", canary)
		}
	}
	if code, out := h.httpAs(t, tokenViewer, http.MethodPost, "/v1/journeys:simulate", `{"events": [], "canary": "`+canaryGiven+`"}`); code != http.StatusBadRequest || strings.Contains(out, canaryGiven) {
		t.Errorf("POST bad simulate = %d %s", code, out)
	}

	// Nothing was sent, planned or decided.
	if n := len(h.email.callsTo(emailOK)); n != 0 {
		t.Errorf("simulate sent %d emails", n)
	}
	if recs := h.audited(t, audit.ActionMessageDecided); len(recs) != 0 {
		t.Errorf("simulate wrote %d message.decided records", len(recs))
	}
	if recs := h.audited(t, "journey.planned"); len(recs) != 0 {
		t.Errorf("simulate planned %d timers", len(recs))
	}
}
