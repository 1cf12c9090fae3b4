package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Set is the journeys and templates loaded from their directories at one
// time. It is immutable and safe for concurrent use; a reload builds a new
// Set with [Load] and swaps it in whole, so a bad edit never replaces a
// working Set.
type Set struct {
	journeys  []*Journey // by id
	byID      map[string]*Journey
	byTrigger map[string][]*Journey
	byCancel  map[string][]*Journey // by cancel_on event
	byReplan  map[string][]*Journey // by replan_on event
	byWaitFor map[string][]*Journey // by the event a wait_for step waits for
	templates map[string]*Template
}

// Load reads every journey file (*.yaml, *.yml) in journeysDir and every
// template file in templatesDir, parses the templates in loc for the date
// and time functions, checks that each step's template exists, and returns
// them as a new Set. If anything is wrong it returns a [*LoadError] listing
// every problem in every file, and no Set. Other files and subdirectories
// are ignored.
func Load(journeysDir, templatesDir string, loc *time.Location) (*Set, error) {
	var problems []Problem
	templates := map[string]*Template{}
	templateFile := map[string]string{}
	tfiles, err := yamlFiles(templatesDir)
	if err != nil {
		problems = append(problems, Problem{File: templatesDir, Message: err.Error()})
	}
	for _, name := range tfiles {
		path := filepath.Join(templatesDir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, Problem{File: path, Message: "cannot read: " + errText(err)})
			continue
		}
		t, probs := parseTemplate(path, name, b, loc)
		problems = append(problems, probs...)
		if t == nil {
			continue
		}
		if other, dup := templateFile[t.ID]; dup {
			problems = append(problems, Problem{File: path, Line: t.idLine, Message: fmt.Sprintf("template id %q is already used by %s", t.ID, other)})
			continue
		}
		templates[t.ID], templateFile[t.ID] = t, name
	}
	templatesOK := err == nil && len(problems) == 0

	s := &Set{byID: map[string]*Journey{}, byTrigger: map[string][]*Journey{}, byCancel: map[string][]*Journey{}, byReplan: map[string][]*Journey{}, byWaitFor: map[string][]*Journey{}, templates: templates}
	journeyFile := map[string]string{}
	jfiles, err := yamlFiles(journeysDir)
	if err != nil {
		problems = append(problems, Problem{File: journeysDir, Message: err.Error()})
	}
	for _, name := range jfiles {
		path := filepath.Join(journeysDir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, Problem{File: path, Message: "cannot read: " + errText(err)})
			continue
		}
		j, probs := parseJourney(path, name, b)
		problems = append(problems, probs...)
		if j == nil {
			continue
		}
		for _, st := range j.Steps {
			for _, sub := range slices.Concat(st.OnTimeout, st.Else) {
				problems = append(problems, checkStepTemplate(path, sub, templates, templateFile, templatesDir, templatesOK)...)
			}
			if st.Kind != StepSend {
				continue
			}
			problems = append(problems, checkStepTemplate(path, st, templates, templateFile, templatesDir, templatesOK)...)
		}
		if other, dup := journeyFile[j.ID]; dup && j.ID != "" {
			problems = append(problems, Problem{File: path, Line: j.idLine, Message: fmt.Sprintf("journey id %q is already used by %s", j.ID, other)})
			continue
		}
		journeyFile[j.ID] = name
		s.journeys = append(s.journeys, j)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int {
			return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
		})
		return nil, &LoadError{Problems: problems}
	}
	slices.SortFunc(s.journeys, func(a, b *Journey) int { return strings.Compare(a.ID, b.ID) })
	for _, j := range s.journeys {
		s.byID[j.ID] = j
		s.byTrigger[j.Trigger] = append(s.byTrigger[j.Trigger], j)
		for _, ev := range j.CancelOn {
			s.byCancel[ev] = append(s.byCancel[ev], j)
		}
		for _, ev := range j.ReplanOn {
			s.byReplan[ev] = append(s.byReplan[ev], j)
		}
		for _, st := range j.Steps {
			if st.Kind == StepWaitFor && !slices.Contains(s.byWaitFor[st.WaitFor], j) {
				s.byWaitFor[st.WaitFor] = append(s.byWaitFor[st.WaitFor], j)
			}
		}
	}
	return s, nil
}

