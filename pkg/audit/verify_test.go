package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
)

const chainSubject = "audit.north.journey"

// tamperedChain writes 30 records to north/journey with a checkpoint every
// 10 (so records 11, 22 and 33 are checkpoints and the head is 33) on a
// stream that allows deletes. With one chain in the stream, record seq and
// stream seq are the same.
func tamperedChain(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	_, js := startAudit(t, tamperable())
	writeN(t, newTestWriter(t, js, "journey", WithSigningKey(testSigner), WithCheckpointEvery(10)), "north", "pat-1", 30)
	stream, err := js.Stream(t.Context(), bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	return js, stream
}

// storedRecord returns the record at seq.
func storedRecord(t *testing.T, s jetstream.Stream, seq uint64) Record {
	t.Helper()
	m, err := s.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Seq != seq {
		t.Fatalf("stream seq %d holds record %d (%v)", seq, r.Seq, err)
	}
	return r
}

// publishRaw appends data to the chain as an attacker with publish rights
// would: no message id, no expected sequence.
func publishRaw(t *testing.T, js jetstream.JetStream, data []byte) {
	t.Helper()
	if _, err := js.Publish(t.Context(), chainSubject, data); err != nil {
		t.Fatal(err)
	}
}

func deleteMsg(t *testing.T, s jetstream.Stream, seq uint64) {
	t.Helper()
	if err := s.DeleteMsg(t.Context(), seq); err != nil {
		t.Fatal(err)
	}
}

// rehash recomputes r's hash, as a forger would, and encodes it.
func rehash(t *testing.T, r Record) []byte {
	t.Helper()
	h, err := r.computeHash()
	if err != nil {
		t.Fatal(err)
	}
	r.Hash = h
	return r.encode()
}

func (r Record) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		give   func(t *testing.T, js jetstream.JetStream, s jetstream.Stream)
		want   []found
		wantCP uint64 // seq of the last good checkpoint
	}{
		{
			name:   "untouched",
			give:   func(*testing.T, jetstream.JetStream, jetstream.Stream) {},
			wantCP: 33,
		},
		{
			name:   "one record deleted",
			give:   func(t *testing.T, _ jetstream.JetStream, s jetstream.Stream) { deleteMsg(t, s, 7) },
			want:   []found{{Deleted, 7, 7}},
			wantCP: 33,
		},
		{
			name: "three records deleted",
			give: func(t *testing.T, _ jetstream.JetStream, s jetstream.Stream) {
				for _, seq := range []uint64{12, 13, 14} {
					deleteMsg(t, s, seq)
				}
			},
			want:   []found{{Deleted, 12, 14}},
			wantCP: 33,
		},
		{
			name: "first record deleted",
			give: func(t *testing.T, _ jetstream.JetStream, s jetstream.Stream) { deleteMsg(t, s, 1) },
			want: []found{{Deleted, 1, 1}},
			// The stream's MaxAge is six years: record 2 is far too young
			// for record 1 to have aged out.
			wantCP: 33,
		},
		{
			name: "one deleted and another replaced by an altered copy",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				deleteMsg(t, s, 7)
				r := storedRecord(t, s, 15)
				deleteMsg(t, s, 15)
				r.Outcome = OutcomeDenied
				publishRaw(t, js, r.encode())
			},
			want:   []found{{Deleted, 7, 7}, {Altered, 15, 15}, {Reordered, 15, 15}},
			wantCP: 33,
		},
		{
			name: "record replaced by a rehashed forgery",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				r := storedRecord(t, s, 15)
				deleteMsg(t, s, 15)
				r.Outcome = OutcomeDenied
				publishRaw(t, js, rehash(t, r))
			},
			// Record 16 still points at the original 15.
			want:   []found{{Reordered, 15, 15}, {Broken, 15, 15}},
			wantCP: 33,
		},
		{
			name: "forged record appended with a wrong prev",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				r := storedRecord(t, s, 30)
				r.Seq, r.Prev = 34, strings.Repeat("0", 64)
				publishRaw(t, js, rehash(t, r))
			},
			want:   []found{{Broken, 34, 34}},
			wantCP: 33,
		},
		{
			name: "record replayed at the end",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				publishRaw(t, js, storedRecord(t, s, 5).encode())
			},
			want:   []found{{Reordered, 5, 5}},
			wantCP: 33,
		},
		{
			name: "garbage appended",
			give: func(t *testing.T, js jetstream.JetStream, _ jetstream.Stream) {
				publishRaw(t, js, []byte("patient moved to ward 4"))
			},
			want:   []found{{Altered, 34, 34}},
			wantCP: 33,
		},
		{
			name: "record reformatted, same content",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				r := storedRecord(t, s, 33)
				deleteMsg(t, s, 33)
				b, _ := json.MarshalIndent(r, "", " ")
				publishRaw(t, js, b)
			},
			// The checkpoint itself is intact but no longer byte for byte
			// what was written, so the last good checkpoint is 22.
			want:   []found{{Altered, 33, 33}},
			wantCP: 22,
		},
		{
			name: "record copied from another chain",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				r := storedRecord(t, s, 33)
				r.Seq, r.Prev, r.Tenant, r.Action, r.Signature = 34, r.Hash, "south", ActionPHIRead, ""
				r.Object = Object{Type: "ClinicalEvent", ID: "evt-1"}
				publishRaw(t, js, rehash(t, r))
			},
			want:   []found{{Altered, 34, 34}},
			wantCP: 33,
		},
		{
			name: "checkpoint forged with another key",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				head := storedRecord(t, s, 33)
				r := head
				r.Seq, r.Prev, r.Object.ID, r.Time = 34, head.Hash, head.Hash, head.Time.Add(time.Second)
				r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(otherSigner, checkpointMessage("north", "journey", 33, head.Hash)))
				publishRaw(t, js, rehash(t, r))
			},
			want:   []found{{BadSignature, 34, 34}},
			wantCP: 33,
		},
		{
			name: "tail rewritten and rehashed from record 25",
			give: func(t *testing.T, js jetstream.JetStream, s jetstream.Stream) {
				rs := []Record{storedRecord(t, s, 24)}
				for seq := uint64(25); seq <= 33; seq++ {
					rs = append(rs, storedRecord(t, s, seq))
					deleteMsg(t, s, seq)
				}
				for i := 1; i < len(rs); i++ {
					r := rs[i]
					r.Prev = rs[i-1].Hash
					if r.Seq == 25 {
						r.Outcome = OutcomeDenied
					}
					if r.Action == ActionCheckpoint {
						r.Object.ID = r.Prev
					}
					rs[i].Hash, _ = r.computeHash()
					r.Hash = rs[i].Hash
					publishRaw(t, js, r.encode())
				}
			},
			// A consistent chain, but its checkpoint no longer verifies.
			want:   []found{{BadSignature, 33, 33}},
			wantCP: 22,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, s := tamperedChain(t)
			tt.give(t, js, s)
			rep := verifyOne(t, js, "north", "journey", testVerifyKey())
			if diff := cmp.Diff(tt.want, foundOf(rep.Problems)); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nreport: %v", diff, rep.Problems)
			}
			var gotCP uint64
			if rep.LastCheckpoint != nil {
				gotCP = rep.LastCheckpoint.Seq
			}
			if gotCP != tt.wantCP {
				t.Errorf("last checkpoint = %d, want %d", gotCP, tt.wantCP)
			}
		})
	}
}

