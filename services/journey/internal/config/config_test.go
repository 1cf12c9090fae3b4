package config_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/journey/internal/config"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{name: "defaults", give: nil},
		{name: "time zone", give: []string{"JOURNEY_TIMEZONE=America/Chicago"}},
		{name: "bad level", give: []string{"JOURNEY_LOG_LEVEL=loud"}, wantErr: "LogLevel"},
		{name: "no grace", give: []string{"JOURNEY_SHUTDOWN_GRACE=0s"}, wantErr: "JOURNEY_SHUTDOWN_GRACE must be positive"},
		{name: "no send timeout", give: []string{"JOURNEY_SEND_TIMEOUT=0s"}, wantErr: "JOURNEY_SEND_TIMEOUT must be positive"},
		{name: "bad replicas", give: []string{"JOURNEY_STREAM_REPLICAS=0"}, wantErr: "JOURNEY_STREAM_REPLICAS"},
		{name: "redis", give: []string{"JOURNEY_REDIS_URL=rediss://:pw@redis.internal:6380/2"}},
		{name: "bad redis url", give: []string{"JOURNEY_REDIS_URL=http://:s3cret@redis"}, wantErr: "JOURNEY_REDIS_URL must be a redis:// or rediss:// URL"},
		{name: "bad time zone", give: []string{"JOURNEY_TIMEZONE=Mars/Olympus"}, wantErr: `JOURNEY_TIMEZONE "Mars/Olympus" is not a known time zone`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pkgconfig.Load[config.Config](append(tt.give, "JOURNEY_KEYRING_DIR=/run/secrets/keys", "JOURNEY_AUDIT_PSEUDONYM_KEY_FILE=/run/secrets/pseudonym.key"))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Load() = %v, want error %q", err, tt.wantErr)
			}
		})
	}
}

func TestTenantsFile(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    map[string]config.Tenant
		wantErr string
	}{
		{name: "languages", give: "north-clinic:\n  language: es_mx\nsouth: {language: en}\n", want: map[string]config.Tenant{"north-clinic": {Language: "es-MX"}, "south": {Language: "en"}}},
		{
			name: "time zones", give: "north:\n  timezone: America/Chicago\nsouth: {language: es, timezone: Europe/Madrid}\n",
			want: map[string]config.Tenant{"north": {TimeZone: "America/Chicago"}, "south": {Language: "es", TimeZone: "Europe/Madrid"}},
		},
		{name: "empty", give: "", want: map[string]config.Tenant{}},
		{name: "bad time zone", give: "north:\n  timezone: Mars/Base\n", wantErr: `tenant north: timezone "Mars/Base" is not a known time zone`},
		{name: "local is no zone", give: "north:\n  timezone: Local\n", wantErr: `tenant north: timezone "Local" is not a known time zone`},
		{name: "bad language", give: "north:\n  language: klingon!\n", wantErr: "tenant north: language: not a BCP-47 language tag"},
		{name: "unknown field", give: "north:\n  lang: es\n", wantErr: "field lang not found"},
		{name: "bad tenant", give: "no spaces:\n  language: es\n", wantErr: `tenant "no spaces" may only use`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "tenants.yaml")
			if err := os.WriteFile(file, []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{TenantsFile: file}
			got, err := cfg.Tenants()
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Tenants() = %v, want error %q", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !maps.Equal(tt.want, got) {
				t.Errorf("Tenants() = %v, want %v", got, tt.want)
			}
		})
	}
	// Load checks the file too.
	_, err := pkgconfig.Load[config.Config]([]string{"JOURNEY_KEYRING_DIR=/k", "JOURNEY_AUDIT_PSEUDONYM_KEY_FILE=/p", "JOURNEY_TENANTS_FILE=/nonexistent/tenants.yaml", "JOURNEY_LANGUAGE=xx-!"})
	if err == nil || !strings.Contains(err.Error(), "JOURNEY_TENANTS_FILE") || !strings.Contains(err.Error(), "JOURNEY_LANGUAGE") {
		t.Errorf("Load() = %v, want errors for JOURNEY_TENANTS_FILE and JOURNEY_LANGUAGE", err)
	}
}
