package service_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/timers"
)

// movesJourney reminds 24h before the appointment, and moves the reminder
// when the appointment is rescheduled.
const movesJourney = "id: moves\npurpose: treatment\ntrigger: appointment.booked\n" +
	"cancel_on: [appointment.cancelled]\nreplan_on: [appointment.rescheduled]\n" +
	"steps:\n  - wait_until: event.appointment.start - duration(\"24h\")\n  - send: email\n    template: appointment-reminder\n"

// instanceKey is the instance hash of journey for subjectRef, computed
// independently of the code.
func instanceKey(journey, subjectRef string) string {
	sum := sha256.Sum256([]byte("demo|" + journey + "|" + subjectRef))
	return hex.EncodeToString(sum[:8])
}

// bookingAt is a booking (or, with action, another appointment event) of
// an appointment that starts at start.
func bookingAt(eventID, action, subjectRef, email string, start time.Time) *eventsv1.ClinicalEvent {
	ev := booked(eventID, subjectRef, email)
	now := time.Now()
	ev.Action = action
	ev.OccurredAt, ev.ReceivedAt = timestamppb.New(now), timestamppb.New(now)
	ev.GetAppointment().Start = timestamppb.New(start)
	ev.GetAppointment().End = timestamppb.New(start.Add(30 * time.Minute))
	return ev
}

// schedule returns the pending schedule of the reminder (step 1) of the
// moves instance for subjectRef, or nil when there is none.
func (h *harness) schedule(t *testing.T, subjectRef string) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := h.js.Stream(t.Context(), timers.Stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), "journey.timers.demo.moves."+instanceKey("moves", subjectRef)+".1")
	if err != nil {
		return nil
	}
	return m
}

// roundUp is t rounded up to a whole second, as timers are.
func roundUp(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

func TestReplan(t *testing.T) {
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "moves.yaml"), []byte(movesJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const (
		emailA, emailB, emailC = "a.canary@example.org", "b.canary@example.org", "c.canary@example.org"
		refA, refB, refC       = "Appointment/301", "Appointment/302", "Appointment/303"
	)
	now := time.Now()

	t.Run("rescheduled moves the reminder", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, bookingAt("evt-a", "booked", refA, emailA, now.Add(48*time.Hour))))
		first := h.schedule(t, refA)
		if first == nil {
			t.Fatal("no reminder scheduled on the booking")
		}
		if got, want := first.Header.Get(jetstream.ScheduleHeader), "@at "+roundUp(now.Add(24*time.Hour)).UTC().Format(time.RFC3339); got != want {
			t.Errorf("booked: schedule %q, want %q", got, want)
		}
		newStart := now.Add(72 * time.Hour)
		h.waitSettled(t, h.publish(t, bookingAt("evt-a-moved", "rescheduled", refA, emailA, newStart)))
		moved := h.schedule(t, refA)
		if moved == nil {
			t.Fatal("no reminder after rescheduling")
		}
		if got, want := moved.Header.Get(jetstream.ScheduleHeader), "@at "+roundUp(newStart.Add(-24*time.Hour)).UTC().Format(time.RFC3339); got != want {
			t.Errorf("rescheduled: schedule %q, want %q", got, want)
		}
		// The continuation carries the rescheduling event.
		store := timers.New(h.js, h.sealer)
		tm, err := store.Open(t.Context(), strings.Replace(moved.Subject, "journey.timers.", "journey.fire.", 1), moved.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.Event.GetEventId(); got != "evt-a-moved" {
			t.Errorf("continuation event %q, want evt-a-moved", got)
		}
		if !tm.Event.GetAppointment().GetStart().AsTime().Equal(newStart) {
			t.Errorf("continuation start %v, want %v", tm.Event.GetAppointment().GetStart().AsTime(), newStart)
		}
	})

	t.Run("moved reminder sends once at the new time", func(t *testing.T) {
		// Reminder in an hour; rescheduled to 24h and 3s from now, so it
		// is due in about 3s.
		h.waitSettled(t, h.publish(t, bookingAt("evt-b", "booked", refB, emailB, time.Now().Add(25*time.Hour))))
		h.waitSettled(t, h.publish(t, bookingAt("evt-b-moved", "rescheduled", refB, emailB, time.Now().Add(24*time.Hour+3*time.Second))))
		h.waitSends(t, key("moves", refB, 1), 1)
		time.Sleep(time.Second) // a second send would come right after the first
		if n := len(h.email.callsWithKey(key("moves", refB, 1))); n != 1 {
			t.Errorf("moved reminder sent %d times, want 1", n)
		}
		if m := h.schedule(t, refB); m != nil {
			t.Errorf("schedule %s still pending after it fired", m.Subject)
		}
	})

	t.Run("rescheduled into the past skips the reminder", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, bookingAt("evt-c", "booked", refC, emailC, time.Now().Add(48*time.Hour))))
		h.waitSettled(t, h.publish(t, bookingAt("evt-c-moved", "rescheduled", refC, emailC, time.Now().Add(time.Hour))))
		if m := h.schedule(t, refC); m != nil {
			t.Errorf("reminder still scheduled (%s) after its new time passed", m.Header.Get(jetstream.ScheduleHeader))
		}
		time.Sleep(time.Second)
		if n := len(h.email.callsWithKey(key("moves", refC, 1))); n != 0 {
			t.Errorf("skipped reminder sent %d times", n)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := h.metrics(t)
		for _, line := range []string{
			`journey_timers_total{journey="moves",outcome="scheduled"} 3`,
			`journey_timers_total{journey="moves",outcome="replanned"} 2`,
			`journey_timers_total{journey="moves",outcome="time_passed"} 1`,
			`journey_timers_total{journey="moves",outcome="fired"} 1`,
			`journey_sends_total{channel="email",journey="moves",outcome="sent"} 1`,
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
		recs, err := audit.Query(t.Context(), h.js, audit.Filter{Tenant: "demo", Service: "journey"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			if r.Action == "journey.replanned" || (r.Action == audit.ActionMessageDecided && r.Outcome != audit.OutcomeSuccess) {
				got[r.Action+" "+r.Object.Type+" "+r.Outcome+" "+r.Reason]++
			}
		}
		want := map[string]int{
			"journey.replanned JourneyTimer success replanned":      2,
			"journey.replanned JourneyTimer suppressed time_passed": 1,
			"message.decided JourneyStep suppressed time_passed":    1,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	})

	t.Run("no PHI in logs", func(t *testing.T) {
		logs := h.logs.String()
		for _, canary := range []string{canaryGiven, canaryFamily, emailA, emailB, emailC, "Appointment/30"} {
			if strings.Contains(logs, canary) {
				t.Errorf("logs contain %q", canary)
			}
		}
	})
}
