package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/audit"
)

// condJourneys have step conditions; cond-broken's fails for every event
// ("en" is not a number).
var condJourneys = map[string]string{
	"cond.yaml": "id: cond\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n" +
		"  - if: patient.age >= 18\n    send: email\n    template: appointment-confirmation\n" +
		"    else:\n      - send: email\n        template: appointment-reminder\n" +
		"  - if: event.appointment.service_type == \"telehealth\"\n    send: email\n    template: appointment-reminder\n" +
		"  - if: event.appointment.service_type == \"Physiotherapy\"\n    wait: 1s\n" +
		"  - send: email\n    template: appointment-reminder\n",
	"cond-broken.yaml": "id: cond-broken\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n" +
		"  - if: int(patient.language) > 0\n    send: email\n    template: appointment-confirmation\n",
}

func TestStepConditions(t *testing.T) {
	jdir := t.TempDir()
	for name, content := range condJourneys {
		if err := os.WriteFile(filepath.Join(jdir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, jdir)
	const (
		emailAdult, emailMinor = "adult.canary@example.org", "minor.canary@example.org"
		refAdult, refMinor     = "Appointment/601", "Appointment/602"
	)
	h.waitSettled(t, h.publish(t, booked("evt-adult", refAdult, emailAdult)))
	minor := booked("evt-minor", refMinor, emailMinor)
	minor.GetPatient().BirthDate = "2025-01-01"
	h.waitSettled(t, h.publish(t, minor))
	// The wait (its condition holds) then the last step.
	h.waitSends(t, key("cond", refAdult, 3), 1)
	h.waitSends(t, key("cond", refMinor, 3), 1)

	t.Run("sends", func(t *testing.T) {
		got := map[string]int{
			"adult if":       len(h.email.callsWithKey(key("cond", refAdult, 0))),
			"adult else":     len(h.email.callsWithKey(stepIDKey("cond", refAdult, "0.else.0"))),
			"minor if":       len(h.email.callsWithKey(key("cond", refMinor, 0))),
			"minor else":     len(h.email.callsWithKey(stepIDKey("cond", refMinor, "0.else.0"))),
			"telehealth":     len(h.email.callsWithKey(key("cond", refAdult, 1))) + len(h.email.callsWithKey(key("cond", refMinor, 1))),
			"broken":         len(h.email.callsWithKey(key("cond-broken", refAdult, 0))),
			"after the wait": len(h.email.callsWithKey(key("cond", refAdult, 3))) + len(h.email.callsWithKey(key("cond", refMinor, 3))),
		}
		want := map[string]int{"adult if": 1, "adult else": 0, "minor if": 0, "minor else": 1, "telehealth": 0, "broken": 0, "after the wait": 2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sends (-want +got):\n%s", diff)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := h.metrics(t)
		for _, line := range []string{
			`journey_step_conditions_total{journey="cond",outcome="true"} 3`,
			`journey_step_conditions_total{journey="cond",outcome="false"} 3`,
			`journey_step_conditions_total{journey="cond-broken",outcome="error"} 2`,
			`journey_timers_total{journey="cond",outcome="scheduled"} 2`,
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
		recs, err := audit.Query(t.Context(), h.js, audit.Filter{Tenant: "demo", Service: "journey", Action: audit.ActionMessageDecided})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			if r.Outcome != audit.OutcomeSuccess {
				journey, rest, _ := strings.Cut(r.Object.ID, "/")
				_, step, _ := strings.Cut(rest, "/")
				got[journey+" "+r.Object.Type+"/"+step+" "+r.Outcome+" "+r.Reason]++
			}
		}
		want := map[string]int{
			"cond JourneyStep/0 suppressed condition_false":     1, // the minor: else ran
			"cond JourneyStep/1 suppressed condition_false":     2,
			"cond-broken JourneyStep/0 failure condition_error": 2,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
		if !strings.Contains(h.logs.String(), `"msg":"journey step condition failed for this event"`) {
			t.Error("failing step condition not logged")
		}
	})
}
