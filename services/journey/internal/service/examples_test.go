package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
)

// TestLabResultExample runs the example lab-result journey (without its
// quiet hours, so the test does not depend on the time of day) on a
// lab_result.final event: one email notice sent as no-phi and one text,
// neither with anything of the patient in it.
func TestLabResultExample(t *testing.T) {
	b, err := os.ReadFile("../../../../deploy/examples/journeys/lab-result-available.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "quiet_hours:") {
			kept = append(kept, line)
		}
	}
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "lab.yaml"), []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const emailP = "lab.canary@example.org"
	ev := patientBooking("ev-lab1", "DiagnosticReport/901", emailP)
	ev.Kind, ev.Action, ev.Facts = "lab_result", "final", nil
	h.waitSettled(t, h.publish(t, ev))

	mails := h.email.callsTo(emailP)
	if len(mails) != 1 || mails[0].GetSecurity() != emailv1.Security_SECURITY_NO_PHI {
		t.Fatalf("emails = %v, want one no-phi notice", mails)
	}
	texts := h.sms.callsTo("+15555550123")
	if len(texts) != 1 || !strings.Contains(texts[0].GetBody(), "test result") {
		t.Fatalf("texts = %v, want one", texts)
	}
	all := mails[0].GetSubject() + mails[0].GetTextBody() + mails[0].GetHtmlBody() + texts[0].GetBody()
	if c := anyContains(all, canaryGiven, canaryFamily, canaryPatient); c != "" {
		t.Errorf("the notices name the patient (%s)", c)
	}
}
