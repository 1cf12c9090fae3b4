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

func TestClaimBeginFinish(t *testing.T) {
	c := storetest.Client(t)
	s := records.New(c)
	supps := records.NewSuppressions(c, []byte("0123456789abcdef0123456789abcdef"))
	ctx := t.Context()
	const tn = "claim-test"
	suppressed := supps.Hash(tn, "gone@example.org")
	at := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := supps.Add(ctx, app.Suppression{Tenant: tn, AddressHash: suppressed, Reason: app.SuppressedHardBounce, Source: app.SourceDSN, MessageID: id2, At: at}); err != nil {
		t.Fatal(err)
	}
	free := supps.Hash(tn, "patient@example.org")
	rec := app.Record{ID: id1, Tenant: tn, Status: app.StatusQueued, UpdatedAt: at, ExpiresAt: at.Add(time.Hour), IdempotencyKeyHash: "k1"}

	// A suppressed recipient: the claim is undone, nothing written.
	got, err := s.Claim(ctx, rec, suppressed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := app.Claimed{Stored: id1, Claimed: true, Suppressed: &app.Suppression{
		Tenant: tn, AddressHash: suppressed, Reason: app.SuppressedHardBounce, MessageID: id2, At: at,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Claim(suppressed) (-want +got):\n%s", diff)
	}
	if n := c.Exists(ctx, records.IdempotencyKey(tn, "k1"), records.RecordKey(tn, id1)).Val(); n != 0 {
		t.Errorf("%d keys left after a suppressed claim, want 0", n)
	}

	// A free recipient: claimed and recorded; the same key again is a duplicate.
	if got, err = s.Claim(ctx, rec, free, time.Minute); err != nil || !got.Claimed || got.Suppressed != nil {
		t.Fatalf("Claim() = %+v, %v; want claimed", got, err)
	}
	readBack(t, s, rec)
	other := rec
	other.ID = id2
	if got, err = s.Claim(ctx, other, free, time.Minute); err != nil || got.Claimed || got.Stored != id1 {
		t.Fatalf("second Claim() = %+v, %v; want %s kept", got, err, id1)
	}

	// Begin: the lock, the record and the entry; a second Begin finds the lock taken.
	l, err := s.Begin(ctx, tn, id1, suppressed, time.Minute)
	if err != nil || !l.Held || !l.Found || l.Suppressed == nil || l.Suppressed.Reason != app.SuppressedHardBounce {
		t.Fatalf("Begin() = %+v, %v", l, err)
	}
	if diff := cmp.Diff(rec, l.Record); diff != "" {
		t.Errorf("Begin() record (-want +got):\n%s", diff)
	}
	if l2, err := s.Begin(ctx, tn, id1, "", time.Minute); err != nil || l2.Held {
		t.Fatalf("second Begin() = %+v, %v; want the lock taken", l2, err)
	}

	// Finish: the record, the sent index and the lock's release.
	rec.Status, rec.Attempts, rec.Committed = app.StatusSent, 1, true
	ref := app.SentRef{ID: id1, Tenant: tn, IdempotencyKey: "k1", RecipientHash: free}
	if err := s.Finish(ctx, rec, time.Minute, &ref, l.Token); err != nil {
		t.Fatal(err)
	}
	readBack(t, s, rec)
	if gotRef, err := s.Sent(ctx, id1); err != nil || gotRef != ref {
		t.Errorf("Sent() = %+v, %v; want %+v", gotRef, err, ref)
	}
	l3, err := s.Begin(ctx, tn, id1, free, time.Minute)
	if err != nil || !l3.Held || l3.Suppressed != nil {
		t.Fatalf("Begin() after Finish = %+v, %v; want the lock free and no entry", l3, err)
	}
	s.Unlock(ctx, tn, id1, l3.Token)
	if l4, _ := s.Begin(ctx, tn, "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a5f", "", time.Minute); !l4.Held || l4.Found {
		t.Errorf("Begin() of an unknown message = %+v; want held, not found", l4)
	}
}
