package catalog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// syntheticData is a made-up patient and appointment.
func syntheticData(given string) catalog.Data {
	start := time.Date(2031, time.May, 6, 15, 45, 0, 0, time.UTC)
	return catalog.Data{
		Tenant:  "demo",
		Patient: catalog.Patient{GivenName: given, FamilyName: "Testperson", Language: "en"},
		Appointment: &catalog.Appointment{
			Start: start, End: start.Add(30 * time.Minute),
			ServiceType: "Physiotherapy", Participants: []string{"Dr. Example"},
		},
		Event: catalog.Event{Kind: "appointment", Action: "booked", OccurredAt: start.Add(-48 * time.Hour)},
	}
}

func loadExampleTemplate(t *testing.T, loc *time.Location) *catalog.Template {
	t.Helper()
	set, err := catalog.Load(examplesJourneys, examplesTemplates, loc)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, ok := set.Template("appointment-confirmation")
	if !ok {
		t.Fatal("template appointment-confirmation not loaded")
	}
	return tmpl
}

func TestRenderExample(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadExampleTemplate(t, chicago).Render(syntheticData("Avery"))
	if err != nil {
		t.Fatalf("Render() = %v", err)
	}
	want := catalog.Message{
		Subject: "Your appointment on Tuesday, May 6, 2031",
		Text: "Hello Avery,\n\n" +
			"your appointment is confirmed for Tuesday, May 6, 2031 at 10:45 AM.\n" +
			"Service: Physiotherapy\n\n" +
			"If you cannot come, please call us so we can offer the time to someone else.\n\n" +
			"See you soon.\n",
		HTML: "<p>Hello Avery,</p>\n" +
			"<p>your appointment is confirmed for <strong>Tuesday, May 6, 2031</strong>\n" +
			"at <strong>10:45 AM</strong>.</p>\n" +
			"<p>Service: Physiotherapy</p>\n" +
			"<p>If you cannot come, please call us so we can offer the time to someone else.</p>\n" +
			"<p>See you soon.</p>\n",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Render() mismatch (-want +got):\n%s", diff)
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	got, err := loadExampleTemplate(t, time.UTC).Render(syntheticData("<script>alert(1)</script>"))
	if err != nil {
		t.Fatalf("Render() = %v", err)
	}
	if strings.Contains(got.HTML, "<script>") || !strings.Contains(got.HTML, "Hello &lt;script&gt;alert(1)&lt;/script&gt;,") {
		t.Errorf("HTML not escaped:\n%s", got.HTML)
	}
}

func TestRenderErrorsNeverQuoteData(t *testing.T) {
	// Passes the load-time check (the sample patient speaks English) but
	// fails for a French-speaking patient, in a way text/template reports
	// by quoting the value.
	tdir := writeFiles(t, map[string]string{"confirm.yaml": `id: confirm
channel: email
subject: "Hello"
text: "{{if eq .Patient.Language \"fr\"}}{{range .Patient.GivenName}}{{end}}{{end}}"
html: "<p>Hello</p>"
fields: [patient.given_name, patient.language]
`})
	set, err := catalog.Load(writeFiles(t, nil), tdir, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := set.Template("confirm")
	d := syntheticData("Canarygivenname")
	d.Patient.Language = "fr"
	tests := []struct {
		name string
		give catalog.Data
		want string
	}{
		{
			name: "value quoted by text/template",
			give: d,
			want: "render template confirm text at text:1:48 <.Patient.GivenName>: range over a value that is not a list",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tmpl.Render(tt.give)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Render() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRenderWithoutAppointment(t *testing.T) {
	tmpl := loadExampleTemplate(t, time.UTC)
	tests := []struct {
		name string
		give func(d *catalog.Data)
		want string
	}{
		{
			name: "no appointment facts",
			give: func(d *catalog.Data) { d.Appointment = nil },
			want: "render template appointment-confirmation subject at subject:1:39 <.Appointment.Start>: not present in this event",
		},
		{
			name: "no start time",
			give: func(d *catalog.Data) { d.Appointment.Start = time.Time{} },
			want: "render template appointment-confirmation subject at subject:1:22 <date .Appointment.Start>: the time is not set in this event",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := syntheticData("Avery")
			tt.give(&d)
			_, err := tmpl.Render(d)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Render() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRenderExampleInSpanish(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	set, err := catalog.Load(examplesJourneys, examplesTemplates, chicago)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, ok := set.Select("appointment-confirmation", "demo", "es-MX")
	if !ok || tmpl.Language != "es" {
		t.Fatalf("Select(es-MX) = %v, %t; want the es version", tmpl, ok)
	}
	got, err := tmpl.Render(syntheticData("Avery"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Su cita del martes, 6 de mayo de 2031"; got.Subject != want {
		t.Errorf("subject %q, want %q", got.Subject, want)
	}
	if want := "su cita está confirmada para el martes, 6 de mayo de 2031 a las 10:45."; !strings.Contains(got.Text, want) {
		t.Errorf("text %q does not contain %q", got.Text, want)
	}
}

// TestExamplesHaveSpanish checks that every example template has an
// English and a Spanish version.
func TestExamplesHaveSpanish(t *testing.T) {
	set, err := catalog.Load(examplesJourneys, examplesTemplates, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range set.Journeys() {
		for _, st := range j.Steps {
			if st.Kind != catalog.StepSend {
				continue
			}
			for _, id := range []string{st.Template, st.FallbackTemplate} {
				if id == "" {
					continue
				}
				if got := set.TemplateLanguages(id); !cmp.Equal([]string{"en", "es"}, got) {
					t.Errorf("%s: template %s languages %q, want en and es", j.ID, id, got)
				}
			}
		}
	}
}

// TestRenderNewExamples renders the lab-result and discharge examples for
// an event of their kind (no appointment) in both languages, and checks
// the notices carry nothing of the patient.
func TestRenderNewExamples(t *testing.T) {
	set, err := catalog.Load(examplesJourneys, examplesTemplates, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	discharged := time.Date(2031, time.May, 6, 15, 45, 0, 0, time.UTC)
	tests := []struct {
		id, lang string
		event    catalog.Event
		want     string
	}{
		{"lab-result-available", "en", catalog.Event{Kind: "lab_result", Action: "final"}, "a new test result is ready for you in your patient portal"},
		{"lab-result-available", "es", catalog.Event{Kind: "lab_result", Action: "final"}, "tiene un nuevo resultado de laboratorio"},
		{"lab-result-available-sms", "en", catalog.Event{Kind: "lab_result", Action: "final"}, "A new test result is ready"},
		{"lab-result-available-sms", "es", catalog.Event{Kind: "lab_result", Action: "final"}, "Tiene un nuevo resultado"},
		{"discharge-check-in", "en", catalog.Event{Kind: "encounter", Action: "discharged", OccurredAt: discharged}, "you went home from the hospital on Tuesday, May 6, 2031."},
		{"discharge-check-in", "es", catalog.Event{Kind: "encounter", Action: "discharged", OccurredAt: discharged}, "volvió a casa desde el hospital el martes, 6 de mayo de 2031."},
		{"discharge-check-in", "en", catalog.Event{Kind: "encounter", Action: "discharged"}, "you went home from the hospital recently."},
	}
	for _, tt := range tests {
		t.Run(tt.id+"."+tt.lang, func(t *testing.T) {
			tmpl, ok := set.Select(tt.id, "demo", tt.lang)
			if !ok || tmpl.Language != tt.lang {
				t.Fatalf("Select(%s, %s) = %v, %t", tt.id, tt.lang, tmpl, ok)
			}
			d := catalog.Data{Tenant: "demo", Patient: catalog.Patient{GivenName: "Canarina", FamilyName: "Quillfeather", Language: tt.lang}, Event: tt.event}
			msg, err := tmpl.Render(d)
			if err != nil {
				t.Fatal(err)
			}
			all := msg.Subject + msg.Text + msg.HTML
			if !strings.Contains(all, tt.want) {
				t.Errorf("rendered %q, want it to contain %q", all, tt.want)
			}
			if strings.Contains(all, "Quillfeather") || (strings.HasPrefix(tt.id, "lab-result") && strings.Contains(all, "Canarina")) {
				t.Errorf("rendered %q names the patient", all)
			}
		})
	}
}
