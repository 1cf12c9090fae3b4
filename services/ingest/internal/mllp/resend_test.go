package mllp_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/ackstore"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// calls is an Ingester that counts the messages handed to the app by
// control id, and can fail the first n of them as "retry later".
type calls struct {
	next mllp.Ingester
	mu   sync.Mutex
	n    map[string]int
	fail int
}

func (c *calls) IngestHL7(ctx context.Context, src app.Source, raw []byte) (app.HL7Result, error) {
	id := ""
	if m, err := hl7.Parse(raw); err == nil {
		id = m.ControlID()
	}
	c.mu.Lock()
	c.n[id]++
	fail := c.fail > 0
	if fail {
		c.fail--
	}
	c.mu.Unlock()
	if fail {
		m, _ := hl7.Parse(raw)
		return app.HL7Result{Message: m, Type: m.Type().String(), Supported: true},
			&app.Error{Kind: app.KindUnavailable, Reason: app.ReasonPublishFailed, Diagnostics: "retry later",
				HL7: []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "the message could not be stored; retry later"}}}
	}
	return c.next.IngestHL7(ctx, src, raw)
}

func (c *calls) IngestHL7Batch(ctx context.Context, src app.Source, raw []byte) (app.HL7BatchResult, error) {
	return c.next.IngestHL7Batch(ctx, src, raw)
}

func (c *calls) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// withAcks gives the server a Redis ack store and counts the app's calls.
func withAcks(c *calls, o ackstore.Options, store **ackstore.Store) func(*env, *mllp.Options) {
	return func(e *env, mo *mllp.Options) {
		*store = ackstore.New(e.redis, e.sealer, e.pk, o)
		c.next, c.n = mo.App, map[string]int{}
		mo.App, mo.Acks = c, *store
	}
}

// replaceField returns msg with field n of its first segment set to v.
func replaceField(msg []byte, n int, v string) []byte {
	text := strings.ReplaceAll(string(msg), "\n", "\r")
	first, rest, _ := strings.Cut(text, "\r")
	f := strings.Split(first, "|")
	f[n-1] = v
	return []byte(strings.Join(f, "|") + "\r" + rest)
}

