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
	templates map[string]*templateFamily
	languages Languages
}

// LoadOption configures [Load].
type LoadOption func(*loadConfig)

type loadConfig struct {
	languages Languages
}

// WithLanguages sets the default language of the deployment and of
// tenants that have their own (default: [DefaultLanguage] for every
// tenant). A template file that names no language is in l.Default, and
// every template a journey uses must exist in the default language of
// every tenant the journey runs for.
func WithLanguages(l Languages) LoadOption {
	return func(c *loadConfig) { c.languages = l }
}

// Load reads every journey file (*.yaml, *.yml) in journeysDir and every
// template file in templatesDir, parses the templates in loc for the date
// and time functions, checks that each step's template exists, and returns
// them as a new Set. If anything is wrong it returns a [*LoadError] listing
// every problem in every file, and no Set. Other files and subdirectories
// are ignored.
func Load(journeysDir, templatesDir string, loc *time.Location, opts ...LoadOption) (*Set, error) {
	cfg := loadConfig{languages: Languages{Default: DefaultLanguage}}
	for _, o := range opts {
		o(&cfg)
	}
	langs, err := cfg.languages.canonical()
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{File: templatesDir, Message: err.Error()}}}
	}
	var problems []Problem
	templates := map[string]*templateFamily{}
	templateFile := map[string]string{} // by id and language, "<id> <language>"
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
		t, probs := parseTemplate(path, name, b, loc, langs.Default)
		problems = append(problems, probs...)
		if t == nil {
			continue
		}
		if other, dup := templateFile[t.ID+" "+t.Language]; dup {
			problems = append(problems, Problem{File: path, Line: t.idLine, Message: fmt.Sprintf("template %q in language %q is already in %s", t.ID, t.Language, other)})
			continue
		}
		fam := templates[t.ID]
		if fam == nil {
			fam = &templateFamily{id: t.ID, channel: t.Channel, languages: map[string]*Template{}}
			templates[t.ID] = fam
		}
		if t.Channel != fam.channel {
			first := fam.languages[fam.sortedLanguages()[0]]
			problems = append(problems, Problem{File: path, Line: t.idLine, Message: fmt.Sprintf("template %q is for %s here but for %s in %s: every language of a template is for the same channel", t.ID, t.Channel, fam.channel, first.File)})
			continue
		}
		fam.languages[t.Language], templateFile[t.ID+" "+t.Language] = t, name
	}
	templatesOK := err == nil && len(problems) == 0

	jfiles, err := JourneyFiles(journeysDir)
	if err != nil {
		problems = append(problems, Problem{File: journeysDir, Message: err.Error()})
	}
	s, probs := build(templates, langs, jfiles, templatesDir, templatesOK)
	problems = append(problems, probs...)
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &LoadError{Problems: problems}
	}
	return s, nil
}

// JourneyFile is one journey file to build a Set from.
type JourneyFile struct {
	// Name is the file name problems are reported against.
	Name string
	// Content is the YAML.
	Content []byte
	// Revision is the file's version number in the versioned store, 0 if
	// none.
	Revision int
	// err is why the file could not be read, if it could not.
	err error
}

// JourneyFiles reads every journey file (*.yaml, *.yml, not hidden) in
// dir, sorted by name. A file that cannot be read is returned without
// content and reported as a problem when built; only an unreadable
// directory is an error.
func JourneyFiles(dir string) ([]JourneyFile, error) {
	names, err := yamlFiles(dir)
	if err != nil {
		return nil, err
	}
	out := make([]JourneyFile, 0, len(names))
	for _, name := range names {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		out = append(out, JourneyFile{Name: path, Content: b, err: err})
	}
	return out, nil
}

// WithJourneys returns a new Set with this Set's templates and languages
// and exactly the journeys in files, checked as [Load] checks them
// (templates against this Set's). The receiver is not changed; on any
// problem it returns a [*LoadError] and no Set, so a bad file never
// replaces a working Set.
func (s *Set) WithJourneys(files []JourneyFile) (*Set, error) {
	out, problems := build(s.templates, s.languages, files, "the loaded templates", true)
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &LoadError{Problems: problems}
	}
	return out, nil
}

