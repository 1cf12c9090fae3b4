package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
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
	// Steps run in order.
	Steps []Step
	// File is the file name, relative to the journeys directory.
	File string
	// Version is a short content hash of the file.
	Version string

	idLine int // for the duplicate check
}

// Step is one step of a journey. Only sending an email is supported yet.
type Step struct {
	// Send is the channel the step sends on.
	Send Channel
	// Template is the id of the template the step renders.
	Template string
	// Security is the PHI level of the message.
	Security Security

	index int // 0-based position in the file, for load messages
	line  int // of the template field, for the load check
}

// Fields of a journey file, in the order the README lists them.
var journeyFields = []string{"id", "purpose", "tenant", "trigger", "key", "steps"}

// Fields of a send step.
var stepFields = []string{"send", "template", "security"}

// Fields of the planned journey format that are not built yet, with what
// they come with. They are rejected, never ignored.
var journeyNotYet = map[string]string{
	"when":      "CEL conditions",
	"cancel_on": "timers",
	"replan_on": "timers",
}

// Step kinds and step fields of the planned format that are not built yet.
var stepNotYet = map[string]string{
	"wait":       "timers",
	"wait_until": "timers",
	"wait_for":   "timers",
	"if":         "CEL conditions",
	"when":       "CEL conditions",
	"fallback":   "delivery tracking",
}

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
	triggerLine := root.Line
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

// step parses step i (0-based) of a journey.
func (p *fileParser) step(n *yaml.Node, i int) (Step, bool) {
	prefix := fmt.Sprintf("step %d: ", i+1)
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, "%sa step is a group of fields such as \"send: email\" and \"template: <id>\"", prefix)
		return Step{}, false
	}
	before := len(p.problems)
	s := Step{Security: SecurityPHI, index: i}
	var (
		haveSend, haveTemplate, futureKind bool
	)
	for _, f := range p.fields(n, prefix) {
		switch f.name {
		case "send":
			haveSend = true
			v, ok := p.scalar(f, prefix)
			if !ok {
				continue
			}
			switch {
			case Channel(v) == ChannelEmail:
				s.Send = ChannelEmail
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
			if v, ok := p.scalar(f, prefix); ok {
				switch Security(v) {
				case SecurityPHI, SecurityNoPHI:
					s.Security = Security(v)
				default:
					p.addf(f.value.Line, "%ssecurity %q must be phi or no-phi", prefix, v)
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
	case !haveSend && !futureKind:
		p.addf(n.Line, "%smissing \"send: email\" (sending an email is the only kind of step supported yet)", prefix)
	case haveSend && !haveTemplate:
		p.addf(n.Line, "%smissing \"template: <id>\" (the template the email is rendered from)", prefix)
	}
	return s, len(p.problems) == before
}
