package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/audit"
)

// capJourneys share a cap of one treatment message a day per patient;
// every booking starts all of them, in id order.
var capJourneys = map[string]string{
	"cap-a.yaml": "id: cap-a\npurpose: treatment\ntrigger: appointment.booked\nfrequency_cap: {max: 1, per: 24h}\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n",
	"cap-b.yaml": "id: cap-b\npurpose: treatment\ntrigger: appointment.booked\nfrequency_cap: {max: 1, per: 24h}\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n  - send: email\n    template: appointment-reminder\n    critical: true\n",
	// Another purpose: counted apart.
	"cap-c.yaml": "id: cap-c\npurpose: operations\ntrigger: appointment.booked\nfrequency_cap: {max: 1, per: 24h}\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n",
}

func TestFrequencyCap(t *testing.T) {
	jdir := t.TempDir()
	for name, content := range capJourneys {
		if err := os.WriteFile(filepath.Join(jdir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, jdir)
	const email = "cap.canary@example.org"
	// Two appointments of the same patient (p-1): the cap is per patient,
	// not per instance. The second booking is sent twice: a retried event
	// is not capped by its own first send.
	h.waitSettled(t, h.publish(t, booked("evt-1", "Appointment/501", email)))
	h.waitSettled(t, h.publish(t, booked("evt-2", "Appointment/502", email)))
	h.waitSettled(t, h.publish(t, booked("evt-1-again", "Appointment/501", email)))

	t.Run("sends", func(t *testing.T) {
		// Calls to the channel: the re-sent booking calls again with the
		// same idempotency key (the channel answers duplicate), and is not
		// capped by its own first send.
		want := map[string]int{
			"cap-a 501/0": 2, // the day's treatment message, and its retry
			"cap-a 502/0": 0, // capped
			"cap-b 501/0": 0, // capped, across journeys
			"cap-b 501/1": 2, // critical: exempt
			"cap-b 502/0": 0,
			"cap-b 502/1": 1,
			"cap-c 501/0": 2, // operations: its own count
			"cap-c 502/0": 0,
		}
		got := map[string]int{}
		for k := range want {
			journey, rest, _ := strings.Cut(k, " ")
			ref, step, _ := strings.Cut(rest, "/")
			got[k] = len(h.email.callsWithKey(key(journey, "Appointment/"+ref, int(step[0]-'0'))))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sends (-want +got):\n%s", diff)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := h.metrics(t)
		for _, line := range []string{
			`journey_sends_total{channel="email",journey="cap-a",outcome="frequency_capped"} 1`,
			`journey_sends_total{channel="email",journey="cap-b",outcome="frequency_capped"} 3`,
			`journey_sends_total{channel="email",journey="cap-c",outcome="frequency_capped"} 1`,
		} {
			if !strings.Contains(m, line) {
				t.Errorf("metrics lack %s", line)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grep(m, "journey_sends"))
		}
	})

	t.Run("audit", func(t *testing.T) {
		recs, err := audit.Query(t.Context(), h.js, audit.Filter{Tenant: "demo", Service: "journey", Action: audit.ActionMessageDecided})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			if r.Reason == "frequency_capped" {
				journey, _, _ := strings.Cut(r.Object.ID, "/")
				got[journey+" "+r.Object.Type+" "+r.Outcome+" "+r.Purpose]++
			}
		}
		want := map[string]int{
			"cap-a JourneyStep suppressed treatment":  1,
			"cap-b JourneyStep suppressed treatment":  3,
			"cap-c JourneyStep suppressed operations": 1,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	})
}
