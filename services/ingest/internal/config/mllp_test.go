package config_test

import (
	"strings"
	"testing"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

func TestMLLP(t *testing.T) {
	base := []string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=/keys", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/p.key"}
	tests := []struct {
		name        string
		give        []string
		wantEnabled bool
		wantSource  config.MLLPSource
		wantErr     string
	}{
		{name: "default: no source, disabled", give: nil},
		{name: "source", give: []string{"INGEST_MLLP_SOURCE=demo=demo"}, wantEnabled: true, wantSource: config.MLLPSource{Name: "demo", Tenant: "demo"}},
		{name: "off disables", give: []string{"INGEST_MLLP_SOURCE=demo=demo", "INGEST_MLLP_ADDR=off"}, wantSource: config.MLLPSource{Name: "demo", Tenant: "demo"}},
		{name: "bad source", give: []string{"INGEST_MLLP_SOURCE=demo"}, wantErr: "want name=tenant"},
		{name: "bad tenant", give: []string{"INGEST_MLLP_SOURCE=demo=a.b"}, wantErr: "letters, digits"},
		{name: "cert without key", give: []string{"INGEST_MLLP_TLS_CERT_FILE=/c.pem"}, wantErr: "INGEST_MLLP_TLS_KEY_FILE"},
		{name: "zero frame size", give: []string{"INGEST_MLLP_MAX_FRAME_BYTES=0"}, wantErr: "INGEST_MLLP_MAX_FRAME_BYTES must be positive"},
		{name: "bad zone", give: []string{"INGEST_MLLP_TIME_ZONE=Mars/Base"}, wantErr: "INGEST_MLLP_TIME_ZONE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pkgconfig.Load[config.Config](append(append([]string{}, base...), tt.give...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MLLPEnabled() != tt.wantEnabled || got.MLLPSource != tt.wantSource {
				t.Errorf("enabled %v source %+v, want %v %+v", got.MLLPEnabled(), got.MLLPSource, tt.wantEnabled, tt.wantSource)
			}
		})
	}
}
