package catalog_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

const (
	examplesJourneys  = "../../../../deploy/examples/journeys"
	examplesTemplates = "../../../../deploy/examples/templates"
)

func TestLoadExamples(t *testing.T) {
	set, err := catalog.Load(examplesJourneys, examplesTemplates, time.UTC)
	if err != nil {
		t.Fatalf("Load(examples) = %v", err)
	}
	want := []*catalog.Journey{
		{
			ID:      "appointment-confirmation",
			Purpose: catalog.PurposeTreatment,
			Trigger: "appointment.booked",
			Key:     catalog.KeySubject,
			Steps: []catalog.Step{{
				Kind: catalog.StepSend, Send: catalog.ChannelEmail, Template: "appointment-confirmation", Security: catalog.SecurityPHI,
			}},
			File: "appointment-confirmation.yaml",
		},
		{
			ID:       "appointment-reminder",
			Purpose:  catalog.PurposeTreatment,
			Trigger:  "appointment.booked",
			Key:      catalog.KeySubject,
			CancelOn: []string{"appointment.cancelled", "appointment.noshow"},
			ReplanOn: []string{"appointment.rescheduled"},
			Steps: []catalog.Step{
				{Kind: catalog.StepWaitUntil, Security: catalog.SecurityPHI},
				{Kind: catalog.StepSend, Send: catalog.ChannelEmail, Template: "appointment-reminder", Security: catalog.SecurityPHI},
			},
			QuietHours: &catalog.QuietHours{Start: 21 * 60, End: 8 * 60},
			File:       "appointment-reminder.yaml",
		},
		{
			ID:      "discharge-follow-up",
			Purpose: catalog.PurposeTreatment,
			Trigger: "encounter.discharged",
			Key:     catalog.KeySubject,
			Steps: []catalog.Step{
				{Kind: catalog.StepWait, Wait: 48 * time.Hour, Security: catalog.SecurityPHI},
				{Kind: catalog.StepSend, Send: catalog.ChannelEmail, Template: "discharge-check-in", Security: catalog.SecurityPHI},
			},
			QuietHours: &catalog.QuietHours{Start: 20 * 60, End: 9 * 60},
			File:       "discharge-follow-up.yaml",
		},
		{
			ID:      "lab-result-available",
			Purpose: catalog.PurposeTreatment,
			Trigger: "lab_result.final",
			Key:     catalog.KeySubject,
			Steps: []catalog.Step{
				{Kind: catalog.StepSend, Send: catalog.ChannelEmail, Template: "lab-result-available", Security: catalog.SecurityNoPHI},
				{Kind: catalog.StepSend, Send: catalog.ChannelSMS, Template: "lab-result-available-sms", Security: catalog.SecurityPHI},
			},
			QuietHours: &catalog.QuietHours{Start: 21 * 60, End: 8 * 60},
			File:       "lab-result-available.yaml",
		},
		{
			ID:      "wellness-newsletter",
			Purpose: catalog.PurposeMarketing,
			Trigger: "encounter.discharged",
			Key:     catalog.KeySubject,
			Steps: []catalog.Step{
				{Kind: catalog.StepWait, Wait: 720 * time.Hour, Security: catalog.SecurityPHI},
				{Kind: catalog.StepSend, Send: catalog.ChannelEmail, Template: "wellness-newsletter", Security: catalog.SecurityNoPHI},
			},
			QuietHours:   &catalog.QuietHours{Start: 20 * 60, End: 9 * 60},
			FrequencyCap: &catalog.FrequencyCap{Max: 2, Per: 720 * time.Hour},
			File:         "wellness-newsletter.yaml",
		},
	}
	got := set.Journeys()
	opts := cmp.Options{
		cmpopts.IgnoreUnexported(catalog.Journey{}, catalog.Step{}),
		cmpopts.IgnoreFields(catalog.Journey{}, "Version", "When"),
		cmpopts.IgnoreFields(catalog.Step{}, "WaitUntil"),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Journeys() mismatch (-want +got):\n%s", diff)
	}
	if len(got) == 5 {
		if got[0].When != nil || got[1].When.String() != "event.appointment.start > now" || got[2].When.String() != "patient.age >= 18" ||
			got[1].Steps[0].WaitUntil.String() != `event.appointment.start - duration("24h")` {
			t.Errorf("expressions not loaded as written")
		}
		for _, j := range got {
			if len(j.Version) != 12 {
				t.Errorf("%s Version = %q, want 12 hex digits", j.ID, j.Version)
			}
		}
	}
	for _, id := range []string{"appointment-confirmation", "appointment-reminder", "discharge-check-in", "lab-result-available", "lab-result-available-sms"} {
		if _, ok := set.Template(id); !ok {
			t.Errorf("template %s not loaded", id)
		}
	}
	if n := len(set.Match("any-tenant", "appointment.booked")); n != 2 {
		t.Errorf("Match(appointment.booked) = %d journeys, want 2", n)
	}
	if n := len(set.Match("any-tenant", "appointment.cancelled")); n != 0 {
		t.Errorf("Match(appointment.cancelled) = %d journeys, want 0", n)
	}
	if n := len(set.CancelledBy("any-tenant", "appointment.noshow")); n != 1 {
		t.Errorf("CancelledBy(appointment.noshow) = %d journeys, want 1", n)
	}
}

