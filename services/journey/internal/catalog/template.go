package catalog

import (
	"fmt"
	htmltemplate "html/template"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"go.yaml.in/yaml/v3"
)

// Template is one loaded message template. It is safe for concurrent use.
type Template struct {
	// ID is unique across the templates directory.
	ID string
	// Channel is the channel the template is written for.
	Channel Channel
	// Language is the canonical BCP-47 tag of the language it is written
	// in ("en", "es-MX").
	Language string
	// File is the file name, relative to the templates directory.
	File string
	// Version is a short content hash of the file.
	Version string
	// Fields are the fields it declares it uses (fields:), in catalogue
	// order; load makes sure they are exactly the fields it reads.
	Fields []string
	// Security is what it says it is: [SecurityNoPHI] for an email notice,
	// which may not use sensitive-clinical fields; SMS templates never may.
	Security Security

	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
	loc     *time.Location // dates and times are shown in, unless the data says
	idLine  int            // for the duplicate check
}

// Message is a rendered email. PHI.
type Message struct {
	// Subject is one line: runs of white space, line breaks included, are
	// folded into one space.
	Subject string
	// Text is the plain-text body.
	Text string
	// HTML is the HTML body, with every value escaped.
	HTML string
}

// Fields of a template file, in the order the README lists them.
var templateFields = []string{"id", "channel", "language", "security", "fields", "subject", "text", "html"}

// fileLanguage returns the language part of a template file name,
// "appointment-reminder.es-MX.yaml" → "es-MX", or "" when the name has
// none.
func fileLanguage(name string) string {
	base := strings.TrimSuffix(name, filepath.Ext(name))
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return ""
	}
	return base[i+1:]
}

// parseTemplate parses one template file; see parseJourney. A template
// that names no language, neither in a language field nor in its file
// name, is in defaultLang.
func parseTemplate(path, name string, b []byte, loc *time.Location, defaultLang string) (*Template, []Problem) {
	p := &fileParser{file: path}
	root := p.document(b, "template")
	if root == nil {
		return nil, p.problems
	}
	t := &Template{File: name, Version: version(b), Language: defaultLang, Security: SecurityPHI, loc: loc}
	nameLang := ""
	if v := fileLanguage(name); v != "" {
		c, err := CanonicalLanguage(v)
		if err != nil {
			p.addf(root.Line, "the file name's language part %q is %v; name the file <id>.<language>.yaml, e.g. appointment-reminder.es.yaml", v, err)
		} else {
			nameLang, t.Language = c, c
		}
	}
	parts := map[string]field{}
	have := map[string]bool{}
	var declared field
	securityLine := 0
	for _, f := range p.fields(root, "") {
		have[f.name] = true
		switch f.name {
		case "id":
			t.idLine = f.value.Line
			if v, ok := p.scalar(f, ""); ok {
				t.ID = v
				if v == "" {
					p.addf(f.value.Line, "id is empty; give the template a name such as \"appointment-confirmation\"")
				} else if !idRE.MatchString(v) {
					p.addf(f.value.Line, "id %q may only use lowercase letters, digits and '-' (at most 64), e.g. \"appointment-confirmation\"", v)
				}
			}
		case "channel":
			if v, ok := p.scalar(f, ""); ok {
				switch {
				case Channel(v) == ChannelEmail || Channel(v) == ChannelSMS:
					t.Channel = Channel(v)
				case sendNotYet[v] != "":
					p.addf(f.value.Line, "channel %q is not supported yet (coming with %s); use channel: email or channel: sms", v, sendNotYet[v])
				default:
					p.addf(f.value.Line, "channel %q is not a channel; use channel: email or channel: sms", v)
				}
			}
		case "language":
			if v, ok := p.scalar(f, ""); ok {
				c, err := CanonicalLanguage(v)
				switch {
				case err != nil:
					p.addf(f.value.Line, "language %q is %v", v, err)
				case nameLang != "" && c != nameLang:
					p.addf(f.value.Line, "language %q does not match the file name, which says %q: rename the file or fix the language", v, nameLang)
				default:
					t.Language = c
				}
			}
		case "subject", "text", "html":
			if _, ok := p.scalar(f, ""); ok {
				parts[f.name] = f
			}
		case "security":
			securityLine = f.key.Line
			if v, ok := p.scalar(f, ""); ok {
				switch Security(v) {
				case SecurityPHI, SecurityNoPHI:
					t.Security = Security(v)
				default:
					p.addf(f.value.Line, "security %q must be phi or no-phi (no-phi: an email notice, without clinical details)", v)
				}
			}
		case "fields":
			declared = f
		default:
			p.unknownField(f, "", templateFields)
		}
	}
	required := []string{"id", "channel", "subject", "text", "html"}
	if t.Channel == ChannelSMS {
		// A text message is its text: no subject, no HTML.
		required = []string{"id", "channel", "text"}
		for _, name := range []string{"subject", "html"} {
			if f, ok := parts[name]; ok {
				p.addf(f.key.Line, "%s has no place in an SMS template (channel: sms): a text message is only its text", name)
			}
		}
	}
	if t.Channel == ChannelSMS && securityLine > 0 {
		p.addf(securityLine, "security has no place in an SMS template (channel: sms): a text message is always a notice, without clinical details")
	}
	for _, name := range required {
		if !have[name] {
			p.addf(root.Line, "missing required field %q", name)
		}
	}
	fm := funcs(t.Language)
	var uses []partUse
	if f, ok := parts["subject"]; ok {
		t.subject = p.textPart(f, fm)
		uses = append(uses, textUses(f, t.subject))
	}
	if f, ok := parts["text"]; ok {
		t.text = p.textPart(f, fm)
		uses = append(uses, textUses(f, t.text))
	}
	if f, ok := parts["html"]; ok {
		t.html = p.htmlPart(f, fm)
		uses = append(uses, htmlUses(f, t.html))
	}
	t.Fields = p.checkFields(t, root, declared, uses)
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	// Render once with synthetic data, so a misspelt field or a bad
	// function call shows up now rather than when a patient's event comes.
	if _, err := t.execute(sampleData().In(loc)); err != nil {
		if pe, ok := err.(*partError); ok {
			p.partProblem(parts[pe.part], pe.err)
		} else {
			p.addf(root.Line, "cannot be rendered: %v", err)
		}
		return nil, p.problems
	}
	return t, nil
}

