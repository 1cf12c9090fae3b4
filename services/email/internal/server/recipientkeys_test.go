package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys/recipientkeystest"
	"github.com/carenotify/carenotify/services/email/internal/server"
)

const adminToken = "admin-token-for-tests-0123"

// canary is a seeded address: never in logs or answers.
const canary = "canary.admin.5521@patient.example.org"

func TestRecipientKeysAdmin(t *testing.T) {
	reg := recipientkeys.New(storetest.Client(t), envelopetest.Sealer(t), bytes.Repeat([]byte{3}, 32), nil)
	logs := &logtest.Buffer{}
	mux := http.NewServeMux()
	server.NewRecipientKeys(reg, adminToken, log.New(logs, 0, "email")).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	do := func(t *testing.T, method, path, token string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(raw), "canary") {
			t.Errorf("%s %s answered with the address: %s", method, path, raw)
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, path, raw)
		}
		return resp.StatusCode, got
	}
	cert := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, canary)
	pgp := recipientkeystest.NewPGP(t, canary, 0)
	put := map[string]string{"tenant": "acme", "address": canary,
		"smime_certificate": string(cert.CertPEM), "openpgp_public_key": string(pgp.PublicArmored)}
	who := map[string]string{"tenant": "acme", "address": canary}

	status, got := do(t, http.MethodPut, "/admin/recipient-keys", adminToken, put)
	if status != http.StatusOK || got["smime"] == nil || got["openpgp"] == nil {
		t.Fatalf("PUT = %d %v, want 200 with smime and openpgp", status, got)
	}
	if k, err := reg.Key(t.Context(), "acme", canary); err != nil || k == nil || k.Kind != app.KeySMIME {
		t.Fatalf("Key() after PUT = %+v, %v", k, err)
	}
	status, got = do(t, http.MethodPost, "/admin/recipient-keys/lookup", adminToken, who)
	if status != http.StatusOK || got["smime"].(map[string]any)["sha256"] == "" {
		t.Fatalf("lookup = %d %v", status, got)
	}

	errorCases := []struct {
		name, method, path, token string
		body                      any
		wantStatus                int
		wantField                 string
	}{
		{name: "no token", method: http.MethodPut, path: "/admin/recipient-keys", body: put, wantStatus: http.StatusUnauthorized},
		{name: "wrong token", method: http.MethodPut, path: "/admin/recipient-keys", token: "nope-nope-nope-nope", body: put, wantStatus: http.StatusUnauthorized},
		{name: "bad tenant", method: http.MethodPut, path: "/admin/recipient-keys", token: adminToken,
			body: map[string]string{"tenant": "a b", "address": canary, "smime_certificate": string(cert.CertPEM)}, wantStatus: http.StatusBadRequest, wantField: "tenant"},
		{name: "bad certificate", method: http.MethodPut, path: "/admin/recipient-keys", token: adminToken,
			body: map[string]string{"tenant": "acme", "address": canary, "smime_certificate": "x"}, wantStatus: http.StatusBadRequest, wantField: "smime_certificate"},
		{name: "certificate of another address", method: http.MethodPut, path: "/admin/recipient-keys", token: adminToken,
			body: map[string]string{"tenant": "acme", "address": "canary.other@patient.example.org", "smime_certificate": string(cert.CertPEM)}, wantStatus: http.StatusBadRequest, wantField: "smime_certificate"},
		{name: "unknown field", method: http.MethodPut, path: "/admin/recipient-keys", token: adminToken,
			body: map[string]string{"tenant": "acme", "address": canary, "x": "y"}, wantStatus: http.StatusBadRequest},
		{name: "lookup bad address", method: http.MethodPost, path: "/admin/recipient-keys/lookup", token: adminToken,
			body: map[string]string{"tenant": "acme", "address": "canary"}, wantStatus: http.StatusBadRequest, wantField: "address"},
		{name: "lookup unknown", method: http.MethodPost, path: "/admin/recipient-keys/lookup", token: adminToken,
			body: map[string]string{"tenant": "beta", "address": canary}, wantStatus: http.StatusNotFound},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			status, got := do(t, tt.method, tt.path, tt.token, tt.body)
			e, _ := got["error"].(map[string]any)
			if status != tt.wantStatus || e == nil || e["message"] == "" || (tt.wantField != "" && e["field"] != tt.wantField) {
				t.Fatalf("= %d %v, want %d with field %q", status, got, tt.wantStatus, tt.wantField)
			}
		})
	}

	status, got = do(t, http.MethodPost, "/admin/recipient-keys/delete", adminToken, who)
	if status != http.StatusOK || got["deleted"] != true {
		t.Fatalf("delete = %d %v", status, got)
	}
	if k, _ := reg.Key(t.Context(), "acme", canary); k != nil {
		t.Fatalf("Key() after delete = %+v, want nil", k)
	}
	if status, _ = do(t, http.MethodPost, "/admin/recipient-keys/delete", adminToken, who); status != http.StatusNotFound {
		t.Fatalf("second delete = %d, want 404", status)
	}
	if strings.Contains(logs.String(), "canary") {
		t.Errorf("logs hold the address:\n%s", logs)
	}
}

func TestRecipientKeysAdminWithoutToken(t *testing.T) {
	reg := recipientkeys.New(storetest.Client(t), envelopetest.Sealer(t), bytes.Repeat([]byte{3}, 32), nil)
	mux := http.NewServeMux()
	server.NewRecipientKeys(reg, "", log.New(io.Discard, 0, "email")).Register(mux)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/admin/recipient-keys/lookup", strings.NewReader(`{"tenant":"acme","address":"a@b.example"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer ")
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("lookup without EMAIL_ADMIN_TOKEN configured = %d, want 401", rec.Code)
	}
}