// goodTemplate is a valid template with id "confirm".
const goodTemplate = `id: confirm
channel: email
subject: "Hello {{.Patient.GivenName}}"
text: "Hello"
html: "<p>Hello</p>"
fields: [patient.given_name]
`

// goodJourney is a valid journey with id "a".
const goodJourney = `id: a
purpose: treatment
trigger: appointment.booked
steps:
  - send: email
    template: confirm
`

// writeFiles writes name → content files into a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// problems loads the files and returns the problems as "file:line: message"
// with file relative to its directory.
func problems(t *testing.T, journeys, templates map[string]string, opts ...catalog.LoadOption) []string {
	t.Helper()
	jdir, tdir := writeFiles(t, journeys), writeFiles(t, templates)
	_, err := catalog.Load(jdir, tdir, time.UTC, opts...)
	if err == nil {
		return nil
	}
	le, ok := errors.AsType[*catalog.LoadError](err)
	if !ok {
		t.Fatalf("Load() error %T %v, want *LoadError", err, err)
	}
	var out []string
	for _, p := range le.Problems {
		s := p.String()
		s = strings.TrimPrefix(s, jdir+string(filepath.Separator))
		s = strings.TrimPrefix(s, tdir+string(filepath.Separator))
		out = append(out, s)
	}
	return out
}

