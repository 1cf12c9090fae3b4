package config_test

import (
	"strings"
	"testing"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/sms/internal/config"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{name: "defaults", give: nil},
		{name: "bad level", give: []string{"SMS_LOG_LEVEL=loud"}, wantErr: "LogLevel"},
		{name: "no grace", give: []string{"SMS_SHUTDOWN_GRACE=0s"}, wantErr: "SMS_SHUTDOWN_GRACE must be positive"},
		{name: "too many segments", give: []string{"SMS_MAX_SEGMENTS=11"}, wantErr: "SMS_MAX_SEGMENTS must be 1 to 10"},
		{name: "no expiry", give: []string{"SMS_DEFAULT_EXPIRY=0s"}, wantErr: "SMS_DEFAULT_EXPIRY must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pkgconfig.Load[config.Config](tt.give)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Load() = %v, want error %q", err, tt.wantErr)
			}
		})
	}
}
