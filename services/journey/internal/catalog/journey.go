package catalog

import (
	"crypto/sha256"
	"encoding/hex"
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

// Channels. Only email is built.
const (
	ChannelEmail Channel = "email"
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
	// Steps run in order.
	Steps []Step
	// QuietHours, if not nil, is the daily window (in the tenant's time
	// zone) in which send steps are deferred to its end.
	QuietHours *QuietHours
	// File is the file name, relative to the journeys directory.
	File string
	// Version is a short content hash of the file.
	Version string

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
	// Security is the PHI level of the message.
	Security Security
	// Critical send steps are not deferred by quiet hours (never in a
	// marketing journey).
	Critical bool

	index        int // 0-based position in the file, for load messages
	line         int // of the template field, for the load check
	criticalLine int // of the critical field
}

// Fields of a journey file, in the order the README lists them.
var journeyFields = []string{"id", "purpose", "tenant", "trigger", "when", "key", "cancel_on", "quiet_hours", "steps"}

// Fields of the steps: a send step, a wait step, a wait_until step.
var stepFields = []string{"send", "template", "security", "critical", "wait", "wait_until"}

// Fields of the planned journey format that are not built yet, with what
// they come with. They are rejected, never ignored.
var journeyNotYet = map[string]string{
	"replan_on":     "replanning timers",
	"send_window":   "send windows",
	"frequency_cap": "frequency caps",
	"consent":       "consent",
	"critical":      "quiet hours (critical: true belongs on a send step)",
	"timezone":      "per-patient time zones; quiet hours use JOURNEY_TIMEZONE",
}

// Step kinds and step fields of the planned format that are not built yet.
var stepNotYet = map[string]string{
	"wait_for":   "waiting for events",
	"timeout":    "waiting for events",
	"on_timeout": "waiting for events",
	"if":         "step conditions",
	"else":       "step conditions",
	"when":       "step conditions",
	"fallback":   "delivery tracking",
}

// Shortest and longest wait.
const (
	minWait = time.Second
	maxWait = 2 * 366 * 24 * time.Hour
)

// Channels of the planned format that are not built yet.
var sendNotYet = map[string]string{
	"sms":   "the SMS channel",
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
	triggerLine, cancelLine := root.Line, 0
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
				j.When = p.expression(f.value.Line, "when", v, expr.Bool)
			}
		case "cancel_on":
			j.CancelOn = p.cancelOn(f)
			cancelLine = f.key.Line
		case "quiet_hours":
			j.QuietHours = p.quietHours(f)
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
	if len(j.CancelOn) > 0 && !slices.ContainsFunc(j.Steps, func(s Step) bool { return s.Kind == StepWait || s.Kind == StepWaitUntil }) && have["steps"] && len(p.problems) == 0 {
		p.addf(cancelLine, "cancel_on has nothing to cancel: the journey has no wait or wait_until step")
	}
	if j.Purpose == PurposeMarketing {
		for _, st := range j.Steps {
			if st.Critical {
				p.addf(st.criticalLine, "step %d: critical: true is not allowed in a marketing journey: marketing never bypasses quiet hours", st.index+1)
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
		// Marketing messages need the patient's opt-in (HIPAA
		// §164.508(a)(3)); without consent checks they must not be sent.
		p.addf(line, "purpose \"marketing\" is not supported yet (coming with consent: marketing needs the patient's opt-in)")
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
func (p *fileParser) expression(line int, name, src string, want expr.Type) *expr.Expr {
	if strings.TrimSpace(src) == "" {
		p.addf(line, "%s is empty; write a CEL expression such as %s", name, exampleOf(want))
		return nil
	}
	x, err := expr.Compile(src, want)
	if err != nil {
		p.addf(line, "%s: %s", name, err.Error())
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

// cancelOn parses the cancel_on list of events.
func (p *fileParser) cancelOn(f field) []string {
	if f.value.Kind != yaml.SequenceNode {
		p.addf(f.value.Line, "cancel_on must be a list of events such as [appointment.cancelled, appointment.noshow]")
		return nil
	}
	if len(f.value.Content) == 0 {
		p.addf(f.value.Line, "cancel_on is empty; list the events that cancel, or leave it out")
		return nil
	}
	var out []string
	for _, n := range f.value.Content {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
			p.addf(n.Line, "cancel_on: each entry is one event such as appointment.cancelled")
			continue
		}
		switch {
		case !IsKnownTrigger(n.Value):
			p.addf(n.Line, "cancel_on: %q is not a known event (known: %s)", n.Value, strings.Join(knownTriggers, ", "))
		case slices.Contains(out, n.Value):
			p.addf(n.Line, "cancel_on: %q is listed twice", n.Value)
		default:
			out = append(out, n.Value)
		}
	}
	return out
}

// step parses step i (0-based) of a journey. A step does one thing: send,
// wait or wait_until.
func (p *fileParser) step(n *yaml.Node, i int) (Step, bool) {
	prefix := fmt.Sprintf("step %d: ", i+1)
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, "%sa step is a group of fields such as \"send: email\" and \"template: <id>\", or \"wait: 24h\"", prefix)
		return Step{}, false
	}
	before := len(p.problems)
	s := Step{Security: SecurityPHI, index: i}
	var (
		kinds                           []string
		haveSend, haveTemplate, haveSec bool
		haveCritical                    bool
		futureKind                      bool
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
			case Channel(v) == ChannelEmail:
				s.Kind, s.Send = StepSend, ChannelEmail
			case sendNotYet[v] != "":
				p.addf(f.value.Line, "%ssend %q is not supported yet (coming with %s); only send: email is", prefix, v, sendNotYet[v])
			default:
				p.addf(f.value.Line, "%ssend %q is not a channel; use send: email", prefix, v)
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
				if x := p.expression(f.value.Line, prefix+"wait_until", v, expr.Timestamp); x != nil {
					s.Kind, s.WaitUntil = StepWaitUntil, x
				}
			}
		default:
			if hint, ok := stepNotYet[f.name]; ok {
				futureKind = true
				p.addf(f.key.Line, "%s%q is not supported yet (coming with %s)", prefix, f.name, hint)
				continue
			}
			p.unknownField(f, prefix, stepFields)
		}
	}
	switch {
	case len(kinds) > 1:
		p.addf(n.Line, "%sa step does one thing, but this one has %s: make them separate steps, each starting with \"- \"", prefix, strings.Join(kinds, " and "))
	case len(kinds) == 0 && !futureKind:
		p.addf(n.Line, "%smissing what the step does: \"send: email\", \"wait: <duration>\" or \"wait_until: <time expression>\"", prefix)
	case haveSend && !haveTemplate:
		p.addf(n.Line, "%smissing \"template: <id>\" (the template the email is rendered from)", prefix)
	case !haveSend && (haveTemplate || haveSec || haveCritical) && len(kinds) == 1:
		p.addf(n.Line, "%s\"template\", \"security\" and \"critical\" belong to send steps; a %s step has no message", prefix, kinds[0])
	}
	return s, len(p.problems) == before
}
