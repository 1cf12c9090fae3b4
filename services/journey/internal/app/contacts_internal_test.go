package app

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

func TestMergeContacts(t *testing.T) {
	t1 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	t0, t2 := t1.Add(-time.Hour), t1.Add(time.Hour)
	stored := Contacts{Emails: []string{"old@example.org"}, Phones: []string{"555-0100"}, Language: "en", TimeZone: "America/Denver", AsOf: t1}
	tests := []struct {
		name          string
		stored        *Contacts // nil: no record
		give          *eventsv1.Patient
		at            time.Time
		authoritative bool
		want          Contacts
		wantChanged   bool
	}{
		{
			name: "first event", give: &eventsv1.Patient{Emails: []string{"a@example.org"}, Language: "es"}, at: t1,
			want: Contacts{Emails: []string{"a@example.org"}, Language: "es", AsOf: t1}, wantChanged: true,
		},
		{
			name: "event without contacts keeps the record", stored: &stored, give: &eventsv1.Patient{Id: "p"}, at: t2,
			want: Contacts{Emails: stored.Emails, Phones: stored.Phones, Language: "en", TimeZone: "America/Denver", AsOf: t2}, wantChanged: true,
		},
		{
			name: "newer contact points replace both lists", stored: &stored, give: &eventsv1.Patient{Phones: []string{"555-0199"}}, at: t2,
			want: Contacts{Phones: []string{"555-0199"}, Language: "en", TimeZone: "America/Denver", AsOf: t2}, wantChanged: true,
		},
		{
			name: "older event changes nothing", stored: &stored, give: &eventsv1.Patient{Emails: []string{"stale@example.org"}, Language: "fr", TimeZone: "Europe/Paris"}, at: t0,
			want: stored,
		},
		{
			name: "same time, same contacts: unchanged", stored: &stored,
			give: &eventsv1.Patient{Emails: stored.Emails, Phones: stored.Phones, Language: "en", TimeZone: "America/Denver"}, at: t1,
			want: stored,
		},
		{
			name: "patient.updated without contact points forgets them", stored: &stored, give: &eventsv1.Patient{Language: "en"}, at: t2, authoritative: true,
			want: Contacts{Language: "en", TimeZone: "America/Denver", AsOf: t2}, wantChanged: true,
		},
		{
			name: "HL7 v2 (no zone) keeps the zone", stored: &stored, give: &eventsv1.Patient{Phones: []string{"555-0100"}, Emails: []string{"old@example.org"}, Language: "en"}, at: t2,
			want: Contacts{Emails: stored.Emails, Phones: stored.Phones, Language: "en", TimeZone: "America/Denver", AsOf: t2}, wantChanged: true,
		},
		{
			name: "older event fills what the record lacks", stored: &Contacts{AsOf: t1},
			give: &eventsv1.Patient{TimeZone: "Europe/Paris"}, at: t0,
			want: Contacts{AsOf: t1, TimeZone: "Europe/Paris"}, wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st Contacts
			if tt.stored != nil {
				st = *tt.stored
			}
			got, changed := mergeContacts(st, tt.stored != nil, tt.give, tt.at, tt.authoritative)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}