// checkStepTemplate checks that a step's template exists and suits it.
// When some template files have problems, a missing template may be one of
// them, so the message says so rather than that it does not exist.
func checkStepTemplate(path string, st Step, templates map[string]*Template, files map[string]string, dir string, templatesOK bool) []Problem {
	t, ok := templates[st.Template]
	switch {
	case !ok && !templatesOK:
		return []Problem{{File: path, Line: st.line, Message: fmt.Sprintf("%stemplate %q is not loaded (the templates have problems, listed with this one)", st.prefix, st.Template)}}
	case !ok:
		known := make([]string, 0, len(files))
		for id := range files {
			known = append(known, id)
		}
		sort.Strings(known)
		return []Problem{{File: path, Line: st.line, Message: fmt.Sprintf("%stemplate %q does not exist in %s (known: %s)", st.prefix, st.Template, dir, strings.Join(known, ", "))}}
	case t.Channel != st.Send:
		return []Problem{{File: path, Line: st.line, Message: fmt.Sprintf("%stemplate %q is for %s, but the step sends %s", st.prefix, st.Template, t.Channel, st.Send)}}
	}
	if st.Fallback == "" {
		return nil
	}
	ft, ok := templates[st.FallbackTemplate]
	switch {
	case !ok && templatesOK:
		return []Problem{{File: path, Line: st.fallbackLine, Message: fmt.Sprintf("%sfallback: %s needs the %s template %q, which does not exist (or name another with fallback_template:)", st.prefix, st.Fallback, st.Fallback, st.FallbackTemplate)}}
	case ok && ft.Channel != st.Fallback:
		return []Problem{{File: path, Line: st.fallbackLine, Message: fmt.Sprintf("%sfallback template %q is for %s, but the fallback sends %s", st.prefix, st.FallbackTemplate, ft.Channel, st.Fallback)}}
	}
	return nil
}

// yamlFiles returns the names of the *.yaml and *.yml files in dir, sorted.
func yamlFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read directory: %s", errText(err))
	}
	var names []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// errText is an os error without the path, which Problem already names.
func errText(err error) string {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// Journeys returns every journey, ordered by id. The journeys are shared
// and must not be modified.
func (s *Set) Journeys() []*Journey { return slices.Clone(s.journeys) }

// Match returns the journeys started by trigger ("<kind>.<action>") for
// tenant: those for every tenant and those for that tenant, ordered by id.
func (s *Set) Match(tenant, trigger string) []*Journey {
	var out []*Journey
	for _, j := range s.byTrigger[trigger] {
		if j.Tenant == "" || j.Tenant == tenant {
			out = append(out, j)
		}
	}
	return out
}

// CancelledBy returns the journeys for tenant whose cancel_on lists
// event ("<kind>.<action>"), ordered by id.
func (s *Set) CancelledBy(tenant, event string) []*Journey {
	var out []*Journey
	for _, j := range s.byCancel[event] {
		if j.Tenant == "" || j.Tenant == tenant {
			out = append(out, j)
		}
	}
	return out
}

// ReplannedBy returns the journeys for tenant whose replan_on lists
// event ("<kind>.<action>"), ordered by id.
func (s *Set) ReplannedBy(tenant, event string) []*Journey {
	var out []*Journey
	for _, j := range s.byReplan[event] {
		if j.Tenant == "" || j.Tenant == tenant {
			out = append(out, j)
		}
	}
	return out
}

// WaitingFor returns the journeys for tenant with a wait_for step on
// event ("<kind>.<action>"), ordered by id.
func (s *Set) WaitingFor(tenant, event string) []*Journey {
	var out []*Journey
	for _, j := range s.byWaitFor[event] {
		if j.Tenant == "" || j.Tenant == tenant {
			out = append(out, j)
		}
	}
	return out
}

// Journey returns the journey with the given id.
func (s *Set) Journey(id string) (*Journey, bool) {
	j, ok := s.byID[id]
	return j, ok
}

// Template returns the template with the given id.
func (s *Set) Template(id string) (*Template, bool) {
	t, ok := s.templates[id]
	return t, ok
}

// Templates returns how many templates are loaded.
func (s *Set) Templates() int { return len(s.templates) }
