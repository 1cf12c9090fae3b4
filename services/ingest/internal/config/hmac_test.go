package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"

	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

const (
	secretA = "5f0c8d2e4b6a1f3e9d7c5b3a1e0f2d4c"
	secretB = "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3"
)

func TestHMACSourcesFile(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    config.Sources
		wantErr []string
	}{
		{name: "file secret", give: "sources:\n  - id: lab\n    tenant: north\n    auth: hmac\n    hmac:\n      secret_file: /run/secrets/lab\n      max_skew: 120s\n",
			want: config.Sources{{Name: "lab", Tenant: "north", Auth: "hmac", HMAC: config.HMAC{SecretFile: "/run/secrets/lab", MaxSkew: 120 * time.Second}}}},
		{name: "env secret", give: "sources:\n  - {id: lab, tenant: north, auth: hmac, hmac: {secret_env: LAB_SECRET}}\n",
			want: config.Sources{{Name: "lab", Tenant: "north", Auth: "hmac", HMAC: config.HMAC{SecretEnv: "LAB_SECRET"}}}},
		{name: "no block", give: "sources:\n  - {id: lab, tenant: north, auth: hmac}\n", wantErr: []string{`source 1 ("lab"): auth hmac needs an hmac block`}},
		{name: "inline secret refused", give: "sources:\n  - {id: lab, tenant: north, auth: hmac, hmac: {secret: " + secretA + "}}\n",
			wantErr: []string{"field secret not found"}},
		{name: "no secret", give: "sources:\n  - {id: lab, tenant: north, auth: hmac, hmac: {max_skew: 60s}}\n",
			wantErr: []string{"auth hmac needs hmac.secret_file or hmac.secret_env"}},
		{name: "both", give: "sources:\n  - {id: lab, tenant: north, auth: hmac, hmac: {secret_file: /f, secret_env: E}}\n",
			wantErr: []string{"not both"}},
		{name: "skew", give: "sources:\n  - {id: lab, tenant: north, auth: hmac, hmac: {secret_env: E, max_skew: 2h}}\n",
			wantErr: []string{"hmac.max_skew must be between 1s and 1h"}},
		{name: "hmac block on a bearer source", give: "sources:\n  - {id: lab, tenant: north, token_hash: " + epicHash + ", hmac: {secret_env: E}}\n",
			wantErr: []string{"hmac is set but auth is bearer"}},
		{name: "token hash on an hmac source", give: "sources:\n  - {id: lab, tenant: north, auth: hmac, token_hash: " + epicHash + ", hmac: {secret_env: E}}\n",
			wantErr: []string{"token_hash is set but auth is hmac"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := config.LoadSourcesFile(writeFile(t, tt.give))
			if len(tt.wantErr) > 0 {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v does not say %q", err, w)
					}
				}
				if err != nil && strings.Contains(err.Error(), secretA) {
					t.Errorf("error %q repeats the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
			wantSkew := config.DefaultHMACMaxSkew
			if tt.want[0].HMAC.MaxSkew != 0 {
				wantSkew = tt.want[0].HMAC.MaxSkew
			}
			if got[0].HMAC.Skew() != wantSkew {
				t.Errorf("Skew() = %v, want %v", got[0].HMAC.Skew(), wantSkew)
			}
		})
	}
}

