package envelope_test

import (
	"bytes"
	"testing"

	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
)

// The benchmarks use a cached data key: the steady state of a service.

func BenchmarkSeal(b *testing.B) {
	s := envelopetest.Sealer(b)
	payload := bytes.Repeat([]byte("x"), 2<<10)
	if _, err := s.Seal(b.Context(), payload, binding); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(b.Context(), payload, binding); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := envelopetest.Sealer(b)
	payload := bytes.Repeat([]byte("x"), 2<<10)
	sealed, err := s.Seal(b.Context(), payload, binding)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(b.Context(), sealed, binding); err != nil {
			b.Fatal(err)
		}
	}
}
