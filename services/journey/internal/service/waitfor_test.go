package service_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// intakeJourney waits 3s for the intake form: when it comes, the
// confirmation goes; when it does not, a nudge (the reminder template).
const intakeJourney = "id: intake\npurpose: treatment\ntrigger: appointment.booked\n" +
	"steps:\n  - wait_for: form.submitted\n    timeout: 3s\n    on_timeout:\n      - send: email\n        template: appointment-reminder\n" +
	"  - send: email\n    template: appointment-confirmation\n"

// timeoutKey is the idempotency key of on_timeout step k of step i.
func timeoutKey(journey, subjectRef string, i, k int) string {
	return stepIDKey(journey, subjectRef, strconv.Itoa(i)+".timeout."+strconv.Itoa(k))
}

// stepIDKey is the idempotency key of a step id ("2", "2.else.0"),
// computed independently of the code.
func stepIDKey(journey, subjectRef, stepID string) string {
	sum := sha256.Sum256([]byte("demo|" + journey + "|" + subjectRef + "|" + stepID))
	return hex.EncodeToString(sum[:])
}

// formSubmitted is a form.submitted event on the instance key subjectRef.
func formSubmitted(eventID, subjectRef, email string) *eventsv1.ClinicalEvent {
	ev := booked(eventID, subjectRef, email)
	ev.Kind, ev.Action, ev.Facts = "form", "submitted", nil
	return ev
}

func TestWaitFor(t *testing.T) {
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "intake.yaml"), []byte(intakeJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const (
		emailA, emailB = "a.canary@example.org", "b.canary@example.org"
		refA, refB     = "Appointment/401", "Appointment/402"
	)
	h.publish(t, booked("evt-a", refA, emailA))
	h.waitSettled(t, h.publish(t, booked("evt-b", refB, emailB)))

	t.Run("the event continues the instance", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, formSubmitted("evt-a-form", refA, emailA)))
		if n := len(h.email.callsWithKey(key("intake", refA, 1))); n != 1 {
			t.Errorf("step after wait_for sent %d times, want 1", n)
		}
		// With the event the instance waited with: the appointment's.
		if calls := h.email.callsWithKey(key("intake", refA, 1)); len(calls) == 1 && !strings.Contains(calls[0].GetSubject(), "2031") {
			t.Errorf("subject %q does not name the appointment", calls[0].GetSubject())
		}
	})

	t.Run("the timeout runs on_timeout and ends", func(t *testing.T) {
		h.waitSends(t, timeoutKey("intake", refB, 0, 0), 1)
		time.Sleep(time.Second) // a second send would come right after the first
		if n := len(h.email.callsWithKey(timeoutKey("intake", refB, 0, 0))); n != 1 {
			t.Errorf("on_timeout sent %d times, want 1", n)
		}
		if n := len(h.email.callsWithKey(key("intake", refB, 1))); n != 0 {
			t.Errorf("step after a timed-out wait sent %d times, want 0", n)
		}
		// A form after the timeout continues nothing.
		h.waitSettled(t, h.publish(t, formSubmitted("evt-b-form", refB, emailB)))
		if n := len(h.email.callsWithKey(key("intake", refB, 1))); n != 0 {
			t.Errorf("late form: step after the wait sent %d times, want 0", n)
		}
	})

	t.Run("an answered wait does not time out", func(t *testing.T) {
		// A's timeout was removed; wait past its due time.
		time.Sleep(time.Second)
		if n := len(h.email.callsWithKey(timeoutKey("intake", refA, 0, 0))); n != 0 {
			t.Errorf("on_timeout of an answered wait sent %d times", n)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := h.metrics(t)
		for _, line := range []string{
			`journey_timers_total{journey="intake",outcome="scheduled"} 2`,
			`journey_timers_total{journey="intake",outcome="arrived"} 1`,
			`journey_timers_total{journey="intake",outcome="timed_out"} 1`,
			`journey_sends_total{channel="email",journey="intake",outcome="sent"} 2`,
		} {
			if !strings.Contains(m, line) {
				t.Errorf("metrics lack %s", line)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grep(m, "journey_"))
		}
	})

	t.Run("audit", func(t *testing.T) {
		recs, err := audit.Query(t.Context(), h.js, audit.Filter{Tenant: "demo", Service: "journey", Action: "journey.wait"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.Object.Type+" "+r.Outcome+" "+r.Reason]++
		}
		want := map[string]int{"JourneyStep success arrived": 1, "JourneyStep success timed_out": 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	})

	t.Run("no PHI in logs", func(t *testing.T) {
		logs := h.logs.String()
		for _, canary := range []string{canaryGiven, canaryFamily, emailA, emailB, "Appointment/40"} {
			if strings.Contains(logs, canary) {
				t.Errorf("logs contain %q", canary)
			}
		}
	})
}
