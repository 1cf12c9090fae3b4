package consent_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/consent"
)

func TestContacts(t *testing.T) {
	c := storetest.Client(t)
	s := consent.New(c, envelopetest.Sealer(t), []byte(strings.Repeat("k", 32)))
	ctx := t.Context()
	const tenant, patient = "contacts-store", "pcanary-7"
	want := app.Contacts{
		Emails: []string{"canary.contact@example.org"}, Phones: []string{"+15550107777"},
		Language: "es-MX", TimeZone: "America/Chicago", AsOf: time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC),
	}
	if _, err := s.Contacts(ctx, tenant, patient); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("Contacts(missing) = %v, want ErrNotFound", err)
	}
	if err := s.PutContacts(ctx, tenant, patient, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Contacts(ctx, tenant, patient)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Contacts() (-want +got):\n%s", diff)
	}
	keys, err := c.Keys(ctx, "cn:{"+tenant+"}:*").Result()
	if err != nil || len(keys) != 1 || keys[0] != "cn:{"+tenant+"}:contacts:"+s.PatientHash(tenant, patient) {
		t.Fatalf("keys = %q, %v", keys, err)
	}
	raw, _ := c.Get(ctx, keys[0]).Bytes()
	for _, phi := range []string{patient, "canary.contact", "5550107777", "Chicago", "es-MX"} {
		if strings.Contains(string(raw), phi) {
			t.Errorf("stored value holds %q in clear", phi)
		}
	}
	if ttl := c.TTL(ctx, keys[0]).Val(); ttl <= 399*24*time.Hour {
		t.Errorf("TTL = %v, want 400 days", ttl)
	}
	// A record copied under another patient's key does not open.
	other := strings.Replace(keys[0], s.PatientHash(tenant, patient), s.PatientHash(tenant, "pcanary-8"), 1)
	if err := c.Set(ctx, other, raw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Contacts(ctx, tenant, "pcanary-8"); !errors.Is(err, envelope.ErrTampered) {
		t.Errorf("Contacts(moved record) = %v, want ErrTampered", err)
	}
}
