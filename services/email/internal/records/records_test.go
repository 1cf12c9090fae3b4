package records_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/records"
)

const (
	tenant = "records-test"
	id1    = "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a51"
	id2    = "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a52"
	hash   = "aa"
)

func TestIdempotencyKeyLifecycle(t *testing.T) {
	c := storetest.Client(t)
	s := records.New(c)
	ctx := t.Context()

	got, claimed, err := s.ClaimIdempotencyKey(ctx, tenant, hash, id1, time.Minute)
	if err != nil || !claimed || got != id1 {
		t.Fatalf("first claim = %q, %v, %v", got, claimed, err)
	}
	got, claimed, err = s.ClaimIdempotencyKey(ctx, tenant, hash, id2, time.Minute)
	if err != nil || claimed || got != id1 {
		t.Fatalf("second claim = %q, %v, %v; want %q unclaimed", got, claimed, err, id1)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := app.Record{
		ID: id1, Tenant: tenant, Status: app.StatusQueued, UpdatedAt: now,
		ExpiresAt: now.Add(time.Hour), IdempotencyKeyHash: hash,
	}
	if err := s.CreateRecord(ctx, rec, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, tenant, id1, hash, app.RecordTTL); err != nil {
		t.Fatal(err)
	}
	rec.Committed = true
	readBack(t, s, rec)
	for _, k := range []string{records.IdempotencyKey(tenant, hash), records.RecordKey(tenant, id1)} {
		if ttl := c.TTL(ctx, k).Val(); ttl < 29*24*time.Hour {
			t.Errorf("TTL(%s) = %v after commit, want about 30 days", k, ttl)
		}
	}

	rec.Status, rec.Attempts, rec.Reason = app.StatusSent, 2, ""
	rec.Transport = app.Transport{TLSVersion: "TLS1.3", TLSVerified: true, NextHop: "relay.example.org"}
	if err := s.UpdateRecord(ctx, rec, app.RecordTTL); err != nil {
		t.Fatal(err)
	}
	readBack(t, s, rec)

	if err := s.Forget(ctx, tenant, id1, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record(ctx, tenant, id1); err != app.ErrNotFound {
		t.Errorf("Record() after Forget = %v, want ErrNotFound", err)
	}
	if _, claimed, _ := s.ClaimIdempotencyKey(ctx, tenant, hash, id2, time.Minute); !claimed {
		t.Error("key still claimed after Forget")
	}
}

func readBack(t *testing.T, s *records.Store, want app.Record) {
	t.Helper()
	got, err := s.Record(t.Context(), want.Tenant, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestForgetKeepsAnotherMessagesKey(t *testing.T) {
	s := records.New(storetest.Client(t))
	ctx := t.Context()
	if _, _, err := s.ClaimIdempotencyKey(ctx, tenant, hash, id2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, tenant, id1, hash); err != nil {
		t.Fatal(err)
	}
	if got, claimed, _ := s.ClaimIdempotencyKey(ctx, tenant, hash, id1, time.Minute); claimed || got != id2 {
		t.Errorf("claim after forgetting another id = %q, %v; want %q kept", got, claimed, id2)
	}
}

func TestLock(t *testing.T) {
	s := records.New(storetest.Client(t))
	ctx := t.Context()
	unlock, ok, err := s.Lock(ctx, tenant, id1, time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock() = %v, %v", ok, err)
	}
	if _, ok, _ := s.Lock(ctx, tenant, id1, time.Minute); ok {
		t.Error("second Lock() succeeded while held")
	}
	unlock(ctx)
	if _, ok, _ := s.Lock(ctx, tenant, id1, time.Minute); !ok {
		t.Error("Lock() failed after unlock")
	}
}

func TestSentIndex(t *testing.T) {
	c := storetest.Client(t)
	s := records.New(c)
	ctx := t.Context()
	const id = "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a59"
	if _, err := s.Sent(ctx, id); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("Sent() before RememberSent = %v, want ErrNotFound", err)
	}
	want := app.SentRef{ID: id, Tenant: tenant, IdempotencyKey: "journey-1/step-1"}
	if err := s.RememberSent(ctx, want, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Sent(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sent() (-want +got):\n%s", diff)
	}
	if ttl := c.PTTL(ctx, records.SentKey(id)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("sent index TTL = %v", ttl)
	}
}
