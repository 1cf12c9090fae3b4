package service_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

func TestConsentRebuildFromStream(t *testing.T) {
	h := startWith(t, confirmationOnly(t))
	admin := h.adminAs(t, tokenConsentAdmin)
	ctx := t.Context()
	type change struct{ patient, channel, purpose, state string }
	for _, c := range []change{
		{canaryPatient, "email", "treatment", "denied"},
		{canaryPatient, "email", "marketing", "granted"},
		{canaryPatient, "sms", "treatment", "revoked"},
		{canaryPatient, "email", "marketing", "revoked"}, // the latest change wins
		{"p-other", "email", "operations", "granted"},
	} {
		if _, err := admin.SetConsent(ctx, &journeyv1.SetConsentRequest{
			Tenant: "demo", PatientId: c.patient, Channel: c.channel, Purpose: c.purpose, State: c.state,
			Source: "admin", EvidenceRef: canaryEvidence,
		}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []*journeyv1.GetConsentRequest{
		{Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment"},
		{Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "marketing"},
		{Tenant: "demo", PatientId: canaryPatient, Channel: "sms", Purpose: "treatment"},
		{Tenant: "demo", PatientId: "p-other", Channel: "email", Purpose: "operations"},
	}
	answers := func() []*journeyv1.Consent {
		t.Helper()
		var out []*journeyv1.Consent
		for _, k := range keys {
			resp, err := admin.GetConsent(ctx, k)
			if status.Code(err) == codes.NotFound {
				out = append(out, nil)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, resp.GetConsent())
		}
		return out
	}
	before := answers()
	if before[1].GetState() != "revoked" {
		t.Fatalf("email marketing = %v, want the latest change (revoked)", before[1])
	}

	// Something that is not a sealed change of journey's lands on the
	// stream: the rebuild skips and counts it.
	if _, err := bus.Publish(ctx, h.js, "consent.demo.email.treatment", []byte("not sealed"), "bogus-1", nats.Header{bus.HeaderTenant: []string{"demo"}}); err != nil {
		t.Fatal(err)
	}

	// Redis loses every consent record.
	opt, err := redis.ParseURL(h.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	lost, err := rc.Keys(ctx, "cn:{demo}:consent:*").Result()
	if err != nil || len(lost) != 4 {
		t.Fatalf("consent keys = %d, %v; want 4", len(lost), err)
	}
	if err := rc.Del(ctx, lost...).Err(); err != nil {
		t.Fatal(err)
	}
	for i, a := range answers() {
		if a != nil {
			t.Fatalf("record %d survived the wipe: %v", i, a)
		}
	}

	if _, err := h.adminAs(t, tokenViewer).RebuildConsent(ctx, &journeyv1.RebuildConsentRequest{Tenant: "demo"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("RebuildConsent as viewer = %v, want PERMISSION_DENIED", err)
	}
	if _, err := admin.RebuildConsent(ctx, &journeyv1.RebuildConsentRequest{Tenant: "bad tenant"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RebuildConsent(bad tenant) = %v, want INVALID_ARGUMENT", err)
	}
	resp, err := admin.RebuildConsent(ctx, &journeyv1.RebuildConsentRequest{Tenant: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetChanges() != 6 || resp.GetRecords() != 4 || resp.GetRefused() != 1 {
		t.Errorf("RebuildConsent() = %v, want 6 changes, 4 records, 1 refused", resp)
	}
	if diff := cmp.Diff(before, answers(), protocmp.Transform()); diff != "" {
		t.Errorf("answers after the rebuild differ (-before +after):\n%s", diff)
	}

	// Over HTTP too (idempotent), and audited with the principal.
	code, body := h.httpAs(t, tokenConsentAdmin, http.MethodPost, "/v1/consent:rebuild", `{"tenant":"demo"}`)
	if code != http.StatusOK || !strings.Contains(body, `"records":"4"`) {
		t.Errorf("POST /v1/consent:rebuild = %d %s", code, body)
	}
	recs := h.audited(t, "consent.rebuilt")
	if len(recs) != 2 || recs[0].Actor.ID != "connie" || recs[0].Detail["records"] != "4" {
		t.Errorf("consent.rebuilt records = %+v", recs)
	}

	// The stream holds the changes sealed: no patient id or evidence in clear.
	s, err := h.js.Stream(ctx, bus.StreamConsent)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 6; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m.Data, []byte(canaryPatient)) || bytes.Contains(m.Data, []byte(canaryEvidence)) || strings.Contains(m.Subject, canaryPatient) {
			t.Errorf("change %d on %s is not sealed", seq, m.Subject)
		}
	}
	for _, s := range []string{canaryPatient, canaryEvidence} {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("logs contain %q", s)
		}
	}
	_ = audit.ActionMessageDecided
}
