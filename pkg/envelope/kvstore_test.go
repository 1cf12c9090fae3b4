package envelope_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

func newKVStore(t *testing.T) (envelope.KeyStore, jetstream.JetStream) {
	t.Helper()
	_, js := bustest.Connect(t, bustest.Start(t))
	ks, err := envelope.NewKVStore(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ks, js
}

// TestKeyStores runs the KeyStore contract against the JetStream store and
// the in-memory test double, so the double cannot drift from the real one.
func TestKeyStores(t *testing.T) {
	stores := []struct {
		name string
		give func(t *testing.T) envelope.KeyStore
	}{
		{name: "jetstream", give: func(t *testing.T) envelope.KeyStore { ks, _ := newKVStore(t); return ks }},
		{name: "memory", give: func(*testing.T) envelope.KeyStore { return &envelopetest.MemStore{} }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			ks := st.give(t)
			ids, err := ks.List(ctx)
			if err != nil || len(ids) != 0 {
				t.Errorf("List() on an empty store = %q, %v", ids, err)
			}
			if _, err := ks.Get(ctx, "t.20250314"); !errors.Is(err, envelope.ErrKeyNotFound) {
				t.Errorf("Get(missing) = %v, want ErrKeyNotFound", err)
			}
			w1 := envelope.WrappedKey{KEK: "k1", Ciphertext: []byte("wrapped-1")}
			if err := ks.Create(ctx, "t.20250314", w1); err != nil {
				t.Fatal(err)
			}
			if err := ks.Create(ctx, "t.20250314", envelope.WrappedKey{KEK: "k2", Ciphertext: []byte("wrapped-2")}); !errors.Is(err, envelope.ErrKeyExists) {
				t.Errorf("second Create() = %v, want ErrKeyExists", err)
			}
			got, err := ks.Get(ctx, "t.20250314")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w1, got, cmpIgnoreRevision); diff != "" || got.Revision == 0 {
				t.Errorf("Get() (-want +got):\n%s\nrevision %d", diff, got.Revision)
			}
			w2 := envelope.WrappedKey{KEK: "k2", Ciphertext: []byte("wrapped-2")}
			if err := ks.Update(ctx, "t.20250314", w2, got.Revision+1); !errors.Is(err, envelope.ErrRevisionConflict) {
				t.Errorf("Update(wrong revision) = %v, want ErrRevisionConflict", err)
			}
			if err := ks.Update(ctx, "t.20250314", w2, got.Revision); err != nil {
				t.Fatalf("Update() = %v", err)
			}
			if err := ks.Update(ctx, "t.20250314", w1, got.Revision); !errors.Is(err, envelope.ErrRevisionConflict) {
				t.Errorf("Update(stale revision) = %v, want ErrRevisionConflict", err)
			}
			if err := ks.Create(ctx, "u.20250314", w1); err != nil {
				t.Fatal(err)
			}
			got, err = ks.Get(ctx, "t.20250314")
			if diff := cmp.Diff(w2, got, cmpIgnoreRevision); diff != "" || err != nil {
				t.Errorf("Get() after Update (-want +got):\n%s\n%v", diff, err)
			}
			ids, err = ks.List(ctx)
			if diff := cmp.Diff([]string{"t.20250314", "u.20250314"}, ids); diff != "" || err != nil {
				t.Errorf("List() (-want +got):\n%s\n%v", diff, err)
			}
			usage, err := envelope.KEKUsage(ctx, ks)
			if diff := cmp.Diff(map[string]int{"k1": 1, "k2": 1}, usage); diff != "" || err != nil {
				t.Errorf("KEKUsage() (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

var cmpIgnoreRevision = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Revision" }, cmp.Ignore())

func TestKVStoreBucket(t *testing.T) {
	ks, js := newKVStore(t)
	if err := ks.Create(t.Context(), "t.20250314", envelope.WrappedKey{KEK: "k1", Ciphertext: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), envelope.DataKeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), "t.20250314")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(e.Value()), `{"kek":"k1","ciphertext":"AQID"}`; got != want {
		t.Errorf("stored value = %s, want %s", got, want)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 || st.BackingStore() != "JetStream" {
		t.Errorf("bucket history %d, backing %s; want 1, JetStream", st.History(), st.BackingStore())
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	if info.Config.Storage != jetstream.FileStorage {
		t.Errorf("bucket storage = %v, want file", info.Config.Storage)
	}
	// Declaring it again (another service starting) changes nothing; tools
	// open it without declaring.
	if _, err := envelope.NewKVStore(t.Context(), js, 1); err != nil {
		t.Errorf("NewKVStore() again = %v", err)
	}
	opened, err := envelope.OpenKVStore(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := opened.Get(t.Context(), "t.20250314"); err != nil || w.KEK != "k1" {
		t.Errorf("OpenKVStore().Get() = %+v, %v", w, err)
	}
	_, js2 := bustest.Connect(t, bustest.Start(t))
	if _, err := envelope.OpenKVStore(t.Context(), js2); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("OpenKVStore() without a bucket = %v, want ErrBucketNotFound", err)
	}
}

// TestConcurrentSealersConverge has two services (two Sealers with their
// own keyring copy and cache) seal at once for a tenant-day that has no
// data key yet: they must end up on one data key, so each opens the
// other's values.
func TestConcurrentSealersConverge(t *testing.T) {
	srv := bustest.Start(t)
	dir, _ := envelopetest.Keyring(t)
	sealers := make([]*envelope.Sealer, 2)
	stores := make([]envelope.KeyStore, 2)
	for i := range sealers {
		// Each service has its own connection, keyring copy and cache.
		_, js := bustest.Connect(t, srv)
		ks, err := envelope.NewKVStore(t.Context(), js, 1)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := envelope.LoadKeyring(dir)
		if err != nil {
			t.Fatal(err)
		}
		sealers[i], stores[i] = envelope.NewSealer(kr, ks, clock(day1)), ks
	}

	const perSealer = 8
	type result struct {
		sealed []byte
		b      envelope.Binding
		err    error
	}
	results := make(chan result, 2*perSealer)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range sealers {
		for j := range perSealer {
			wg.Go(func() {
				<-start
				b := envelope.Binding{Tenant: "new-tenant", Kind: "event", ID: fmt.Sprintf("%d-%d", i, j)}
				sealed, err := s.Seal(t.Context(), []byte(b.ID), b)
				results <- result{sealed, b, err}
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)

	for r := range results {
		if r.err != nil {
			t.Errorf("Seal(%s) = %v", r.b.ID, r.err)
			continue
		}
		for i, s := range sealers {
			got, err := s.Open(t.Context(), r.sealed, r.b)
			if err != nil || string(got) != r.b.ID {
				t.Errorf("sealer %d: Open(%s) = %q, %v", i, r.b.ID, got, err)
			}
		}
	}
	ids, err := stores[0].List(t.Context())
	if diff := cmp.Diff([]string{"new-tenant.20250314"}, ids); diff != "" || err != nil {
		t.Errorf("data keys (-want +got):\n%s\n%v", diff, err)
	}
}
