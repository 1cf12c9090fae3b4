package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/deploy/devstack/demo"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/log/logtest"
)

// TestHL7AppointmentBecomesOneEmail sends a real SIU^S12 from the corpus
// over MLLP, with a canary email added to PID-13, and expects an AA after
// the event is stored, one confirmation email, and no identifier in logs.
func TestHL7AppointmentBecomesOneEmail(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "..", "shared", "corpus", "hl7v2", "SIU_S12", "msconv-SIU-S12-01.hl7"))
	if err != nil {
		t.Fatalf("corpus message: %v", err)
	}
	p := newPatient()
	msg := withEmail(t, raw, p.email)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out logtest.Buffer
	s, err := stack.Start(ctx, stack.Options{Root: root, VarDir: t.TempDir(), FreePorts: true, Output: &out})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	defer s.Stop()

	conn, err := net.DialTimeout("tcp", s.MLLPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 2 { // the second send is a retry: deduplicated
		ack := mllpRoundTrip(t, conn, msg)
		if !bytes.Contains(ack, []byte("MSA|AA|MSG00012")) {
			t.Fatalf("send %d: ACK = %q, want MSA|AA for MSG00012", i+1, strings.ReplaceAll(string(ack), "\r", "\\r"))
		}
	}
	msgs, err := demo.WaitForEmail(ctx, s.InboxURL, p.email, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, out.String())
	}
	if want := "Your appointment on Friday, September 24, 2021"; msgs[0].Subject != want {
		t.Errorf("subject = %q, want %q", msgs[0].Subject, want)
	}
	time.Sleep(time.Second)
	if msgs, _ = demo.Emails(ctx, s.InboxURL, p.email); len(msgs) != 1 {
		t.Errorf("emails = %d, want exactly 1", len(msgs))
	}
	s.Stop()
	logs := readLogs(t, s.LogDir)
	for _, id := range []string{p.email, "EVERYMAN", "PATID1234", "19880818", "78788788"} {
		if strings.Contains(logs, id) {
			t.Errorf("service logs contain patient identifier %q", id)
		}
	}
	grepTree(t, s.NATSStoreDir, []string{p.email, "EVERYMAN", "PATID1234"})
}

// withEmail adds an Internet address repetition to PID-13 (XTN-2 NET,
// XTN-4 the address), as EHRs send it, and normalises segment ends to CR.
func withEmail(t *testing.T, raw []byte, email string) []byte {
	t.Helper()
	text := strings.NewReplacer("\r\n", "\r", "\n", "\r").Replace(string(raw))
	segs := strings.Split(strings.TrimRight(text, "\r"), "\r")
	done := false
	for i, seg := range segs {
		if !strings.HasPrefix(seg, "PID|") {
			continue
		}
		fields := strings.Split(seg, "|")
		for len(fields) <= 13 {
			fields = append(fields, "")
		}
		fields[13] += "~^NET^Internet^" + email
		segs[i] = strings.Join(fields, "|")
		done = true
	}
	if !done {
		t.Fatal("corpus message has no PID segment")
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// mllpRoundTrip sends one framed message and reads one framed answer.
func mllpRoundTrip(t *testing.T, conn net.Conn, msg []byte) []byte {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	frame := append(append([]byte{0x0b}, msg...), 0x1c, 0x0d)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes(0x0b); err != nil {
		t.Fatalf("read ACK: %v", err)
	}
	body, err := r.ReadBytes(0x1c)
	if err != nil {
		t.Fatalf("read ACK: %v", err)
	}
	if _, err := r.ReadByte(); err != nil {
		t.Fatalf("read ACK end: %v", err)
	}
	return bytes.TrimSuffix(body, []byte{0x1c})
}
