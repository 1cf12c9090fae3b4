package service_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/versions"
)

// replica starts a second journey service on h's NATS and Redis.
func (h *harness) replica(t *testing.T) *harness {
	t.Helper()
	cfg := *h.cfg
	r := &harness{cfg: &cfg, js: h.js, sealer: h.sealer, email: h.email, sms: h.sms, logs: &logtest.Buffer{}}
	r.stopper = r.run(t)
	return r
}

// waitJourneys waits until ListJourneys on h answers a list for which ok
// holds, and returns it.
func (h *harness) waitJourneys(t *testing.T, what string, ok func([]*journeyv1.Journey) bool) []*journeyv1.Journey {
	t.Helper()
	admin := h.adminAs(t, tokenViewer)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := admin.ListJourneys(t.Context(), &journeyv1.ListJourneysRequest{})
		if err == nil && ok(resp.GetJourneys()) {
			return resp.GetJourneys()
		}
		if time.Now().After(deadline) {
			t.Fatalf("journeys never became %s: last %v, %v", what, resp.GetJourneys(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// revisionOf returns the revision and version of journey id in js, or 0.
func revisionOf(js []*journeyv1.Journey, id string) (int32, string) {
	for _, j := range js {
		if j.GetId() == id {
			return j.GetRevision(), j.GetVersion()
		}
	}
	return 0, ""
}

func TestApplyJourneyVersions(t *testing.T) {
	dir := confirmationOnly(t)
	h := startWith(t, dir)
	r := h.replica(t)
	editor := h.adminAs(t, tokenEditor)
	ctx := t.Context()
	seedContent, err := os.ReadFile(dir + "/appointment-confirmation.yaml")
	if err != nil {
		t.Fatal(err)
	}

	// First start seeded the directory's journey as version 1, once,
	// although two replicas started.
	hist, err := h.adminAs(t, tokenViewer).GetJourneyHistory(ctx, &journeyv1.GetJourneyHistoryRequest{JourneyId: "appointment-confirmation"})
	if err != nil || len(hist.GetVersions()) != 1 {
		t.Fatalf("GetJourneyHistory() after start = %v, %v; want 1 seeded version", hist, err)
	}
	v1 := hist.GetVersions()[0]
	if v1.GetVersion() != 1 || v1.GetPrincipal() != "seed:"+dir || v1.GetHash() != versions.Hash(seedContent) {
		t.Errorf("seeded version = %v", v1)
	}
	for _, x := range []*harness{h, r} {
		x.waitJourneys(t, "the seeded version", func(js []*journeyv1.Journey) bool { n, _ := revisionOf(js, "appointment-confirmation"); return n == 1 })
	}

	// A new version: both replicas run it, without a restart.
	edited := strings.Replace(string(seedContent), "steps:", "when: event.appointment.service_type != \"telehealth\"\nsteps:", 1)
	applied, err := editor.ApplyJourney(ctx, &journeyv1.ApplyJourneyRequest{FileName: "confirmation.yaml", Content: []byte(edited), Message: "no confirmations for telehealth"})
	if err != nil || !applied.GetChanged() || applied.GetVersion().GetVersion() != 2 || applied.GetVersion().GetPrincipal() != "eddie" {
		t.Fatalf("ApplyJourney(edited) = %v, %v", applied, err)
	}
	v2hash := applied.GetJourney().GetVersion()
	for _, x := range []*harness{h, r} {
		x.waitJourneys(t, "version 2", func(js []*journeyv1.Journey) bool {
			n, v := revisionOf(js, "appointment-confirmation")
			return n == 2 && v == v2hash
		})
	}
	// The same file again is no new version.
	again, err := editor.ApplyJourney(ctx, &journeyv1.ApplyJourneyRequest{FileName: "confirmation.yaml", Content: []byte(edited)})
	if err != nil || again.GetChanged() || again.GetVersion().GetVersion() != 2 {
		t.Errorf("ApplyJourney(same file) = %v, %v; want unchanged version 2", again, err)
	}

	// A bad version is refused with its problems; version 2 keeps running
	// and still sends.
	bad := strings.Replace(edited, "template: appointment-confirmation", "template: appointment-confirmaton", 1)
	_, err = editor.ApplyJourney(ctx, &journeyv1.ApplyJourneyRequest{FileName: "confirmation.yaml", Content: []byte(bad)})
	st := status.Convert(err)
	var problems []*journeyv1.JourneyProblem
	for _, d := range st.Details() {
		if p, ok := d.(*journeyv1.JourneyProblems); ok {
			problems = p.GetProblems()
		}
	}
	if st.Code() != codes.InvalidArgument || len(problems) != 1 || problems[0].GetFile() != "confirmation.yaml" || problems[0].GetLine() != 11 ||
		!strings.Contains(problems[0].GetMessage(), `template "appointment-confirmaton" does not exist`) {
		t.Fatalf("ApplyJourney(bad) = %v, problems %v; want INVALID_ARGUMENT naming line 11", err, problems)
	}
	code, body := h.httpAs(t, tokenEditor, http.MethodPost, "/v1/journeys:apply?file=confirmation.yaml", bad)
	if code != http.StatusBadRequest || !strings.Contains(body, `"line":11`) || !strings.Contains(body, "running version keeps running") {
		t.Errorf("POST /v1/journeys:apply (bad) = %d %s", code, body)
	}
	seq := h.publish(t, booked("evt-v-1", "Appointment/v-1", emailOK))
	h.waitSettled(t, seq)
	if got := h.email.callsTo(emailOK); len(got) != 1 {
		t.Fatalf("emails after a refused apply = %d, want 1 (version 2 still runs)", len(got))
	}
	for _, x := range []*harness{h, r} {
		if n, v := revisionOf(x.waitJourneys(t, "unchanged", func([]*journeyv1.Journey) bool { return true }), "appointment-confirmation"); n != 2 || v != v2hash {
			t.Errorf("running after a refused apply: revision %d version %s, want 2 %s", n, v, v2hash)
		}
	}

	// Rollback applies version 1's file again, as version 3.
	rb, err := editor.RollbackJourney(ctx, &journeyv1.RollbackJourneyRequest{JourneyId: "appointment-confirmation", ToVersion: 1})
	if err != nil || rb.GetVersion().GetVersion() != 3 || rb.GetVersion().GetRestoredFrom() != 1 || rb.GetVersion().GetHash() != v1.GetHash() {
		t.Fatalf("RollbackJourney(1) = %v, %v", rb, err)
	}
	r.waitJourneys(t, "version 3", func(js []*journeyv1.Journey) bool { n, _ := revisionOf(js, "appointment-confirmation"); return n == 3 })

	// Removed: no new start on any replica.
	rm, err := editor.RemoveJourney(ctx, &journeyv1.RemoveJourneyRequest{JourneyId: "appointment-confirmation", Message: "paused"})
	if err != nil || rm.GetVersion().GetVersion() != 4 || !rm.GetVersion().GetRemoved() {
		t.Fatalf("RemoveJourney() = %v, %v", rm, err)
	}
	for _, x := range []*harness{h, r} {
		x.waitJourneys(t, "empty", func(js []*journeyv1.Journey) bool { return len(js) == 0 })
	}
	seq = h.publish(t, booked("evt-v-2", "Appointment/v-2", emailRetry))
	h.waitSettled(t, seq)
	if got := h.email.callsTo(emailRetry); len(got) != 0 {
		t.Errorf("emails from a removed journey = %d, want 0", len(got))
	}

	// Viewers read the history; they may not apply.
	code, body = h.httpAs(t, tokenViewer, http.MethodGet, "/v1/journeys/appointment-confirmation/history", "")
	if code != http.StatusOK || strings.Count(body, `"journeyId"`) != 4 || !strings.Contains(body, `"principal":"eddie"`) {
		t.Errorf("GET history = %d %s", code, body)
	}
	if _, err := h.adminAs(t, tokenViewer).ApplyJourney(ctx, &journeyv1.ApplyJourneyRequest{FileName: "c.yaml", Content: seedContent}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ApplyJourney as viewer = %v, want PERMISSION_DENIED", err)
	}

	// Audited with the principal: applied, rolled back, removed.
	recs, err := audit.Query(ctx, h.js, audit.Filter{Tenant: "_all", Service: "journey", Action: "journey.applied"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Actor.ID+" "+rec.Reason+" "+rec.Detail["journeyRevision"])
	}
	if want := "eddie applied 2|eddie rolled_back 3|eddie removed 4"; strings.Join(got, "|") != want {
		t.Errorf("journey.applied records = %q, want %q", strings.Join(got, "|"), want)
	}
}