func TestLoadRejectsBadJourneys(t *testing.T) {
	tests := []struct {
		name string
		give map[string]string // journey files
		want []string
	}{
		{
			name: "unknown field",
			give: map[string]string{"a.yaml": goodJourney + "owner: care-ops\n"},
			want: []string{`a.yaml:7: unknown field "owner" (known fields: id, purpose, tenant, trigger, when, key, cancel_on, replan_on, quiet_hours, frequency_cap, steps)`},
		},
		{
			name: "misspelt field",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "trigger:", "triger:", 1)},
			want: []string{
				`a.yaml:1: missing required field "trigger"`,
				`a.yaml:3: unknown field "triger" (did you mean "trigger"?)`,
			},
		},
		{
			name: "unknown trigger",
			give: map[string]string{"appointment.yaml": strings.Replace(goodJourney, "appointment.booked", "appointment.boked", 1)},
			want: []string{`appointment.yaml:3: trigger "appointment.boked" is not a known event (known: appointment.booked, appointment.rescheduled, appointment.cancelled, appointment.noshow, lab_result.final, lab_result.amended, encounter.admitted, encounter.discharged, patient.updated, form.submitted)`},
		},
		{
			name: "bad wait_for steps",
			give: map[string]string{"a.yaml": goodJourney +
				"  - wait_for: form.sent\n    timeout: 48h\n" + // 7
				"  - wait_for: form.submitted\n" + // 9
				"  - wait_for: form.submitted\n    timeout: 2d\n    on_timeout:\n      - wait: 1h\n      - send: email\n        template: nope\n" + // 10
				"  - wait_for: appointment.booked\n    timeout: 1h\n    on_timeout:\n      - wait_for: form.submitted\n        timeout: 1h\n" + // 16
				"  - wait: 1h\n    timeout: 1h\n" + // 21
				"  - on_timeout:\n      - send: email\n        template: confirm\n", // 23
			},
			want: []string{
				`a.yaml:7: step 2: wait_for "form.sent" is not a known event (known: appointment.booked, appointment.rescheduled, appointment.cancelled, appointment.noshow, lab_result.final, lab_result.amended, encounter.admitted, encounter.discharged, patient.updated, form.submitted)`,
				`a.yaml:9: step 3: missing "timeout: <duration>": how long to wait for form.submitted`,
				`a.yaml:11: step 4: timeout "2d" is not a duration such as 30m, 24h or 48h (units: s, m, h)`,
				`a.yaml:13: step 4: on_timeout step 1: only send steps are allowed inside on_timeout for now`,
				`a.yaml:19: step 5: on_timeout step 1: wait_for is not allowed inside on_timeout (only send steps are, for now)`,
				`a.yaml:22: step 6: "timeout" and "on_timeout" belong to wait_for steps, not to a wait step`,
				`a.yaml:23: step 7: "timeout" and "on_timeout" belong to wait_for steps: add "wait_for: <event>"`,
			},
		},
		{
			name: "wait_for own trigger, cancel_on, missing on_timeout template",
			give: map[string]string{
				"a.yaml": goodJourney + "  - wait_for: appointment.booked\n    timeout: 1h\n",
				"b.yaml": strings.Replace(goodJourney, "id: a", "id: b", 1) + "  - wait_for: form.submitted\n    timeout: 1h\n" +
					"    on_timeout:\n      - send: email\n        template: nope\ncancel_on: [form.submitted]\n",
			},
			want: []string{
				`a.yaml:7: step 2: wait_for "appointment.booked" is the journey's own trigger: that event starts a new instance instead`,
				`b.yaml:7: step 2: wait_for "form.submitted" is listed in cancel_on too: the event would cancel the instance it answers`,
				`b.yaml:11: step 2: on_timeout step 1: template "nope" does not exist in TEMPLATES (known: confirm)`,
			},
		},
		{
			name: "bad frequency caps",
			give: map[string]string{
				"a.yaml": goodJourney + "frequency_cap: {max: 0, per: 1d, every: 2}\n",
				"b.yaml": strings.Replace(goodJourney, "id: a", "id: b", 1) + "frequency_cap: 3\n",
				"c.yaml": strings.Replace(goodJourney, "id: a", "id: c", 1) + "frequency_cap: {max: 2}\n",
			},
			want: []string{
				`a.yaml:7: frequency_cap: max "0" must be a whole number of messages from 1 to 1000`,
				`a.yaml:7: frequency_cap: per "1d" must be a duration from 1h to 744h (31 days), such as 24h or 168h`,
				`a.yaml:7: frequency_cap: unknown field "every" (known fields: max, per)`,
				`b.yaml:7: frequency_cap must be a group of fields such as frequency_cap: {max: 3, per: 24h}`,
				`c.yaml:7: frequency_cap: missing "per" (e.g. frequency_cap: {max: 3, per: 24h})`,
			},
		},
		{
			name: "good frequency cap",
			give: map[string]string{"a.yaml": goodJourney + "frequency_cap: {max: 2, per: 24h}\n"},
		},
		{
			name: "good wait_for",
			give: map[string]string{"a.yaml": goodJourney + "  - wait_for: form.submitted\n    timeout: 48h\n    on_timeout:\n      - send: email\n        template: confirm\n"},
		},
		{
			name: "bad if and else",
			give: map[string]string{"a.yaml": goodJourney +
				"  - if: patient.age >= 18\n" + // 7
				"  - if: patient.age\n    send: email\n    template: confirm\n" + // 8
				"  - send: email\n    template: confirm\n    else:\n      - send: email\n        template: confirm\n" + // 11
				"  - if: patient.has_email\n    wait: 1h\n    else:\n      - wait: 1h\n      - send: email\n        template: confirm\n        if: now > now\n" + // 16
				"  - when: patient.has_email\n    wait: 1h\n", // 23
			},
			want: []string{
				`a.yaml:7: step 2: missing what the step does: "send: email", "wait: <duration>", "wait_until: <time expression>" or "wait_for: <event>"`,
				`a.yaml:8: step 3: if: the expression is a number (int), but it must be true or false (bool)`,
				`a.yaml:13: step 4: else needs an "if: <condition>" on the same step`,
				`a.yaml:19: step 5: else step 1: only send steps are allowed inside else for now`,
				`a.yaml:22: step 5: else step 2: if is not allowed here (only on the journey's own steps, not inside on_timeout or else)`,
				`a.yaml:23: step 6: a step's condition is written "if: <CEL>" (when: is the journey's condition)`,
			},
		},
		{
			name: "good if and else",
			give: map[string]string{"a.yaml": goodJourney +
				"  - if: patient.has_email && event.appointment.service_type != \"telehealth\"\n    wait: 1h\n" +
				"  - if: patient.age >= 18\n    send: email\n    template: confirm\n    else:\n      - send: email\n        template: confirm\n"},
		},
		{
			name: "replan without wait and quiet hours",
			give: map[string]string{"a.yaml": goodJourney + "replan_on: [appointment.rescheduled]\nquiet_hours: 21:00-08:00\n"},
			want: []string{
				`a.yaml:8: quiet_hours must be a group of fields such as quiet_hours: {start: "21:00", end: "08:00"}`,
			},
		},
		{
			name: "replan without wait",
			give: map[string]string{"a.yaml": goodJourney + "replan_on: [appointment.rescheduled]\n"},
			want: []string{`a.yaml:7: replan_on has nothing to re-plan: the journey has no wait or wait_until step`},
		},
		{
			name: "bad replan_on",
			give: map[string]string{"a.yaml": goodJourney + "  - wait: 1h\n" +
				"cancel_on: [appointment.cancelled]\nreplan_on: [appointment.booked, appointment.cancelled, appointment.moved, appointment.cancelled]\n"},
			want: []string{
				`a.yaml:9: replan_on: "appointment.moved" is not a known event (known: appointment.booked, appointment.rescheduled, appointment.cancelled, appointment.noshow, lab_result.final, lab_result.amended, encounter.admitted, encounter.discharged, patient.updated, form.submitted)`,
				`a.yaml:9: replan_on: "appointment.cancelled" is listed twice`,
				`a.yaml:9: replan_on lists "appointment.booked", the journey's own trigger: that event starts (and re-plans) the instance already`,
				`a.yaml:9: replan_on lists "appointment.cancelled", which cancel_on lists too: an event either cancels the instance or moves its timers`,
			},
		},
		{
			name: "bad quiet hours",
			give: map[string]string{
				"a.yaml": goodJourney + "quiet_hours: {start: \"25:00\", stop: \"08:00\"}\n",
				"b.yaml": strings.Replace(goodJourney, "id: a", "id: b", 1) + "quiet_hours: {start: \"8:00\", end: \"08:00\"}\n",
				"c.yaml": strings.Replace(goodJourney, "id: a", "id: c", 1) + "quiet_hours: {start: \"08:00\", end: \"08:00\"}\n",
			},
			want: []string{
				`a.yaml:7: quiet_hours: start "25:00" is not a time of day such as "21:00" (24-hour HH:MM)`,
				`a.yaml:7: quiet_hours: unknown field "stop" (known fields: start, end)`,
				`a.yaml:7: quiet_hours: missing "end" (e.g. quiet_hours: {start: "21:00", end: "08:00"})`,
				`b.yaml:7: quiet_hours: start "8:00" is not a time of day such as "21:00" (24-hour HH:MM)`,
				`c.yaml:7: quiet_hours: start and end are the same time: the window would be empty or the whole day`,
			},
		},
		{
			name: "critical",
			give: map[string]string{
				"a.yaml": goodJourney + "    critical: maybe\n",
				"b.yaml": strings.Replace(goodJourney, "id: a", "id: b", 1) + "  - wait: 1h\n    critical: true\n",
				"c.yaml": strings.Replace(goodJourney, "id: a", "id: c", 1) + "critical: true\n",
			},
			want: []string{
				`a.yaml:7: step 1: critical must be true or false`,
				`b.yaml:7: step 2: "template", "security" and "critical" belong to send steps; a wait step has no message`,
				`c.yaml:7: "critical" is not supported yet (coming with quiet hours (critical: true belongs on a send step))`,
			},
		},
		{
			name: "marketing never critical",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "treatment", "marketing", 1) + "    critical: true\n"},
			want: []string{
				`a.yaml:7: step 1: critical: true is not allowed in a marketing journey: marketing never bypasses quiet hours`,
			},
		},
		{
			name: "sms step",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "send: email", "send: sms", 1)},
			want: []string{`a.yaml:6: step 1: template "confirm" is for email, but the step sends sms`},
		},
		{
			name: "fallback without its template",
			give: map[string]string{"a.yaml": goodJourney + "    fallback: sms\n"},
			want: []string{`a.yaml:7: step 1: fallback: sms needs the sms template "confirm-sms", which does not exist (or name another with fallback_template:)`},
		},
		{
			name: "fallback to the same channel",
			give: map[string]string{"a.yaml": goodJourney + "    fallback: email\n"},
			want: []string{`a.yaml:7: step 1: fallback: email is the channel the step already sends on; fall back to the other one`},
		},
		{
			name: "fallback to a channel that is not one",
			give: map[string]string{"a.yaml": goodJourney + "    fallback: pigeon\n"},
			want: []string{`a.yaml:7: step 1: fallback "pigeon" is not a channel; use fallback: email or fallback: sms`},
		},
		{
			name: "fallback on a wait",
			give: map[string]string{"a.yaml": goodJourney + "  - wait: 1h\n    fallback: email\n"},
			want: []string{`a.yaml:7: step 2: "fallback" belongs to send steps; a wait step has no message`},
		},
		{
			name: "cancellation without a wait",
			give: map[string]string{"a.yaml": goodJourney + "when: event.appointment.service_type != \"telehealth\"\ncancel_on: [appointment.cancelled]\n"},
			want: []string{`a.yaml:8: cancel_on has nothing to cancel: the journey has no wait or wait_until step`},
		},
		{
			name: "bad condition",
			give: map[string]string{"a.yaml": goodJourney + "when: patient.name == \"x\"\n"},
			want: []string{`a.yaml:7:14: when: column 8: undefined field 'name': patient has age, language, has_email and has_phone (conditions see no names, identifiers, contact points or birth date)`},
		},
		{
			name: "condition not bool",
			give: map[string]string{"a.yaml": goodJourney + "when: patient.age\n"},
			want: []string{`a.yaml:7: when: the expression is a number (int), but it must be true or false (bool)`},
		},
		{
			name: "condition on two lines",
			give: map[string]string{"a.yaml": goodJourney + "when: >-\n  patient.age >= 18 &&\n  visit.kind == \"x\"\n"},
			want: []string{`a.yaml:7: when: column 22: unknown name 'visit': a condition can use only event, patient and now`},
		},
		{
			name: "empty condition",
			give: map[string]string{"a.yaml": goodJourney + "when:\n"},
			want: []string{`a.yaml:7: when is empty; write a CEL expression such as patient.age >= 18`},
		},
		{
			name: "bad waits",
			give: map[string]string{"a.yaml": goodJourney + "  - wait: 3 days\n  - wait: 500ms\n  - wait_until: event.appointment.start - 72\n  - wait_until: event.appointment.start > now\n"},
			want: []string{
				`a.yaml:7: step 2: wait "3 days" is not a duration such as 30m, 24h or 72h (units: s, m, h)`,
				`a.yaml:8: step 3: wait 500ms must be at least 1s and at most 17568h (two years)`,
				`a.yaml:9:41: step 4: wait_until: column 25: found no matching overload for '_-_' applied to '(timestamp, int)': '-' cannot combine a time (timestamp) and a number (int); write a span of time as duration("24h") and a time as timestamp("2026-01-02T15:04:05Z")`,
				`a.yaml:10: step 5: wait_until: the expression is true or false (bool), but it must be a time (timestamp)`,
			},
		},
		{
			name: "a step does one thing",
			give: map[string]string{"a.yaml": goodJourney + "    wait: 24h\n  - wait: 1h\n    template: confirm\n"},
			want: []string{
				`a.yaml:5: step 1: a step does one thing, but this one has send and wait: make them separate steps, each starting with "- "`,
				`a.yaml:8: step 2: "template", "security" and "critical" belong to send steps; a wait step has no message`,
			},
		},
		{
			name: "bad cancel_on",
			give: map[string]string{"a.yaml": goodJourney + "  - wait: 1h\ncancel_on: [appointment.booked, appointment.canceled, appointment.noshow, appointment.noshow]\n"},
			want: []string{
				`a.yaml:8: cancel_on: "appointment.canceled" is not a known event (known: appointment.booked, appointment.rescheduled, appointment.cancelled, appointment.noshow, lab_result.final, lab_result.amended, encounter.admitted, encounter.discharged, patient.updated, form.submitted)`,
				`a.yaml:8: cancel_on: "appointment.noshow" is listed twice`,
				`a.yaml:8: cancel_on lists "appointment.booked", the journey's own trigger: the event that starts an instance would cancel it`,
			},
		},
		{
			name: "cancel_on not a list",
			give: map[string]string{"a.yaml": goodJourney + "  - wait: 1h\ncancel_on: appointment.cancelled\n"},
			want: []string{`a.yaml:8: cancel_on must be a list of events such as [appointment.cancelled, appointment.noshow]`},
		},
		{
			name: "other key",
			give: map[string]string{"a.yaml": goodJourney + "key: event.patient\n"},
			want: []string{`a.yaml:7: key "event.patient" is not supported yet: only "event.subject" (one instance per appointment, result, ...) is; other keys come with CEL conditions`},
		},
		{
			name: "missing template",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "template: confirm", "template: confirmation", 1)},
			want: []string{`a.yaml:6: step 1: template "confirmation" does not exist in TEMPLATES (known: confirm)`},
		},
		{
			name: "duplicate id",
			give: map[string]string{"a.yaml": goodJourney, "b.yml": goodJourney},
			want: []string{`b.yml:1: journey id "a" is already used by a.yaml`},
		},
		{
			name: "bad purpose",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "treatment", "sales", 1)},
			want: []string{`a.yaml:2: purpose "sales" must be one of treatment, operations, marketing`},
		},
		{
			name: "marketing inside on_timeout and else never critical",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "treatment", "marketing", 1) +
				"  - wait_for: form.submitted\n    timeout: 1h\n    on_timeout:\n      - send: email\n        template: confirm\n        critical: true\n"},
			want: []string{`a.yaml:12: step 2: on_timeout step 1: critical: true is not allowed in a marketing journey: marketing never bypasses quiet hours`},
		},
		{
			name: "bad id and security",
			give: map[string]string{"a.yaml": strings.Replace(goodJourney, "id: a", "id: Appointment Confirmation", 1) + "    security: secret\n"},
			want: []string{
				`a.yaml:1: id "Appointment Confirmation" may only use lowercase letters, digits and '-' (at most 64), e.g. "appointment-confirmation"`,
				`a.yaml:7: step 1: security "secret" must be phi or no-phi`,
			},
		},
		{
			name: "no steps",
			give: map[string]string{"a.yaml": "id: a\npurpose: treatment\ntrigger: appointment.booked\nsteps: []\n"},
			want: []string{`a.yaml:4: steps is empty; a journey needs at least one step such as "- send: email"`},
		},
		{
			name: "step without send",
			give: map[string]string{"a.yaml": "id: a\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n  - template: confirm\n"},
			want: []string{`a.yaml:5: step 1: missing what the step does: "send: email", "wait: <duration>", "wait_until: <time expression>" or "wait_for: <event>"`},
		},
		{
			name: "field twice",
			give: map[string]string{"a.yaml": goodJourney + "id: b\n"},
			want: []string{`a.yaml:7: "id" is given twice (first on line 1)`},
		},
		{
			name: "not yaml",
			give: map[string]string{"a.yaml": "id: a\n  purpose: [treatment\n"},
			want: []string{`a.yaml:2: not valid YAML: mapping values are not allowed in this context`},
		},
		{
			name: "two documents",
			give: map[string]string{"a.yaml": goodJourney + "---\n" + goodJourney},
			want: []string{`a.yaml:7: "---" starts a second YAML document; put one journey in each file`},
		},
		{
			name: "empty file",
			give: map[string]string{"a.yaml": "# nothing yet\n"},
			want: []string{`a.yaml: the file is empty; it should describe one journey`},
		},
		{
			name: "other files are ignored",
			give: map[string]string{"a.yaml": goodJourney, "README.md": "not a journey", ".b.yaml": "editor swap file"},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.give, map[string]string{"confirm.yaml": goodTemplate})
			for i := range got {
				got[i] = templatesDirRE(got[i])
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// templatesDirRE replaces the temporary templates directory in a message.
func templatesDirRE(s string) string {
	const marker = "does not exist in "
	i := strings.Index(s, marker)
	if i < 0 {
		return s
	}
	rest := s[i+len(marker):]
	j := strings.Index(rest, " (known")
	return s[:i+len(marker)] + "TEMPLATES" + rest[j:]
}

func TestLoadSMSStepWithFallback(t *testing.T) {
	journeys := map[string]string{"a.yaml": strings.Replace(goodJourney, "send: email\n    template: confirm", "send: sms\n    template: confirm-sms\n    fallback: email", 1)}
	templates := map[string]string{
		"confirm.yaml":     goodTemplate,
		"confirm-sms.yaml": "id: confirm-sms\nchannel: sms\ntext: |\n  Hello {{.Patient.GivenName}}, see you on {{date .Appointment.Start}}.\nfields: [patient.given_name, event.appointment.start]\n",
	}
	set, err := catalog.Load(writeFiles(t, journeys), writeFiles(t, templates), time.UTC)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	st := set.Journeys()[0].Steps[0]
	if st.Send != catalog.ChannelSMS || st.Fallback != catalog.ChannelEmail || st.FallbackTemplate != "confirm" {
		t.Errorf("step = %+v, want sms falling back to email template confirm", st)
	}
	tmpl, _ := set.Template("confirm-sms")
	msg, err := tmpl.Render(catalog.Data{Patient: catalog.Patient{GivenName: "Ana"}, Appointment: &catalog.Appointment{Start: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}})
	if err != nil || !strings.HasPrefix(msg.Text, "Hello Ana, see you on") || strings.HasSuffix(msg.Text, "\n") || msg.Subject != "" || msg.HTML != "" {
		t.Errorf("Render() = %+v, %v", msg, err)
	}
}

func TestLoadRejectsBadTemplates(t *testing.T) {
	tests := []struct {
		name string
		give string // the template file confirm.yaml
		want []string
	}{
		{
			name: "parse error",
			give: "id: confirm\nchannel: email\nsubject: Hello\ntext: |\n  Hello\n  {{if .Patient.GivenName}}\nhtml: <p>Hi</p>\nfields: []\n",
			want: []string{
				`a.yaml:6: step 1: template "confirm" is not loaded (the templates have problems, listed with this one)`,
				`confirm.yaml:7: text: unexpected EOF`,
			},
		},
		{
			name: "misspelt field",
			give: "id: confirm\nchannel: email\nsubject: Hello\ntext: |\n  Hello\n  {{.Patient.GivenNam}}\nhtml: <p>Hi</p>\nfields: []\n",
			want: []string{
				`a.yaml:6: step 1: template "confirm" is not loaded (the templates have problems, listed with this one)`,
				`confirm.yaml:6: text: .Patient.GivenNam is not a field templates can use (did you mean .Patient.GivenName?)`,
			},
		},
		{
			name: "unknown function",
			give: "id: confirm\nchannel: email\nsubject: \"{{datetime .Appointment.Start}}\"\ntext: Hello\nhtml: <p>Hi</p>\nfields: []\n",
			want: []string{
				`a.yaml:6: step 1: template "confirm" is not loaded (the templates have problems, listed with this one)`,
				`confirm.yaml:3: subject: function "datetime" not defined`,
			},
		},
		{
			name: "sms template",
			give: strings.Replace(goodTemplate, "channel: email", "channel: sms", 1),
			want: []string{
				`a.yaml:6: step 1: template "confirm" is not loaded (the templates have problems, listed with this one)`,
				`confirm.yaml:3: subject has no place in an SMS template (channel: sms): a text message is only its text`,
				`confirm.yaml:5: html has no place in an SMS template (channel: sms): a text message is only its text`,
			},
		},
		{
			name: "missing html and unknown field",
			give: "id: confirm\nchannel: email\nsubject: Hello\ntext: Hello\nbody: <p>Hi</p>\nfields: []\n",
			want: []string{
				`a.yaml:6: step 1: template "confirm" is not loaded (the templates have problems, listed with this one)`,
				`confirm.yaml:1: missing required field "html"`,
				`confirm.yaml:5: unknown field "body" (known fields: id, channel, language, security, fields, subject, text, html)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, map[string]string{"a.yaml": goodJourney}, map[string]string{"confirm.yaml": tt.give})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadReportsEveryProblemTogether(t *testing.T) {
	journeys := map[string]string{
		"a.yaml": strings.Replace(goodJourney, "treatment", "sales", 1),
		"b.yaml": "id: b\npurpose: treatment\ntrigger: lab_result.ready\nsteps:\n  - wait: 24 h\n  - send: email\n    template: results\n",
		"c.yaml": strings.Replace(goodJourney, "id: a", "id: c", 1),
	}
	templates := map[string]string{
		"confirm.yaml": goodTemplate,
		"other.yaml":   "id: other\nchannel: email\nsubject: Hi\ntext: Hi\nhtml: <p>Hi</p>\nlanguage: english\nfields: []\n",
	}
	want := []string{
		`a.yaml:2: purpose "sales" must be one of treatment, operations, marketing`,
		`b.yaml:3: trigger "lab_result.ready" is not a known event (known: appointment.booked, appointment.rescheduled, appointment.cancelled, appointment.noshow, lab_result.final, lab_result.amended, encounter.admitted, encounter.discharged, patient.updated, form.submitted)`,
		`b.yaml:5: step 1: wait "24 h" is not a duration such as 30m, 24h or 72h (units: s, m, h)`,
		`b.yaml:7: step 2: template "results" is not loaded (the templates have problems, listed with this one)`,
		`other.yaml:6: language "english" is not a BCP-47 language tag such as "en" or "es-MX"`,
	}
	got := problems(t, journeys, templates)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestLoadMissingDirectories(t *testing.T) {
	_, err := catalog.Load("/nonexistent/journeys", "/nonexistent/templates", time.UTC)
	want := "journeys and templates have 2 problems:\n" +
		"  /nonexistent/journeys: cannot read directory: no such file or directory\n" +
		"  /nonexistent/templates: cannot read directory: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load() = %v, want\n%s", err, want)
	}
}

func TestLoadTenantJourneys(t *testing.T) {
	jdir := writeFiles(t, map[string]string{
		"all.yaml":  goodJourney,
		"east.yaml": strings.Replace(goodJourney, "id: a", "id: east\ntenant: east", 1),
	})
	set, err := catalog.Load(jdir, writeFiles(t, map[string]string{"confirm.yaml": goodTemplate}), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(js []*catalog.Journey) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	got := map[string][]string{
		"east": ids(set.Match("east", "appointment.booked")),
		"west": ids(set.Match("west", "appointment.booked")),
	}
	want := map[string][]string{"east": {"a", "east"}, "west": {"a"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Match (-want +got):\n%s", diff)
	}
}
