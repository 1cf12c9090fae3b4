package catalog_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// emailTemplate is an email template "t" with the given fields line and
// text (one line, at line 4); subject and html use nothing.
func emailTemplate(fields, text string) string {
	return "id: t\nchannel: email\n" + fields + "\ntext: \"" + text + "\"\nsubject: Hello\nhtml: <p>Hello</p>\n"
}

// smsTemplate is an SMS template "t-sms" with the given fields line and text (line 4).
func smsTemplate(fields, text string) string {
	return "id: t-sms\nchannel: sms\n" + fields + "\ntext: \"" + text + "\"\n"
}

const tJourney = "id: a\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n  - send: email\n    template: t\n"

func TestLoadChecksTemplateFields(t *testing.T) {
	notLoaded := `a.yaml:6: step 1: template "t" is not loaded (the templates have problems, listed with this one)`
	tests := []struct {
		name string
		give string // template t.yaml (email) or t-sms.yaml (sms)
		sms  bool
		want []string // besides notLoaded, which comes first when want is not empty
	}{
		{
			name: "declared and used",
			give: emailTemplate("fields: [patient.given_name, event.appointment.start]", "{{.Patient.GivenName}} {{date .Appointment.Start}}"),
		},
		{
			name: "a presence test of a group reads nothing, its fields inside do",
			give: emailTemplate("fields: [event.appointment.start]", "{{with .Appointment}}{{.Start.Year}}{{end}}{{if .Patient}}x{{end}}"),
		},
		{
			name: "fields missing",
			give: emailTemplate("language: en", "{{.Patient.GivenName}} {{.Appointment.Description}}"),
			want: []string{`t.yaml:1: missing required field "fields": list the fields the template uses, here: fields: [patient.given_name, event.appointment.description] (classes: services/journey/README.md, "Field catalogue")`},
		},
		{
			name: "used but not declared",
			give: emailTemplate("fields: [patient.given_name]", "{{.Patient.GivenName}} {{.Appointment.ServiceType}}"),
			want: []string{`t.yaml:4: text: .Appointment.ServiceType reads event.appointment.service_type (sensitive-clinical), which fields: does not list; add it there`},
		},
		{
			name: "declared but not used",
			give: emailTemplate("fields:\n  - patient.given_name\n  - patient.family_name", "{{.Patient.GivenName}}"),
			want: []string{`t.yaml:5: fields: patient.family_name is listed but no part of the template uses it; remove it (fields: lists exactly what the template uses)`},
		},
		{
			name: "unknown and unavailable names",
			give: emailTemplate("fields: [patient.given_nam, patient.identifiers]", "Hello"),
			want: []string{
				`t.yaml:3: fields: "patient.given_nam" is not a field (did you mean patient.given_name?); templates can use: tenant, patient.given_name, patient.family_name, patient.language, event.kind, event.action, event.occurred_at, event.appointment.start, event.appointment.end, event.appointment.service_type, event.appointment.participants, event.appointment.description`,
				`t.yaml:3: fields: patient.identifiers (medical record number and other business identifiers, identifying) is never available to templates: carenotify keeps it out of every message`,
			},
		},
		{
			name: "printing a group reads every field in it",
			give: emailTemplate("fields: [event.appointment.start]", "{{.Appointment}}"),
			want: []string{
				`t.yaml:4: text: .Appointment reads event.appointment.end (scheduling), which fields: does not list; add it there`,
				`t.yaml:4: text: .Appointment reads event.appointment.service_type (sensitive-clinical), which fields: does not list; add it there`,
				`t.yaml:4: text: .Appointment reads event.appointment.participants (sensitive-clinical), which fields: does not list; add it there`,
				`t.yaml:4: text: .Appointment reads event.appointment.description (sensitive-clinical), which fields: does not list; add it there`,
			},
		},
		{
			name: "variables, ranges and defined templates are followed",
			give: emailTemplate("fields: []", `{{$a := .Appointment}}{{$a.Description}}{{range .Appointment.Participants}}{{.}}{{end}}{{define \"x\"}}{{.ServiceType}}{{end}}{{template \"x\" .Appointment}}`),
			want: []string{
				`t.yaml:4: text: $a.Description reads event.appointment.description (sensitive-clinical), which fields: does not list; add it there`,
				`t.yaml:4: text: .Appointment.Participants reads event.appointment.participants (sensitive-clinical), which fields: does not list; add it there`,
				`t.yaml:4: text: .ServiceType reads event.appointment.service_type (sensitive-clinical), which fields: does not list; add it there`,
			},
		},
		{
			name: "SMS may not declare sensitive-clinical fields",
			sms:  true,
			give: smsTemplate("fields: [event.appointment.service_type]", "{{.Appointment.ServiceType}}"),
			want: []string{`t-sms.yaml:3: fields: event.appointment.service_type is sensitive-clinical (the kind of care ("Oncology", "Psychiatry") can reveal a condition), and an SMS template may not use it: a text can be read on a locked phone's screen`},
		},
		{
			name: "SMS may not test a sensitive-clinical field either",
			sms:  true,
			give: smsTemplate("fields: []", `{{if eq .Appointment.Description \"x\"}}See you{{end}}`),
			want: []string{`t-sms.yaml:4: text: .Appointment.Description reads event.appointment.description, which is sensitive-clinical (the EHR's free text: may hold the reason for the visit), and an SMS template may not use it: a text can be read on a locked phone's screen`},
		},
		{
			name: "an email notice may not use sensitive-clinical fields",
			give: emailTemplate("security: no-phi\nfields: [event.appointment.participants]", "{{range .Appointment.Participants}}{{.}}{{end}}"),
			want: []string{`t.yaml:4: fields: event.appointment.participants is sensitive-clinical (practitioners and locations: a clinic's or specialist's name can reveal a condition), and an email notice (security: no-phi) may not use it: a notice may travel without verified encryption`},
		},
		{
			name: "security has no place in an SMS template",
			sms:  true,
			give: smsTemplate("security: no-phi\nfields: []", "Hello"),
			want: []string{`t-sms.yaml:3: security has no place in an SMS template (channel: sms): a text message is always a notice, without clinical details`},
		},
		{
			name: "a field templates do not have",
			give: emailTemplate("fields: []", "{{with .Appointment}}{{.Room}}{{end}}"),
			want: []string{`t.yaml:4: text: .Appointment.Room is not a field templates can use`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			journey, file := tJourney, "t.yaml"
			if tt.sms {
				journey, file = strings.Replace(tJourney, "send: email\n    template: t", "send: sms\n    template: t-sms", 1), "t-sms.yaml"
			}
			got := problems(t, map[string]string{"a.yaml": journey}, map[string]string{file: tt.give})
			var want []string
			if len(tt.want) > 0 {
				want = append([]string{strings.Replace(notLoaded, `"t"`, `"`+strings.TrimSuffix(file, ".yaml")+`"`, 1)}, tt.want...)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadKeepsDeclaredFields(t *testing.T) {
	set, err := catalog.Load(writeFiles(t, map[string]string{"a.yaml": tJourney}), writeFiles(t, map[string]string{
		"t.yaml": emailTemplate("fields: [event.appointment.service_type, patient.given_name]", "{{.Patient.GivenName}} {{.Appointment.ServiceType}}"),
	}), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := set.Template("t")
	if diff := cmp.Diff([]string{"patient.given_name", "event.appointment.service_type"}, tmpl.Fields); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
	if got := tmpl.FieldsOfClass(catalog.ClassSensitiveClinical); !cmp.Equal(got, []string{"event.appointment.service_type"}) {
		t.Errorf("FieldsOfClass(sensitive-clinical) = %v", got)
	}
}

func TestNoPHIStepsMayNotSendClinicalTemplates(t *testing.T) {
	clinical := emailTemplate("fields: [event.appointment.service_type]", "{{.Appointment.ServiceType}}")
	notice := emailTemplate("fields: [event.appointment.start]", "{{date .Appointment.Start}}")
	sms := smsTemplate("fields: [event.appointment.start]", "{{date .Appointment.Start}}")
	noPHI := tJourney + "    security: no-phi\n"
	smsFallback := "id: a\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n  - send: sms\n    template: t-sms\n    fallback: email\n    fallback_template: t\n    security: no-phi\n"
	want := `step 1: template "t" uses event.appointment.service_type (sensitive-clinical, in t.es.yaml), and the step sends it with security: no-phi, which may travel without verified encryption: use security: phi, or a notice template without clinical details`
	tests := []struct {
		name      string
		journey   string
		templates map[string]string
		want      []string
	}{
		{name: "phi step, clinical template", journey: tJourney, templates: map[string]string{"t.en.yaml": clinical, "t.es.yaml": clinical}},
		{name: "no-phi step, notice template", journey: noPHI, templates: map[string]string{"t.en.yaml": notice, "t.es.yaml": notice}},
		{
			name: "no-phi step, one language clinical", journey: noPHI,
			templates: map[string]string{"t.en.yaml": notice, "t.es.yaml": clinical},
			want:      []string{"a.yaml:6: " + want},
		},
		{
			name: "no-phi SMS step falling back to a clinical email", journey: smsFallback,
			templates: map[string]string{"t.en.yaml": notice, "t.es.yaml": clinical, "t-sms.yaml": sms},
			want:      []string{"a.yaml:7: " + strings.Replace(want, "step 1: ", "step 1: fallback: ", 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, map[string]string{"a.yaml": tt.journey}, tt.templates)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load problems (-want +got):\n%s", diff)
			}
			// ValidateJourney's check says the same against a loaded Set.
			set, err := catalog.Load(writeFiles(t, nil), writeFiles(t, tt.templates), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			_, probs := set.CheckJourney("a.yaml", []byte(tt.journey))
			var checked []string
			for _, p := range probs {
				checked = append(checked, p.String())
			}
			if diff := cmp.Diff(tt.want, checked); diff != "" {
				t.Errorf("CheckJourney problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestREADMEListsTheFieldCatalogue keeps the README's table and the
// catalogue in the code the same.
func TestREADMEListsTheFieldCatalogue(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Field catalogue\n")
	if !ok {
		t.Fatal("README has no \"### Field catalogue\" section")
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| (`[^`]+`|—) \\| ([a-z-]+) \\|")
	var got []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		got = append(got, m[1]+" "+strings.Trim(m[2], "`")+" "+m[3])
	}
	var want []string
	for _, f := range catalog.Fields() {
		tmpl := f.Template
		if tmpl == "" {
			tmpl = "—"
		}
		want = append(want, f.Name+" "+tmpl+" "+string(f.Class))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README field catalogue (-code +README):\n%s", diff)
	}
}

// TestExamplesPassValidate checks every example journey as
// carenotifyctl journeys validate (ValidateJourney) does, against the
// example templates.
func TestExamplesPassValidate(t *testing.T) {
	set, err := catalog.Load(writeFiles(t, nil), examplesTemplates, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(examplesJourneys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(examplesJourneys + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, probs := set.CheckJourney(e.Name(), b); len(probs) > 0 {
			t.Errorf("%s: %v", e.Name(), probs)
		}
	}
}