func TestCheckpoints(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	ctx := t.Context()
	w := newTestWriter(t, js, "journey", WithSigningKey(testSigner), WithCheckpointEvery(5))
	writeN(t, w, "north", "pat-1", 12)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cps, err := Query(ctx, js, Filter{Action: ActionCheckpoint})
	if err != nil {
		t.Fatal(err)
	}
	type cp struct {
		Seq            uint64
		Reason, Object string
	}
	var got []cp
	for _, r := range cps {
		got = append(got, cp{r.Seq, r.Reason, r.Object.Type})
		if r.Object.ID != r.Prev {
			t.Errorf("checkpoint %d signs %s, not its prev", r.Seq, r.Object.ID)
		}
	}
	want := []cp{{6, "interval", ObjectAuditChain}, {12, "interval", ObjectAuditChain}, {15, "close", ObjectAuditChain}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}

	other := otherSigner.Public().(ed25519.PublicKey)
	tests := []struct {
		name string
		give ed25519.PublicKey
		want Report
	}{
		{
			name: "right key",
			give: testVerifyKey(),
			want: Report{Checkpoints: 3, LastCheckpoint: &Checkpoint{Seq: 15, HeadSeq: 14}},
		},
		{
			name: "wrong key",
			give: other,
			want: Report{Unsealed: 15, Problems: []Problem{
				{Kind: BadSignature, Seq: 6, ToSeq: 6, StreamSeq: 6},
				{Kind: BadSignature, Seq: 12, ToSeq: 12, StreamSeq: 12},
				{Kind: BadSignature, Seq: 15, ToSeq: 15, StreamSeq: 15},
			}},
		},
		{
			name: "no key",
			give: nil,
			want: Report{Unchecked: 3, Unsealed: 15},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := verifyOne(t, js, "north", "journey", tt.give)
			tt.want.Tenant, tt.want.Service, tt.want.Records, tt.want.FirstSeq, tt.want.LastSeq, tt.want.Head = "north", "journey", 15, 1, 15, rep.Head
			ignore := cmp.FilterPath(func(p cmp.Path) bool {
				s := p.String()
				return s == "Problems.Detail" || s == "LastCheckpoint.HeadHash" || s == "LastCheckpoint.Time"
			}, cmp.Ignore())
			if diff := cmp.Diff(tt.want, rep, ignore); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnsignedWriterWritesNoCheckpoints(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	w := newTestWriter(t, js, "journey", WithCheckpointEvery(2))
	writeN(t, w, "north", "pat-1", 5)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep := verifyOne(t, js, "north", "journey", testVerifyKey())
	if !rep.OK() || rep.Records != 5 || rep.Checkpoints != 0 || rep.Unsealed != 5 {
		t.Errorf("Verify() = %+v, want 5 records, no checkpoint", rep)
	}
}

// TestChecker drives the verifier's state machine directly with record
// sequences no Writer would produce.
func TestChecker(t *testing.T) {
	chain := func(n int) []Record {
		var rs []Record
		prev := ""
		for i := 1; i <= n; i++ {
			r := Record{Seq: uint64(i), Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Tenant: "north", Service: "journey",
				Actor: Actor{Type: ActorService, ID: "journey"}, Action: ActionPHIRead, Outcome: OutcomeSuccess, Prev: prev}
			r.Hash, _ = r.computeHash()
			prev = r.Hash
			rs = append(rs, r)
		}
		return rs
	}
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		give   []int // chain(10) indexes (seq-1) in stream order
		maxAge time.Duration
		want   []found
	}{
		{name: "in order", give: []int{0, 1, 2, 3}},
		{name: "empty"},
		{name: "swapped", give: []int{0, 2, 1, 3}, want: []found{{Reordered, 2, 2}}},
		{name: "moved to the end", give: []int{0, 2, 3, 1}, want: []found{{Reordered, 2, 2}}},
		{name: "two moved to the end", give: []int{0, 3, 4, 1, 2}, want: []found{{Reordered, 2, 2}, {Reordered, 3, 3}}},
		{name: "one of two missing moved", give: []int{0, 3, 4, 2}, want: []found{{Deleted, 2, 2}, {Reordered, 3, 3}}},
		{name: "middle of gap moved", give: []int{0, 4, 2}, want: []found{{Deleted, 2, 2}, {Reordered, 3, 3}, {Deleted, 4, 4}}},
		{name: "duplicate", give: []int{0, 1, 1, 2}, want: []found{{Reordered, 2, 2}}},
		{name: "leading gap in a young stream", give: []int{3, 4}, maxAge: 24 * time.Hour * 365, want: []found{{Deleted, 1, 3}}},
		{name: "leading gap at the retention edge", give: []int{3, 4}, maxAge: 40 * 24 * time.Hour},
		{name: "leading gap, no retention", give: []int{3, 4}, want: []found{{Deleted, 1, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := chain(10)
			c := newChecker("north", "journey", nil)
			for i, idx := range tt.give {
				c.add(uint64(i+1), rs[idx].encode())
			}
			rep := c.finish(now, tt.maxAge)
			if diff := cmp.Diff(tt.want, foundOf(rep.Problems)); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nreport: %v", diff, rep.Problems)
			}
		})
	}
}

func TestVerifyAllEmptyStream(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	reps, err := VerifyAll(ctx, js, nil)
	if err != nil || len(reps) != 0 {
		t.Errorf("VerifyAll() = %v, %v; want no chains", reps, err)
	}
	rep, err := Verify(ctx, js, "north", "journey", nil)
	if err != nil || rep.Records != 0 || !rep.OK() {
		t.Errorf("Verify(empty chain) = %+v, %v", rep, err)
	}
}
