package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuietHoursDeferThenSend runs a journey whose quiet hours end at the
// next whole minute: the booking's email waits for a real JetStream
// timer and goes when the window ends. (Quiet windows are whole minutes,
// so this test takes up to a minute.)
func TestQuietHoursDeferThenSend(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York") // the harness's JOURNEY_TIMEZONE
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(ny)
	if now.Second() >= 55 { // leave the service time to defer before the window ends
		time.Sleep(time.Until(now.Truncate(time.Minute).Add(time.Minute + time.Second)))
		now = time.Now().In(ny)
	}
	end := now.Truncate(time.Minute).Add(time.Minute)
	startAt := end.Add(-2 * time.Hour)
	jdir := t.TempDir()
	journey := fmt.Sprintf("id: appointment-confirmation\npurpose: treatment\ntrigger: appointment.booked\n"+
		"quiet_hours: {start: %q, end: %q}\nsteps:\n  - send: email\n    template: appointment-confirmation\n",
		startAt.Format("15:04"), end.Format("15:04"))
	if err := os.WriteFile(filepath.Join(jdir, "quiet.yaml"), []byte(journey), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const emailQ = "quiet.canary@example.org"
	h.waitSettled(t, h.publish(t, booked("ev-q1", "Appointment/801", emailQ)))
	if time.Now().Before(end) {
		if n := len(h.email.callsTo(emailQ)); n != 0 {
			t.Fatalf("%d sends inside quiet hours, want 0", n)
		}
	}
	if m := h.metrics(t); !strings.Contains(m, `outcome="quiet_hours"} 1`) {
		t.Errorf("metrics lack the quiet_hours deferral:\n%s", grepLines(m, "journey_sends_total"))
	}
	deadline := end.Add(20 * time.Second)
	for len(h.email.callsTo(emailQ)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no send 20s after quiet hours ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if time.Now().Before(end) {
		t.Errorf("sent at %v, before quiet hours ended at %v", time.Now(), end)
	}
	if n := len(h.email.callsWithKey(wantKey("Appointment/801", 0))); n != 1 {
		t.Errorf("%d sends with the step's key, want 1", n)
	}
}
