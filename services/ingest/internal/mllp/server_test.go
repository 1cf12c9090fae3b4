package mllp_test

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/lastseen"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
)

const maxFrame = 64 << 10

type env struct {
	ns     *server.Server
	js     jetstream.JetStream
	sealer *envelope.Sealer
	addr   string
	logs   *logtest.Buffer
	reg    *prometheus.Registry
	redis  *redis.Client
	pk     []byte
}

// start runs the real app (sealing publisher, audit writer) behind the
// MLLP server on an embedded JetStream server.
func start(t *testing.T, opts ...func(*env, *mllp.Options)) *env {
	t.Helper()
	ns := bustest.Start(t)
	_, js := bustest.Connect(t, ns)
	if err := bus.EnsureStreams(t.Context(), js, bus.EHREvents(1), bus.EHRDead(1)); err != nil {
		t.Fatal(err)
	}
	aw, pk := audittest.Writer(t, js, "ingest")
	e := &env{ns: ns, js: js, sealer: envelopetest.Sealer(t), logs: &logtest.Buffer{}, reg: prometheus.NewRegistry(),
		redis: storetest.Client(t), pk: pk}
	logger := log.New(e.logs, -4, "ingest")
	m := metrics.New(e.reg)
	a := app.New(app.Options{Publisher: natsbus.New(js, e.sealer, time.Second), Auditor: aw,
		Metrics: m, Logger: logger, State: lastseen.New(e.redis, e.sealer, pk, lastseen.Options{})})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	o := mllp.Options{App: a, Source: app.Source{Name: "demo", Tenant: "demo"},
		MaxFrameBytes: maxFrame, ReadTimeout: 5 * time.Second, MaxConns: 4, Metrics: mllp.NewMetrics(e.reg), Logger: logger,
		Inputs: m}
	for _, f := range opts {
		f(e, &o)
	}
	srv := mllp.New(o)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return e
}

func parseACK(t *testing.T, raw []byte) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, raw)
	}
	return m
}

