package app_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// subjectSender records the subject of every email.
type subjectSender struct {
	mu       sync.Mutex
	subjects []string
}

func (f *subjectSender) SendEmail(_ context.Context, e app.Email) (app.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subjects = append(f.subjects, string(e.Subject))
	return app.SendResult{MessageID: "m"}, nil
}

func TestSendsInThePatientsLanguage(t *testing.T) {
	jdir, tdir := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tdir, "t.en.yaml", "id: t\nchannel: email\nfields: [event.appointment.start]\nsubject: \"On {{date .Appointment.Start}}\"\ntext: Hi\nhtml: <p>Hi</p>\n")
	write(tdir, "t.es.yaml", "id: t\nchannel: email\nfields: [event.appointment.start]\nsubject: \"El {{date .Appointment.Start}}\"\ntext: Hola\nhtml: <p>Hola</p>\n")
	write(jdir, "a.yaml", "id: a\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n  - send: email\n    template: t\n")
	set, err := catalog.Load(jdir, tdir, time.UTC, catalog.WithLanguages(catalog.Languages{Default: "en", Tenants: map[string]string{"sur": "es"}}))
	if err != nil {
		t.Fatal(err)
	}
	sender := &subjectSender{}
	svc := app.New(set, sender, &fakeTimers{}, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	for i, give := range []struct{ tenant, language string }{
		{"demo", "es-MX"}, // → es
		{"demo", "fr"},    // → en, the deployment default
		{"sur", "fr"},     // → es, tenant sur's default
		{"sur", "en-US"},  // → en
		{"demo", ""},      // → en
	} {
		ev := event(func(e *eventsv1.ClinicalEvent) {
			e.Tenant, e.Patient.Language = give.tenant, give.language
			e.SubjectRef = "Appointment/" + string(rune('1'+i))
		})
		if _, err := svc.HandleEvent(t.Context(), ev); err != nil {
			t.Fatalf("HandleEvent(%v) = %v", give, err)
		}
	}
	want := []string{
		"El jueves, 2 de enero de 2031",
		"On Thursday, January 2, 2031",
		"El jueves, 2 de enero de 2031",
		"On Thursday, January 2, 2031",
		"On Thursday, January 2, 2031",
	}
	if diff := cmp.Diff(want, sender.subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
}
