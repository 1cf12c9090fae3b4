package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

func TestCheckConfig(t *testing.T) {
	badDir := t.TempDir()
	bad := "id: a\npurpose: treatment\ntrigger: appointment.boked\nsteps:\n  - send: email\n    template: appointment-confirmation\n"
	if err := os.WriteFile(filepath.Join(badDir, "appointment.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	const templates = "JOURNEY_TEMPLATES_DIR=../../../../deploy/examples/templates"
	keys, _ := envelopetest.Keyring(t)
	pk, _ := audittest.Keys(t)
	tests := []struct {
		name       string
		give       []string
		wantStdout string
		wantErr    string
	}{
		{
			name:       "examples",
			give:       []string{"JOURNEY_JOURNEYS_DIR=../../../../deploy/examples/journeys", templates, "JOURNEY_TIMEZONE=America/New_York", "JOURNEY_REDIS_URL=redis://127.0.0.1:6379/0"},
			wantStdout: "config ok: 5 journeys, 16 template files, 0 admin tokens\n",
		},
		{
			name:    "bad journey",
			give:    []string{"JOURNEY_JOURNEYS_DIR=" + badDir, templates},
			wantErr: "appointment.yaml:3: trigger \"appointment.boked\" is not a known event",
		},
		{
			name:    "broken keyring",
			give:    []string{"JOURNEY_JOURNEYS_DIR=../../../../deploy/examples/journeys", templates, "JOURNEY_KEYRING_DIR=" + t.TempDir()},
			wantErr: "keyring",
		},
		{
			name:    "bad redis url",
			give:    []string{"JOURNEY_JOURNEYS_DIR=../../../../deploy/examples/journeys", templates, "JOURNEY_REDIS_URL=127.0.0.1:6379"},
			wantErr: "JOURNEY_REDIS_URL must be a redis:// or rediss:// URL",
		},
		{
			name:    "bad time zone",
			give:    []string{"JOURNEY_JOURNEYS_DIR=../../../../deploy/examples/journeys", templates, "JOURNEY_TIMEZONE=Nowhere/Special"},
			wantErr: `JOURNEY_TIMEZONE "Nowhere/Special" is not a known time zone`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout strings.Builder
			err := run(t.Context(), []string{"-check-config"}, append([]string{"JOURNEY_KEYRING_DIR=" + keys, "JOURNEY_AUDIT_PSEUDONYM_KEY_FILE=" + pk}, tt.give...), &stdout)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run() = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || stdout.String() != tt.wantStdout {
				t.Errorf("run() = %v, stdout %q; want %q", err, stdout.String(), tt.wantStdout)
			}
		})
	}
}