func (p *fileParser) textPart(f field, fm map[string]any) *texttemplate.Template {
	if strings.TrimSpace(f.value.Value) == "" {
		p.addf(f.value.Line, "%s is empty", f.name)
		return nil
	}
	tmpl, err := texttemplate.New(f.name).Option("missingkey=error").Funcs(fm).Parse(f.value.Value)
	if err != nil {
		p.partProblem(f, err)
		return nil
	}
	return tmpl
}

func (p *fileParser) htmlPart(f field, fm map[string]any) *htmltemplate.Template {
	if strings.TrimSpace(f.value.Value) == "" {
		p.addf(f.value.Line, "%s is empty", f.name)
		return nil
	}
	tmpl, err := htmltemplate.New(f.name).Option("missingkey=error").Funcs(fm).Parse(f.value.Value)
	if err != nil {
		p.partProblem(f, err)
		return nil
	}
	return tmpl
}

// templateErrRE matches the position text/template and html/template put
// at the start of their errors: "template: subject:3:12: ..." or
// "html/template:html:3:12: ...".
var templateErrRE = regexp.MustCompile(`^(?:html/)?template: ?[a-z]+:(\d+):(?:\d+:)? ?(.*)$`)

// partProblem records a template error in a subject, text or html field,
// on the file line the template's line falls on.
func (p *fileParser) partProblem(f field, err error) {
	line, msg := f.value.Line, err.Error()
	if m := templateErrRE.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if tl, convErr := strconv.Atoi(m[1]); convErr == nil && tl > 0 {
			line = partLine(f, tl)
		}
	}
	p.addf(line, "%s: %s", f.name, msg)
}

// partLine returns the file line that line tl (1-based) of the template
// in part f is on.
func partLine(f field, tl int) int {
	line := f.value.Line + tl - 1
	if f.value.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++ // a block scalar starts on the line after "|"
	}
	return line
}

