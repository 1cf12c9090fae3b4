package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/bus"
)

// canaryPatient is a synthetic patient id that must never be stored.
const canaryPatient = "pat-CANARY-8c1f0e77"

func TestTrailAcrossTenantsAndServices(t *testing.T) {
	s, js := startAudit(t, bus.Audit(1))
	ctx := t.Context()
	tenants := []string{"north", "south"}
	services := []string{"journey", "email"}
	patients := []string{canaryPatient, "pat-2", "pat-3", "pat-4", "pat-5"}
	writers := map[string]*Writer{}
	for _, svc := range services {
		writers[svc] = newTestWriter(t, js, svc, WithSigningKey(testSigner), WithCheckpointEvery(100))
	}
	for i := range 50 {
		e := testEntry(tenants[i%2], patients[i%5], i)
		if err := writers[services[i/2%2]].Record(ctx, e); err != nil {
			t.Fatalf("Record(%d) = %v", i, err)
		}
	}

	reps, err := VerifyAll(ctx, js, testVerifyKey())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rep := range reps {
		if !rep.OK() {
			t.Errorf("chain %s/%s: %v", rep.Tenant, rep.Service, rep.Problems)
		}
		got = append(got, rep.Tenant+"/"+rep.Service)
		if rep.Records != 12 && rep.Records != 13 {
			t.Errorf("chain %s/%s: %d records, want 12 or 13", rep.Tenant, rep.Service, rep.Records)
		}
	}
	if diff := cmp.Diff([]string{"north/email", "north/journey", "south/email", "south/journey"}, got); diff != "" {
		t.Errorf("chains (-want +got):\n%s", diff)
	}

	// Query by the clear id finds exactly that patient's records: i = 0,
	// 10, 20, 30, 40 in tenant north, whichever service wrote them.
	recs, err := Query(ctx, js, Filter{Tenant: "north", Patient: canaryPatient, PseudonymKey: testPseudonymKey})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.Object.ID)
	}
	want := []string{"evt-0000", "evt-0010", "evt-0020", "evt-0030", "evt-0040"}
	if diff := cmp.Diff(want, ids, cmp.Transformer("sort", sorted)); diff != "" {
		t.Errorf("records of the canary patient (-want +got):\n%s", diff)
	}

	// No stored message holds the clear id; every one of the patient's
	// holds its reference.
	ref := PatientRef(testPseudonymKey, "north", canaryPatient)
	stream, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m.Data, []byte("CANARY")) || strings.Contains(m.Subject, "CANARY") {
			t.Errorf("stream seq %d holds the canary patient id", seq)
		}
		for k, vs := range m.Header {
			if strings.Contains(k+strings.Join(vs, ","), "CANARY") {
				t.Errorf("stream seq %d header %s holds the canary patient id", seq, k)
			}
		}
		if bytes.Contains(m.Data, []byte(ref)) {
			refs++
		}
	}
	if refs != 5 {
		t.Errorf("%d messages hold the canary's patient ref, want 5", refs)
	}

	// Nor does any file JetStream wrote (the reference, as a control, is
	// there).
	dir := s.StoreDir()
	s.Shutdown()
	s.WaitForShutdown()
	var canaries, controls int
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		canaries += bytes.Count(b, []byte("CANARY"))
		controls += bytes.Count(b, []byte(ref))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if canaries != 0 || controls == 0 {
		t.Errorf("store files: %d canary hits (want 0), %d patient ref hits (want > 0)", canaries, controls)
	}
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestConcurrentWritersKeepOneChain(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	// Two replicas of a service, each with two goroutines.
	ws := []*Writer{newTestWriter(t, js, "journey"), newTestWriter(t, js, "journey")}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if err := ws[g%2].Record(t.Context(), testEntry("north", "pat-1", g*100+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Record() = %v", err)
	}
	rep := verifyOne(t, js, "north", "journey", nil)
	got := struct {
		Records  int
		LastSeq  uint64
		Problems []Problem
	}{rep.Records, rep.LastSeq, rep.Problems}
	want := struct {
		Records  int
		LastSeq  uint64
		Problems []Problem
	}{80, 80, nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
}

func TestWriterRestartContinuesChain(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	ctx := t.Context()
	w := newTestWriter(t, js, "journey", WithSigningKey(testSigner))
	writeN(t, w, "north", "pat-1", 5)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, testEntry("north", "pat-1", 99)); !errors.Is(err, ErrClosed) {
		t.Errorf("Record() after Close = %v, want ErrClosed", err)
	}
	w = newTestWriter(t, js, "journey", WithSigningKey(testSigner))
	writeN(t, w, "north", "pat-1", 5)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	recs, err := Query(ctx, js, Filter{Tenant: "north", Service: "journey"})
	if err != nil {
		t.Fatal(err)
	}
	type link struct {
		Seq    uint64
		Action string
		Linked bool
	}
	var got []link
	prev := ""
	for _, r := range recs {
		got = append(got, link{r.Seq, r.Action, r.Prev == prev})
		prev = r.Hash
	}
	want := []link{
		{1, ActionPHIRead, true}, {2, ActionPHIRead, true}, {3, ActionPHIRead, true}, {4, ActionPHIRead, true}, {5, ActionPHIRead, true},
		{6, ActionCheckpoint, true},
		{7, ActionPHIRead, true}, {8, ActionPHIRead, true}, {9, ActionPHIRead, true}, {10, ActionPHIRead, true}, {11, ActionPHIRead, true},
		{12, ActionCheckpoint, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
	if rep := verifyOne(t, js, "north", "journey", testVerifyKey()); !rep.OK() || rep.Checkpoints != 2 || rep.Unsealed != 0 {
		t.Errorf("Verify() = %+v, want OK with 2 checkpoints and nothing unsealed", rep)
	}
}

func TestRecordRejectsInvalidEntries(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	w := newTestWriter(t, js, "journey")
	valid := testEntry("north", "pat-1", 1)
	tests := []struct {
		name string
		give func(e *Entry)
	}{
		{name: "tenant with a dot", give: func(e *Entry) { e.Tenant = "north.x" }},
		{name: "unknown actor type", give: func(e *Entry) { e.Actor.Type = "robot" }},
		{name: "address as actor id", give: func(e *Entry) { e.Actor.ID = "jane.doe@example.org" }},
		{name: "free text object id", give: func(e *Entry) { e.Object.ID = "Jane Doe 1970-01-01" }},
		{name: "object id without type", give: func(e *Entry) { e.Object.Type = "" }},
		{name: "reserved action", give: func(e *Entry) { e.Action = ActionCheckpoint }},
		{name: "action not dotted", give: func(e *Entry) { e.Action = "read" }},
		{name: "unknown purpose", give: func(e *Entry) { e.Purpose = "research" }},
		{name: "missing outcome", give: func(e *Entry) { e.Outcome = "" }},
		{name: "free text reason", give: func(e *Entry) { e.Reason = "Patient Jane Doe asked" }},
		{name: "patient ref not a hash", give: func(e *Entry) { e.Patient, e.PatientRef = "", "Jane Doe" }},
		{name: "free text detail", give: func(e *Entry) { e.Detail = map[string]string{"note": "Jane Doe called"} }},
		{name: "address in detail", give: func(e *Entry) { e.Detail = map[string]string{"to": "jane@example.org"} }},
		{name: "detail key not a name", give: func(e *Entry) { e.Detail = map[string]string{"Jane Doe": "x"} }},
		{name: "empty detail value", give: func(e *Entry) { e.Detail = map[string]string{"channel": ""} }},
		{name: "too much detail", give: func(e *Entry) {
			e.Detail = map[string]string{}
			for i := range MaxDetail + 1 {
				e.Detail[fmt.Sprintf("k%d", i)] = "v"
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid
			tt.give(&e)
			err := w.Record(t.Context(), e)
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("Record() = %v, want ErrInvalidEntry", err)
			}
			for _, v := range []string{"Jane", "jane", "robot", "research"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q repeats the value", err)
				}
			}
		})
	}
	if err := w.Record(t.Context(), valid); err != nil {
		t.Errorf("Record(valid) = %v", err)
	}
}

func TestRecordStoresFields(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("CET", 3600))
	w := newTestWriter(t, js, "email")
	e := testEntry("north", "pat-1", 3)
	e.Time = at
	e.Action, e.Outcome, e.Reason, e.Purpose = ActionMessageDecided, OutcomeSuppressed, "no-consent", PurposeMarketing
	e.Detail = map[string]string{"channel": "email", "consentAt": "2026-03-01T10:00:00.123Z"}
	if err := w.Record(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	recs, err := Query(t.Context(), js, Filter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Query() = %d records, %v", len(recs), err)
	}
	r := recs[0]
	want := Record{
		Seq: 1, Time: at.UTC(), Tenant: "north", Service: "email",
		Actor:  Actor{Type: ActorService, ID: "journey-7d9f"},
		Action: ActionMessageDecided, Object: Object{Type: "ClinicalEvent", ID: "evt-0003"},
		PatientRef: PatientRef(testPseudonymKey, "north", "pat-1"),
		Purpose:    PurposeMarketing, Outcome: OutcomeSuppressed, Reason: "no-consent",
		Detail:  map[string]string{"channel": "email", "consentAt": "2026-03-01T10:00:00.123Z"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e0003", Prev: "", Hash: r.Hash,
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if h, _ := r.computeHash(); h != r.Hash || !hashRE.MatchString(h) {
		t.Errorf("Hash = %q, recomputed %q", r.Hash, h)
	}
	// A record with detail is in canonical form: the chain verifies.
	if rep := verifyOne(t, js, "north", "email", nil); len(rep.Problems) != 0 {
		t.Errorf("Verify() problems = %v", rep.Problems)
	}
}

func TestPatientRef(t *testing.T) {
	other := bytes.Repeat([]byte{1}, PseudonymKeySize)
	base := PatientRef(testPseudonymKey, "north", "pat-1")
	tests := []struct {
		name string
		give string
		want bool // equal to base
	}{
		{name: "same tenant and patient", give: PatientRef(testPseudonymKey, "north", "pat-1"), want: true},
		{name: "other tenant", give: PatientRef(testPseudonymKey, "south", "pat-1")},
		{name: "other patient", give: PatientRef(testPseudonymKey, "north", "pat-2")},
		{name: "other key", give: PatientRef(other, "north", "pat-1")},
		{name: "separator not ambiguous", give: PatientRef(testPseudonymKey, "north|pat", "-1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.give == base; got != tt.want {
				t.Errorf("equal = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProductionStreamDeniesDeletes(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	ctx := t.Context()
	writeN(t, newTestWriter(t, js, "journey"), "north", "pat-1", 3)
	stream, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, 2); err == nil {
		t.Error("DeleteMsg() = nil, want refused")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Error("Purge() = nil, want refused")
	}
	cfg := bus.Audit(1)
	cfg.DenyDelete = false
	if _, err := js.UpdateStream(ctx, cfg); err == nil {
		t.Error("UpdateStream(DenyDelete false) = nil, want refused")
	}
	if rep := verifyOne(t, js, "north", "journey", nil); !rep.OK() || rep.Records != 3 {
		t.Errorf("Verify() = %+v", rep)
	}
}

func TestRecordRefusesToForkAfterGarbageHead(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	ctx := t.Context()
	w := newTestWriter(t, js, "journey")
	writeN(t, w, "north", "pat-1", 2)
	if _, err := js.Publish(ctx, "audit.north.journey", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	// The writer's cached head is stale, so it learns of the garbage on
	// conflict; a new writer learns of it on first use.
	for _, w := range []*Writer{w, newTestWriter(t, js, "journey")} {
		if err := w.Record(ctx, testEntry("north", "pat-1", 3)); !errors.Is(err, ErrChainHead) {
			t.Errorf("Record() = %v, want ErrChainHead", err)
		}
	}
	// Other chains are unaffected.
	if err := w.Record(ctx, testEntry("south", "pat-1", 3)); err != nil {
		t.Errorf("Record(other tenant) = %v", err)
	}
}
