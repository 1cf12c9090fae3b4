package envelope_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

// FuzzOpen feeds arbitrary bytes to Open: it must never panic, and must
// fail for anything but a value this process sealed, with one of the
// package's errors. The fixed clock and tenant let seeds in testdata name a
// data key that exists, so the fuzzer reaches the AEAD.
func FuzzOpen(f *testing.F) {
	s := envelopetest.Sealer(f, clock(day1))
	b := envelope.Binding{Tenant: "fuzz", Kind: "event", ID: "e1"}
	sealed := map[string]string{}
	for _, p := range []string{"", "x", "a longer value with some bytes in it"} {
		v, err := s.Seal(f.Context(), []byte(p), b)
		if err != nil {
			f.Fatal(err)
		}
		sealed[string(v)] = p
		f.Add(v)
		f.Add(v[:len(v)-1])
	}
	f.Add([]byte("CN\x01\x0dfuzz.20250314"))
	f.Fuzz(func(t *testing.T, give []byte) {
		got, err := s.Open(t.Context(), give, b)
		if want, ok := sealed[string(give)]; ok {
			if err != nil || !bytes.Equal(got, []byte(want)) {
				t.Fatalf("Open(sealed) = %q, %v; want %q", got, err, want)
			}
			return
		}
		if err == nil || got != nil {
			t.Fatalf("Open(%q) = %q, %v; want an error and no plaintext", give, got, err)
		}
		if !errors.Is(err, envelope.ErrNotSealed) && !errors.Is(err, envelope.ErrTampered) && !errors.Is(err, envelope.ErrUnknownKey) {
			t.Fatalf("Open(%q) error = %v, not one of the package's errors", give, err)
		}
	})
}
