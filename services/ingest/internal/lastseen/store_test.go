package lastseen_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/lastseen"
)

var pseudonymKey = bytes.Repeat([]byte{7}, 32)

// canary is a business identifier that must never appear in Redis in clear.
const canary = "PLACER-CANARY-8812"

func newStore(t *testing.T, o lastseen.Options) (*lastseen.Store, *redis.Client) {
	t.Helper()
	c := storetest.Client(t)
	return lastseen.New(c, envelopetest.Sealer(t), pseudonymKey, o), c
}

func keys(vals ...string) []app.ResourceKey {
	var out []app.ResourceKey
	for _, v := range vals {
		parts := strings.SplitN(v, "|", 3)
		out = append(out, app.ResourceKey{Type: parts[0], Scope: parts[1], Value: parts[2]})
	}
	return out
}

func TestFoundByAnyKeySealedWithoutPHIInKeys(t *testing.T) {
	ctx := t.Context()
	s, c := newStore(t, lastseen.Options{})
	tenant := "ls-anykey"
	first := keys("logical|epic-fhir|Appointment/a1", "business|https://ghh.example.org/appt|"+canary)
	l, err := s.Lock(ctx, tenant, app.KindAppointment, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, found := l.State(); found {
		t.Fatal("a new resource has a state")
	}
	id := l.RecordID()
	st := app.ResourceState{Kind: app.KindAppointment, SubjectRef: "Appointment/a1", Status: "booked", Announced: "booked",
		Start: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Seq: 1}
	if err := l.Commit(ctx, st); err != nil {
		t.Fatal(err)
	}
	// The HL7 v2 message names only the business identifier (and another
	// of its own): it finds the same record.
	l2, err := s.Lock(ctx, tenant, app.KindAppointment, keys("business|https://ghh.example.org/appt|"+canary, "business|urn:x:filler|F9"))
	if err != nil {
		t.Fatal(err)
	}
	got, found := l2.State()
	if !found || got.SubjectRef != "Appointment/a1" || !got.Start.Equal(st.Start) || l2.RecordID() != id {
		t.Fatalf("by business key: %+v found=%v id=%s, want the first record %s", got, found, l2.RecordID(), id)
	}
	got.Seq = 2
	if err := l2.Commit(ctx, got); err != nil {
		t.Fatal(err)
	}
	// The filler id alone finds it now, and another kind does not.
	l3, err := s.Lock(ctx, tenant, app.KindAppointment, keys("business|urn:x:filler|F9"))
	if err != nil {
		t.Fatal(err)
	}
	if got, found := l3.State(); !found || got.Seq != 2 {
		t.Errorf("by the filler id: seq %d found=%v, want 2 true", got.Seq, found)
	}
	l3.Release(ctx)
	l4, err := s.Lock(ctx, tenant, app.KindEncounter, keys("business|urn:x:filler|F9"))
	if err != nil {
		t.Fatal(err)
	}
	if _, found := l4.State(); found {
		t.Error("an encounter key finds an appointment")
	}
	l4.Release(ctx)

	all, err := c.Keys(ctx, "cn:{"+tenant+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if strings.Contains(k, canary) || strings.Contains(k, "a1") && !strings.Contains(k, ":rk:") && !strings.Contains(k, ":rs:") {
			t.Errorf("key %q carries an identifier", k)
		}
		if strings.Contains(k, ":rl:") {
			t.Errorf("lock %q left after commit and release", k)
		}
		v, _ := c.Get(ctx, k).Bytes()
		if bytes.Contains(v, []byte(canary)) || bytes.Contains(v, []byte("Appointment/a1")) || bytes.Contains(v, []byte("2026-03-02")) {
			t.Errorf("value of %q holds PHI in clear", k)
		}
		if ttl := c.TTL(ctx, k).Val(); ttl < 399*24*time.Hour {
			t.Errorf("TTL of %q = %v, want about 400 days", k, ttl)
		}
	}
	if len(all) != 4 { // 3 index keys + 1 record
		t.Errorf("Redis holds %d keys, want 4: %v", len(all), all)
	}
}

// TestSameIdentifiersSameRecordID: the record id of a new resource does
// not depend on the protocol's own keys (a FHIR logical id first).
func TestSameIdentifiersSameRecordID(t *testing.T) {
	ctx := t.Context()
	s, _ := newStore(t, lastseen.Options{})
	a, err := s.Lock(ctx, "ls-recid", app.KindAppointment, keys("logical|epic-fhir|Appointment/a1", "business|sys|V1"))
	if err != nil {
		t.Fatal(err)
	}
	a.Release(ctx)
	b, err := s.Lock(ctx, "ls-recid", app.KindAppointment, keys("business|sys|V1"))
	if err != nil {
		t.Fatal(err)
	}
	b.Release(ctx)
	if a.RecordID() != b.RecordID() {
		t.Errorf("record ids %s and %s differ for the same identifier", a.RecordID(), b.RecordID())
	}
}

// TestLockSerialisesConcurrentArrivals has many goroutines read the
// state, increment it and write it back under the lock, some finding the
// resource by one key and some by another: no increment is lost.
func TestLockSerialisesConcurrentArrivals(t *testing.T) {
	ctx := t.Context()
	s, _ := newStore(t, lastseen.Options{LockWait: 20 * time.Second})
	tenant := "ls-concurrent"
	l, err := s.Lock(ctx, tenant, app.KindLabResult, keys("logical|lab|DiagnosticReport/r1", "business|filler|R1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, app.ResourceState{Kind: app.KindLabResult}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		k := keys("logical|lab|DiagnosticReport/r1")
		if i%2 == 1 {
			k = keys("business|filler|R1")
		}
		wg.Go(func() {
			l, err := s.Lock(ctx, tenant, app.KindLabResult, k)
			if err != nil {
				errs <- err
				return
			}
			st, _ := l.State()
			st.Seq++
			errs <- l.Commit(ctx, st)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err = s.Lock(ctx, tenant, app.KindLabResult, keys("business|filler|R1"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if st, _ := l.State(); st.Seq != n {
		t.Errorf("seq = %d after %d locked increments", st.Seq, n)
	}
}

func TestBusyAndLostLocks(t *testing.T) {
	ctx := t.Context()
	s, _ := newStore(t, lastseen.Options{LockTTL: 300 * time.Millisecond, LockWait: 50 * time.Millisecond})
	k := keys("business|sys|B1")
	held, err := s.Lock(ctx, "ls-busy", app.KindAppointment, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, "ls-busy", app.KindAppointment, k); !errors.Is(err, app.ErrStateBusy) {
		t.Fatalf("second Lock = %v, want ErrStateBusy", err)
	}
	// The holder stalls past the lock TTL; another request takes over,
	// and the stalled write is refused.
	time.Sleep(400 * time.Millisecond)
	other, err := s.Lock(ctx, "ls-busy", app.KindAppointment, k)
	if err != nil {
		t.Fatalf("Lock after the TTL = %v", err)
	}
	if err := held.Commit(ctx, app.ResourceState{Kind: app.KindAppointment, Seq: 9}); err == nil {
		t.Error("a commit after the lock expired succeeded")
	}
	if err := other.Commit(ctx, app.ResourceState{Kind: app.KindAppointment, Seq: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestRedisDown(t *testing.T) {
	c := storetest.Client(t)
	s := lastseen.New(c, envelopetest.Sealer(t), pseudonymKey, lastseen.Options{})
	_ = c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Lock(ctx, "ls-down", app.KindAppointment, keys("business|sys|D1")); err == nil || errors.Is(err, app.ErrStateBusy) {
		t.Errorf("Lock with Redis closed = %v, want a Redis error", err)
	}
}

func TestTamperedRecordRefused(t *testing.T) {
	ctx := t.Context()
	s, c := newStore(t, lastseen.Options{})
	tenant := "ls-tamper"
	l, err := s.Lock(ctx, tenant, app.KindPatient, keys("logical|src|Patient/p1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, app.ResourceState{Kind: app.KindPatient, ContactHash: "h"}); err != nil {
		t.Fatal(err)
	}
	recs, _ := c.Keys(ctx, "cn:{"+tenant+"}:ingest:rs:*").Result()
	if len(recs) != 1 {
		t.Fatalf("records = %v", recs)
	}
	v, _ := c.Get(ctx, recs[0]).Bytes()
	v[len(v)-1] ^= 1
	c.Set(ctx, recs[0], v, 0)
	if _, err := s.Lock(ctx, tenant, app.KindPatient, keys("logical|src|Patient/p1")); err == nil {
		t.Error("a tampered record was read")
	}
	// ...and its locks were released, so a repaired record can be read.
	if n, _ := c.Keys(ctx, "cn:{"+tenant+"}:ingest:rl:*").Result(); len(n) != 0 {
		t.Errorf("locks left: %v", n)
	}
}
