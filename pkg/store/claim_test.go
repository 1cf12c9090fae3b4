package store_test

import (
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/storetest"
)

func TestClaimAndDeleteIf(t *testing.T) {
	c := storetest.Client(t)
	ctx := t.Context()
	key := store.Key("t-claim", "idem", "k")
	got, claimed, err := store.Claim(ctx, c, key, "m1", time.Minute)
	if err != nil || !claimed || got != "m1" {
		t.Fatalf("first Claim = %q, %v, %v; want m1, true", got, claimed, err)
	}
	got, claimed, err = store.Claim(ctx, c, key, "m2", time.Minute)
	if err != nil || claimed || got != "m1" {
		t.Fatalf("second Claim = %q, %v, %v; want m1, false", got, claimed, err)
	}
	if err := store.DeleteIf(ctx, c, key, "m2"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, key).Result(); n != 1 {
		t.Fatal("DeleteIf removed a key holding another value")
	}
	if err := store.DeleteIf(ctx, c, key, "m1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("DeleteIf left the key holding its value")
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl > 0 {
		t.Fatalf("ttl %v after delete", ttl)
	}
}

func TestLock(t *testing.T) {
	c := storetest.Client(t)
	ctx := t.Context()
	key := store.Key("t-lock", "lock", "m")
	unlock, ok, err := store.Lock(ctx, c, key, time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock = %v, %v", ok, err)
	}
	if _, ok, err := store.Lock(ctx, c, key, time.Minute); err != nil || ok {
		t.Fatalf("second Lock = %v, %v; want false", ok, err)
	}
	unlock(ctx)
	unlock2, ok, err := store.Lock(ctx, c, key, time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock after unlock = %v, %v", ok, err)
	}
	unlock(ctx) // a stale unlock must not free the new holder's lock
	if _, ok, _ := store.Lock(ctx, c, key, time.Minute); ok {
		t.Fatal("a stale unlock released another holder's lock")
	}
	unlock2(ctx)
}
