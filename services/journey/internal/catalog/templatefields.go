package catalog

import (
	htmltemplate "html/template"
	"slices"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"go.yaml.in/yaml/v3"
)

// partUse is what one part (subject, text, html) of a template reads.
type partUse struct {
	part   field
	uses   []fieldUse
	bad    []badPath
	failed bool // the part did not parse: what it reads is not known
}

func textUses(f field, t *texttemplate.Template) partUse {
	if t == nil {
		return partUse{part: f, failed: true}
	}
	trees := map[string]*parse.Tree{}
	for _, x := range t.Templates() {
		trees[x.Name()] = x.Tree
	}
	uses, bad := partUses(f.value.Value, t.Name(), trees)
	return partUse{part: f, uses: uses, bad: bad}
}

func htmlUses(f field, t *htmltemplate.Template) partUse {
	if t == nil {
		return partUse{part: f, failed: true}
	}
	trees := map[string]*parse.Tree{}
	for _, x := range t.Templates() {
		trees[x.Name()] = x.Tree
	}
	uses, bad := partUses(f.value.Value, t.Name(), trees)
	return partUse{part: f, uses: uses, bad: bad}
}

// checkFields checks a template's fields: declaration (the field decl,
// name "" when the file has none) against what its parts read: every
// declared name is a field templates can use, the template's channel and
// security allow its class, and the list is exactly what the parts read.
// It returns the declared fields in catalogue order.
func (p *fileParser) checkFields(t *Template, root *yaml.Node, decl field, parts []partUse) []string {
	read := map[string]bool{}
	complete := true
	for _, pu := range parts {
		complete = complete && !pu.failed
		for _, b := range pu.bad {
			p.addf(partLine(pu.part, b.line), "%s: %s is not a field templates can use%s", pu.part.name, b.as, suggestPath(b.as))
		}
		for _, u := range pu.uses {
			read[u.field.Name] = true
		}
	}
	if decl.name == "" {
		switch {
		case !complete:
			p.addf(root.Line, "missing required field \"fields\": list the fields the template uses (classes: services/journey/README.md, \"Field catalogue\")")
		case len(read) > 0:
			p.addf(root.Line, "missing required field \"fields\": list the fields the template uses, here: fields: [%s] (classes: services/journey/README.md, \"Field catalogue\")", strings.Join(inCatalogueOrder(read), ", "))
		default:
			p.addf(root.Line, "missing required field \"fields\": list the fields the template uses, here none: fields: []")
		}
		return nil
	}
	if decl.value.Kind != yaml.SequenceNode {
		p.addf(decl.value.Line, "fields must be a list of field names, e.g. fields: [patient.given_name, event.appointment.start]")
		return nil
	}
	declared := map[string]int{} // name → line
	for _, n := range decl.value.Content {
		if n.Kind != yaml.ScalarNode {
			p.addf(n.Line, "fields: each entry is one field name such as patient.given_name")
			continue
		}
		f, ok := fieldByName(n.Value)
		switch {
		case !ok:
			hint := ""
			if best := closest(n.Value, templateFieldNames()); best != "" {
				hint = " (did you mean " + best + "?)"
			}
			p.addf(n.Line, "fields: %q is not a field%s; templates can use: %s", n.Value, hint, strings.Join(templateFieldNames(), ", "))
			continue
		case f.Template == "":
			p.addf(n.Line, "fields: %s (%s, %s) is never available to templates: carenotify keeps it out of every message", f.Name, f.Meaning, f.Class)
			continue
		}
		if first, dup := declared[f.Name]; dup {
			p.addf(n.Line, "fields: %s is listed twice (first on line %d)", f.Name, first)
			continue
		}
		declared[f.Name] = n.Line
		if why := restrictedFor(f.Class, t.Channel, t.Security); why != "" {
			p.addf(n.Line, "fields: %s is %s (%s), and %s", f.Name, f.Class, f.Meaning, why)
		}
	}
	reported := map[string]bool{}
	for _, pu := range parts {
		for _, u := range pu.uses {
			if _, ok := declared[u.field.Name]; ok || reported[u.field.Name] {
				continue
			}
			reported[u.field.Name] = true
			line := partLine(pu.part, u.line)
			if why := restrictedFor(u.field.Class, t.Channel, t.Security); why != "" {
				p.addf(line, "%s: %s reads %s, which is %s (%s), and %s", pu.part.name, u.as, u.field.Name, u.field.Class, u.field.Meaning, why)
				continue
			}
			p.addf(line, "%s: %s reads %s (%s), which fields: does not list; add it there", pu.part.name, u.as, u.field.Name, u.field.Class)
		}
	}
	names := make(map[string]bool, len(declared))
	for _, n := range decl.value.Content {
		if line, ok := declared[n.Value]; ok && line == n.Line && !names[n.Value] {
			names[n.Value] = true
			if !read[n.Value] && complete {
				p.addf(line, "fields: %s is listed but no part of the template uses it; remove it (fields: lists exactly what the template uses)", n.Value)
			}
		}
	}
	return inCatalogueOrder(names)
}

// inCatalogueOrder returns the names in set in the catalogue's order.
func inCatalogueOrder(set map[string]bool) []string {
	var out []string
	for _, f := range fieldCatalogue {
		if set[f.Name] {
			out = append(out, f.Name)
		}
	}
	return out
}

// suggestPath returns " (did you mean .X?)" for the template field closest
// to a path a template wrote, or "".
func suggestPath(as string) string {
	var known []string
	for _, f := range fieldCatalogue {
		if f.Template != "" {
			known = append(known, f.Template)
		}
	}
	if best := closest(as, known); best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

// FieldsOfClass returns the fields of class c the template uses, in
// catalogue order.
func (t *Template) FieldsOfClass(c FieldClass) []string {
	return slices.DeleteFunc(slices.Clone(t.Fields), func(name string) bool {
		f, _ := fieldByName(name)
		return f.Class != c
	})
}