// partError is an execution error of one part of a template.
type partError struct {
	part string
	err  error
}

func (e *partError) Error() string { return e.part + ": " + e.err.Error() }

// execute renders every part with d, its dates and times in d's time
// zone. Its errors may quote d.
func (t *Template) execute(d Data) (Message, error) {
	d = d.inZone()
	var m Message
	var b strings.Builder
	if t.Channel == ChannelSMS {
		if err := t.text.Execute(&b, d); err != nil {
			return Message{}, &partError{"text", err}
		}
		m.Text = strings.TrimSpace(b.String())
		return m, nil
	}
	if err := t.subject.Execute(&b, d); err != nil {
		return Message{}, &partError{"subject", err}
	}
	m.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.text.Execute(&b, d); err != nil {
		return Message{}, &partError{"text", err}
	}
	m.Text = b.String()
	b.Reset()
	if err := t.html.Execute(&b, d); err != nil {
		return Message{}, &partError{"html", err}
	}
	m.HTML = b.String()
	return m, nil
}

// Render renders the template for one event, with dates and times in the
// time zone [Data.In] set, or else the one the template was loaded with. A
// failure is a [*RenderError], which never quotes the data.
func (t *Template) Render(d Data) (Message, error) {
	if d.loc == nil {
		d = d.In(t.loc)
	}
	m, err := t.execute(d)
	if err != nil {
		pe := err.(*partError)
		return Message{}, newRenderError(t.ID, pe.part, pe.err)
	}
	if t.Channel == ChannelSMS && m.Text == "" {
		return Message{}, &RenderError{Template: t.ID, Part: "text", Reason: "renders empty"}
	}
	if t.Channel != ChannelSMS && m.Subject == "" {
		return Message{}, &RenderError{Template: t.ID, Part: "subject", Reason: "renders empty"}
	}
	return m, nil
}

// RenderError is a template that failed to render for one event. It says
// where in the template and what kind of failure, never the data.
type RenderError struct {
	// Template is the template id.
	Template string
	// Part is subject, text or html.
	Part string
	// Position is the template position, e.g. "subject:1:24", if known.
	Position string
	// Action is the template action that failed, e.g. "<.Appointment.Start>", if known.
	Action string
	// Reason is the kind of failure, e.g. "not present in this event".
	Reason string
}

// Error describes the failure without data.
func (e *RenderError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "render template %s %s", e.Template, e.Part)
	if e.Position != "" {
		fmt.Fprintf(&b, " at %s", e.Position)
	}
	if e.Action != "" {
		fmt.Fprintf(&b, " %s", e.Action)
	}
	fmt.Fprintf(&b, ": %s", e.Reason)
	return b.String()
}

var execErrRE = regexp.MustCompile(`^(?:html/)?template: ?([a-z]+:\d+(?::\d+)?): executing "[^"]*" at (<.*?>): (.*)$`)

// newRenderError keeps what an execution error says about the template and
// drops what it may say about the data: text/template quotes values in a
// few messages ("range can't iterate over <value>").
func newRenderError(id, part string, err error) *RenderError {
	e := &RenderError{Template: id, Part: part, Reason: "cannot be rendered"}
	m := execErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return e
	}
	e.Position, e.Action = m[1], m[2]
	reason := m[3]
	switch {
	case strings.HasPrefix(reason, "nil pointer evaluating"):
		e.Reason = "not present in this event"
	case strings.HasPrefix(reason, "can't evaluate field"):
		e.Reason = "unknown field"
	case strings.HasPrefix(reason, "range can't iterate over"):
		e.Reason = "range over a value that is not a list"
	case strings.HasPrefix(reason, "map has no entry for key"):
		e.Reason = "missing key"
	case strings.HasPrefix(reason, "error calling date: "+errNoTime.Error()),
		strings.HasPrefix(reason, "error calling time: "+errNoTime.Error()):
		e.Reason = errNoTime.Error()
	case strings.HasPrefix(reason, "error calling "):
		name, _, _ := strings.Cut(strings.TrimPrefix(reason, "error calling "), ":")
		e.Reason = "error calling " + name
	}
	return e
}
