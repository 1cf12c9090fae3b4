package app

import (
	"fmt"
	"strconv"
	"time"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/expr"
)

// SimMessage is a message a simulated journey would send.
type SimMessage struct {
	// Step is the step id ("1", "2.timeout.0", "3.else.0").
	Step     string
	Channel  string
	Template string
	// At is when it would go: the event's time, a wait's end, or the
	// end of quiet hours it falls in.
	At time.Time
	// Note says what else applies, in plain words ("deferred by quiet
	// hours", "only if form.submitted does not arrive by ...").
	Note string
}

// SimJourney is what one journey would do with a simulated event.
type SimJourney struct {
	Journey string
	// Started is false when the when: condition was false or failed.
	Started bool
	// Outcome is plain words: "started", "not started: ...", or what the
	// event does to a running instance ("cancels", "re-plans", ...).
	Outcome  string
	Messages []SimMessage
}

// SimEvent is what one simulated event would do.
type SimEvent struct {
	EventID  string
	Event    string // "kind.action"
	Journeys []SimJourney
}

// Simulate says, for each event as if it arrived at at, which journeys
// it starts (and why not), and every message they would send, when and
// on which channel. It reads and changes nothing: no consent, timer,
// message or audit record (consent, contact points and frequency caps
// are decided at send time and are not simulated, except that a patient
// without an email address is noted). The answer holds no PHI: journey,
// step and template ids, channels and times only.
func (s *Service) Simulate(events []*eventsv1.ClinicalEvent, at time.Time) []SimEvent {
	out := make([]SimEvent, 0, len(events))
	for _, ev := range events {
		trigger := ev.GetKind() + "." + ev.GetAction()
		se := SimEvent{EventID: ev.GetEventId(), Event: trigger}
		for _, j := range s.catalog().CancelledBy(ev.GetTenant(), trigger) {
			se.Journeys = append(se.Journeys, SimJourney{Journey: j.ID, Outcome: "cancels the pending steps of this resource's instance, if one runs"})
		}
		for _, j := range s.catalog().ReplannedBy(ev.GetTenant(), trigger) {
			se.Journeys = append(se.Journeys, SimJourney{Journey: j.ID, Outcome: "re-plans the pending wait_until steps of this resource's instance, if one runs"})
		}
		for _, j := range s.catalog().WaitingFor(ev.GetTenant(), trigger) {
			se.Journeys = append(se.Journeys, SimJourney{Journey: j.ID, Outcome: "continues this resource's instance, if it waits for " + trigger})
		}
		for _, j := range s.catalog().Match(ev.GetTenant(), trigger) {
			se.Journeys = append(se.Journeys, s.simulateJourney(ev, j, at))
		}
		if len(se.Journeys) == 0 {
			se.Journeys = append(se.Journeys, SimJourney{Outcome: "no journey has " + trigger + " as trigger, cancel_on, replan_on or wait_for"})
		}
		out = append(out, se)
	}
	return out
}

// simulateJourney walks j's steps for ev from at, as run would, without
// side effects.
func (s *Service) simulateJourney(ev *eventsv1.ClinicalEvent, j *catalog.Journey, at time.Time) SimJourney {
	sj := SimJourney{Journey: j.ID}
	if j.When != nil {
		ok, err := j.When.Bool(expr.VarsOf(ev, at))
		switch {
		case err != nil:
			sj.Outcome = "not started: its when: condition could not be evaluated for this event"
			return sj
		case !ok:
			sj.Outcome = "not started: its when: condition is false for this event"
			return sj
		}
	}
	sj.Started, sj.Outcome = true, "started"
	noEmail := len(ev.GetPatient().GetEmails()) == 0
	t := at
	zone := s.zoneFor(ev)
	send := func(id string, st catalog.Step, note string) {
		m := SimMessage{Step: id, Channel: string(st.Send), Template: st.Template, At: t, Note: note}
		if j.QuietHours != nil && !(st.Critical && j.Purpose != catalog.PurposeMarketing) && j.QuietHours.Contains(t.In(zone)) {
			m.At = j.QuietHours.EndAfter(t.In(zone)).UTC()
			m.Note = join(m.Note, "deferred by quiet hours to their end")
		}
		if noEmail && st.Send == catalog.ChannelEmail {
			m.Note = join(m.Note, "the patient has no email address: it would be recorded as unreachable, not sent")
		}
		sj.Messages = append(sj.Messages, m)
	}
	for i := 0; i < len(j.Steps); i++ {
		st := j.Steps[i]
		id := strconv.Itoa(i)
		if st.If != nil {
			ok, err := st.If.Bool(expr.VarsOf(ev, t))
			if err != nil {
				sj.Outcome = fmt.Sprintf("started; stops at step %s: its if: condition could not be evaluated", id)
				return sj
			}
			if !ok {
				for k, sub := range st.Else {
					send(id+".else."+strconv.Itoa(k), sub, "the else of step "+id+" (its if: is false)")
				}
				continue
			}
		}
		switch st.Kind {
		case catalog.StepSend:
			send(id, st, "")
		case catalog.StepWaitFor:
			t = t.Add(st.Timeout)
			for k, sub := range st.OnTimeout {
				send(id+".timeout."+strconv.Itoa(k), sub, "only if "+st.WaitFor+" does not arrive first")
			}
			return sj
		case catalog.StepWait, catalog.StepWaitUntil:
			due, err := dueTime(st, ev, t)
			if err != nil {
				sj.Outcome = fmt.Sprintf("started; stops at step %s: its wait_until could not be evaluated", id)
				return sj
			}
			if !due.After(at) {
				// As run does: the sends up to the next wait are skipped.
				for i+1 < len(j.Steps) && j.Steps[i+1].Kind == catalog.StepSend {
					i++
					sj.Messages = append(sj.Messages, SimMessage{Step: strconv.Itoa(i), Channel: string(j.Steps[i].Send), Template: j.Steps[i].Template,
						At: due, Note: "skipped: its time has passed (never sent late)"})
				}
				continue
			}
			t = due
		}
	}
	return sj
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
