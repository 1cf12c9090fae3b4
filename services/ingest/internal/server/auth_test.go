package server_test

import (
	"strings"
	"testing"

	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// TestBearerHashedToken: a source configured with only the hash of its
// token accepts the token, and refuses the hash itself as a token.
func TestBearerHashedToken(t *testing.T) {
	e := newEnv(t)
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	tests := []struct {
		name, token string
		want        int
	}{
		{name: "the hash is no token", token: config.HashToken("epic-token"), want: 401},
		{name: "hex of the hash is no token", token: strings.TrimPrefix(config.HashToken("epic-token"), "sha256:"), want: 401},
		{name: "case matters", token: "EPIC-TOKEN", want: 401},
		{name: "token", token: "epic-token", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.post(t, request{source: "epic-prod", token: tt.token, contentType: "application/fhir+json", body: body})
			if got.status != tt.want {
				t.Fatalf("status = %d %+v, want %d", got.status, got.outcome, tt.want)
			}
		})
	}
	if n := len(e.messages(t, "EHR_EVENTS")); n != 1 {
		t.Errorf("EHR_EVENTS holds %d messages, want 1", n)
	}
	if strings.Contains(e.logs.String(), "epic-token") {
		t.Error("logs hold the token")
	}
}
