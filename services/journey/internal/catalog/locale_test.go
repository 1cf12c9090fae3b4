package catalog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

func TestLanguageChain(t *testing.T) {
	tests := []struct {
		patient, tenantDefault string
		want                   []string
	}{
		{"es-MX", "en", []string{"es-MX", "es", "en"}},
		{"es_mx", "en", []string{"es-MX", "es", "en"}}, // HL7 style separator, lower case
		{"ES", "en", []string{"es", "en"}},             // case
		{"spa", "en", []string{"es", "en"}},            // ISO 639-2 code
		{"zh-Hant-TW", "en", []string{"zh-Hant-TW", "zh-Hant", "zh", "en"}},
		{"en-US", "en", []string{"en-US", "en"}}, // the default once
		{"en", "en", []string{"en"}},
		{"fr", "es", []string{"fr", "es"}},  // tenant default
		{"", "en", []string{"en"}},          // unknown language
		{"Spanish", "en", []string{"en"}},   // not a tag
		{"x-klingon", "en", []string{"en"}}, // private use only
	}
	for _, tt := range tests {
		if got := catalog.LanguageChain(tt.patient, tt.tenantDefault); !cmp.Equal(tt.want, got) {
			t.Errorf("LanguageChain(%q, %q) = %q, want %q", tt.patient, tt.tenantDefault, got, tt.want)
		}
	}
}

// localizedTemplate is a template in language lang whose subject says
// which file it came from.
func localizedTemplate(lang string) string {
	return "id: confirm\nchannel: email\nsubject: \"" + lang + " {{date .Appointment.Start}} {{time .Appointment.Start}}\"\ntext: Hello\nhtml: <p>Hello</p>\nfields: [event.appointment.start]\n"
}

