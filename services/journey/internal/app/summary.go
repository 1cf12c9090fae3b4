package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
)

// summarize says in plain language what one audit record means for the
// patient. kinds maps event ids to "kind.action", as journey's records
// name them. It uses only the record, which holds no PHI.
func summarize(e TraceEntry, kinds map[string]string) string {
	d := e.Detail
	journey := d["journey"]
	event := d["event"]
	step := stepName(e.Object.ID, d["step"], journey)
	switch e.Action {
	case audit.ActionEventReceived:
		what := "an event"
		if k := kinds[e.Object.ID]; k != "" {
			what = k
		}
		s := fmt.Sprintf("event received: %s %s from %s", what, e.Object.ID, e.Actor.ID)
		if e.Reason == "duplicate" {
			s += " (a duplicate of one already stored)"
		}
		return s
	case ActionJourneyStarted:
		if d["condition"] == "when" {
			return fmt.Sprintf("journey %s started by %s: its when: condition held", journey, event)
		}
		return fmt.Sprintf("journey %s started by %s", journey, event)
	case ActionJourneyPlanned:
		return fmt.Sprintf("%s planned for %s (%s)", step, when(d["due"]), d["wait"])
	case ActionConsentChanged:
		ch, purpose := consentParts(e.Object.ID)
		s := fmt.Sprintf("consent for %s %s messages %s", ch, purpose, e.Reason)
		if src := d["consentSource"]; src != "" {
			s += " by " + src
		}
		return s + " at " + e.Time.UTC().Format(time.RFC3339)
	case ActionJourneyReplanned:
		if e.Reason == timerTimePassed {
			return fmt.Sprintf("%s not replanned by %s: its new time has passed; skipped, not sent late", step, event)
		}
		return fmt.Sprintf("%s replanned by %s", step, event)
	case ActionJourneyWait:
		if e.Reason == WaitTimedOut {
			return fmt.Sprintf("%s: the wait timed out", step)
		}
		return fmt.Sprintf("%s: the event it waited for arrived (%s)", step, event)
	case audit.ActionMessageDecided:
		return decision(e, step, journey, event)
	case audit.ActionPHIRead:
		return fmt.Sprintf("viewed: %s by %s %s", orDefault(d["api"], e.Object.Type), e.Actor.Type, e.Actor.ID)
	case audit.ActionMessageSent:
		return fmt.Sprintf("delivery of %s: %s", e.Object.ID, strings.ReplaceAll(e.Reason, ":", ", "))
	}
	return fmt.Sprintf("%s %s: %s %s", e.Service, e.Action, e.Outcome, e.Reason)
}

