package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	good := write(`{"default": {"unsubscribe": ["marketing", "operations"], "limits": {"*": {"concurrency": 8}}},
	  "tenants": {"acme": {"encryption": "required", "unverified": "defer",
	    "limits": {"relay.example.org": {"concurrency": 2, "rate": 100, "per": "1m", "burst": 10}},
	    "warmup": {"identity": "ip-203-0-113-7", "start": "2026-12-01", "first_day": 200, "full": 100000}}}}`)
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
	wantDefault.Limits = map[string]app.Limit{"*": {Concurrency: 8}}
	wantAcme := wantDefault
	wantAcme.Encryption, wantAcme.Unverified = app.EncryptRequired, app.UnverifiedDefer
	// A tenant's limits add to the default's.
	wantAcme.Limits = map[string]app.Limit{"*": {Concurrency: 8},
		"relay.example.org": {Concurrency: 2, Rate: 100, Per: app.Duration(time.Minute), Burst: 10}}
	wantAcme.Warmup = app.Warmup{Identity: "ip-203-0-113-7", Start: "2026-12-01", FirstDay: 200, Full: 100000}
	if diff := cmp.Diff(wantDefault, ps.For("other")); diff != "" {
		t.Errorf("default policy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAcme, ps.For("acme")); diff != "" {
		t.Errorf("acme policy, the file's default plus its own (-want +got):\n%s", diff)
	}

	for name, tt := range map[string]struct{ body, wantErr string }{
		"unknown field":  {`{"default": {"encrypt": "always"}}`, `unknown field "encrypt"`},
		"bad value":      {`{"tenants": {"acme": {"no_phi_tls": "none"}}}`, "tenants.acme: no_phi_tls must be one of"},
		"not JSON":       {`encryption: required`, "EMAIL_POLICY_FILE"},
		"negative limit": {`{"default": {"limits": {"*": {"rate": -1}}}}`, "limits.*: values must not be negative"},
		"bad duration":   {`{"default": {"limits": {"*": {"rate": 1, "per": "soon"}}}}`, `"soon" is not a duration`},
		"burst, no rate": {`{"default": {"limits": {"*": {"burst": 5}}}}`, "burst needs a rate"},
		"host with port": {`{"default": {"limits": {"relay:587": {"rate": 5}}}}`, "is not a lower-case host name"},
		"bad warm-up":    {`{"tenants": {"acme": {"warmup": {"identity": "ip a", "start": "12/01/2026", "factor": 0.5}}}}`, "warmup.identity"},
		"warm-up start":  {`{"tenants": {"acme": {"warmup": {"identity": "ip-a", "start": "12/01/2026", "first_day": 5}}}}`, "warmup.start must be a date"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pkgconfig.Load[config.Config]([]string{from, keyring, pseudonym, "EMAIL_POLICY_FILE=" + write(tt.body)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