func TestSelectFollowsTheLanguageChain(t *testing.T) {
	tdir := writeFiles(t, map[string]string{
		"confirm.en.yaml":    localizedTemplate("en"),
		"confirm.es.yaml":    localizedTemplate("es"),
		"confirm.es-MX.yaml": localizedTemplate("es-MX"),
		"confirm.de.yaml":    localizedTemplate("de"),
	})
	jdir := writeFiles(t, map[string]string{"a.yaml": goodJourney})
	set, err := catalog.Load(jdir, tdir, time.UTC, catalog.WithLanguages(catalog.Languages{
		Default: "en", Tenants: map[string]string{"sur": "es"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tenant, patient, want string
	}{
		{"north", "es-MX", "es-MX"},
		{"north", "es-US", "es"}, // es-US → es
		{"north", "es", "es"},
		{"north", "de-AT", "de"},
		{"north", "fr", "en"}, // no French: the deployment default
		{"sur", "fr", "es"},   // no French: tenant sur's default
		{"sur", "", "es"},     // language unknown
		{"north", "not a tag", "en"},
		{"sur", "en-GB", "en"}, // the patient's language wins over the tenant's
	}
	for _, tt := range tests {
		tmpl, ok := set.Select("confirm", tt.tenant, tt.patient)
		if !ok {
			t.Errorf("Select(confirm, %s, %q) found nothing", tt.tenant, tt.patient)
			continue
		}
		if tmpl.Language != tt.want {
			t.Errorf("Select(confirm, %s, %q) = %s version, want %s", tt.tenant, tt.patient, tmpl.Language, tt.want)
		}
	}
	if got, want := set.TemplateLanguages("confirm"), []string{"de", "en", "es", "es-MX"}; !cmp.Equal(want, got) {
		t.Errorf("TemplateLanguages = %q, want %q", got, want)
	}
	if n := set.Templates(); n != 4 {
		t.Errorf("Templates() = %d, want 4", n)
	}
}

func TestLoadNeedsTheDefaultLanguage(t *testing.T) {
	tenantJourney := strings.Replace(goodJourney, "id: a", "id: a\ntenant: sur", 1)
	tests := []struct {
		name      string
		journeys  map[string]string
		templates map[string]string
		languages catalog.Languages
		want      []string
	}{
		{
			name:      "no version in the deployment default",
			journeys:  map[string]string{"a.yaml": goodJourney},
			templates: map[string]string{"confirm.es.yaml": localizedTemplate("es")},
			languages: catalog.Languages{Default: "en"},
			want:      []string{`a.yaml:6: step 1: template "confirm" has no "en" version, and "en" is the default language, which patients fall back to (it has: es); add confirm.en.yaml`},
		},
		{
			name:      "no version in a tenant's default, journey for every tenant",
			journeys:  map[string]string{"a.yaml": goodJourney},
			templates: map[string]string{"confirm.en.yaml": localizedTemplate("en")},
			languages: catalog.Languages{Default: "en", Tenants: map[string]string{"sur": "es", "norte": "en"}},
			want:      []string{`a.yaml:6: step 1: template "confirm" has no "es" version, and "es" is tenant sur, which patients fall back to (it has: en); add confirm.es.yaml`},
		},
		{
			name:      "journey for the tenant",
			journeys:  map[string]string{"a.yaml": tenantJourney},
			templates: map[string]string{"confirm.en.yaml": localizedTemplate("en")},
			languages: catalog.Languages{Default: "en", Tenants: map[string]string{"sur": "es"}},
			want:      []string{`a.yaml:7: step 1: template "confirm" has no "es" version, and "es" is tenant sur, which patients fall back to (it has: en); add confirm.es.yaml`},
		},
		{
			name:      "journey for a tenant with its own default only needs that one",
			journeys:  map[string]string{"a.yaml": tenantJourney},
			templates: map[string]string{"confirm.es.yaml": localizedTemplate("es")},
			languages: catalog.Languages{Default: "en", Tenants: map[string]string{"sur": "es"}},
		},
		{
			name:      "a template without language is in the default language",
			journeys:  map[string]string{"a.yaml": goodJourney},
			templates: map[string]string{"confirm.yaml": goodTemplate},
			languages: catalog.Languages{Default: "es"},
		},
		{
			name:     "file name and language disagree",
			journeys: map[string]string{"a.yaml": goodJourney},
			templates: map[string]string{
				"confirm.en.yaml": localizedTemplate("en"),
				"confirm.es.yaml": localizedTemplate("es") + "language: fr\n",
			},
			languages: catalog.Languages{Default: "en"},
			want:      []string{`confirm.es.yaml:7: language "fr" does not match the file name, which says "es": rename the file or fix the language`},
		},
		{
			name:     "bad language in the file name",
			journeys: map[string]string{"a.yaml": goodJourney},
			templates: map[string]string{
				"confirm.en.yaml":      localizedTemplate("en"),
				"confirm.spanish.yaml": localizedTemplate("es"),
			},
			languages: catalog.Languages{Default: "en"},
			want:      []string{`confirm.spanish.yaml:1: the file name's language part "spanish" is not a BCP-47 language tag such as "en" or "es-MX"; name the file <id>.<language>.yaml, e.g. appointment-reminder.es.yaml`},
		},
		{
			name:     "same id and language twice",
			journeys: map[string]string{"a.yaml": goodJourney},
			templates: map[string]string{
				"confirm.en.yaml": localizedTemplate("en"),
				"confirm.yaml":    goodTemplate,
			},
			languages: catalog.Languages{Default: "en"},
			want:      []string{`confirm.yaml:1: template "confirm" in language "en" is already in confirm.en.yaml`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.journeys, tt.templates, catalog.WithLanguages(tt.languages))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRejectsABadDefaultLanguage(t *testing.T) {
	got := problems(t, map[string]string{"a.yaml": goodJourney}, map[string]string{"confirm.yaml": goodTemplate},
		catalog.WithLanguages(catalog.Languages{Default: "en", Tenants: map[string]string{"sur": "castellano!"}}))
	want := []string{`language of tenant sur: not a BCP-47 language tag such as "en" or "es-MX"`}
	if len(got) != 1 || !strings.HasSuffix(got[0], want[0]) {
		t.Errorf("problems = %q, want one ending in %q", got, want)
	}
}

func TestRenderLocalizedDatesInThePatientsZone(t *testing.T) {
	tdir := writeFiles(t, map[string]string{
		"confirm.en.yaml": localizedTemplate("en"),
		"confirm.es.yaml": localizedTemplate("es"),
		"confirm.ja.yaml": localizedTemplate("ja"),
	})
	set, err := catalog.Load(writeFiles(t, map[string]string{"a.yaml": goodJourney}), tdir, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	d := syntheticData("Avery") // Tuesday, May 6, 2031 15:45 UTC
	tests := []struct {
		lang string
		loc  *time.Location
		want string
	}{
		{"en", nil, "en Tuesday, May 6, 2031 3:45 PM"}, // the zone the set was loaded with
		{"en", la, "en Tuesday, May 6, 2031 8:45 AM"},
		{"es", la, "es martes, 6 de mayo de 2031 08:45"},
		{"ja", la, "ja 2031-05-06 08:45"}, // no names for Japanese: ISO dates
	}
	for _, tt := range tests {
		tmpl, _ := set.Select("confirm", "t", tt.lang)
		dd := d
		if tt.loc != nil {
			dd = d.In(tt.loc)
		}
		m, err := tmpl.Render(dd)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != tt.want {
			t.Errorf("%s in %v: subject %q, want %q", tt.lang, tt.loc, m.Subject, tt.want)
		}
	}
	// Midnight crossing: 06:30 UTC on the 7th is the 6th in Los Angeles.
	late := d
	late.Appointment = &catalog.Appointment{Start: time.Date(2031, time.May, 7, 6, 30, 0, 0, time.UTC)}
	tmpl, _ := set.Select("confirm", "t", "es")
	m, err := tmpl.Render(late.In(la))
	if err != nil {
		t.Fatal(err)
	}
	if want := "es martes, 6 de mayo de 2031 23:30"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
}
