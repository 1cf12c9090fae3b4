package service_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carenotify/carenotify/pkg/audit"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/adminauth"
)

// Admin API tokens of the tests: one per role, and one with every role.
const (
	tokenAll          = "tok-all-6b1d0f3e9a2c4e7f8b5a1d3c6e9f0a2b"
	tokenViewer       = "tok-viewer-2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e"
	tokenEditor       = "tok-editor-9e7c5a3f1d0b8e6c4a2f0d9b7e5c3a1f"
	tokenConsentAdmin = "tok-consent-4c2e0a8f6d4b2e0c8a6f4d2b0e8c6a4f"
)

var testTokens = strings.Join([]string{
	adminauth.HashLine("ops-all", adminauth.Roles, tokenAll),
	adminauth.HashLine("vera", []adminauth.Role{adminauth.RoleViewer}, tokenViewer),
	adminauth.HashLine("eddie", []adminauth.Role{adminauth.RoleEditor}, tokenEditor),
	adminauth.HashLine("connie", []adminauth.Role{adminauth.RoleConsentAdmin}, tokenConsentAdmin),
}, ";")

// bearer is gRPC per-call credentials carrying a bearer token, allowed
// over the tests' plaintext loopback connections.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

func TestAdminAuth(t *testing.T) {
	h := startWith(t, confirmationOnly(t))
	ctx := t.Context()
	getConsent := &journeyv1.GetConsentRequest{Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment"}
	setConsent := &journeyv1.SetConsentRequest{Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment", State: "granted", Source: "admin"}
	trace := &journeyv1.TraceRequest{Tenant: "demo", Subject: &journeyv1.TraceRequest_PatientId{PatientId: canaryPatient}}
	call := func(c journeyv1.AdminServiceClient, method string) error {
		var err error
		switch method {
		case "ListJourneys":
			_, err = c.ListJourneys(ctx, &journeyv1.ListJourneysRequest{})
		case "GetConsent":
			_, err = c.GetConsent(ctx, getConsent)
			if status.Code(err) == codes.NotFound {
				err = nil
			}
		case "SetConsent":
			_, err = c.SetConsent(ctx, setConsent)
		case "Trace":
			_, err = c.Trace(ctx, trace)
		}
		return err
	}
	tests := []struct {
		token, method string
		want          codes.Code
		msg           string
	}{
		{"", "ListJourneys", codes.Unauthenticated, "this call needs a bearer token: send the header 'authorization: Bearer <token>'"},
		{"tok-wrong-canary", "Trace", codes.Unauthenticated, "the bearer token is not one this journey service knows"},
		{tokenViewer, "ListJourneys", codes.OK, ""},
		{tokenViewer, "Trace", codes.OK, ""},
		{tokenViewer, "GetConsent", codes.OK, ""},
		{tokenViewer, "SetConsent", codes.PermissionDenied, "vera may not call SetConsent: it needs the role consent-admin, and the token has viewer"},
		{tokenEditor, "ListJourneys", codes.OK, ""},
		{tokenEditor, "Trace", codes.PermissionDenied, "eddie may not call Trace: it needs the role viewer, and the token has editor"},
		{tokenEditor, "GetConsent", codes.PermissionDenied, "eddie may not call GetConsent: it needs the role viewer or consent-admin"},
		{tokenConsentAdmin, "SetConsent", codes.OK, ""},
		{tokenConsentAdmin, "GetConsent", codes.OK, ""},
		{tokenConsentAdmin, "Trace", codes.PermissionDenied, "connie may not call Trace"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" as "+tt.token, func(t *testing.T) {
			err := call(h.adminAs(t, tt.token), tt.method)
			st := status.Convert(err)
			if st.Code() != tt.want || !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("%s = %v, want %s %q", tt.method, err, tt.want, tt.msg)
			}
			if strings.Contains(st.Message(), "canary") {
				t.Errorf("error repeats the token: %v", err)
			}
		})
	}

	t.Run("HTTP", func(t *testing.T) {
		for _, tt := range []struct {
			token, method, path, body string
			want                      int
		}{
			{"", http.MethodGet, "/v1/journeys", "", http.StatusUnauthorized},
			{tokenViewer, http.MethodGet, "/v1/journeys", "", http.StatusOK},
			{tokenViewer, http.MethodPut, "/v1/consent/demo/" + canaryPatient + "/email/treatment", `{"state":"denied","source":"admin"}`, http.StatusForbidden},
			{tokenEditor, http.MethodPost, "/v1/trace", `{"tenant":"demo","patientId":"` + canaryPatient + `"}`, http.StatusForbidden},
			{tokenViewer, http.MethodPost, "/v1/trace", `{"tenant":"demo","patientId":"` + canaryPatient + `"}`, http.StatusOK},
		} {
			code, body := h.httpAs(t, tt.token, tt.method, tt.path, tt.body)
			if code != tt.want {
				t.Errorf("%s %s as %q = %d %s, want %d", tt.method, tt.path, tt.token, code, body, tt.want)
			}
			if code == http.StatusForbidden && !strings.Contains(body, `"code":7`) {
				t.Errorf("403 body = %s, want a google.rpc.Status", body)
			}
		}
		// /metrics and health stay open.
		if code, _ := h.httpAs(t, "", http.MethodGet, "/healthz", ""); code != http.StatusOK {
			t.Errorf("GET /healthz = %d", code)
		}
	})

	// Every PHI read names the principal who made it; consent changes too.
	t.Run("audited", func(t *testing.T) {
		reads := h.audited(t, audit.ActionPHIRead)
		byWho := map[string][]string{}
		for _, r := range reads {
			if r.Actor.Type != audit.ActorPerson || r.PatientRef == "" {
				t.Errorf("phi.read record %+v: want a person and the patient ref", r)
			}
			byWho[r.Actor.ID] = append(byWho[r.Actor.ID], r.Object.Type)
		}
		// vera: Trace (gRPC), GetConsent, Trace (HTTP); connie: GetConsent.
		if got := strings.Join(byWho["vera"], ","); got != "PatientTrace,Consent,PatientTrace" {
			t.Errorf("vera's reads = %s", got)
		}
		if got := strings.Join(byWho["connie"], ","); got != "Consent" {
			t.Errorf("connie's reads = %s", got)
		}
		if len(byWho["eddie"]) != 0 {
			t.Errorf("denied calls were audited as reads: %v", byWho["eddie"])
		}
		changes := h.audited(t, "consent.changed")
		if len(changes) != 1 || changes[0].Actor != (audit.Actor{Type: audit.ActorPerson, ID: "connie"}) {
			t.Errorf("consent.changed = %+v, want one by connie", changes)
		}
	})
	if strings.Contains(h.logs.String(), "tok-") {
		t.Error("logs hold a token")
	}
}
