package config_test

import (
	"fmt"
	"strings"
	"testing"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/sms/internal/config"
)

// minimal is the least configuration that loads.
var minimal = []string{
	"SMS_AUDIT_PSEUDONYM_KEY_FILE=/run/secrets/pseudonym",
	"SMS_TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef",
	"SMS_TWILIO_AUTH_TOKEN=s3cr3t-token",
	"SMS_TWILIO_FROM=+15005550006",
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{name: "minimal", give: nil},
		{name: "bad level", give: []string{"SMS_LOG_LEVEL=loud"}, wantErr: "LogLevel"},
		{name: "no grace", give: []string{"SMS_SHUTDOWN_GRACE=0s"}, wantErr: "SMS_SHUTDOWN_GRACE must be positive"},
		{name: "too many segments", give: []string{"SMS_MAX_SEGMENTS=11"}, wantErr: "SMS_MAX_SEGMENTS must be 1 to 10"},
		{name: "no expiry", give: []string{"SMS_DEFAULT_EXPIRY=0s"}, wantErr: "SMS_DEFAULT_EXPIRY must be positive"},
		{name: "bad account", give: []string{"SMS_TWILIO_ACCOUNT_SID=AC123"}, wantErr: "SMS_TWILIO_ACCOUNT_SID must be AC"},
		{name: "no token", give: []string{"SMS_TWILIO_AUTH_TOKEN="}, wantErr: "SMS_TWILIO_AUTH_TOKEN or SMS_TWILIO_AUTH_TOKEN_FILE is required"},
		{name: "bad from", give: []string{"SMS_TWILIO_FROM=5005550006"}, wantErr: "SMS_TWILIO_FROM must be"},
		{name: "no sender", give: []string{"SMS_TWILIO_FROM="}, wantErr: "SMS_TWILIO_FROM or SMS_TWILIO_SENDERS is required"},
		{name: "senders", give: []string{"SMS_TWILIO_FROM=", "SMS_TWILIO_SENDERS=demo=+15005550006, other=MG0123456789abcdef0123456789abcdef"}},
		{name: "bad senders", give: []string{"SMS_TWILIO_SENDERS=demo"}, wantErr: "is not tenant=sender"},
		{name: "twice", give: []string{"SMS_TWILIO_SENDERS=demo=+15005550006,demo=+15005550007"}, wantErr: "listed twice"},
		{name: "public url with query", give: []string{"SMS_PUBLIC_URL=https://x.example/?a=1"}, wantErr: "SMS_PUBLIC_URL must be"},
		{name: "no pseudonym key", give: []string{"SMS_AUDIT_PSEUDONYM_KEY_FILE="}, wantErr: "SMS_AUDIT_PSEUDONYM_KEY_FILE is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pkgconfig.Load[config.Config](append(append([]string{}, minimal...), tt.give...))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Load() = %v, want error %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows the token: %v", err)
			}
			if cfg != nil && strings.Contains(fmt.Sprintf("%+v", *cfg), "s3cr3t") {
				t.Error("the config prints the token")
			}
		})
	}
}
