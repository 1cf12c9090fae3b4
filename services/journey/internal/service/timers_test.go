package service_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// timerJourneys are the journeys of TestConditionsAndTimers. Every booking
// starts all of them.
var timerJourneys = map[string]string{
	"adults.yaml": "id: adults\npurpose: treatment\ntrigger: appointment.booked\nwhen: patient.age >= 18 && event.appointment.start > now\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n",
	"minors.yaml": "id: minors\npurpose: treatment\ntrigger: appointment.booked\nwhen: patient.age < 18\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n",
	// The condition fails for every event: "en" is not a number.
	"broken.yaml": "id: broken\npurpose: treatment\ntrigger: appointment.booked\nwhen: int(patient.language) > 0\n" +
		"steps:\n  - send: email\n    template: appointment-confirmation\n",
	"soon.yaml": "id: soon\npurpose: treatment\ntrigger: appointment.booked\ncancel_on: [appointment.cancelled]\n" +
		"steps:\n  - wait: 2s\n  - send: email\n    template: appointment-reminder\n",
	// The appointments below start within the hour: 24h before is past.
	"passed.yaml": "id: passed\npurpose: treatment\ntrigger: appointment.booked\n" +
		"steps:\n  - wait_until: event.appointment.start - duration(\"24h\")\n  - send: email\n    template: appointment-reminder\n",
	"later.yaml": "id: later\npurpose: treatment\ntrigger: appointment.booked\n" +
		"steps:\n  - wait: 1h\n  - send: email\n    template: appointment-reminder\n",
}

// key is the idempotency key of a step, computed independently of the code.
func key(journey, subjectRef string, step int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "demo|%s|%s|%d", journey, subjectRef, step))
	return hex.EncodeToString(sum[:])
}

// soonBooking is a booking of an appointment that starts in 30 minutes.
func soonBooking(eventID, subjectRef, email string) *eventsv1.ClinicalEvent {
	ev := booked(eventID, subjectRef, email)
	now := time.Now()
	ev.OccurredAt, ev.ReceivedAt = timestamppb.New(now), timestamppb.New(now)
	ev.GetAppointment().Start = timestamppb.New(now.Add(30 * time.Minute))
	ev.GetAppointment().End = timestamppb.New(now.Add(time.Hour))
	return ev
}

