package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/carenotify/carenotify/services/journey/internal/expr"
)

// Purpose is why a journey contacts patients; it decides which consent a
// message needs.
type Purpose string

// Purposes.
const (
	PurposeTreatment  Purpose = "treatment"
	PurposeOperations Purpose = "operations"
	PurposeMarketing  Purpose = "marketing"
)

// Channel is how a step reaches the patient.
type Channel string

// Channels. Email and SMS are built.
const (
	ChannelEmail Channel = "email"
	// ChannelSMS is a text message through the sms service.
	ChannelSMS Channel = "sms"
)

// Security says whether a step's message may carry PHI, which decides how
// the channel may transmit it.
type Security string

// Security levels.
const (
	// SecurityPHI content needs verified TLS or message encryption. The default.
	SecurityPHI Security = "phi"
	// SecurityNoPHI content carries no PHI and may travel over opportunistic TLS.
	SecurityNoPHI Security = "no-phi"
)

// KeySubject is the only instance key supported yet: one journey instance
// per resource the event is about (its subject_ref).
const KeySubject = "event.subject"

// Journey is one loaded journey. A Journey in a [Set] must not be modified.
type Journey struct {
	// ID is unique across the journeys directory.
	ID string
	// Purpose is treatment or operations.
	Purpose Purpose
	// Tenant restricts the journey to one tenant; empty means every tenant.
	Tenant string
	// Trigger is the event that starts the journey, "<kind>.<action>".
	Trigger string
	// Key names what identifies one instance of the journey; always
	// [KeySubject] for now.
	Key string
	// When, if not nil, is the condition (a bool CEL expression) an event
	// must meet to start the journey.
	When *expr.Expr
	// CancelOn lists the events ("<kind>.<action>") that cancel the
	// pending timers of an instance (same key).
	CancelOn []string
	// ReplanOn lists the events ("<kind>.<action>") that re-plan the
	// pending timers of an instance (same key) from the new event.
	ReplanOn []string
	// Steps run in order.
	Steps []Step
	// QuietHours, if not nil, is the daily window (in the tenant's time
	// zone) in which send steps are deferred to its end.
	QuietHours *QuietHours
	// FrequencyCap, if not nil, bounds the messages of the journey's
	// purpose a patient gets; critical steps are exempt.
	FrequencyCap *FrequencyCap
	// File is the file name, relative to the journeys directory.
	File string
	// Version is a short content hash of the file.
	Version string
	// Revision is the journey's version number in the versioned store
	// (1, 2, …), or 0 when it was loaded from a directory only.
	Revision int

	idLine int // for the duplicate check
}

// StepKind is what a step does.
type StepKind string

// Step kinds.
const (
	// StepSend sends a message.
	StepSend StepKind = "send"
	// StepWait waits for a duration from when the step is planned.
	StepWait StepKind = "wait"
	// StepWaitUntil waits until a time computed from the event.
	StepWaitUntil StepKind = "wait_until"
	// StepWaitFor waits for an event on the same key, at most Timeout.
	StepWaitFor StepKind = "wait_for"
)

// Step is one step of a journey: sending an email, or waiting.
type Step struct {
	// Kind says which of the other fields apply.
	Kind StepKind
	// Wait is the duration of a [StepWait].
	Wait time.Duration
	// WaitUntil is the timestamp expression of a [StepWaitUntil].
	WaitUntil *expr.Expr
	// Send is the channel the step sends on.
	Send Channel
	// Template is the id of the template the step renders.
	Template string
	// Fallback, when set, is the channel a send step uses instead when the
	// patient has no usable contact point on Send, their consent does
	// not allow Send, or the Send channel refuses the message.
	Fallback Channel
	// FallbackTemplate is the template of the fallback message
	// (fallback_template:, by default Template without its "-sms" suffix
	// for an email fallback, or with "-sms" added for an SMS one).
	FallbackTemplate string
	// Security is the PHI level of the message.
	Security Security
	// Critical send steps are not deferred by quiet hours (never in a
	// marketing journey).
	Critical bool
	// WaitFor is the event ("<kind>.<action>") a [StepWaitFor] waits for.
	WaitFor string
	// Timeout is how long a [StepWaitFor] waits.
	Timeout time.Duration
	// OnTimeout are the steps (send steps only) a [StepWaitFor] runs when
	// its timeout passes before the event; the journey then ends.
	OnTimeout []Step
	// If, if not nil, is the condition (a bool CEL expression, the
	// environment of when:) under which the step runs, evaluated when it
	// comes up.
	If *expr.Expr
	// Else are the steps (send steps only) run instead when If is false.
	Else []Step

	index        int    // 0-based position in the file, for load messages
	prefix       string // "step 2: " or "step 2: on_timeout step 1: ", for load messages
	line         int    // of the template field, for the load check
	fallbackLine int    // of the fallback field
	criticalLine int    // of the critical field
}

