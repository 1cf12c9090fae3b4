package envelope_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/storetest"
)

// TestRotation is the key rotation test: data written under KEK 1
// (data keys in JetStream, values in a JetStream-bound payload and in
// Redis), rotate to KEK 2, everything still readable; re-wrap, retire KEK 1,
// everything still readable by a fresh service.
func TestRotation(t *testing.T) {
	ctx := t.Context()
	ks, _ := newKVStore(t)
	rdb := storetest.Client(t)
	tenant := "rot-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	dir := t.TempDir()

	kek1, err := envelope.GenerateKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := envelope.SetPrimary(dir, kek1); err != nil {
		t.Fatal(err)
	}
	kr1, err := envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}

	type record struct {
		b     envelope.Binding
		value string
		blob  []byte // sealed value for JetStream payloads; nil for Redis
	}
	var records []record
	write := func(s *envelope.Sealer, kind, value string) {
		t.Helper()
		if kind == "redis" {
			key := store.Key(tenant, "contact", value)
			if err := store.SetSealed(ctx, rdb, s, tenant, key, []byte(value), 0); err != nil {
				t.Fatal(err)
			}
			records = append(records, record{b: envelope.Binding{Tenant: tenant, Kind: store.SealedKind, ID: key}, value: value})
			return
		}
		b := envelope.Binding{Tenant: tenant, Kind: kind, ID: value}
		blob, err := s.Seal(ctx, []byte(value), b)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, record{b: b, value: value, blob: blob})
	}
	readAll := func(s *envelope.Sealer, when string) {
		t.Helper()
		for _, r := range records {
			var got []byte
			var err error
			if r.blob == nil {
				got, err = store.GetSealed(ctx, rdb, s, tenant, r.b.ID)
			} else {
				got, err = s.Open(ctx, r.blob, r.b)
			}
			if err != nil || string(got) != r.value {
				t.Errorf("%s: read %s = %q, %v; want %q", when, r.value, got, err, r.value)
			}
		}
	}
	usage := func(want map[string]int) {
		t.Helper()
		got, err := envelope.KEKUsage(ctx, ks)
		if diff := cmp.Diff(want, got); diff != "" || err != nil {
			t.Errorf("KEKUsage() (-want +got):\n%s\n%v", diff, err)
		}
	}

	s1 := envelope.NewSealer(kr1, ks, clock(day1))
	write(s1, "event", "event-under-kek1")
	write(s1, "redis", "redis-under-kek1")
	usage(map[string]int{kek1: 1})

	// Rotate: a new primary, picked up by services when they restart.
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
	s2 := envelope.NewSealer(kr2, ks, clock(day2))
	readAll(s2, "after rotate")
	write(s2, "event", "event-under-kek2")
	write(s2, "redis", "redis-under-kek2")
	usage(map[string]int{kek1: 1, kek2: 1})
	readAll(s2, "after rotate")

	// Re-wrap: every data key moves to kek2; the payloads do not change.
	report, err := s2.Rewrap(ctx)
	if diff := cmp.Diff(envelope.RewrapReport{Primary: kek2, Total: 2, Rewrapped: 1, Current: 1}, report); diff != "" || err != nil {
		t.Errorf("Rewrap() (-want +got):\n%s\n%v", diff, err)
	}
	usage(map[string]int{kek2: 2})
	report, err = s2.Rewrap(ctx)
	if diff := cmp.Diff(envelope.RewrapReport{Primary: kek2, Total: 2, Current: 2}, report); diff != "" || err != nil {
		t.Errorf("second Rewrap() (-want +got):\n%s\n%v", diff, err)
	}

	// Retire kek1: a fresh service (empty cache) without it reads
	// everything.
	if err := envelope.RetireKEK(dir, kek1); err != nil {
		t.Fatal(err)
	}
	kr3, err := envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{kek2}, kr3.IDs()); diff != "" {
		t.Errorf("keyring after retire (-want +got):\n%s", diff)
	}
	readAll(envelope.NewSealer(kr3, ks, clock(day2)), "after retire")
	readAll(s2, "running service after retire")
}
