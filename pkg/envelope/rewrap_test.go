package envelope_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

// conflictStore makes the first Update of every key fail, as if another
// process had written the key in between.
type conflictStore struct {
	*envelopetest.MemStore
	conflict map[string]bool
}

func (c *conflictStore) Update(ctx context.Context, id string, w envelope.WrappedKey, revision uint64) error {
	if !c.conflict[id] {
		c.conflict[id] = true
		// Rewrite the entry (same content, new revision) to force a conflict.
		cur, err := c.MemStore.Get(ctx, id)
		if err != nil {
			return err
		}
		if err := c.MemStore.Update(ctx, id, cur, cur.Revision); err != nil {
			return err
		}
	}
	return c.MemStore.Update(ctx, id, w, revision)
}

func TestRewrapRetriesConflicts(t *testing.T) {
	dir, kr1 := envelopetest.Keyring(t)
	mem := &envelopetest.MemStore{}
	for _, tenant := range []string{"a", "b"} {
		if _, err := envelope.NewSealer(kr1, mem, clock(day1)).Seal(t.Context(), nil, envelope.Binding{Tenant: tenant, Kind: "k", ID: "i"}); err != nil {
			t.Fatal(err)
		}
	}
	kek2, err := envelope.GenerateKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := envelope.SetPrimary(dir, kek2); err != nil {
		t.Fatal(err)
	}
	kr2, err := envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	ks := &conflictStore{MemStore: mem, conflict: map[string]bool{}}
	report, err := envelope.NewSealer(kr2, ks).Rewrap(t.Context())
	if diff := cmp.Diff(envelope.RewrapReport{Primary: kek2, Total: 2, Rewrapped: 2}, report); diff != "" || err != nil {
		t.Errorf("Rewrap() (-want +got):\n%s\n%v", diff, err)
	}
	usage, err := envelope.KEKUsage(t.Context(), mem)
	if diff := cmp.Diff(map[string]int{kek2: 2}, usage); diff != "" || err != nil {
		t.Errorf("KEKUsage() (-want +got):\n%s\n%v", diff, err)
	}
}

// TestRewrapUnknownKEK: a data key wrapped by a KEK the keyring lacks is
// reported, and the others are still re-wrapped.
func TestRewrapUnknownKEK(t *testing.T) {
	_, krOther := envelopetest.Keyring(t)
	dir, kr1 := envelopetest.Keyring(t)
	ks := &envelopetest.MemStore{}
	if _, err := envelope.NewSealer(krOther, ks, clock(day1)).Seal(t.Context(), nil, envelope.Binding{Tenant: "lost", Kind: "k", ID: "i"}); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.NewSealer(kr1, ks, clock(day1)).Seal(t.Context(), nil, envelope.Binding{Tenant: "kept", Kind: "k", ID: "i"}); err != nil {
		t.Fatal(err)
	}
	kek2, err := envelope.GenerateKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := envelope.SetPrimary(dir, kek2); err != nil {
		t.Fatal(err)
	}
	kr2, err := envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	report, err := envelope.NewSealer(kr2, ks).Rewrap(t.Context())
	if diff := cmp.Diff(envelope.RewrapReport{Primary: kek2, Total: 2, Rewrapped: 1, Failed: 1}, report); diff != "" {
		t.Errorf("Rewrap() (-want +got):\n%s", diff)
	}
	if !errors.Is(err, envelope.ErrUnknownKey) {
		t.Errorf("Rewrap() error = %v, want ErrUnknownKey", err)
	}
}