// Fields of a journey file, in the order the README lists them.
var journeyFields = []string{"id", "purpose", "tenant", "trigger", "when", "key", "cancel_on", "replan_on", "quiet_hours", "frequency_cap", "steps"}

// Fields of the steps: a send step, a wait step, a wait_until step.
var stepFields = []string{"if", "else", "send", "template", "fallback", "fallback_template", "security", "critical", "wait", "wait_until", "wait_for", "timeout", "on_timeout"}

// Fields of the planned journey format that are not built yet, with what
// they come with. They are rejected, never ignored.
var journeyNotYet = map[string]string{
	"send_window": "send windows",
	"consent":     "consent",
	"critical":    "quiet hours (critical: true belongs on a send step)",
	"timezone":    "send windows; quiet hours already follow each patient's time zone",
}

// Step kinds and step fields of the planned format that are not built yet.
var stepNotYet = map[string]string{}

// Shortest and longest wait.
const (
	minWait = time.Second
	maxWait = 2 * 366 * 24 * time.Hour
)

// Channels of the planned format that are not built yet.
var sendNotYet = map[string]string{
	"form":  "secure forms",
	"forms": "secure forms",
}

var (
	idRE     = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	tenantRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// version returns a short content hash of a file.
func version(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// parseJourney parses one journey file. name is the file name relative to
// the journeys directory and path what problems are reported against. When
// there are problems, the journey returned (nil if the file is not even a
// mapping) holds what could be read, so the caller can still check its
// templates and id; it must not run. Templates are checked by the caller.
func parseJourney(path, name string, b []byte) (*Journey, []Problem) {
	p := &fileParser{file: path}
	root := p.document(b, "journey")
	if root == nil {
		return nil, p.problems
	}
	j := &Journey{File: name, Version: version(b), Key: KeySubject}
	have := map[string]bool{}
	triggerLine, cancelLine, replanLine := root.Line, 0, 0
	for _, f := range p.fields(root, "") {
		have[f.name] = true
		switch f.name {
		case "id":
			j.idLine = f.value.Line
			if v, ok := p.scalar(f, ""); ok {
				j.ID = v
				if v != "" && !idRE.MatchString(v) {
					p.addf(f.value.Line, "id %q may only use lowercase letters, digits and '-' (at most 64), e.g. \"appointment-confirmation\"", v)
				}
			}
		case "purpose":
			if v, ok := p.scalar(f, ""); ok {
				j.Purpose = Purpose(v)
				p.purpose(f.value.Line, v)
			}
		case "tenant":
			if v, ok := p.scalar(f, ""); ok {
				j.Tenant = v
				if v != "" && !tenantRE.MatchString(v) {
					p.addf(f.value.Line, "tenant %q may only use letters, digits, '_' and '-' (or leave it out for every tenant)", v)
				}
			}
		case "trigger":
			triggerLine = f.value.Line
			if v, ok := p.scalar(f, ""); ok {
				j.Trigger = v
				if v != "" && !IsKnownTrigger(v) {
					p.addf(f.value.Line, "trigger %q is not a known event (known: %s)", v, strings.Join(knownTriggers, ", "))
				}
			}
		case "key":
			if v, ok := p.scalar(f, ""); ok && v != "" && v != KeySubject {
				p.addf(f.value.Line, "key %q is not supported yet: only %q (one instance per appointment, result, ...) is; other keys come with CEL conditions", v, KeySubject)
			}
		case "steps":
			j.Steps = p.steps(f)
		case "when":
			if v, ok := p.scalar(f, ""); ok {
				j.When = p.expression(f.value, "when", v, expr.Bool)
			}
		case "cancel_on":
			j.CancelOn = p.events(f, "cancel_on", "cancel")
			cancelLine = f.key.Line
		case "replan_on":
			j.ReplanOn = p.events(f, "replan_on", "re-plan")
			replanLine = f.key.Line
		case "quiet_hours":
			j.QuietHours = p.quietHours(f)
		case "frequency_cap":
			j.FrequencyCap = p.frequencyCap(f)
		default:
			if hint, ok := journeyNotYet[f.name]; ok {
				p.addf(f.key.Line, "%q is not supported yet (coming with %s)", f.name, hint)
				continue
			}
			p.unknownField(f, "", journeyFields)
		}
	}
	for _, name := range []string{"id", "purpose", "trigger", "steps"} {
		if !have[name] {
			p.addf(root.Line, "missing required field %q", name)
		}
	}
	if have["trigger"] && j.Trigger == "" {
		p.addf(triggerLine, "trigger is empty; it must be one of %s", strings.Join(knownTriggers, ", "))
	}
	if slices.Contains(j.CancelOn, j.Trigger) && j.Trigger != "" {
		p.addf(cancelLine, "cancel_on lists %q, the journey's own trigger: the event that starts an instance would cancel it", j.Trigger)
	}
	hasWait := slices.ContainsFunc(j.Steps, func(s Step) bool {
		return s.Kind == StepWait || s.Kind == StepWaitUntil || s.Kind == StepWaitFor
	})
	for _, st := range j.Steps {
		if st.Kind != StepWaitFor {
			continue
		}
		prefix := fmt.Sprintf("step %d: ", st.index+1)
		switch {
		case st.WaitFor == j.Trigger:
			p.addf(st.line, "%swait_for %q is the journey's own trigger: that event starts a new instance instead", prefix, st.WaitFor)
		case slices.Contains(j.CancelOn, st.WaitFor):
			p.addf(st.line, "%swait_for %q is listed in cancel_on too: the event would cancel the instance it answers", prefix, st.WaitFor)
		case slices.Contains(j.ReplanOn, st.WaitFor):
			p.addf(st.line, "%swait_for %q is listed in replan_on too: an event either answers a wait or moves timers", prefix, st.WaitFor)
		}
	}
	if len(j.CancelOn) > 0 && !hasWait && have["steps"] && len(p.problems) == 0 {
		p.addf(cancelLine, "cancel_on has nothing to cancel: the journey has no wait or wait_until step")
	}
	if slices.Contains(j.ReplanOn, j.Trigger) && j.Trigger != "" {
		p.addf(replanLine, "replan_on lists %q, the journey's own trigger: that event starts (and re-plans) the instance already", j.Trigger)
	}
	for _, ev := range j.ReplanOn {
		if slices.Contains(j.CancelOn, ev) {
			p.addf(replanLine, "replan_on lists %q, which cancel_on lists too: an event either cancels the instance or moves its timers", ev)
		}
	}
	if len(j.ReplanOn) > 0 && !hasWait && have["steps"] && len(p.problems) == 0 {
		p.addf(replanLine, "replan_on has nothing to re-plan: the journey has no wait or wait_until step")
	}
	if j.Purpose == PurposeMarketing {
		for _, st := range j.Steps {
			if st.Critical {
				p.addf(st.criticalLine, "step %d: critical: true is not allowed in a marketing journey: marketing never bypasses quiet hours", st.index+1)
			}
			for _, sub := range slices.Concat(st.OnTimeout, st.Else) {
				if sub.Critical {
					p.addf(sub.criticalLine, "%scritical: true is not allowed in a marketing journey: marketing never bypasses quiet hours", sub.prefix)
				}
			}
		}
	}
	if have["id"] && j.ID == "" {
		p.addf(j.idLine, "id is empty; give the journey a name such as \"appointment-confirmation\"")
	}
	return j, p.problems
}

// purpose checks a purpose value.
func (p *fileParser) purpose(line int, v string) {
	switch Purpose(v) {
	case PurposeTreatment, PurposeOperations:
	case PurposeMarketing:
		// Marketing messages need the patient's authorization (HIPAA
		// §164.508(a)(3)): app sends them only with an explicit grant on
		// record; quiet hours always apply (critical is refused below).
	case "":
		p.addf(line, "purpose is empty; it must be one of treatment, operations, marketing")
	default:
		p.addf(line, "purpose %q must be one of treatment, operations, marketing", v)
	}
}

// steps parses the steps list.
func (p *fileParser) steps(f field) []Step {
	if f.value.Kind != yaml.SequenceNode {
		if f.value.Kind == yaml.ScalarNode && f.value.Tag == "!!null" {
			p.addf(f.value.Line, "steps is empty; a journey needs at least one step such as \"- send: email\"")
			return nil
		}
		p.addf(f.value.Line, "steps must be a list, each step starting with \"- \"")
		return nil
	}
	if len(f.value.Content) == 0 {
		p.addf(f.value.Line, "steps is empty; a journey needs at least one step such as \"- send: email\"")
		return nil
	}
	out := make([]Step, 0, len(f.value.Content))
	for i, n := range f.value.Content {
		if s, ok := p.step(n, i); ok {
			out = append(out, s)
		}
	}
	return out
}

// expression compiles a CEL expression of type want, recording a problem
// ("<name>: <CEL message>") when it does not compile, and returns nil then.
//
// For an expression written on one line as a plain or quoted scalar,
// the problem also has the file column of CEL's first issue.
func (p *fileParser) expression(n *yaml.Node, name, src string, want expr.Type) *expr.Expr {
	line := n.Line
	if strings.TrimSpace(src) == "" {
		p.addf(line, "%s is empty; write a CEL expression such as %s", name, exampleOf(want))
		return nil
	}
	x, err := expr.Compile(src, want)
	if err != nil {
		p.addf(line, "%s: %s", name, err.Error())
		if ce, ok := errors.AsType[*expr.CompileError](err); ok && len(ce.Issues) > 0 && !strings.Contains(src, "\n") {
			switch n.Style {
			case 0:
				p.problems[len(p.problems)-1].Column = n.Column + ce.Issues[0].Column - 1
			case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
				if !strings.ContainsAny(src, `\'"`) { // escapes shift columns
					p.problems[len(p.problems)-1].Column = n.Column + ce.Issues[0].Column
				}
			}
		}
		return nil
	}
	return x
}

func exampleOf(t expr.Type) string {
	if t == expr.Timestamp {
		return `event.appointment.start - duration("24h")`
	}
	return `patient.age >= 18`
}

// branch parses the steps of a step's on_timeout or else (name): send
// steps only, for now.
func (p *fileParser) branch(f field, prefix, name string) []Step {
	if f.value.Kind != yaml.SequenceNode || len(f.value.Content) == 0 {
		p.addf(f.value.Line, "%s%s must be a list of send steps, each starting with \"- send: email\"", prefix, name)
		return nil
	}
	var out []Step
	for k, n := range f.value.Content {
		sub := fmt.Sprintf("%s%s step %d: ", prefix, name, k+1)
		st, ok := p.stepIn(n, k, sub, false)
		switch {
		case !ok:
		case st.Kind != StepSend:
			p.addf(n.Line, "%sonly send steps are allowed inside %s for now", sub, name)
		default:
			out = append(out, st)
		}
	}
	return out
}

// events parses a list of events such as cancel_on or replan_on; verb
// says what the events do, for the messages.
func (p *fileParser) events(f field, name, verb string) []string {
	example := "[appointment.cancelled, appointment.noshow]"
	if name == "replan_on" {
		example = "[appointment.rescheduled]"
	}
	if f.value.Kind != yaml.SequenceNode {
		p.addf(f.value.Line, "%s must be a list of events such as %s", name, example)
		return nil
	}
	if len(f.value.Content) == 0 {
		p.addf(f.value.Line, "%s is empty; list the events that %s, or leave it out", name, verb)
		return nil
	}
	var out []string
	for _, n := range f.value.Content {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
			p.addf(n.Line, "%s: each entry is one event such as %s", name, strings.Trim(strings.Split(example, ",")[0], "[]"))
			continue
		}
		switch {
		case !IsKnownTrigger(n.Value):
			p.addf(n.Line, "%s: %q is not a known event (known: %s)", name, n.Value, strings.Join(knownTriggers, ", "))
		case slices.Contains(out, n.Value):
			p.addf(n.Line, "%s: %q is listed twice", name, n.Value)
		default:
			out = append(out, n.Value)
		}
	}
	return out
}

// step parses step i (0-based) of a journey. A step does one thing: send,
// wait or wait_until.
func (p *fileParser) step(n *yaml.Node, i int) (Step, bool) {
	return p.stepIn(n, i, fmt.Sprintf("step %d: ", i+1), true)
}

// stepIn parses a step; prefix starts its messages, and nested says
// whether wait_for (with its own on_timeout steps) may appear.
func (p *fileParser) stepIn(n *yaml.Node, i int, prefix string, nested bool) (Step, bool) {
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, "%sa step is a group of fields such as \"send: email\" and \"template: <id>\", or \"wait: 24h\"", prefix)
		return Step{}, false
	}
	before := len(p.problems)
	s := Step{Security: SecurityPHI, index: i, prefix: prefix}
	var (
		kinds                           []string
		haveSend, haveTemplate, haveSec bool
		haveCritical                    bool
		futureKind                      bool
		haveTimeout, haveOnTimeout      bool
		timeoutLine                     int
		haveIf                          bool
		elseLine                        int
	)
	for _, f := range p.fields(n, prefix) {
		switch f.name {
		case "send":
			haveSend = true
			kinds = append(kinds, f.name)
			v, ok := p.scalar(f, prefix)
			if !ok {
				continue
			}
			switch {
			case Channel(v) == ChannelEmail || Channel(v) == ChannelSMS:
				s.Kind, s.Send = StepSend, Channel(v)
			case sendNotYet[v] != "":
				p.addf(f.value.Line, "%ssend %q is not supported yet (coming with %s); use send: email or send: sms", prefix, v, sendNotYet[v])
			default:
				p.addf(f.value.Line, "%ssend %q is not a channel; use send: email or send: sms", prefix, v)
			}
		case "fallback":
			if v, ok := p.scalar(f, prefix); ok {
				switch {
				case Channel(v) == ChannelEmail || Channel(v) == ChannelSMS:
					s.Fallback, s.fallbackLine = Channel(v), f.value.Line
				default:
					p.addf(f.value.Line, "%sfallback %q is not a channel; use fallback: email or fallback: sms", prefix, v)
				}
			}
		case "fallback_template":
			if v, ok := p.scalar(f, prefix); ok {
				s.FallbackTemplate = v
				if v == "" {
					p.addf(f.value.Line, "%sfallback_template is empty; give the id of a template", prefix)
				}
			}
		case "template":
			haveTemplate = true
			if v, ok := p.scalar(f, prefix); ok {
				s.Template, s.line = v, f.value.Line
				if v == "" {
					p.addf(f.value.Line, "%stemplate is empty; give the id of a template", prefix)
				}
			}
		case "security":
			haveSec = true
			if v, ok := p.scalar(f, prefix); ok {
				switch Security(v) {
				case SecurityPHI, SecurityNoPHI:
					s.Security = Security(v)
				default:
					p.addf(f.value.Line, "%ssecurity %q must be phi or no-phi", prefix, v)
				}
			}
		case "critical":
			haveCritical = true
			if v, ok := p.scalar(f, prefix); ok {
				switch v {
				case "true":
					s.Critical, s.criticalLine = true, f.value.Line
				case "false":
				default:
					p.addf(f.value.Line, "%scritical must be true or false", prefix)
				}
			}
		case "wait":
			kinds = append(kinds, f.name)
			if v, ok := p.scalar(f, prefix); ok {
				d, err := time.ParseDuration(v)
				switch {
				case err != nil:
					p.addf(f.value.Line, "%swait %q is not a duration such as 30m, 24h or 72h (units: s, m, h)", prefix, v)
				case d < minWait || d > maxWait:
					p.addf(f.value.Line, "%swait %s must be at least 1s and at most %dh (two years)", prefix, v, int(maxWait.Hours()))
				default:
					s.Kind, s.Wait = StepWait, d
				}
			}
		case "wait_until":
			kinds = append(kinds, f.name)
			if v, ok := p.scalar(f, prefix); ok {
				if x := p.expression(f.value, prefix+"wait_until", v, expr.Timestamp); x != nil {
					s.Kind, s.WaitUntil = StepWaitUntil, x
				}
			}
		case "wait_for":
			kinds = append(kinds, f.name)
			if v, ok := p.scalar(f, prefix); ok {
				switch {
				case !nested:
					p.addf(f.key.Line, "%swait_for is not allowed inside on_timeout (only send steps are, for now)", prefix)
				case v == "":
					p.addf(f.value.Line, "%swait_for is empty; name the event to wait for, such as form.submitted", prefix)
				case !IsKnownTrigger(v):
					p.addf(f.value.Line, "%swait_for %q is not a known event (known: %s)", prefix, v, strings.Join(knownTriggers, ", "))
				default:
					s.Kind, s.WaitFor, s.line = StepWaitFor, v, f.value.Line
				}
			}
		case "timeout":
			haveTimeout, timeoutLine = true, f.key.Line
			if v, ok := p.scalar(f, prefix); ok {
				d, err := time.ParseDuration(v)
				switch {
				case err != nil:
					p.addf(f.value.Line, "%stimeout %q is not a duration such as 30m, 24h or 48h (units: s, m, h)", prefix, v)
				case d < minWait || d > maxWait:
					p.addf(f.value.Line, "%stimeout %s must be at least 1s and at most %dh (two years)", prefix, v, int(maxWait.Hours()))
				default:
					s.Timeout = d
				}
			}
		case "if":
			haveIf = true
			if !nested {
				p.addf(f.key.Line, "%sif is not allowed here (only on the journey's own steps, not inside on_timeout or else)", prefix)
				continue
			}
			if v, ok := p.scalar(f, prefix); ok {
				s.If = p.expression(f.value, prefix+"if", v, expr.Bool)
			}
		case "else":
			elseLine = f.key.Line
			if !nested {
				p.addf(f.key.Line, "%selse is not allowed here (only on the journey's own steps, not inside on_timeout or else)", prefix)
				continue
			}
			s.Else = p.branch(f, prefix, "else")
		case "when":
			p.addf(f.key.Line, "%sa step's condition is written \"if: <CEL>\" (when: is the journey's condition)", prefix)
		case "on_timeout":
			haveOnTimeout = true
			if timeoutLine == 0 {
				timeoutLine = f.key.Line
			}
			s.OnTimeout = p.branch(f, prefix, "on_timeout")
		default:
			if hint, ok := stepNotYet[f.name]; ok {
				futureKind = true
				p.addf(f.key.Line, "%s%q is not supported yet (coming with %s)", prefix, f.name, hint)
				continue
			}
			p.unknownField(f, prefix, stepFields)
		}
	}
	if elseLine != 0 && !haveIf && nested {
		p.addf(elseLine, "%selse needs an \"if: <condition>\" on the same step", prefix)
	}
	switch {
	case len(kinds) > 1:
		p.addf(n.Line, "%sa step does one thing, but this one has %s: make them separate steps, each starting with \"- \"", prefix, strings.Join(kinds, " and "))
	case len(kinds) == 0 && !futureKind && (haveTimeout || haveOnTimeout):
		p.addf(timeoutLine, "%s\"timeout\" and \"on_timeout\" belong to wait_for steps: add \"wait_for: <event>\"", prefix)
	case len(kinds) == 0 && !futureKind:
		p.addf(n.Line, "%smissing what the step does: \"send: email\", \"wait: <duration>\", \"wait_until: <time expression>\" or \"wait_for: <event>\"", prefix)
	case len(kinds) == 0:
	case kinds[0] == "wait_for" && !haveTimeout:
		p.addf(n.Line, "%smissing \"timeout: <duration>\": how long to wait for %s", prefix, s.WaitFor)
	case kinds[0] != "wait_for" && (haveTimeout || haveOnTimeout):
		p.addf(timeoutLine, "%s\"timeout\" and \"on_timeout\" belong to wait_for steps, not to a %s step", prefix, kinds[0])
	case haveSend && !haveTemplate:
		p.addf(n.Line, "%smissing \"template: <id>\" (the template the email is rendered from)", prefix)
	case haveSend && s.Fallback != "" && s.Fallback == s.Send:
		p.addf(s.fallbackLine, "%sfallback: %s is the channel the step already sends on; fall back to the other one", prefix, s.Fallback)
	case !haveSend && (s.Fallback != "" || s.FallbackTemplate != "") && len(kinds) == 1:
		p.addf(n.Line, "%s\"fallback\" belongs to send steps; a %s step has no message", prefix, kinds[0])
	case haveSend && s.FallbackTemplate != "" && s.Fallback == "":
		p.addf(n.Line, "%s\"fallback_template\" needs \"fallback: <channel>\"", prefix)
	case !haveSend && (haveTemplate || haveSec || haveCritical) && len(kinds) == 1:
		p.addf(n.Line, "%s\"template\", \"security\" and \"critical\" belong to send steps; a %s step has no message", prefix, kinds[0])
	}
	if s.Fallback != "" && s.FallbackTemplate == "" {
		s.FallbackTemplate = defaultFallbackTemplate(s.Template, s.Fallback)
	}
	return s, len(p.problems) == before
}

// defaultFallbackTemplate is the fallback template a step gets without
// fallback_template: "x-sms" falls back to email "x", "x" to SMS "x-sms".
func defaultFallbackTemplate(template string, fallback Channel) string {
	if fallback == ChannelSMS {
		return template + "-sms"
	}
	return strings.TrimSuffix(template, "-sms")
}

// ValidID reports whether id can be a journey id (lowercase letters,
// digits and '-', at most 64).
func ValidID(id string) bool { return idRE.MatchString(id) }