// waitSends polls until the email double has n calls with key, failing
// after a generous bound.
func (h *harness) waitSends(t *testing.T, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(h.email.callsWithKey(key)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sends with key %s after 20s, want %d", len(h.email.callsWithKey(key)), key[:8], n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConditionsAndTimers(t *testing.T) {
	jdir := t.TempDir()
	for name, content := range timerJourneys {
		if err := os.WriteFile(filepath.Join(jdir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, jdir)
	const (
		emailA, emailB, emailC = "a.canary@example.org", "b.canary@example.org", "c.canary@example.org"
		refA, refB, refC       = "Appointment/201", "Appointment/202", "Appointment/203"
	)

	// One booking runs every journey: conditions true, false and failing;
	// a 2s wait; a wait whose time has passed; a 1h wait.
	h.waitSettled(t, h.publish(t, soonBooking("evt-a", refA, emailA)))
	// A second booking, cancelled before its 2s timer fires.
	h.publish(t, soonBooking("evt-b", refB, emailB))
	cancelled := soonBooking("evt-b-cancel", refB, emailB)
	cancelled.Action = "cancelled"
	h.waitSettled(t, h.publish(t, cancelled))

	t.Run("when true sends, false and failing do not", func(t *testing.T) {
		if n := len(h.email.callsWithKey(key("adults", refA, 0))); n != 1 {
			t.Errorf("adults: %d sends, want 1", n)
		}
		for _, j := range []string{"minors", "broken"} {
			if n := len(h.email.callsWithKey(key(j, refA, 0))); n != 0 {
				t.Errorf("%s: %d sends, want 0", j, n)
			}
		}
		if !strings.Contains(h.logs.String(), `"msg":"journey condition failed for this event"`) {
			t.Error("failing condition not logged")
		}
	})

	t.Run("timer payload at rest is sealed", func(t *testing.T) {
		st, err := h.js.Stream(t.Context(), "JOURNEY_TIMERS")
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			t.Fatal("no timers stored")
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(t.Context(), seq)
			if err != nil {
				continue
			}
			raw := append([]byte(m.Subject), m.Data...)
			for k, v := range m.Header {
				raw = append(raw, []byte(k+strings.Join(v, ""))...)
			}
			for _, canary := range []string{canaryGiven, canaryFamily, emailA, emailB, "Physiotherapy", "Appointment/", "+15555550123", "1970-01-01"} {
				if bytes.Contains(raw, []byte(canary)) {
					t.Errorf("timer message %s holds %q in clear", m.Subject, canary)
				}
			}
		}
	})

	t.Run("wait fires and sends once", func(t *testing.T) {
		h.waitSends(t, key("soon", refA, 1), 1)
	})

	t.Run("cancelled timer does not send", func(t *testing.T) {
		// A's timer was set before B's and has fired; give B's the same
		// time again to be sure it would have fired too.
		time.Sleep(2 * time.Second)
		if n := len(h.email.callsWithKey(key("soon", refB, 1))); n != 0 {
			t.Errorf("cancelled reminder sent %d times", n)
		}
	})

	t.Run("passed wait is skipped", func(t *testing.T) {
		for _, ref := range []string{refA, refB} {
			if n := len(h.email.callsWithKey(key("passed", ref, 1))); n != 0 {
				t.Errorf("late reminder sent %d times", n)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := h.metrics(t)
		for _, line := range []string{
			`journey_starts_total{journey="adults",outcome="started"} 2`,
			`journey_starts_total{journey="minors",outcome="condition_false"} 2`,
			`journey_starts_total{journey="broken",outcome="condition_error"} 2`,
			`journey_timers_total{journey="soon",outcome="scheduled"} 2`,
			`journey_timers_total{journey="soon",outcome="cancelled"} 1`,
			`journey_timers_total{journey="soon",outcome="fired"} 1`,
			`journey_timers_total{journey="passed",outcome="time_passed"} 2`,
			`journey_timers_total{journey="later",outcome="scheduled"} 2`,
			`journey_sends_total{channel="email",journey="soon",outcome="sent"} 1`,
		} {
			if !strings.Contains(m, line) {
				t.Errorf("metrics lack %s", line)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grep(m, "journey_"))
		}
	})

	t.Run("audit records why nothing was sent", func(t *testing.T) {
		recs, err := audit.Query(t.Context(), h.js, audit.Filter{Tenant: "demo", Service: "journey", Action: audit.ActionMessageDecided})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			if r.Outcome != audit.OutcomeSuccess {
				journey, _, _ := strings.Cut(r.Object.ID, "/")
				got[journey+" "+r.Object.Type+" "+r.Outcome+" "+r.Reason]++
			}
		}
		want := map[string]int{
			"minors JourneyInstance suppressed condition_false": 2,
			"broken JourneyInstance failure condition_error":    2,
			"passed JourneyStep suppressed time_passed":         2,
			"soon JourneyInstance suppressed cancelled":         1,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	})

	t.Run("timer survives a restart", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, soonBooking("evt-c", refC, emailC)))
		h.stopper()
		// Down past the due time: the timer fires while nobody consumes,
		// and the fired message waits on the stream.
		time.Sleep(3 * time.Second)
		h.stopper = h.run(t)
		h.waitSends(t, key("soon", refC, 1), 1)
		time.Sleep(time.Second) // a second send would come right after the first
		if n := len(h.email.callsWithKey(key("soon", refC, 1))); n != 1 {
			t.Errorf("reminder after restart sent %d times, want 1", n)
		}
	})

	t.Run("no PHI in logs", func(t *testing.T) {
		logs := h.logs.String()
		for _, canary := range []string{canaryGiven, canaryFamily, emailA, emailB, emailC, "+15555550123", "1970-01-01", "Physiotherapy", "Appointment/20"} {
			if strings.Contains(logs, canary) {
				t.Errorf("logs contain %q", canary)
			}
		}
	})
}
