package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/config"
)

func TestPolicies(t *testing.T) {
	write := func(body string) string {
		f := filepath.Join(t.TempDir(), "policy.json")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := write(`{"default": {"unsubscribe": ["marketing", "operations"]},
	  "tenants": {"acme": {"encryption": "required", "unverified": "defer"}}}`)
	cfg, err := pkgconfig.Load[config.Config]([]string{from, keyring, pseudonym, "EMAIL_POLICY_FILE=" + good})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := cfg.Policies()
	if err != nil {
		t.Fatal(err)
	}
	wantDefault := app.DefaultPolicy()
	wantDefault.Unsubscribe = []string{"marketing", "operations"}
	wantAcme := wantDefault
	wantAcme.Encryption, wantAcme.Unverified = app.EncryptRequired, app.UnverifiedDefer
	if diff := cmp.Diff(wantDefault, ps.For("other")); diff != "" {
		t.Errorf("default policy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAcme, ps.For("acme")); diff != "" {
		t.Errorf("acme policy, the file's default plus its own (-want +got):\n%s", diff)
	}

	for name, tt := range map[string]struct{ body, wantErr string }{
		"unknown field": {`{"default": {"encrypt": "always"}}`, `unknown field "encrypt"`},
		"bad value":     {`{"tenants": {"acme": {"no_phi_tls": "none"}}}`, "tenants.acme: no_phi_tls must be one of"},
		"not JSON":      {`encryption: required`, "EMAIL_POLICY_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pkgconfig.Load[config.Config]([]string{from, keyring, pseudonym, "EMAIL_POLICY_FILE=" + write(tt.body)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
