package catalog

import (
	"os"
	"strings"
	"testing"
	"time"
)

// addSeeds adds the example file and a few broken variants to f's corpus.
func addSeeds(f *testing.F, example string) {
	b, err := os.ReadFile(example)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range []string{
		"", "---\n---\n", "id: [a", "steps: &a [*a]", "id: a\nid: b\n", "? [a]\n: b\n",
		strings.Replace(string(b), "email", "sms", -1), string(b) + "when: x\n",
		"subject: \"{{.Patient.GivenName\"\n", "text: \"{{range .}}{{end}}\"\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzParseJourney checks that no input panics and that an accepted
// journey has the required fields.
func FuzzParseJourney(f *testing.F) {
	addSeeds(f, "../../../../deploy/examples/journeys/appointment-confirmation.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		j, problems := parseJourney("f.yaml", "f.yaml", b)
		if j == nil && len(problems) == 0 {
			t.Fatal("parseJourney() = nil without problems")
		}
		if len(problems) == 0 && (!idRE.MatchString(j.ID) || !IsKnownTrigger(j.Trigger) || len(j.Steps) == 0) {
			t.Fatalf("accepted an incomplete journey: %+v", j)
		}
	})
}

// FuzzParseTemplate checks that no input panics and that an accepted
// template renders the sample data.
func FuzzParseTemplate(f *testing.F) {
	addSeeds(f, "../../../../deploy/examples/templates/appointment-confirmation.en.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		tmpl, problems := parseTemplate("f.yaml", "f.yaml", b, time.UTC, DefaultLanguage)
		if (tmpl == nil) == (len(problems) == 0) {
			t.Fatalf("parseTemplate() = %v, %v: want a template or problems", tmpl, problems)
		}
		if tmpl != nil {
			if _, err := tmpl.Render(sampleData()); err != nil {
				t.Fatalf("accepted template does not render: %v", err)
			}
		}
	})
}
