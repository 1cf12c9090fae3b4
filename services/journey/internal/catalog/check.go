package catalog

import "slices"

// CheckJourney checks one journey file, named name, against this Set's
// templates, as [Load] would: it returns the journey and no problems, or
// every problem found (with line and, for CEL expressions on one line,
// column). Nothing is loaded or replaced: the running Set stays as it is.
func (s *Set) CheckJourney(name string, b []byte) (*Journey, []Problem) {
	j, problems := parseJourney(name, name, b)
	if j != nil {
		defaults := s.languages.defaultsFor(j.Tenant)
		for _, st := range j.Steps {
			for _, sub := range slices.Concat(st.OnTimeout, st.Else) {
				problems = append(problems, checkStepTemplate(name, sub, s.templates, "the loaded templates", true, defaults)...)
			}
			if st.Kind == StepSend {
				problems = append(problems, checkStepTemplate(name, st, s.templates, "the loaded templates", true, defaults)...)
			}
		}
	}
	sortProblems(problems)
	if len(problems) > 0 {
		return nil, problems
	}
	return j, nil
}