func TestHMACSecrets(t *testing.T) {
	file := func(content string) string {
		p := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"LAB_SECRET": secretA, "SHORT": "tiny-secret", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name    string
		give    config.HMAC
		want    []string
		wantErr string
	}{
		{name: "env", give: config.HMAC{SecretEnv: "LAB_SECRET"}, want: []string{secretA}},
		{name: "file with two for rotation", give: config.HMAC{SecretFile: file(secretA + "\n\n" + secretB + "\r\n")}, want: []string{secretA, secretB}},
		{name: "unset env", give: config.HMAC{SecretEnv: "NOPE"}, wantErr: `source "lab": hmac.secret_env NOPE: the variable is not set`},
		{name: "empty env", give: config.HMAC{SecretEnv: "EMPTY"}, wantErr: "no secret in it"},
		{name: "short", give: config.HMAC{SecretEnv: "SHORT"}, wantErr: "secret 1 is shorter than 32 characters"},
		{name: "missing file", give: config.HMAC{SecretFile: "/nonexistent/lab"}, wantErr: `source "lab": hmac.secret_file /nonexistent/lab: no such file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.HMACSecrets(config.Source{Name: "lab", Auth: "hmac", HMAC: tt.give}, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "tiny-secret") {
					t.Errorf("error %q repeats the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, b := range got {
				gotS = append(gotS, string(b))
			}
			if diff := cmp.Diff(tt.want, gotS); diff != "" {
				t.Errorf("secrets (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMTLSSourcesFile(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    config.MTLS
		wantErr string
	}{
		{name: "dns", give: "sources:\n  - {id: mirth, tenant: north, auth: mtls, mtls: {dns: mirth.hospital.example}}\n", want: config.MTLS{DNS: "mirth.hospital.example"}},
		{name: "uri", give: "sources:\n  - {id: pacs, tenant: north, auth: mtls, mtls: {uri: \"spiffe://h.example/pacs\"}}\n", want: config.MTLS{URI: "spiffe://h.example/pacs"}},
		{name: "no block", give: "sources:\n  - {id: mirth, tenant: north, auth: mtls}\n", wantErr: `source 1 ("mirth"): auth mtls needs an mtls block`},
		{name: "two identities", give: "sources:\n  - {id: mirth, tenant: north, auth: mtls, mtls: {dns: a.example, cn: a}}\n", wantErr: "exactly one of mtls.dns, mtls.uri or mtls.cn"},
		{name: "same identity twice", give: "sources:\n  - {id: a, tenant: north, auth: mtls, mtls: {cn: engine}}\n  - {id: b, tenant: south, auth: mtls, mtls: {cn: engine}}\n",
			wantErr: `source 2 ("b"): mtls identity repeats source "a"`},
		{name: "mtls block on a bearer source", give: "sources:\n  - {id: a, tenant: north, token_hash: " + epicHash + ", mtls: {cn: engine}}\n", wantErr: "mtls is set but auth is bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := config.LoadSourcesFile(writeFile(t, tt.give))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got[0].MTLS != tt.want || got[0].Method() != config.AuthMTLS {
				t.Fatalf("LoadSourcesFile() = %+v, %v; want mtls %+v", got, err, tt.want)
			}
		})
	}
}

func TestTLSConfig(t *testing.T) {
	mtls := writeFile(t, "sources:\n  - {id: mirth, tenant: north, auth: mtls, mtls: {dns: mirth.hospital.example}}\n")
	base := []string{"INGEST_KEYRING_DIR=/k", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/p"}
	tests := []struct {
		name        string
		give        []string
		wantErr     string
		wantMLLPCrt bool
	}{
		{name: "mtls over http", give: []string{"INGEST_SOURCES_FILE=" + mtls, "INGEST_TLS_CERT_FILE=/c", "INGEST_TLS_KEY_FILE=/k", "INGEST_TLS_CLIENT_CA_FILE=/ca"}},
		{name: "mtls over mllp only: the listener runs without INGEST_MLLP_SOURCE", give: []string{"INGEST_SOURCES_FILE=" + mtls,
			"INGEST_MLLP_TLS_CERT_FILE=/c", "INGEST_MLLP_TLS_KEY_FILE=/k", "INGEST_TLS_CLIENT_CA_FILE=/ca"}, wantMLLPCrt: true},
		{name: "mtls without a CA", give: []string{"INGEST_SOURCES_FILE=" + mtls, "INGEST_TLS_CERT_FILE=/c", "INGEST_TLS_KEY_FILE=/k"},
			wantErr: `source "mirth" uses auth mtls: set INGEST_TLS_CLIENT_CA_FILE`},
		{name: "CA without TLS", give: []string{"INGEST_SOURCES_FILE=" + mtls, "INGEST_TLS_CLIENT_CA_FILE=/ca"}, wantErr: "INGEST_TLS_CLIENT_CA_FILE needs TLS"},
		{name: "cert without key", give: []string{"INGEST_SOURCES=demo=demo:" + epicHash, "INGEST_TLS_CERT_FILE=/c"}, wantErr: "set both INGEST_TLS_CERT_FILE and INGEST_TLS_KEY_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pkgconfig.Load[config.Config](append(tt.give, base...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MLLPByCertificate() != tt.wantMLLPCrt || cfg.MLLPEnabled() != tt.wantMLLPCrt {
				t.Errorf("MLLPByCertificate %v MLLPEnabled %v, want %v", cfg.MLLPByCertificate(), cfg.MLLPEnabled(), tt.wantMLLPCrt)
			}
		})
	}
}

func TestLimitsSourcesFile(t *testing.T) {
	ok := "sources:\n  - {id: a, tenant: north, token_hash: " + epicHash + ", limits: {rate: 50, per: 1m, burst: 100, max_body_bytes: 65536}}\n"
	got, _, err := config.LoadSourcesFile(writeFile(t, ok))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Limits{Rate: 50, Per: time.Minute, Burst: 100, MaxBodyBytes: 65536}
	if got[0].Limits != want || got[0].Limits.Period() != time.Minute || got[0].Limits.BurstSize() != 100 {
		t.Errorf("limits = %+v, want %+v", got[0].Limits, want)
	}
	if d := (config.Limits{Rate: 5}); d.Period() != time.Second || d.BurstSize() != 5 {
		t.Errorf("defaults: per %v burst %d, want 1s and the rate", d.Period(), d.BurstSize())
	}
	for give, wantErr := range map[string]string{
		"{rate: -1}":         "must not be negative",
		"{burst: 5}":         "limits.burst needs limits.rate",
		"{rate: 5, per: 2h}": "limits.per must be between 1s and 1h",
		"{rate: many}":       "line 2: cannot unmarshal",
	} {
		_, _, err := config.LoadSourcesFile(writeFile(t, "sources:\n  - {id: a, tenant: north, token_hash: "+epicHash+", limits: "+give+"}\n"))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("limits %s: error %v, want %q", give, err, wantErr)
		}
	}
}