// decision summarises a message.decided record.
func decision(e TraceEntry, step, journey, event string) string {
	d := e.Detail
	switch e.Reason {
	case outcomeSent, outcomeDuplicate:
		verb := "sent"
		if e.Reason == outcomeDuplicate {
			verb = "already sent"
		}
		return fmt.Sprintf("%s: %s message %s (%s, template %s), %s", verb, d["channel"], e.Object.ID, step, d["template"], allowedBy(d, e.Purpose))
	case outcomeNoConsent:
		return fmt.Sprintf("suppressed: %s (%s)", consentWhy(d, e.Purpose), step)
	case outcomeNoContact:
		return fmt.Sprintf("no %s contact point for the patient (%s)", orDefault(d["channel"], "usable"), step)
	case outcomeUnreachable:
		return fmt.Sprintf("suppressed: unreachable, the patient has no usable contact point on %s; not sent (%s)",
			strings.ReplaceAll(orDefault(d["channels"], d["channel"]), "+", " or "), step)
	case outcomeQuietHours:
		return fmt.Sprintf("deferred: quiet hours until %s (%s); it goes then, consent checked again", when(d["until"]), step)
	case outcomeFrequencyCapped:
		return fmt.Sprintf("suppressed: frequency cap for %s messages reached (%s)", e.Purpose, step)
	case timerCancelled:
		return fmt.Sprintf("cancelled: pending steps of journey %s removed by %s", journey, event)
	case timerTimePassed:
		return fmt.Sprintf("skipped: %s came up after its time had passed; not sent late", step)
	case startConditionFalse:
		if d["condition"] == "if" || e.Object.Type == "JourneyStep" {
			return fmt.Sprintf("skipped: the if: condition of %s was false", step)
		}
		return fmt.Sprintf("journey %s not started by %s: its when: condition was false", journey, event)
	case startConditionError:
		if d["condition"] == "if" || e.Object.Type == "JourneyStep" {
			return fmt.Sprintf("failed: the if: condition of %s could not be evaluated for this event", step)
		}
		return fmt.Sprintf("journey %s not started by %s: its when: condition could not be evaluated for this event", journey, event)
	case outcomeRenderFailed:
		return fmt.Sprintf("failed: the template of %s could not be rendered for this event", step)
	case outcomeRejected:
		return fmt.Sprintf("failed: the channel refused the message of %s", step)
	case outcomeAddressSuppressed:
		return fmt.Sprintf("suppressed: the email service refuses the patient's address (%s) (%s)", orDefault(d["suppression"], "suppressed"), step)
	case outcomeFallback:
		return fmt.Sprintf("fell back from %s to %s because of %s (%s)", d["from"], d["channel"], d["because"], step)
	case outcomeBlocked:
		what := map[string]string{identifierSSN: "something shaped like a Social Security number", identifierPatient: "one of the patient's record identifiers (MRN)"}[d["identifier"]]
		return fmt.Sprintf("blocked: the rendered %s message of %s (template %s) held %s in its %s; not sent",
			orDefault(d["channel"], "message"), step, d["template"], orDefault(what, "an identifier"), orDefault(d["part"], "content"))
	}
	return fmt.Sprintf("%s %s (%s)", e.Outcome, e.Reason, step)
}

// allowedBy says which consent allowed a send.
func allowedBy(d map[string]string, purpose string) string {
	switch d["consent"] {
	case "":
		return "consent not recorded"
	case consentNone:
		return fmt.Sprintf("allowed: no consent record, and %s messages go unless the patient opted out", purpose)
	}
	return fmt.Sprintf("allowed by consent %s by %s at %s (record %s)", d["consentState"], d["consentSource"], when(d["consentAt"]), d["consent"])
}

// consentWhy says why consent stopped a send.
func consentWhy(d map[string]string, purpose string) string {
	switch d["consent"] {
	case "":
		return "no consent"
	case consentNone:
		return fmt.Sprintf("no consent on record (%s messages need an explicit grant)", purpose)
	case consentNoPatient:
		return "no consent can be looked up: the event names no usable patient id"
	}
	return fmt.Sprintf("consent %s by %s at %s (record %s)", d["consentState"], d["consentSource"], when(d["consentAt"]), d["consent"])
}

// stepName names a step for people: "step 2 of appointment-reminder".
// id is an object id "<journey>/<instance>/<step>" (or detail step, for
// a message).
func stepName(objectID, detailStep, journey string) string {
	id := objectID
	if detailStep != "" {
		id = detailStep
	}
	parts := strings.Split(id, "/")
	if len(parts) == 3 && journey != "" {
		return fmt.Sprintf("step %s of %s", parts[2], journey)
	}
	if journey != "" {
		return "journey " + journey
	}
	return id
}

// consentParts splits a consent object id "<hash>/<channel>/<purpose>".
func consentParts(id string) (channel, purpose string) {
	parts := strings.Split(id, "/")
	if len(parts) == 3 {
		return parts[1], parts[2]
	}
	return "?", "?"
}

// when shows an RFC 3339 detail value as a UTC time, or "an unrecorded
// time".
func when(v string) string {
	if v == "" {
		return "an unrecorded time"
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return v
	}
	return t.UTC().Format(time.RFC3339)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
