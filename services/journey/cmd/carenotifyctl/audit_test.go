package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
)

// auditPatient is a synthetic patient id that must never be stored or
// printed.
const auditPatient = "pat-CANARY-ctl-41d2"

// runCtl runs carenotifyctl with args against natsURL and returns what it
// printed.
func runCtl(t *testing.T, natsURL string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--nats-url", natsURL))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// auditTrail starts NATS with an AUDIT stream that (unlike production)
// allows deletes, generates keys with the CLI, and writes 10 records to
// each of north/journey and south/journey with a checkpoint every 4
// (records 5, 10 and, on Close, 13 of each chain).
func auditTrail(t *testing.T) (url, dir string, js jetstream.JetStream) {
	t.Helper()
	s := bustest.Start(t)
	_, js = bustest.Connect(t, s)
	cfg := bus.Audit(1)
	cfg.DenyDelete, cfg.DenyPurge = false, false
	if err := bus.EnsureStreams(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	url, dir = s.ClientURL(), filepath.Join(t.TempDir(), "keys")
	if out, err := runCtl(t, url, "audit", "keys", "generate", "--dir", dir); err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	pk, err := audit.LoadPseudonymKey(filepath.Join(dir, "pseudonym.key"))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := audit.LoadSigningKey(filepath.Join(dir, "audit-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := audit.NewWriter(t.Context(), js, "journey", pk, audit.WithSigningKey(sk), audit.WithCheckpointEvery(4))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		patient := auditPatient
		if i%4 != 0 {
			patient = fmt.Sprintf("pat-%d", i%3)
		}
		err := w.Record(t.Context(), audit.Entry{
			Tenant:  []string{"north", "south"}[i%2],
			Actor:   audit.Actor{Type: audit.ActorService, ID: "journey"},
			Action:  audit.ActionMessageDecided,
			Object:  audit.Object{Type: "EmailMessage", ID: fmt.Sprintf("msg-%02d", i)},
			Patient: patient,
			Purpose: audit.PurposeTreatment,
			Outcome: audit.OutcomeSuccess,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return url, dir, js
}

func TestAuditKeysGenerate(t *testing.T) {
	_, dir, _ := auditTrail(t)
	for _, name := range []string{"pseudonym.key", "audit-signing.key", "audit-verify.pem"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if _, err := runCtl(t, "nats://127.0.0.1:1", "audit", "keys", "generate", "--dir", dir); err == nil {
		t.Error("keys generate over existing keys = nil error, want refusal")
	}
}

func TestAuditVerify(t *testing.T) {
	url, dir, _ := auditTrail(t)
	verifyKey := filepath.Join(dir, "audit-verify.pem")
	out, err := runCtl(t, url, "audit", "verify", "--verify-key", verifyKey)
	if err != nil {
		t.Fatalf("verify = %v\n%s", err, out)
	}
	for _, want := range []string{"north/journey: ok; 13 records, seq 1..13", "south/journey: ok; 13 records", "3 checkpoints, last checkpoint 13"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The signing key file verifies too; another key does not.
	if out, err := runCtl(t, url, "audit", "verify", "--tenant", "north", "--service", "journey", "--verify-key", filepath.Join(dir, "audit-signing.key")); err != nil {
		t.Errorf("verify with the signing key = %v\n%s", err, out)
	}
	other := filepath.Join(t.TempDir(), "other")
	if out, err := runCtl(t, url, "audit", "keys", "generate", "--dir", other); err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	_, err = runCtl(t, url, "audit", "verify", "--tenant", "north", "--verify-key", filepath.Join(other, "audit-verify.pem"))
	if err == nil || !strings.Contains(err.Error(), "bad-signature 5, bad-signature 10, bad-signature 13") {
		t.Errorf("verify with another key = %v, want bad-signature", err)
	}
	if _, err := runCtl(t, url, "audit", "verify"); err == nil {
		t.Error("verify without --verify-key = nil error")
	}
}

func TestAuditVerifyTampered(t *testing.T) {
	url, dir, js := auditTrail(t)
	ctx := t.Context()
	stream, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	// Find north/journey's records 3 and 7 in the stream.
	streamSeq := map[uint64]uint64{}
	recs := map[uint64]audit.Record{}
	for seq := uint64(1); seq <= 26; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var r audit.Record
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		if m.Subject == "audit.north.journey" {
			streamSeq[r.Seq], recs[r.Seq] = seq, r
		}
	}
	// Delete record 3; replace record 7 with a copy whose outcome says
	// the message was denied.
	if err := stream.DeleteMsg(ctx, streamSeq[3]); err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, streamSeq[7]); err != nil {
		t.Fatal(err)
	}
	altered := recs[7]
	altered.Outcome = audit.OutcomeDenied
	b, err := json.Marshal(altered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "audit.north.journey", b); err != nil {
		t.Fatal(err)
	}

	out, err := runCtl(t, url, "audit", "verify", "--verify-key", filepath.Join(dir, "audit-verify.pem"))
	if err == nil {
		t.Fatalf("verify of a tampered trail = nil error\n%s", out)
	}
	want := "audit trail: 3 problems in 1 of 2 chains: north/journey: deleted 3, altered 7, reordered 7"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	for _, line := range []string{"north/journey: 3 PROBLEMS", "  deleted: record 3 missing", "  altered: record 7", "south/journey: ok"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
}

func TestAuditQuery(t *testing.T) {
	url, dir, _ := auditTrail(t)
	pk := filepath.Join(dir, "pseudonym.key")
	tests := []struct {
		name    string
		give    []string
		want    []string // object ids, from JSON lines
		wantErr bool
	}{
		{
			// i = 0, 4, 8, 12, 16, all in tenant north.
			name: "patient",
			give: []string{"--tenant", "north", "--patient", auditPatient, "--pseudonym-key", pk},
			want: []string{"msg-00", "msg-04", "msg-08", "msg-12", "msg-16"},
		},
		{
			name: "object",
			give: []string{"--object-type", "EmailMessage", "--object-id", "msg-05"},
			want: []string{"msg-05"},
		},
		{
			name: "action and limit",
			give: []string{"--tenant", "south", "--action", "message.decided", "--limit", "2"},
			want: []string{"msg-01", "msg-03"},
		},
		{
			name: "since in the future",
			give: []string{"--since", "2999-01-01T00:00:00Z"},
		},
		{name: "patient without key", give: []string{"--tenant", "north", "--patient", auditPatient}, wantErr: true},
		{name: "patient without tenant", give: []string{"--patient", auditPatient, "--pseudonym-key", pk}, wantErr: true},
		{name: "bad since", give: []string{"--since", "yesterday"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCtl(t, url, append([]string{"audit", "query", "--json"}, tt.give...)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("query error = %v, wantErr %v\n%s", err, tt.wantErr, out)
			}
			if err != nil {
				return
			}
			var got []string
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var r audit.Record
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("output is not JSON lines: %v\n%s", err, out)
				}
				got = append(got, r.Object.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if strings.Contains(out, "CANARY") {
				t.Errorf("output holds the patient id in clear:\n%s", out)
			}
		})
	}

	out, err := runCtl(t, url, "audit", "query", "--tenant", "north", "--patient", auditPatient, "--pseudonym-key", pk)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "TENANT") || !strings.Contains(lines[1], "EmailMessage/msg-00") || strings.Contains(out, "CANARY") {
		t.Errorf("table output:\n%s", out)
	}
}
