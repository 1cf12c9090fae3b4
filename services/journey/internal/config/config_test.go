package config_test

import (
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
