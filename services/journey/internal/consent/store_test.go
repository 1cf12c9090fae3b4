package consent_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/consent"
)

func TestStore(t *testing.T) {
	c := storetest.Client(t)
	s := consent.New(c, envelopetest.Sealer(t), []byte(strings.Repeat("k", 32)))
	ctx := t.Context()
	tenant := "consent-store"
	k := app.ConsentKey{Tenant: tenant, Patient: "pcanary-1", Channel: "email", Purpose: catalog.PurposeTreatment}
	want := app.Consent{Tenant: tenant, Patient: "pcanary-1", Channel: "email", Purpose: catalog.PurposeTreatment,
		State: app.ConsentDenied, Source: app.SourceAdmin, Time: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), EvidenceRef: "canary evidence"}
	if _, err := s.Consent(ctx, k); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("Consent(missing) = %v, want ErrNotFound", err)
	}
	if err := s.PutConsent(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Consent(ctx, k)
	if err != nil || got != want {
		t.Fatalf("Consent() = %+v, %v; want %+v", got, err, want)
	}
	keys, err := c.Keys(ctx, "cn:{"+tenant+"}:*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], "pcanary") {
		t.Fatalf("keys = %q, %v", keys, err)
	}
	// A record copied under another patient's key does not open.
	other := k
	other.Patient = "pcanary-2"
	raw, _ := c.Get(ctx, keys[0]).Bytes()
	otherKey := strings.Replace(keys[0], s.PatientHash(tenant, "pcanary-1"), s.PatientHash(tenant, "pcanary-2"), 1)
	if err := c.Set(ctx, otherKey, raw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consent(ctx, other); !errors.Is(err, envelope.ErrTampered) {
		t.Errorf("Consent(moved record) = %v, want ErrTampered", err)
	}

	m := app.SentMessage{Patient: "pcanary-1", Purpose: catalog.PurposeOperations, Journey: "j"}
	idem := strings.Repeat("0f", 32)
	if err := s.RememberSent(ctx, tenant, idem, m); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Sent(ctx, tenant, idem); err != nil || got != m {
		t.Errorf("Sent() = %+v, %v", got, err)
	}
	if ttl := c.TTL(ctx, "cn:{"+tenant+"}:sent:"+idem).Val(); ttl <= 89*24*time.Hour {
		t.Errorf("TTL = %v, want 90 days", ttl)
	}
	for _, bad := range []string{"", "x", strings.Repeat("0f", 32) + "*", strings.Repeat("zz", 32)} {
		if _, err := s.Sent(ctx, tenant, bad); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("Sent(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	if a, b := s.PatientHash(tenant, "p"), consent.New(c, envelopetest.Sealer(t), []byte(strings.Repeat("j", 32))).PatientHash(tenant, "p"); a == b {
		t.Error("patient hash does not depend on the key")
	}
}

func TestFrequencyCaps(t *testing.T) {
	c := storetest.Client(t)
	s := consent.New(c, envelopetest.Sealer(t), []byte(strings.Repeat("k", 32)))
	ctx := t.Context()
	const tenant = "caps-store"
	now := time.Date(2031, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, sent := range []struct {
		key string
		at  time.Time
	}{{"k1", now.Add(-30 * time.Hour)}, {"k2", now.Add(-2 * time.Hour)}, {"k3", now.Add(-time.Hour)}, {"k3", now}} {
		if err := s.CountSent(ctx, tenant, "pcanary-1", catalog.PurposeTreatment, sent.key, sent.at); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name        string
		patient     string
		purpose     catalog.Purpose
		key         string
		wantN       int
		wantCounted bool
	}{
		{name: "last 24h, new key", patient: "pcanary-1", purpose: catalog.PurposeTreatment, key: "k9", wantN: 2},
		{name: "a counted key is a retry", patient: "pcanary-1", purpose: catalog.PurposeTreatment, key: "k3", wantN: 2, wantCounted: true},
		{name: "outside the window is not a retry", patient: "pcanary-1", purpose: catalog.PurposeTreatment, key: "k1", wantN: 2},
		{name: "other purpose", patient: "pcanary-1", purpose: catalog.PurposeOperations, key: "k9"},
		{name: "other patient", patient: "pcanary-2", purpose: catalog.PurposeTreatment, key: "k9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, counted, err := s.SentSince(ctx, tenant, tt.patient, tt.purpose, now.Add(-24*time.Hour), tt.key)
			if err != nil || n != tt.wantN || counted != tt.wantCounted {
				t.Errorf("SentSince() = %d, %v, %v; want %d, %v", n, counted, err, tt.wantN, tt.wantCounted)
			}
		})
	}
	keys, err := c.Keys(ctx, "cn:{"+tenant+"}:*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], "pcanary") {
		t.Errorf("keys = %q, %v; want one, without the patient id", keys, err)
	}
	if ttl, err := c.TTL(ctx, keys[0]).Result(); err != nil || ttl <= 0 {
		t.Errorf("TTL = %v, %v; want an expiry", ttl, err)
	}
}
