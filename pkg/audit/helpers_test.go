package audit

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
)

// testPseudonymKey is a fixed, synthetic pseudonym key.
var testPseudonymKey = bytes.Repeat([]byte{0x5a}, PseudonymKeySize)

// testSigner is a fixed, synthetic checkpoint signing key.
var testSigner = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x11}, ed25519.SeedSize))

// otherSigner is a key that has no business signing checkpoints.
var otherSigner = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x22}, ed25519.SeedSize))

func testVerifyKey() ed25519.PublicKey { return testSigner.Public().(ed25519.PublicKey) }

// tamperable is the AUDIT stream with deletes allowed, so tests can play
// the attacker; production's bus.Audit denies them.
func tamperable() jetstream.StreamConfig {
	cfg := bus.Audit(1)
	cfg.DenyDelete, cfg.DenyPurge = false, false
	return cfg
}

// startAudit starts an embedded JetStream server with an AUDIT stream
// declared as cfg.
func startAudit(t testing.TB, cfg jetstream.StreamConfig) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s := bustest.Start(t)
	_, js := bustest.Connect(t, s)
	if err := bus.EnsureStreams(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	return s, js
}

func newTestWriter(t testing.TB, js jetstream.JetStream, service string, opts ...Option) *Writer {
	t.Helper()
	w, err := NewWriter(t.Context(), js, service, testPseudonymKey, opts...)
	if err != nil {
		t.Fatalf("NewWriter() = %v", err)
	}
	return w
}

// testEntry is a valid entry for tenant about patient, numbered i.
func testEntry(tenant, patient string, i int) Entry {
	return Entry{
		Tenant:  tenant,
		Actor:   Actor{Type: ActorService, ID: "journey-7d9f"},
		Action:  ActionPHIRead,
		Object:  Object{Type: "ClinicalEvent", ID: fmt.Sprintf("evt-%04d", i)},
		Patient: patient,
		Purpose: PurposeTreatment,
		Outcome: OutcomeSuccess,
		Reason:  "journey-step",
		TraceID: fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e%04x", i),
	}
}

// writeN records n entries about patient through w.
func writeN(t testing.TB, w *Writer, tenant, patient string, n int) {
	t.Helper()
	for i := range n {
		if err := w.Record(t.Context(), testEntry(tenant, patient, i)); err != nil {
			t.Fatalf("Record(%d) = %v", i, err)
		}
	}
}

// verifyOne verifies one chain, failing the test on a read error.
func verifyOne(t testing.TB, js jetstream.JetStream, tenant, service string, pub ed25519.PublicKey) Report {
	t.Helper()
	rep, err := Verify(t.Context(), js, tenant, service, pub)
	if err != nil {
		t.Fatalf("Verify(%s, %s) = %v", tenant, service, err)
	}
	return rep
}

// found is the part of a Problem the tamper tests compare.
type found struct {
	Kind       Kind
	Seq, ToSeq uint64
}

func foundOf(ps []Problem) []found {
	var out []found
	for _, p := range ps {
		out = append(out, found{p.Kind, p.Seq, p.ToSeq})
	}
	return out
}
