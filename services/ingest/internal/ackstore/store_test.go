package ackstore_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/ackstore"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// Tenants are named after the test so tests can share a REDIS_URL server.

func TestClaimStoreResend(t *testing.T) {
	c := storetest.Client(t)
	s := ackstore.New(c, envelopetest.Sealer(t), []byte("pseudonym key for tests, 32 byte"), ackstore.Options{LockWait: time.Minute})
	ctx := t.Context()
	k := mllp.ResendKey{Tenant: "ack-claim", Source: "lab", App: "LIS", Facility: "GHH", ControlID: "C1"}
	stored, claim, err := s.Claim(ctx, k)
	if err != nil || stored != nil || claim == nil {
		t.Fatalf("first Claim() = %v, %v, %v; want a claim", stored, claim, err)
	}
	// A second caller waits for the first one's acknowledgement: it gets
	// the stored one, never a claim of its own.
	type result struct {
		a   *mllp.StoredACK
		c   mllp.AckClaim
		err error
	}
	second := make(chan result, 1)
	go func() {
		a, c, err := s.Claim(ctx, k)
		second <- result{a, c, err}
	}()
	want := mllp.StoredACK{Digest: [32]byte{1, 2, 3}, Code: "AA", ACK: []byte("MSH|^~\\&|...\rMSA|AA|C1\r")}
	if err := claim.Store(ctx, want); err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil || r.c != nil || r.a == nil || r.a.Digest != want.Digest || r.a.Code != "AA" || !bytes.Equal(r.a.ACK, want.ACK) {
		t.Fatalf("concurrent Claim() = %+v, want the stored ACK", r)
	}
	// Another control id, facility or source is another key.
	for _, other := range []mllp.ResendKey{
		{Tenant: k.Tenant, Source: k.Source, App: k.App, Facility: k.Facility, ControlID: "C2"},
		{Tenant: k.Tenant, Source: k.Source, App: k.App, Facility: "OTHER", ControlID: k.ControlID},
		{Tenant: k.Tenant, Source: "other", App: k.App, Facility: k.Facility, ControlID: k.ControlID},
	} {
		a, cl, err := s.Claim(ctx, other)
		if err != nil || a != nil || cl == nil {
			t.Errorf("Claim(%+v) = %v, %v, %v; want a claim", other, a, cl, err)
			continue
		}
		cl.Release(ctx)
	}
}

func TestClaimBusyAndRelease(t *testing.T) {
	c := storetest.Client(t)
	sealer := envelopetest.Sealer(t)
	pk := []byte("pseudonym key for tests, 32 byte")
	s := ackstore.New(c, sealer, pk, ackstore.Options{LockWait: time.Nanosecond})
	ctx := t.Context()
	k := mllp.ResendKey{Tenant: "ack-busy", Source: "lab", ControlID: "C1"}
	_, claim, err := s.Claim(ctx, k)
	if err != nil || claim == nil {
		t.Fatalf("Claim() = %v, %v", claim, err)
	}
	if _, cl, err := s.Claim(ctx, k); !errors.Is(err, mllp.ErrAckBusy) || cl != nil {
		t.Errorf("Claim() while claimed = %v, %v; want ErrAckBusy", cl, err)
	}
	claim.Release(ctx)
	a, cl, err := s.Claim(ctx, k)
	if err != nil || a != nil || cl == nil {
		t.Fatalf("Claim() after Release = %v, %v, %v; want a claim", a, cl, err)
	}
	if err := cl.Store(ctx, mllp.StoredACK{Code: "none"}); err != nil {
		t.Fatal(err)
	}
	// A flipped byte in the stored value is refused, not served.
	key := s.AckKey(k)
	raw, err := c.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-5] ^= 1
	if err := c.Set(ctx, key, raw, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if a, cl, err := s.Claim(ctx, k); err == nil || a != nil || cl != nil {
		t.Errorf("Claim() of a tampered ACK = %v, %v, %v; want an error", a, cl, err)
	}
}
