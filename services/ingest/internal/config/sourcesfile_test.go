package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

// A hash of "epic-token" and one of "lab-token".
var (
	epicHash = config.HashToken("epic-token")
	labHash  = config.HashToken("lab-token")
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSourcesFile(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		want     config.Sources
		wantWarn []string
		wantErr  []string
	}{
		{name: "yaml", give: `
# per-tenant sources
sources:
  - id: epic-prod
    tenant: general
    auth: bearer
    token_hash: ` + epicHash + `
  - id: lab
    tenant: north
    token_hash: ` + strings.ToUpper(labHash[7:]) + "\n",
			wantErr: []string{`source 2 ("lab"): token_hash must be sha256:<64 hex digits>`}},
		{name: "yaml ok", give: "sources:\n  - id: epic-prod\n    tenant: general\n    auth: bearer\n    token_hash: " + epicHash +
			"\n  - {id: lab, tenant: north, token_hash: \"sha256:" + strings.ToUpper(labHash[7:]) + "\"}\n",
			want: config.Sources{{Name: "epic-prod", Tenant: "general", Auth: "bearer", TokenHash: epicHash},
				{Name: "lab", Tenant: "north", Auth: "bearer", TokenHash: labHash}}},
		{name: "plain token refused", give: "sources:\n  - id: lab\n    tenant: north\n    token: secret-token\n",
			wantErr: []string{`source 1 ("lab"): token: plain tokens are not accepted; set token_hash`}},
		{name: "no hash", give: "sources:\n  - id: lab\n    tenant: north\n",
			wantErr: []string{`source 1 ("lab"): auth bearer needs token_hash`}},
		{name: "several problems", give: "sources:\n  - id: lab\n  - id: lab\n    tenant: x\n    auth: basic\n  - tenant: x\n    token_hash: " + epicHash + "\n",
			wantErr: []string{`source 1 ("lab"): tenant is required`, `source 2 ("lab"): id repeats`, `source 2 ("lab"): auth must be bearer, hmac or mtls`, `source 3: id is required`}},
		{name: "bad id", give: "sources:\n  - id: la.b\n    tenant: x\n    token_hash: " + epicHash + "\n",
			wantErr: []string{`source 1: id must be 1-64 letters`}},
		{name: "unknown key", give: "sources:\n  - id: lab\n    tenant: x\n    token_hash: " + epicHash + "\n    colour: secret-token\n",
			wantErr: []string{"line 5: field colour not found"}},
		{name: "wrong type does not echo", give: "sources:\n  - id: lab\n    tenant: [secret-token]\n",
			wantErr: []string{"line 3: cannot unmarshal"}},
		{name: "empty list", give: "sources: []\n", wantErr: []string{"sources: list at least one source"}},
		{name: "legacy lines", give: "epic-prod=general:" + epicHash + "\nlab=general:secret-token\n",
			want: config.Sources{{Name: "epic-prod", Tenant: "general", Auth: "bearer", TokenHash: epicHash},
				{Name: "lab", Tenant: "general", Auth: "bearer", Token: "secret-token"}},
			wantWarn: []string{`source "lab" has a plain bearer token`}},
		{name: "legacy broken", give: "lab=general\n", wantErr: []string{"source entry 1: want name=tenant:token"}},
		{name: "legacy bad hash", give: "lab=general:sha256:abc\n", wantErr: []string{"source entry 1: a token starting with \"sha256:\" must be a hash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.give)
			got, warn, err := config.LoadSourcesFile(path)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("LoadSourcesFile() = %+v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if !strings.Contains(err.Error(), "INGEST_SOURCES_FILE "+path+": ") {
					t.Errorf("error %q does not name the file", err)
				}
				if strings.Contains(err.Error(), "secret-token") {
					t.Errorf("error %q repeats a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
			if len(warn) != len(tt.wantWarn) {
				t.Fatalf("warnings %q, want %d", warn, len(tt.wantWarn))
			}
			for i, w := range tt.wantWarn {
				if !strings.Contains(warn[i], w) || strings.Contains(warn[i], "secret-token") {
					t.Errorf("warning %q, want one saying %q without the token", warn[i], w)
				}
			}
		})
	}
}

// TestSourcesFileThroughLoad reads the file named by INGEST_SOURCES_FILE.
func TestSourcesFileThroughLoad(t *testing.T) {
	path := writeFile(t, "sources:\n  - id: epic-prod\n    tenant: general\n    token_hash: "+epicHash+"\n")
	cfg, err := pkgconfig.Load[config.Config]([]string{"INGEST_SOURCES_FILE=" + path, "INGEST_KEYRING_DIR=/k", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/p"})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Sources{{Name: "epic-prod", Tenant: "general", Auth: "bearer", TokenHash: epicHash}}
	if diff := cmp.Diff(want, cfg.AllSources()); diff != "" || len(cfg.Warnings) != 0 {
		t.Errorf("sources (-want +got):\n%s\nwarnings %q", diff, cfg.Warnings)
	}
	d, ok := cfg.AllSources()[0].BearerDigest()
	if !ok || config.HashToken("epic-token") != "sha256:"+hexString(d[:]) {
		t.Errorf("BearerDigest() = %x, %v", d, ok)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
