package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

func TestLoadFHIRServers(t *testing.T) {
	good := `{"source":"demo","base_url":"https://ehr.example/fhir","token_url":"https://ehr.example/token",` +
		`"client_id":"c","private_key_file":"/k.pem","alg":"ES384","scope":"system/*.rs"}`
	tests := []struct {
		name, give, wantErr string
	}{
		{name: "good", give: "[" + good + "]"},
		{name: "not a list", give: good, wantErr: "want a JSON list"},
		{name: "unknown source", give: "[" + strings.Replace(good, `"demo"`, `"other"`, 1) + "]", wantErr: "entry 1: source is not a configured source"},
		{name: "repeated source", give: "[" + good + "," + good + "]", wantErr: "entry 2: source repeats"},
		{name: "bad alg", give: "[" + strings.Replace(good, "ES384", "HS256", 1) + "]", wantErr: "alg must be RS384 or ES384"},
		{name: "base url with query", give: "[" + strings.Replace(good, "/fhir", "/fhir?x=1", 1) + "]", wantErr: "base_url must be"},
		{name: "token url not http", give: "[" + strings.Replace(good, "https://ehr.example/token", "ftp://ehr.example/token", 1) + "]", wantErr: "token_url must be"},
		{name: "bad heartbeat", give: "[" + strings.Replace(good, `"scope"`, `"heartbeat_period":"soon","scope"`, 1) + "]", wantErr: "heartbeat_period"},
	}
	sources := config.Sources{{Name: "demo", Tenant: "demo", Token: "t"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "servers.json")
			if err := os.WriteFile(path, []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := config.LoadFHIRServers(path, sources)
			if tt.wantErr == "" {
				if err != nil || len(got) != 1 || got[0].Heartbeat().String() != "10m0s" {
					t.Fatalf("LoadFHIRServers() = %+v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadFHIRServers() error = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "ehr.example") {
				t.Errorf("error quotes a configured value: %v", err)
			}
		})
	}
}
