package app_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestQuietHoursInPatientZone keeps quiet hours 21:00–08:00 in the
// patient's zone (from the event), else the tenant's default, else the
// deployment's (UTC here), across the US and EU daylight-saving changes
// of March 2031 (US: Sunday 9 March 02:00 EST → 03:00 EDT; EU: Sunday 30
// March 01:00 UTC).
func TestQuietHoursInPatientZone(t *testing.T) {
	utc := func(d, h, m int) time.Time { return time.Date(2031, 3, d, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name    string
		tenant  string
		zone    string // the patient's, on the event
		now     time.Time
		wantDue time.Time // zero: sent now
	}{
		// 06:30 UTC on 9 March is 01:30 EST: quiet until 08:00 EDT = 12:00 UTC
		// (not 13:00: the clocks moved in between).
		{name: "tenant zone across US DST", tenant: "north", now: utc(9, 6, 30), wantDue: utc(9, 12, 0)},
		{name: "patient zone wins over the tenant's", tenant: "north", zone: "Europe/Berlin", now: utc(9, 6, 30), wantDue: utc(9, 7, 0)},
		{name: "unknown patient zone: tenant's", tenant: "north", zone: "Mars/Olympus_Mons", now: utc(9, 6, 30), wantDue: utc(9, 12, 0)},
		{name: "no tenant zone: deployment's", tenant: "south", now: utc(9, 6, 30), wantDue: utc(9, 8, 0)},
		{name: "patient zone, other tenant", tenant: "south", zone: "America/Chicago", now: utc(9, 6, 30), wantDue: utc(9, 13, 0)},
		// 13:30 UTC: 09:30 in New York (EDT), 14:30 in Berlin: both send.
		{name: "daytime in New York", tenant: "north", now: utc(9, 13, 30)},
		{name: "daytime in Berlin", tenant: "north", zone: "Europe/Berlin", now: utc(9, 13, 30)},
		// 00:30 UTC on 30 March is 01:30 CET: quiet until 08:00 CEST = 06:00 UTC.
		{name: "patient zone across EU DST", tenant: "north", zone: "Europe/Berlin", now: utc(30, 0, 30), wantDue: utc(30, 6, 0)},
		// The same instant is 20:30 EDT the day before in New York: not quiet yet.
		{name: "same instant in New York", tenant: "north", now: utc(30, 0, 30)},
	}
	set := load(t, map[string]string{
		"quiet.yaml": "id: quiet\npurpose: treatment\ntrigger: appointment.booked\nquiet_hours: {start: \"21:00\", end: \"08:00\"}\n" +
			"steps:\n  - send: email\n    template: t\n",
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender, tm := &fakeSender{}, &fakeTimers{}
			svc := app.New(set, sender, tm, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
				app.WithClock(func() time.Time { return tt.now }), app.WithLocation(time.UTC),
				app.WithTenantZones(map[string]*time.Location{"north": mustZone(t, "America/New_York")}))
			ev := event(func(e *eventsv1.ClinicalEvent) { e.Tenant, e.Patient.TimeZone = tt.tenant, tt.zone })
			if _, err := svc.HandleEvent(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
			if tt.wantDue.IsZero() {
				if len(sender.calls) != 1 || len(tm.scheduled) != 0 {
					t.Fatalf("sends %v, timers %+v; want one send now", sender.calls, tm.scheduled)
				}
				return
			}
			if len(sender.calls) != 0 || len(tm.scheduled) != 1 {
				t.Fatalf("sends %v, timers %+v; want one deferral", sender.calls, tm.scheduled)
			}
			if got := tm.scheduled[0].Due; !got.Equal(tt.wantDue) {
				t.Errorf("deferred to %v, want %v", got.UTC(), tt.wantDue)
			}
		})
	}
}

// TestTimesShownInPatientZone renders an appointment's time in the
// patient's zone, else the tenant's; the wait_until before it stays an
// absolute instant whatever the zone.
func TestTimesShownInPatientZone(t *testing.T) {
	jdir, tdir := t.TempDir(), t.TempDir()
	for dir, files := range map[string]map[string]string{
		tdir: {"t.yaml": "id: t\nchannel: email\nfields: [event.appointment.start]\nsubject: \"At {{time .Appointment.Start}}\"\ntext: Hi\nhtml: <p>Hi</p>\n"},
		jdir: {"r.yaml": "id: r\npurpose: treatment\ntrigger: appointment.booked\nsteps:\n" +
			"  - wait_until: event.appointment.start - duration(\"24h\")\n  - send: email\n    template: t\n"},
	} {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	set, err := catalog.Load(jdir, tdir, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2031, 7, 2, 15, 0, 0, 0, time.UTC)
	now := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	var subjects []string
	for _, zone := range []string{"America/Los_Angeles", ""} {
		sender, tm := &subjectSender{}, &fakeTimers{}
		svc := app.New(set, sender, tm, consents(t), auditor(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
			app.WithClock(func() time.Time { return now }),
			app.WithTenantZones(map[string]*time.Location{"demo": mustZone(t, "Europe/Madrid")}))
		ev := event(func(e *eventsv1.ClinicalEvent) {
			e.Patient.TimeZone = zone
			e.GetAppointment().Start = timestamppb.New(start)
		})
		if _, err := svc.HandleEvent(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		if len(tm.scheduled) != 1 || !tm.scheduled[0].Due.Equal(start.Add(-24*time.Hour)) {
			t.Fatalf("zone %q: timers %+v, want one at %v", zone, tm.scheduled, start.Add(-24*time.Hour))
		}
		if err := svc.Resume(t.Context(), tm.scheduled[0]); err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, sender.subjects...)
	}
	// 15:00 UTC is 08:00 in Los Angeles (PDT) and 17:00 in Madrid (CEST).
	if len(subjects) != 2 || subjects[0] != "At 8:00 AM" || subjects[1] != "At 5:00 PM" {
		t.Errorf("subjects = %q, want [At 8:00 AM, At 5:00 PM]", subjects)
	}
}