// subjectCounts returns how many messages each subject of stream holds.
func subjectCounts(t *testing.T, js jetstream.JetStream, stream, filter string) map[string]uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// lastEvent opens the last event stored on subject.
func (e *env) lastEvent(t *testing.T, subject string) *eventsv1.ClinicalEvent {
	t.Helper()
	s, err := e.js.Stream(t.Context(), bus.StreamEHREvents)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatalf("no event on %s: %v", subject, err)
	}
	id := msg.Header.Get("Nats-Msg-Id")
	if bytes.Contains(msg.Data, []byte("EVERYMAN")) || bytes.Contains(msg.Data, []byte("MSH|")) {
		t.Fatalf("event on %s is stored in clear", subject)
	}
	plain, err := e.sealer.Open(t.Context(), msg.Data, envelope.Binding{Tenant: "demo", Kind: envelope.KindEHREvent, ID: id})
	if err != nil {
		t.Fatalf("open event: %v", err)
	}
	ev := &eventsv1.ClinicalEvent{}
	if err := proto.Unmarshal(plain, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestMLLP(t *testing.T) {
	e := start(t)
	c := hl7test.Dial(t, e.addr)

	// One connection carries every message below.
	siu := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	ack := parseACK(t, c.Send(t, siu))
	if got := ack.Get("MSA-1") + " " + ack.Get("MSA-2") + " " + ack.Get("MSH-9") + "^" + ack.Get("MSH-9-2"); got != "AA MSG00012 ACK^S12" {
		t.Errorf("SIU^S12 ACK = %q", got)
	}
	if ack.Get("MSH-5") != "SCHApp" || ack.Get("MSH-3") != "EHRApp" || ack.Get("MSH-12") != "2.8" {
		t.Errorf("ACK header not swapped: %q", ack.MSH().Field(3).Raw()+"|"+ack.MSH().Field(5).Raw())
	}
	ev := e.lastEvent(t, "ehr.demo.appointment.booked")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(ev.GetEventId()) ||
		ev.GetSubjectRef() != "Appointment/12345" || ev.GetPatient().GetId() != "PATID1234" ||
		ev.GetSource().GetMessageType() != "SIU^S12" || ev.GetSource().GetProtocol() != eventsv1.Protocol_PROTOCOL_HL7V2_MLLP ||
		ev.GetAppointment().GetStart().AsTime().IsZero() || !bytes.Equal(ev.GetOriginal(), siu) ||
		ev.GetOriginalContentType() != "x-application/hl7-v2+er7" {
		t.Errorf("event mapped wrong: %v", ev)
	}

	// The same message again: AA, still one event.
	if got := parseACK(t, c.Send(t, siu)).Get("MSA-1"); got != "AA" {
		t.Errorf("resent SIU^S12 ACK = %q", got)
	}
	if n := subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")["ehr.demo.appointment.booked"]; n != 1 {
		t.Errorf("%d booked events after a resend, want 1", n)
	}

	// ORU^R01 with OBR-25 F.
	oru := hl7test.Read(t, "ORU_R01/nodehl7-nist-ORU_R01_2.5.1_SampleTestCase1.hl7")
	if got := parseACK(t, c.Send(t, oru)).Get("MSA-1"); got != "AA" {
		t.Errorf("ORU^R01 ACK = %q", got)
	}
	if ev := e.lastEvent(t, "ehr.demo.lab_result.final"); ev.GetSubjectRef() != "DiagnosticReport/9700123" {
		t.Errorf("lab event subject %q", ev.GetSubjectRef())
	}

	// A registration without a visit number gives nothing: AA.
	if got := parseACK(t, c.Send(t, hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7"))).Get("MSA-1"); got != "AA" {
		t.Errorf("ADT^A04 ACK = %q", got)
	}

	// SIU^S12 without SCH: AE naming SCH, kept on EHR_DEAD.
	bad := hl7test.Read(t, "malformed/nodehl7-misc-bad-phone-example.hl7")
	ack = parseACK(t, c.Send(t, bad))
	if got := ack.Get("MSA-1") + " " + ack.Get("ERR-2-1") + " " + ack.Get("ERR-3-1") + " " + ack.Get("ERR-3-3") + " " + ack.Get("ERR-4"); got != "AE SCH 100 HL70357 E" {
		t.Errorf("SIU without SCH: ACK %q", got)
	}

	// Not HL7 at all: AR with a minimal header.
	ack = parseACK(t, c.Send(t, []byte("hello\r")))
	if got := ack.Get("MSA-1") + " " + ack.Get("ERR-3-1"); got != "AR 100" {
		t.Errorf("garbage: ACK %q", got)
	}

	// A broken batch: AR naming the nested BHS.
	ack = parseACK(t, c.Send(t, hl7test.Read(t, "malformed/pyhl7-sample_bad_batch1.hl7")))
	if got := ack.Get("MSA-1") + " " + ack.Get("ERR-2-1") + "^" + ack.Get("ERR-2-2"); got != "AR BHS^4" {
		t.Errorf("bad batch: ACK %q", got)
	}

	// A good batch: a batch of ACKs (MSH-15 NE asks for none, so only the
	// wrapper comes back).
	batchAck := string(c.Send(t, hl7test.Read(t, "batch/pyhl7-sample_file1.hl7")))
	if !strings.HasPrefix(batchAck, "BHS|") || !strings.Contains(batchAck, "BTS|0") {
		t.Errorf("batch answer %q", batchAck)
	}

	// A field with an unknown character set: AR naming MSH-18.
	ack = parseACK(t, c.Send(t, []byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5||||||ISO IR87\rPID|1||1\r")))
	if got := ack.Get("MSA-1") + " " + ack.Get("ERR-2-1") + "^" + ack.Get("ERR-2-3") + " " + ack.Get("ERR-3-1"); got != "AR MSH^18 103" {
		t.Errorf("charset: ACK %q", got)
	}

	dead := subjectCounts(t, e.js, bus.StreamEHRDead, "dead.ehr.>")["dead.ehr.demo.demo"]
	if dead != 4 {
		t.Errorf("%d dead letters, want 4 (no SCH, garbage, bad batch, charset)", dead)
	}
	ds, err := e.js.Stream(t.Context(), bus.StreamEHRDead)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := ds.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dl.Data, []byte("Gloria")) || dl.Header.Get(bus.HeaderReason) != app.ReasonHL7Unprocessable {
		t.Errorf("first dead letter: reason %q, stored in clear: %v", dl.Header.Get(bus.HeaderReason), bytes.Contains(dl.Data, []byte("Gloria")))
	}
	opened, err := e.sealer.Open(t.Context(), dl.Data, envelope.Binding{Tenant: "demo", Kind: envelope.KindEHRDead, ID: dl.Header.Get("Nats-Msg-Id")})
	if err != nil || !bytes.Equal(opened, bad) {
		t.Errorf("dead letter does not open to the message sent: %v", err)
	}

	// A frame over the maximum: AR, and the connection still works.
	huge := append([]byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X2|P|2.5\rNTE|1||"), bytes.Repeat([]byte("x"), maxFrame)...)
	ack = parseACK(t, c.Send(t, huge))
	if got := ack.Get("MSA-1") + " " + ack.Get("ERR-3-1"); got != "AR 207" {
		t.Errorf("huge frame: ACK %q", got)
	}
	if got := parseACK(t, c.Send(t, oru)).Get("MSA-1"); got != "AA" {
		t.Errorf("after a huge frame: ACK %q", got)
	}

	// Enhanced mode: MSH-15 AL asks for a commit ACK.
	enh := []byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X3|P|2.5|||AL|NE\rPID|1||MRN77^^^H||Q^R\r")
	if got := parseACK(t, c.Send(t, enh)).Get("MSA-1"); got != "CA" {
		t.Errorf("enhanced mode: ACK %q", got)
	}

	metricText := gatherText(t, e.reg)
	for _, want := range []string{
		`ingest_hl7_messages_total{ack="AA",source="demo",type="SIU^S12"} 2`,
		`ingest_hl7_messages_total{ack="AA",source="demo",type="ORU^R01"} 2`,
		`ingest_hl7_messages_total{ack="AA",source="demo",type="ADT^A04"} 1`,
		`ingest_hl7_messages_total{ack="AE",source="demo",type="SIU^S12"} 1`,
		`ingest_hl7_messages_total{ack="AR",source="demo",type="unknown"} 4`,
		`ingest_hl7_messages_total{ack="none",source="demo",type="ADT^A04"} 3`,
		`ingest_hl7_messages_total{ack="CA",source="demo",type="ADT^A08"} 1`,
		// The resent SIU and ORU are the same versions; the A08 is the
		// patient's first sight, its baseline.
		`ingest_state_unchanged_total{kind="appointment",reason="same_version",source="demo"} 1`,
		`ingest_state_unchanged_total{kind="lab_result",reason="same_version",source="demo"} 1`,
		`ingest_state_unchanged_total{kind="patient",reason="first_seen",source="demo"} 1`,
	} {
		if !strings.Contains(metricText, want) {
			t.Errorf("metrics lack %s\n%s", want, metricText)
		}
	}

	// Audit: one record per stored event (booked, lab) and per dead
	// letter (4); what made no transition stored nothing.
	if n := subjectCounts(t, e.js, bus.StreamAudit, "audit.>")["audit.demo.ingest"]; n != 6 {
		t.Errorf("%d audit records, want 6", n)
	}

	checkNoPHI(t, e.logs.String())
}

// checkNoPHI fails when the logs hold a patient name or identifier from
// the messages sent.
func checkNoPHI(t *testing.T, out string) {
	t.Helper()
	if !strings.Contains(out, `"msg":"hl7 message handled"`) || !strings.Contains(out, `"msg":"event stored"`) {
		t.Fatalf("logs lack the expected lines:\n%s", out)
	}
	for _, phi := range []string{"EVERYMAN", "ADAM", "Aniston", "Josh", "PATID1234", "PATID567", "123456789",
		"Someone", "Gloria", "someemailaddress", "1434768", "Lastname", "Alice", "PATID12345", "MRN77", "XXXXXXXXXX", "0000112234"} {
		if strings.Contains(out, phi) {
			t.Errorf("logs contain %q:\n%s", phi, out)
		}
	}
	if regexp.MustCompile(`(^|[^0-9a-f])1234567([^0-9a-f]|$)`).MatchString(out) {
		t.Errorf("logs contain the MRN 1234567:\n%s", out)
	}
}

func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			val := m.GetCounter().GetValue()
			b.WriteString(mf.GetName() + "{" + strings.Join(labels, ",") + "} " + strconvF(val) + "\n")
		}
	}
	return b.String()
}