// build checks the journeys in files against templates and indexes them
// in a new Set (nil when there are problems).
func build(templates map[string]*templateFamily, langs Languages, files []JourneyFile, templatesDir string, templatesOK bool) (*Set, []Problem) {
	var problems []Problem
	s := &Set{byID: map[string]*Journey{}, byTrigger: map[string][]*Journey{}, byCancel: map[string][]*Journey{}, byReplan: map[string][]*Journey{}, byWaitFor: map[string][]*Journey{}, templates: templates, languages: langs}
	journeyFile := map[string]string{}
	for _, f := range files {
		path := f.Name
		if f.err != nil {
			problems = append(problems, Problem{File: path, Message: "cannot read: " + errText(f.err)})
			continue
		}
		j, probs := parseJourney(path, filepath.Base(path), f.Content)
		problems = append(problems, probs...)
		if j == nil {
			continue
		}
		j.Revision = f.Revision
		defaults := langs.defaultsFor(j.Tenant)
		for _, st := range j.Steps {
			for _, sub := range slices.Concat(st.OnTimeout, st.Else) {
				problems = append(problems, checkStepTemplate(path, sub, templates, templatesDir, templatesOK, defaults)...)
			}
			if st.Kind != StepSend {
				continue
			}
			problems = append(problems, checkStepTemplate(path, st, templates, templatesDir, templatesOK, defaults)...)
		}
		if other, dup := journeyFile[j.ID]; dup && j.ID != "" {
			problems = append(problems, Problem{File: path, Line: j.idLine, Message: fmt.Sprintf("journey id %q is already used by %s", j.ID, other)})
			continue
		}
		journeyFile[j.ID] = filepath.Base(path)
		s.journeys = append(s.journeys, j)
	}
	if len(problems) > 0 {
		return nil, problems
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

// sortProblems orders problems by file, then line.
func sortProblems(problems []Problem) {
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}

// defaultsFor returns the default languages of the tenants a journey for
// tenant ("" for every tenant) runs for, each with who has it, sorted.
func (l Languages) defaultsFor(tenant string) []tenantLanguage {
	if tenant != "" {
		who := "tenant " + tenant
		if _, ok := l.Tenants[tenant]; !ok {
			who = "the default language, which tenant " + tenant + " uses"
		}
		return []tenantLanguage{{lang: l.For(tenant), who: who}}
	}
	out := []tenantLanguage{{lang: l.Default, who: "the default language"}}
	tenants := make([]string, 0, len(l.Tenants))
	for t := range l.Tenants {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		out = append(out, tenantLanguage{lang: l.Tenants[t], who: "tenant " + t})
	}
	return out
}

// tenantLanguage is a default language and who it is the default of, for
// load messages.
type tenantLanguage struct{ lang, who string }

// checkStepTemplate checks that a step's template exists, suits it, and
// has a version in every default language the journey may fall back to.
// When some template files have problems, a missing template may be one
// of them, so the message says so rather than that it does not exist.
func checkStepTemplate(path string, st Step, templates map[string]*templateFamily, dir string, templatesOK bool, defaults []tenantLanguage) []Problem {
	fam, ok := templates[st.Template]
	switch {
	case !ok && !templatesOK:
		return []Problem{{File: path, Line: st.line, Message: fmt.Sprintf("%stemplate %q is not loaded (the templates have problems, listed with this one)", st.prefix, st.Template)}}
	case !ok:
		known := make([]string, 0, len(templates))
		for id := range templates {
			known = append(known, id)
		}
		sort.Strings(known)
		return []Problem{{File: path, Line: st.line, Message: fmt.Sprintf("%stemplate %q does not exist in %s (known: %s)", st.prefix, st.Template, dir, strings.Join(known, ", "))}}
	case fam.channel != st.Send:
		return []Problem{{File: path, Line: st.line, Message: fmt.Sprintf("%stemplate %q is for %s, but the step sends %s", st.prefix, st.Template, fam.channel, st.Send)}}
	}
	out := missingDefaults(path, st.line, st.prefix, st.Template, fam, templatesOK, defaults)
	out = append(out, noticeProblems(path, st.line, st.prefix, st.Send, st.Security, fam)...)
	if st.Fallback == "" {
		return out
	}
	ft, ok := templates[st.FallbackTemplate]
	switch {
	case !ok && templatesOK:
		return append(out, Problem{File: path, Line: st.fallbackLine, Message: fmt.Sprintf("%sfallback: %s needs the %s template %q, which does not exist (or name another with fallback_template:)", st.prefix, st.Fallback, st.Fallback, st.FallbackTemplate)})
	case ok && ft.channel != st.Fallback:
		return append(out, Problem{File: path, Line: st.fallbackLine, Message: fmt.Sprintf("%sfallback template %q is for %s, but the fallback sends %s", st.prefix, st.FallbackTemplate, ft.channel, st.Fallback)})
	case ok:
		out = append(out, missingDefaults(path, st.fallbackLine, st.prefix+"fallback: ", st.FallbackTemplate, ft, templatesOK, defaults)...)
		out = append(out, noticeProblems(path, st.fallbackLine, st.prefix+"fallback: ", st.Fallback, st.Security, ft)...)
	}
	return out
}

// noticeProblems reports each version of fam that uses sensitive-clinical
// fields when a step (at line) sends it by email with security: no-phi,
// which may travel without verified encryption. SMS templates are checked
// when they load.
func noticeProblems(path string, line int, prefix string, ch Channel, sec Security, fam *templateFamily) []Problem {
	if ch != ChannelEmail || sec != SecurityNoPHI {
		return nil
	}
	var out []Problem
	for _, lang := range fam.sortedLanguages() {
		t := fam.languages[lang]
		if sens := t.FieldsOfClass(ClassSensitiveClinical); len(sens) > 0 {
			out = append(out, Problem{File: path, Line: line, Message: fmt.Sprintf(
				"%stemplate %q uses %s (%s, in %s), and the step sends it with security: no-phi, which may travel without verified encryption: use security: phi, or a notice template without clinical details",
				prefix, fam.id, strings.Join(sens, ", "), ClassSensitiveClinical, t.File)})
		}
	}
	return out
}

// missingDefaults reports each default language template fam (used by a
// step, at line) has no version in.
func missingDefaults(path string, line int, prefix, id string, fam *templateFamily, templatesOK bool, defaults []tenantLanguage) []Problem {
	var out []Problem
	seen := map[string]bool{}
	for _, d := range defaults {
		if _, ok := fam.languages[d.lang]; ok || seen[d.lang] || (!templatesOK && len(fam.languages) == 0) {
			continue
		}
		seen[d.lang] = true
		out = append(out, Problem{File: path, Line: line, Message: fmt.Sprintf(
			"%stemplate %q has no %q version, and %q is %s, which patients fall back to (it has: %s); add %s.%s.yaml",
			prefix, id, d.lang, d.lang, d.who, strings.Join(fam.sortedLanguages(), ", "), id, d.lang)})
	}
	return out
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

// Template returns the template with the given id in the deployment's
// default language.
func (s *Set) Template(id string) (*Template, bool) {
	return s.Select(id, "", "")
}

// Select returns the version of template id for a patient of tenant who
// prefers language patientLang (BCP-47, may be empty or unreadable): the
// first language of [LanguageChain] of patientLang and the tenant's
// default that the template is written in. Load makes sure every template
// a journey uses exists in its tenants' default languages.
func (s *Set) Select(id, tenant, patientLang string) (*Template, bool) {
	fam, ok := s.templates[id]
	if !ok {
		return nil, false
	}
	return fam.selectLanguage(LanguageChain(patientLang, s.languages.For(tenant)))
}

// TemplateLanguages returns the languages template id is written in,
// sorted, or nil when there is no such template.
func (s *Set) TemplateLanguages(id string) []string {
	fam, ok := s.templates[id]
	if !ok {
		return nil
	}
	return fam.sortedLanguages()
}

// Templates returns how many template files are loaded (every language
// of a template counts).
func (s *Set) Templates() int {
	n := 0
	for _, f := range s.templates {
		n += len(f.languages)
	}
	return n
}
