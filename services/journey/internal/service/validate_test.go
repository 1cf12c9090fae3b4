package service_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

func TestValidateJourney(t *testing.T) {
	h := startWith(t, confirmationOnly(t))
	admin := h.adminAs(t, tokenEditor)
	ctx := t.Context()

	good, err := os.ReadFile("../../../../deploy/examples/journeys/appointment-reminder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.ValidateJourney(ctx, &journeyv1.ValidateJourneyRequest{FileName: "reminder.yaml", Content: good})
	if err != nil || !resp.GetValid() || resp.GetJourney().GetId() != "appointment-reminder" || resp.GetJourney().GetSteps() != 2 || len(resp.GetProblems()) != 0 {
		t.Fatalf("ValidateJourney(example) = %v, %v", resp, err)
	}

	// The example marketing newsletter passes too (its template is loaded
	// by the running service's examples).
	newsletter, err := os.ReadFile("../../../../deploy/examples/journeys/wellness-newsletter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = admin.ValidateJourney(ctx, &journeyv1.ValidateJourneyRequest{FileName: "wellness-newsletter.yaml", Content: newsletter})
	if err != nil || !resp.GetValid() || resp.GetJourney().GetPurpose() != "marketing" || len(resp.GetProblems()) != 0 {
		t.Fatalf("ValidateJourney(newsletter) = %v, %v", resp, err)
	}

	bad := "id: reminders\npurpose: treatment\ntrigger: appointment.boked\nwhen: patient.name == \"x\"\nsteps:\n" +
		"  - wait_until: event.appointment.start - 72\n  - send: email\n    template: appointment-reminde\n"
	resp, err = admin.ValidateJourney(ctx, &journeyv1.ValidateJourneyRequest{FileName: "reminders.yaml", Content: []byte(bad)})
	if err != nil {
		t.Fatal(err)
	}
	want := &journeyv1.ValidateJourneyResponse{Problems: []*journeyv1.JourneyProblem{
		{File: "reminders.yaml", Line: 3, Message: `trigger "appointment.boked" is not a known event`},
		{File: "reminders.yaml", Line: 4, Column: 14, Message: "when: column 8: undefined field 'name': patient has age, language, has_email and has_phone"},
		{File: "reminders.yaml", Line: 6, Column: 41, Message: "step 1: wait_until: column 25: found no matching overload for '_-_' applied to '(timestamp, int)': '-' cannot combine a time (timestamp) and a number (int)"},
		{File: "reminders.yaml", Line: 8, Message: `step 2: template "appointment-reminde" does not exist in the loaded templates`},
	}}
	// Compare the start of each message: the rest lists known values.
	for i, p := range resp.GetProblems() {
		if i < len(want.Problems) && strings.HasPrefix(p.GetMessage(), want.Problems[i].GetMessage()) {
			p.Message = want.Problems[i].GetMessage()
		}
	}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Errorf("ValidateJourney(bad) (-want +got):\n%s", diff)
	}

	// Over HTTP too; and nothing was loaded.
	code, body := h.httpAs(t, tokenViewer, http.MethodPost, "/v1/journeys:validate?file=reminders.yaml", bad)
	if code != http.StatusOK || !strings.Contains(body, `"valid":false`) || !strings.Contains(body, `"column":14`) {
		t.Errorf("POST /v1/journeys:validate = %d %s", code, body)
	}
	list, err := admin.ListJourneys(ctx, &journeyv1.ListJourneysRequest{})
	if err != nil || len(list.GetJourneys()) != 1 || list.GetJourneys()[0].GetId() != "appointment-confirmation" {
		t.Errorf("ListJourneys() after validating = %v, %v", list, err)
	}
	if _, err := admin.ValidateJourney(ctx, &journeyv1.ValidateJourneyRequest{FileName: "../x y.yaml"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ValidateJourney(bad name) = %v, want INVALID_ARGUMENT", err)
	}
	if _, err := h.adminAs(t, tokenConsentAdmin).ValidateJourney(ctx, &journeyv1.ValidateJourneyRequest{FileName: "a.yaml", Content: good}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ValidateJourney as consent-admin = %v, want PERMISSION_DENIED", err)
	}
}