// TestNATSDown answers AE 207 when JetStream is unreachable, so the sender
// retries; nothing is acknowledged as accepted.
func TestNATSDown(t *testing.T) {
	e := start(t)
	c := hl7test.Dial(t, e.addr)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	for _, rel := range []string{"SIU_S12/msconv-SIU-S12-01.hl7", "malformed/nodehl7-misc-bad-phone-example.hl7"} {
		ack := parseACK(t, c.Send(t, hl7test.Read(t, rel)))
		if got := ack.Get("MSA-1") + " " + ack.Get("ERR-3-1"); got != "AE 207" {
			t.Errorf("%s with NATS down: ACK %q, want AE 207", rel, got)
		}
	}
}

// TestJunkAndCut checks that junk between frames is skipped and that a
// connection cut mid-frame does not stop the server.
func TestJunkAndCut(t *testing.T) {
	e := start(t)
	c := hl7test.Dial(t, e.addr)
	if _, err := c.Conn().Write([]byte("junk\r\n\x1c\x0d")); err != nil {
		t.Fatal(err)
	}
	if got := parseACK(t, c.Send(t, hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7"))).Get("MSA-1"); got != "AA" {
		t.Errorf("after junk: ACK %q", got)
	}
	cut := hl7test.Dial(t, e.addr)
	if _, err := cut.Conn().Write([]byte{hl7mllp.StartBlock, 'M', 'S', 'H'}); err != nil {
		t.Fatal(err)
	}
	_ = cut.Conn().Close()
	c2 := hl7test.Dial(t, e.addr)
	if got := parseACK(t, c2.Send(t, hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7"))).Get("MSA-1"); got != "AA" {
		t.Errorf("new connection after a cut one: ACK %q", got)
	}
}

// panicky is an Ingester that panics, standing in for a bug in the app.
type panicky struct{}

func (panicky) IngestHL7(context.Context, app.Source, []byte) (app.HL7Result, error) {
	panic("bug")
}

func (panicky) IngestHL7Batch(context.Context, app.Source, []byte) (app.HL7BatchResult, error) {
	panic("bug")
}

// TestPanicIsAE207 answers AE 207 when processing panics, and keeps the
// connection open.
func TestPanicIsAE207(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mllp.New(mllp.Options{App: panicky{}, Source: app.Source{Name: "demo", Tenant: "demo"},
		MaxFrameBytes: maxFrame, ReadTimeout: 5 * time.Second, MaxConns: 1, Logger: log.New(&logtest.Buffer{}, 0, "ingest")})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	c := hl7test.Dial(t, l.Addr().String())
	for range 2 {
		ack := parseACK(t, c.Send(t, hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")))
		if got := ack.Get("MSA-1") + " " + ack.Get("ERR-3-1"); got != "AE 207" {
			t.Errorf("panic: ACK %q, want AE 207", got)
		}
	}
}
