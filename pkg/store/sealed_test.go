package store_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/storetest"
)

// Tenants are named after the test so tests can share a REDIS_URL server.

func TestSealedRoundTrip(t *testing.T) {
	c := storetest.Client(t)
	s := envelopetest.Sealer(t)
	tenant := "sealed-roundtrip"
	key := store.Key(tenant+":p1", "contact", "email")
	canary := []byte("canary-4b1d9e@example.org Zebulon Canary")
	if err := store.SetSealed(t.Context(), c, s, tenant, key, canary, time.Hour); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(t.Context(), key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, canary) || bytes.Contains(raw, []byte("canary")) || !bytes.HasPrefix(raw, []byte("CN\x01")) {
		t.Errorf("Redis holds %q, want a sealed value without the plaintext", raw)
	}
	if ttl := c.TTL(t.Context(), key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL = %v, want (0, 1h]", ttl)
	}
	got, err := store.GetSealed(t.Context(), c, s, tenant, key)
	if err != nil || !bytes.Equal(got, canary) {
		t.Errorf("GetSealed() = %q, %v; want %q", got, err, canary)
	}
}

func TestGetSealedErrors(t *testing.T) {
	c := storetest.Client(t)
	s := envelopetest.Sealer(t)
	ctx := t.Context()
	tenant := "sealed-errors"
	key := store.Key(tenant+":p1", "contact")
	if err := store.SetSealed(ctx, c, s, tenant, key, []byte("+15550100123"), 0); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the value under another key, and plaintext written past
	// the helpers.
	moved := store.Key(tenant+":p2", "contact")
	if err := c.Set(ctx, moved, raw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	plain := store.Key(tenant+":p3", "contact")
	if err := c.Set(ctx, plain, "+15550100123", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A flipped byte in the stored value, via SETRANGE, in the body.
	flipped := store.Key(tenant+":p4", "contact")
	if err := store.SetSealed(ctx, c, s, tenant, flipped, []byte("+15550100123"), 0); err != nil {
		t.Fatal(err)
	}
	rawFlipped, err := c.Get(ctx, flipped).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	i := int64(len(rawFlipped) - 20)
	if err := c.SetRange(ctx, flipped, i, string([]byte{rawFlipped[i] ^ 0x01})).Err(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		tenant string
		key    string
		want   error
	}{
		{name: "missing", tenant: tenant, key: store.Key(tenant+":p0", "contact"), want: store.ErrNotFound},
		{name: "flipped byte", tenant: tenant, key: flipped, want: envelope.ErrTampered},
		{name: "moved to another key", tenant: tenant, key: moved, want: envelope.ErrTampered},
		{name: "read as another tenant", tenant: "other-tenant", key: key, want: envelope.ErrTampered},
		{name: "not sealed", tenant: tenant, key: plain, want: envelope.ErrNotSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.GetSealed(ctx, c, s, tt.tenant, tt.key)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("GetSealed() = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestGetSealedFlipEveryByte flips each byte of a stored value in turn
// (GET, modify, SET): every read fails, none returns plaintext.
func TestGetSealedFlipEveryByte(t *testing.T) {
	c := storetest.Client(t)
	s := envelopetest.Sealer(t)
	ctx := t.Context()
	tenant := "sealed-flip"
	key := store.Key(tenant+":p1", "consent")
	if err := store.SetSealed(ctx, c, s, tenant, key, []byte("consent evidence"), 0); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		give := bytes.Clone(raw)
		give[i] ^= 0x80
		if err := c.Set(ctx, key, give, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := store.GetSealed(ctx, c, s, tenant, key); err == nil || got != nil {
			t.Errorf("byte %d flipped: GetSealed() = %q, %v; want an error", i, got, err)
		}
	}
}

func TestSealOpenMatchSetGet(t *testing.T) {
	c := storetest.Client(t)
	s := envelopetest.Sealer(t)
	ctx := t.Context()
	tenant := "sealed-seal-open"
	key := store.Key(tenant, "state", "r1")
	sealed, err := store.Seal(ctx, s, tenant, key, []byte("1974-12-25"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, key, sealed, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := store.GetSealed(ctx, c, s, tenant, key); err != nil || string(got) != "1974-12-25" {
		t.Errorf("GetSealed() of a Seal()ed value = %q, %v", got, err)
	}
	if _, err := store.Open(ctx, s, tenant, store.Key(tenant, "state", "r2"), sealed); !errors.Is(err, envelope.ErrTampered) {
		t.Errorf("Open() under another key = %v, want ErrTampered", err)
	}
}