// TestResendAnsweredWithStoredACK sends a corpus SIU^S12 over MLLP and
// resends it: every resend gets the byte-identical first ACK and
// reaches neither the app nor EHR_EVENTS.
func TestResendAnsweredWithStoredACK(t *testing.T) {
	c := &calls{}
	var acks *ackstore.Store
	e := start(t, withAcks(c, ackstore.Options{TTL: 2 * time.Hour}, &acks))
	conn := hl7test.Dial(t, e.addr)

	siu := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	first := conn.Send(t, siu)
	if got := parseACK(t, first).Get("MSA-1") + " " + parseACK(t, first).Get("MSA-2"); got != "AA MSG00012" {
		t.Fatalf("first ACK %q", got)
	}
	// Resent on the same connection, then on another with a new MSH-7
	// (some engines restamp it) and LF segment ends.
	again := conn.Send(t, siu)
	restamped := bytes.ReplaceAll(replaceField(siu, 7, "202109141125+0215"), []byte("\r"), []byte("\n"))
	other := hl7test.Dial(t, e.addr).Send(t, restamped)
	for name, got := range map[string][]byte{"resend": again, "restamped resend": other} {
		if !bytes.Equal(got, first) {
			t.Errorf("%s: ACK\n%q\nwant the stored\n%q", name, got, first)
		}
	}
	if n := c.count("MSG00012"); n != 1 {
		t.Errorf("the app handled MSG00012 %d times, want 1", n)
	}
	if n := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")["ehr.demo.appointment.booked"]; n != 1 {
		t.Errorf("%d booked events, want 1", n)
	}

	// The same sender, control id and MSH-7 with other content (a real
	// reschedule by an engine that reuses control ids) is another
	// message: processed again, and its new start is a reschedule.
	moved := bytes.Replace(siu, []byte("|20210924093000+0215|20210924102000+0215|"), []byte("|20210925093000+0215|20210925102000+0215|"), 1)
	if bytes.Equal(moved, siu) {
		t.Fatal("test message not changed")
	}
	if ack := conn.Send(t, moved); bytes.Equal(ack, first) || parseACK(t, ack).Get("MSA-1") != "AA" {
		t.Errorf("reused control id: ACK %q, want a fresh AA", ack)
	}
	if n := c.count("MSG00012"); n != 2 {
		t.Errorf("reused control id: the app handled MSG00012 %d times, want 2", n)
	}
	if n := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")["ehr.demo.appointment.rescheduled"]; n != 1 {
		t.Errorf("reused control id with a new start: %d rescheduled events, want 1", n)
	}
	// Another sending facility with the same control id is another
	// message to the ACK store too; it carries the facts just seen, so
	// to the last-seen state it is the same version: no event.
	fromElsewhere := replaceField(moved, 4, "OtherFacility")
	if ack := conn.Send(t, fromElsewhere); bytes.Equal(ack, first) {
		t.Errorf("other facility answered with the first facility's ACK")
	}
	if n := c.count("MSG00012"); n != 3 {
		t.Errorf("other facility: the app handled MSG00012 %d times, want 3", n)
	}
	if got := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>"); got["ehr.demo.appointment.rescheduled"] != 1 || got["ehr.demo.appointment.booked"] != 1 {
		t.Errorf("other facility's copy: events %v, want still 1 booked and 1 rescheduled", got)
	}

	// A rejected message is final too: its AE is stored, the resend
	// is not dead-lettered again.
	bad := hl7test.Read(t, "malformed/nodehl7-misc-bad-phone-example.hl7")
	badAck := conn.Send(t, bad)
	if got := parseACK(t, badAck).Get("MSA-1"); got != "AE" {
		t.Fatalf("bad message: ACK %q", got)
	}
	if again := conn.Send(t, bad); !bytes.Equal(again, badAck) {
		t.Errorf("resent bad message: ACK %q, want the stored %q", again, badAck)
	}
	if n := subjectCounts(t, e.js, bus.StreamEHRDead, "dead.ehr.>")["dead.ehr.demo.demo"]; n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}

	// Stored sealed, under a keyed hash, with the TTL.
	m, err := hl7.Parse(siu)
	if err != nil {
		t.Fatal(err)
	}
	key := acks.AckKey(mllp.ResendKey{Tenant: "demo", Source: "demo", App: m.MSH().Field(3).Raw(), Facility: m.MSH().Field(4).Raw(), ControlID: "MSG00012"})
	raw, err := e.redis.Get(t.Context(), key).Bytes()
	if err != nil {
		t.Fatalf("stored ACK: %v", err)
	}
	if strings.Contains(key, "MSG00012") || bytes.Contains(raw, []byte("MSG00012")) || bytes.Contains(raw, []byte("MSA")) {
		t.Errorf("ACK stored in clear: key %q value %q", key, raw)
	}
	if ttl := e.redis.TTL(t.Context(), key).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
		t.Errorf("stored ACK TTL %v, want the configured 2h", ttl)
	}

	text := gatherText(t, e.reg)
	for _, want := range []string{
		`ingest_duplicates_total{input="hl7v2",reason="resent_control_id",source="demo",type="SIU^S12"} 3`,
		`ingest_hl7_messages_total{ack="AA",source="demo",type="SIU^S12"} 5`,
		`ingest_hl7_messages_total{ack="AE",source="demo",type="SIU^S12"} 2`,
		// Only the other facility's copy of the rescheduled message
		// (the same facts under the same version), none of the resends.
		`ingest_state_unchanged_total{kind="appointment",reason="same_version",source="demo"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s\n%s", want, text)
		}
	}
	checkNoPHI(t, e.logs.String())
}

// TestRetryLaterIsNotStored: an AE 207 (nothing stored) is not kept, so
// the resend is processed and accepted.
func TestRetryLaterIsNotStored(t *testing.T) {
	c := &calls{fail: 1}
	var acks *ackstore.Store
	e := start(t, withAcks(c, ackstore.Options{}, &acks))
	conn := hl7test.Dial(t, e.addr)
	oru := hl7test.Read(t, "ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase1.hl7")
	if got := parseACK(t, conn.Send(t, oru)).Get("MSA-1") + " " + parseACK(t, conn.Send(t, oru)).Get("MSA-1"); got != "AE AA" {
		t.Errorf("ACKs %q, want AE (retry later) then AA", got)
	}
	if n := c.count("NIST-100929110701660"); n != 2 {
		t.Errorf("the app handled the message %d times, want 2", n)
	}
	if n := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")["ehr.demo.lab_result.final"]; n != 1 {
		t.Errorf("%d lab events, want 1", n)
	}
}

// TestConcurrentResends sends one corpus ORU^R01 on four connections at
// once: one copy is processed, every connection gets the same ACK.
func TestConcurrentResends(t *testing.T) {
	c := &calls{}
	var acks *ackstore.Store
	e := start(t, withAcks(c, ackstore.Options{LockWait: time.Minute}, &acks))
	oru := hl7test.Read(t, "ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase1.hl7")
	const n = 4 // the server's MaxConns
	conns := make([]*hl7test.Client, n)
	for i := range conns {
		conns[i] = hl7test.Dial(t, e.addr)
	}
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, cl := range conns {
		wg.Go(func() {
			if errs[i] = hl7mllp.WriteFrame(cl.Conn(), oru); errs[i] == nil {
				got[i], errs[i] = cl.Read()
			}
		})
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("connection %d: %v", i, errs[i])
		}
		if parseACK(t, got[i]).Get("MSA-1") != "AA" || !bytes.Equal(got[i], got[0]) {
			t.Errorf("connection %d: ACK %q, want the same AA as connection 0 %q", i, got[i], got[0])
		}
	}
	if k := c.count("NIST-100929110701660"); k != 1 {
		t.Errorf("the app handled the message %d times, want 1", k)
	}
	if k := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")["ehr.demo.lab_result.final"]; k != 1 {
		t.Errorf("%d lab events, want 1", k)
	}
	if text := gatherText(t, e.reg); !strings.Contains(text, `ingest_duplicates_total{input="hl7v2",reason="resent_control_id",source="demo",type="ORU^R01"} 3`) {
		t.Errorf("metrics lack 3 duplicates:\n%s", text)
	}
}

// TestResentBatchAnsweredWithStoredACKs wraps a corpus SIU^S12 and
// ORU^R01 in a batch and sends it twice: the resent batch carries the
// byte-identical stored ACKs and reaches the app no second time, and
// one of its messages resent alone is recognised too.
func TestResentBatchAnsweredWithStoredACKs(t *testing.T) {
	c := &calls{}
	var acks *ackstore.Store
	e := start(t, withAcks(c, ackstore.Options{}, &acks))
	conn := hl7test.Dial(t, e.addr)
	siu := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	oru := hl7test.Read(t, "ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase1.hl7")
	seg := func(msg []byte) string {
		return strings.TrimRight(strings.ReplaceAll(strings.ReplaceAll(string(msg), "\r\n", "\r"), "\n", "\r"), "\r") + "\r"
	}
	batch := []byte("BHS|^~\\&|ENGINE|HOSP|||20240101120000\r" + seg(siu) + seg(oru) + "BTS|2\r")

	inner := func(ack []byte) []string {
		var out []string
		for m := range strings.SplitSeq(string(ack), "MSH|") {
			if strings.HasPrefix(m, "BHS|") {
				continue
			}
			out = append(out, "MSH|"+strings.TrimSuffix(m, "BTS|2\r"))
		}
		return out
	}
	first := inner(conn.Send(t, batch))
	if len(first) != 2 || parseACK(t, []byte(first[0])).Get("MSA-1") != "AA" || parseACK(t, []byte(first[1])).Get("MSA-1") != "AA" {
		t.Fatalf("first batch: ACKs %q, want two AA", first)
	}
	again := inner(hl7test.Dial(t, e.addr).Send(t, batch))
	if !slices.Equal(again, first) {
		t.Errorf("resent batch: ACKs\n%q\nwant the stored\n%q", again, first)
	}
	alone := conn.Send(t, siu)
	if string(alone) != first[0] {
		t.Errorf("SIU resent alone: ACK %q, want the one stored from the batch %q", alone, first[0])
	}
	if got := [2]int{c.count("MSG00012"), c.count("NIST-100929110701660")}; got != [2]int{1, 1} {
		t.Errorf("the app handled the SIU and ORU %v times, want once each", got)
	}
	counts := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")
	if counts["ehr.demo.appointment.booked"] != 1 || counts["ehr.demo.lab_result.final"] != 1 {
		t.Errorf("events %v, want 1 booked and 1 final", counts)
	}
	if text := gatherText(t, e.reg); !strings.Contains(text, `ingest_duplicates_total{input="hl7v2",reason="resent_control_id",source="demo",type="SIU^S12"} 2`) {
		t.Errorf("metrics lack 2 SIU resends:\n%s", text)
	}
}
