package catalog

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// CheckJourney checks one journey file, named name, against this Set's
// templates, as [Load] would: it returns the journey and no problems, or
// every problem found (with line and, for CEL expressions on one line,
// column). Nothing is loaded or replaced: the running Set stays as it is.
func (s *Set) CheckJourney(name string, b []byte) (*Journey, []Problem) {
	j, problems := parseJourney(name, name, b)
	if j != nil {
		files := make(map[string]string, len(s.templates))
		for _, id := range slices.Sorted(maps.Keys(s.templates)) {
			files[id] = id
		}
		for _, st := range j.Steps {
			for _, sub := range slices.Concat(st.OnTimeout, st.Else) {
				problems = append(problems, checkStepTemplate(name, sub, s.templates, files, "the loaded templates", true)...)
			}
			if st.Kind == StepSend {
				problems = append(problems, checkStepTemplate(name, st, s.templates, files, "the loaded templates", true)...)
			}
		}
	}
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	if len(problems) > 0 {
		return nil, problems
	}
	return j, nil
}
