package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

func TestCheckConfig(t *testing.T) {
	ca := smtptest.NewCA(t)
	keys, _ := envelopetest.Keyring(t)
	pk, _ := audittest.Keys(t)
	valid := []string{
		"EMAIL_KEYRING_DIR=" + keys,
		"EMAIL_AUDIT_PSEUDONYM_KEY_FILE=" + pk,
		"EMAIL_FROM=Carenotify <noreply@carenotify.localhost>",
		"EMAIL_SMTP_CA_FILE=" + ca.CertFile,
		"EMAIL_SMTP_PASSWORD=do-not-print-me",
		"EMAIL_SMTP_USERNAME=svc",
	}
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr string
	}{
		{name: "valid", give: valid, want: "config ok\n"},
		{name: "TLS not required", give: append(valid, "EMAIL_SMTP_TLS=none"), wantErr: "EMAIL_SMTP_TLS must be \"required\""},
		{name: "no from", give: slices.Delete(slices.Clone(valid), 2, 3), wantErr: "EMAIL_FROM is required"},
		{name: "no pseudonym key", give: slices.Delete(slices.Clone(valid), 1, 2), wantErr: "EMAIL_AUDIT_PSEUDONYM_KEY_FILE is required"},
		{name: "no keyring", give: valid[1:], wantErr: "EMAIL_KEYRING_DIR is required"},
		{name: "empty keyring", give: append(valid, "EMAIL_KEYRING_DIR="+t.TempDir()), wantErr: "EMAIL_KEYRING_DIR"},
		{name: "missing keyring", give: append(valid, "EMAIL_KEYRING_DIR=/nonexistent/keys"), wantErr: "EMAIL_KEYRING_DIR"},
		{name: "missing CA file", give: append(valid, "EMAIL_SMTP_CA_FILE=/nonexistent/ca.pem"), wantErr: "EMAIL_SMTP_CA_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), []string{"-check-config"}, tt.give, &out)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("run() = %v, want error %q", err, tt.wantErr)
			}
			if out.String() != tt.want {
				t.Errorf("output = %q, want %q", out.String(), tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "do-not-print-me") {
				t.Errorf("error %q prints the password", err)
			}
		})
	}
}
