package envelope_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

var (
	day1 = time.Date(2025, 3, 14, 23, 59, 0, 0, time.UTC)
	day2 = day1.Add(2 * time.Minute) // the next UTC day
)

func clock(t time.Time) envelope.Option { return envelope.WithClock(func() time.Time { return t }) }

var binding = envelope.Binding{Tenant: "north-clinic", Kind: "contact", ID: "cn:{north-clinic:p1}:contact"}

func TestSealRoundTrip(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	tests := []struct {
		name string
		give []byte
	}{
		{name: "empty", give: nil},
		{name: "short", give: []byte("x")},
		{name: "text", give: []byte(`{"email":"canary@example.org","name":"Ada Canary"}`)},
		{name: "binary", give: bytes.Repeat([]byte{0, 0xff, 0x7f}, 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(t.Context(), tt.give, binding)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Open(t.Context(), sealed, binding)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.give, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Open(Seal(x)) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSealFormat(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	sealed, err := s.Seal(t.Context(), []byte("abc"), binding)
	if err != nil {
		t.Fatal(err)
	}
	id := "north-clinic.20250314"
	wantHeader := append([]byte{'C', 'N', 1, byte(len(id))}, id...)
	if !bytes.HasPrefix(sealed, wantHeader) {
		t.Errorf("Seal() = %q, want header %q", sealed, wantHeader)
	}
	if got, want := len(sealed), len(wantHeader)+12+3+16; got != want {
		t.Errorf("len(Seal()) = %d, want %d (header, nonce, payload, tag)", got, want)
	}
}

// TestSealHidesPlaintext seals a canary and checks it is nowhere in the
// ciphertext, and that sealing it twice gives two different ciphertexts.
func TestSealHidesPlaintext(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	canary := []byte("CANARY-7f3c2a91-Zelda-Quixote-MRN-000173")
	a, err := s.Seal(t.Context(), canary, binding)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal(t.Context(), canary, binding)
	if err != nil {
		t.Fatal(err)
	}
	for _, sealed := range [][]byte{a, b} {
		if bytes.Contains(sealed, canary) || bytes.Contains(sealed, []byte("CANARY")) {
			t.Errorf("ciphertext %q holds the plaintext", sealed)
		}
	}
	if bytes.Equal(a, b) {
		t.Error("sealing the same value twice gave the same ciphertext")
	}
}

func TestOpenWrongBinding(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	other := envelopetest.Sealer(t, clock(day1))
	if _, err := other.Seal(t.Context(), []byte("x"), envelope.Binding{Tenant: "south", Kind: "k", ID: "i"}); err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(t.Context(), []byte("secret"), binding)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give envelope.Binding
		want error
	}{
		{name: "tenant", give: envelope.Binding{Tenant: "south", Kind: binding.Kind, ID: binding.ID}, want: envelope.ErrTampered},
		{name: "kind", give: envelope.Binding{Tenant: binding.Tenant, Kind: "consent", ID: binding.ID}, want: envelope.ErrTampered},
		{name: "id", give: envelope.Binding{Tenant: binding.Tenant, Kind: binding.Kind, ID: "cn:{north-clinic:p2}:contact"}, want: envelope.ErrTampered},
		{name: "fields shifted", give: envelope.Binding{Tenant: binding.Tenant, Kind: binding.Kind + binding.ID[:1], ID: binding.ID[1:]}, want: envelope.ErrTampered},
		{name: "empty", give: envelope.Binding{}, want: envelope.ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(t.Context(), sealed, tt.give)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Open() = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
	t.Run("other sealer's store", func(t *testing.T) {
		got, err := other.Open(t.Context(), sealed, binding)
		if !errors.Is(err, envelope.ErrUnknownKey) || got != nil {
			t.Errorf("Open() with another key store = %q, %v; want ErrUnknownKey", got, err)
		}
	})
}

func TestOpenMessageDoesNotSayWhy(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	sealed, err := s.Seal(t.Context(), []byte("secret"), binding)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	_, errFlip := s.Open(t.Context(), flipped, binding)
	_, errBinding := s.Open(t.Context(), sealed, envelope.Binding{Tenant: binding.Tenant, Kind: binding.Kind, ID: "other"})
	if errFlip == nil || errBinding == nil || errFlip.Error() != errBinding.Error() {
		t.Errorf("flipped byte: %v; wrong binding: %v; want the same error", errFlip, errBinding)
	}
}

// TestOpenFlippedBytes flips every bit position class of every byte, in
// header, nonce, body and tag, and checks each fails without plaintext.
func TestOpenFlippedBytes(t *testing.T) {
	_, kr := envelopetest.Keyring(t)
	ks := &envelopetest.MemStore{}
	s := envelope.NewSealer(kr, ks, clock(day1))
	// Data keys exist for the neighbouring days, so a flipped date may
	// find one ('4' ^ 0x01 is '5').
	for _, d := range []time.Time{day1.AddDate(0, 0, -1), day2} {
		if _, err := envelope.NewSealer(kr, ks, clock(d)).Seal(t.Context(), nil, binding); err != nil {
			t.Fatal(err)
		}
	}
	plaintext := []byte("payload for every position")
	sealed, err := s.Seal(t.Context(), plaintext, binding)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			give := bytes.Clone(sealed)
			give[i] ^= mask
			got, err := s.Open(t.Context(), give, binding)
			if err == nil || got != nil {
				t.Errorf("byte %d ^ %#x: Open() = %q, %v; want an error", i, mask, got, err)
			}
			if !errors.Is(err, envelope.ErrTampered) && !errors.Is(err, envelope.ErrNotSealed) && !errors.Is(err, envelope.ErrUnknownKey) {
				t.Errorf("byte %d ^ %#x: Open() error = %v, want ErrTampered, ErrNotSealed or ErrUnknownKey", i, mask, err)
			}
		}
	}
	if _, err := s.Open(t.Context(), sealed, binding); err != nil {
		t.Errorf("Open(original) = %v after the flips", err)
	}
}

func TestOpenTruncated(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	sealed, err := s.Seal(t.Context(), []byte("truncate me"), binding)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(sealed) {
		got, err := s.Open(t.Context(), sealed[:n], binding)
		if err == nil || got != nil {
			t.Errorf("Open(first %d bytes) = %q, %v; want an error", n, got, err)
		}
	}
	got, err := s.Open(t.Context(), append(bytes.Clone(sealed), 0), binding)
	if !errors.Is(err, envelope.ErrTampered) || got != nil {
		t.Errorf("Open(with a byte appended) = %q, %v; want ErrTampered", got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	tests := []struct {
		name string
		give []byte
		want error
	}{
		{name: "nil", give: nil, want: envelope.ErrNotSealed},
		{name: "plaintext", give: []byte(`{"email":"a@example.org"}`), want: envelope.ErrNotSealed},
		{name: "magic only", give: []byte("CN"), want: envelope.ErrNotSealed},
		{name: "lower-case magic", give: []byte("cn\x01\x15north-clinic.20250314"), want: envelope.ErrNotSealed},
		{name: "version 2", give: append([]byte("CN\x02\x15north-clinic.20250314"), make([]byte, 40)...), want: envelope.ErrTampered},
		{name: "no id length", give: []byte("CN\x01"), want: envelope.ErrTampered},
		{name: "id longer than value", give: []byte("CN\x01\xffnorth"), want: envelope.ErrTampered},
		{name: "id not tenant.day", give: append([]byte("CN\x01\x0cnorth-clinic"), make([]byte, 40)...), want: envelope.ErrTampered},
		{name: "id with wildcard", give: append([]byte("CN\x01\x0a*.20250314"), make([]byte, 40)...), want: envelope.ErrTampered},
		{name: "id with bad date", give: append([]byte("CN\x01\x15north-clinic.20251314"), make([]byte, 40)...), want: envelope.ErrTampered},
		{name: "unknown day", give: append([]byte("CN\x01\x15north-clinic.20240101"), make([]byte, 40)...), want: envelope.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(t.Context(), tt.give, binding)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Open() = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestSealInvalidBinding(t *testing.T) {
	s := envelopetest.Sealer(t, clock(day1))
	tests := []struct {
		name string
		give envelope.Binding
	}{
		{name: "empty tenant", give: envelope.Binding{Kind: "k", ID: "i"}},
		{name: "tenant with dot", give: envelope.Binding{Tenant: "a.b", Kind: "k", ID: "i"}},
		{name: "tenant wildcard", give: envelope.Binding{Tenant: ">", Kind: "k", ID: "i"}},
		{name: "empty kind", give: envelope.Binding{Tenant: "t", ID: "i"}},
		{name: "empty id", give: envelope.Binding{Tenant: "t", Kind: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := s.Seal(t.Context(), []byte("x"), tt.give); err == nil {
				t.Errorf("Seal() = %q, want an error", got)
			}
		})
	}
}

// TestDataKeyPerTenantDay checks that a Sealer uses one data key per tenant
// per UTC day, and opens values of earlier days.
func TestDataKeyPerTenantDay(t *testing.T) {
	_, kr := envelopetest.Keyring(t)
	ks := &envelopetest.MemStore{}
	now := day1
	s := envelope.NewSealer(kr, ks, envelope.WithClock(func() time.Time { return now }), envelope.WithCacheSize(1))
	var sealed [][]byte
	var bindings []envelope.Binding
	for _, give := range []struct {
		day    time.Time
		tenant string
	}{{day1, "a"}, {day1, "a"}, {day1, "b"}, {day2, "a"}, {day1.In(time.FixedZone("UTC+1", 3600)), "a"}} {
		now = give.day
		b := envelope.Binding{Tenant: give.tenant, Kind: "k", ID: fmt.Sprint(len(sealed))}
		v, err := s.Seal(t.Context(), []byte(b.ID), b)
		if err != nil {
			t.Fatal(err)
		}
		sealed, bindings = append(sealed, v), append(bindings, b)
	}
	ids, err := ks.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.20250314", "a.20250315", "b.20250314"}, ids); diff != "" {
		t.Errorf("data keys (-want +got):\n%s", diff)
	}
	// A cache of one: every Open below that changes key reloads it.
	for i, v := range sealed {
		got, err := s.Open(t.Context(), v, bindings[i])
		if err != nil || string(got) != bindings[i].ID {
			t.Errorf("Open(sealed[%d]) = %q, %v", i, got, err)
		}
	}
}

func TestOpenWithoutKEK(t *testing.T) {
	_, kr1 := envelopetest.Keyring(t)
	_, kr2 := envelopetest.Keyring(t)
	ks := &envelopetest.MemStore{}
	sealed, err := envelope.NewSealer(kr1, ks, clock(day1)).Seal(t.Context(), []byte("x"), binding)
	if err != nil {
		t.Fatal(err)
	}
	got, err := envelope.NewSealer(kr2, ks, clock(day1)).Open(t.Context(), sealed, binding)
	if !errors.Is(err, envelope.ErrUnknownKey) || got != nil {
		t.Errorf("Open() without the KEK = %q, %v; want ErrUnknownKey", got, err)
	}
	// Nor can such a sealer seal for that tenant-day: it cannot read the
	// data key another service made.
	if _, err := envelope.NewSealer(kr2, ks, clock(day1)).Seal(t.Context(), []byte("x"), binding); !errors.Is(err, envelope.ErrUnknownKey) {
		t.Errorf("Seal() without the KEK of the day's data key = %v; want ErrUnknownKey", err)
	}
}

// TestTamperedDataKey alters a wrapped data key in the store: opening with
// it fails.
func TestTamperedDataKey(t *testing.T) {
	_, kr := envelopetest.Keyring(t)
	ks := &envelopetest.MemStore{}
	sealed, err := envelope.NewSealer(kr, ks, clock(day1)).Seal(t.Context(), []byte("x"), binding)
	if err != nil {
		t.Fatal(err)
	}
	id := "north-clinic.20250314"
	w, err := ks.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	w.Ciphertext[len(w.Ciphertext)-1] ^= 1
	if err := ks.Update(t.Context(), id, w, w.Revision); err != nil {
		t.Fatal(err)
	}
	got, err := envelope.NewSealer(kr, ks, clock(day1)).Open(t.Context(), sealed, binding)
	if !errors.Is(err, envelope.ErrTampered) || got != nil {
		t.Errorf("Open() with a tampered data key = %q, %v; want ErrTampered", got, err)
	}
}
