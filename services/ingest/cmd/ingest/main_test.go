package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

func TestRunCheckConfig(t *testing.T) {
	keys, _ := envelopetest.Keyring(t)
	pk, _ := audittest.Keys(t)
	pseudonym := "INGEST_AUDIT_PSEUDONYM_KEY_FILE=" + pk
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr string
	}{
		{name: "valid", give: []string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=" + keys, pseudonym}, want: "config ok\n"},
		{name: "no keyring", give: []string{"INGEST_SOURCES=demo=demo:demo-token", pseudonym}, wantErr: "INGEST_KEYRING_DIR is required"},
		{name: "broken keyring", give: []string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=" + t.TempDir(), pseudonym}, wantErr: "keyring"},
		{name: "no sources", give: []string{"INGEST_SOURCES="}, wantErr: "INGEST_SOURCES"},
		{name: "no variables", give: nil, wantErr: "INGEST_SOURCES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), []string{"-check-config"}, tt.give, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || out.String() != tt.want {
				t.Errorf("run() = %q, %v; want %q", out.String(), err, tt.want)
			}
			if strings.Contains(out.String(), "demo-token") {
				t.Error("output repeats the token")
			}
		})
	}
}
