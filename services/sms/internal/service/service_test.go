package service_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/sms/internal/config"
	"github.com/carenotify/carenotify/services/sms/internal/service"
	"github.com/carenotify/carenotify/services/sms/twiliotest"
)

// Seeded PHI: it must never show up in logs, errors, Redis or JetStream
// in clear.
const (
	patientNumber = "+15550104477"
	patientBody   = "Hi Maria Lopez, your colonoscopy prep starts tomorrow."
)

// Our sender number of the demo tenant.
const senderNumber = "+15005550006"

// harness is a running sms service with its own NATS, Redis, keyring and
// Twilio stand-in.
type harness struct {
	cfg    *config.Config
	client smsv1.SmsServiceClient
	js     jetstream.JetStream
	rdb    *redis.Client
	logs   *logtest.Buffer
	twilio *twiliotest.Server
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// setup prepares NATS, Redis and a keyring and loads the config with
// extraEnv, without starting the service (see run).
func setup(t *testing.T, extraEnv ...string) *harness {
	t.Helper()
	ns := bustest.Start(t)
	redisURL := storetest.URL(t)
	keys, _ := envelopetest.Keyring(t)
	pk, sk := audittest.Keys(t)
	tw, err := twiliotest.Start(twiliotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	httpL := listen(t)
	environ := []string{
		"SMS_AUDIT_PSEUDONYM_KEY_FILE=" + pk,
		"SMS_AUDIT_SIGNING_KEY_FILE=" + sk,
		"SMS_TWILIO_BASE_URL=" + tw.URL(),
		"SMS_TWILIO_ACCOUNT_SID=" + tw.AccountSID(),
		"SMS_TWILIO_AUTH_TOKEN=" + tw.AuthToken(),
		"SMS_TWILIO_SENDERS=demo=" + senderNumber,
		"SMS_TWILIO_FROM=+15005550009",
		"SMS_PUBLIC_URL=http://" + httpL.Addr().String(),
		"SMS_WORKERS=2",
		"SMS_SEND_TIMEOUT=5s",
		"SMS_NATS_URL=" + ns.ClientURL(),
		"SMS_REDIS_URL=" + redisURL,
		"SMS_KEYRING_DIR=" + keys,
		"SMS_LOG_LEVEL=debug",
		"SMS_SHUTDOWN_GRACE=2s",
	}
	cfg, err := pkgconfig.Load[config.Config](append(environ, extraEnv...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPListener, cfg.GRPCListener = httpL, listen(t)
	cfg.HTTPAddr, cfg.GRPCAddr = cfg.HTTPListener.Addr().String(), cfg.GRPCListener.Addr().String()
	rdb, err := store.NewRedis(t.Context(), redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	_, js := bustest.Connect(t, ns)
	return &harness{cfg: cfg, js: js, rdb: rdb, logs: &logtest.Buffer{}, twilio: tw}
}

// run starts the service and returns once its gRPC API answers.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, h.cfg, log.New(h.logs, h.cfg.LogLevel, "sms")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v after cancel", err)
		}
	})
	cc, err := grpcx.NewClient(h.cfg.GRPCAddr, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	callCtx, callCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer callCancel()
	if _, err := healthpb.NewHealthClient(cc).Check(callCtx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health: %v", err)
	}
	h.client = smsv1.NewSmsServiceClient(cc)
}

func start(t *testing.T, extraEnv ...string) *harness {
	t.Helper()
	h := setup(t, extraEnv...)
	h.run(t)
	return h
}

// assertNoPHI fails when the seeded number or body (or a telling part of
// it) appears in b.
func assertNoPHI(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, s := range []string{patientNumber, strings.TrimPrefix(patientNumber, "+"), "Maria", "colonoscopy"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s contains PHI %q", where, s)
		}
	}
}

// redisDump returns every key and string/hash value in Redis.
func redisDump(t *testing.T, rdb *redis.Client) []byte {
	t.Helper()
	var b bytes.Buffer
	keys, err := rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b.WriteString(k + "\n")
		switch rdb.Type(t.Context(), k).Val() {
		case "string":
			b.WriteString(rdb.Get(t.Context(), k).Val() + "\n")
		case "hash":
			for f, v := range rdb.HGetAll(t.Context(), k).Val() {
				b.WriteString(f + "=" + v + "\n")
			}
		}
	}
	return b.Bytes()
}

// streamDump returns every message of stream (subject, headers, data).
func streamDump(t *testing.T, js jetstream.JetStream, stream string) ([]*jetstream.RawStreamMsg, []byte) {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*jetstream.RawStreamMsg
	var b bytes.Buffer
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		msgs = append(msgs, m)
		b.WriteString(m.Subject + "\n")
		for k, v := range m.Header {
			b.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		b.Write(m.Data)
	}
	return msgs, b.Bytes()
}

func TestSendQueuesSealedAndGetStatus(t *testing.T) {
	h := setup(t)
	// Twilio is down: the message stays in the outbox, where the test
	// looks at it.
	h.twilio.Fail(twiliotest.Failure{Status: http.StatusServiceUnavailable, Code: 20500, Count: 1000})
	h.run(t)
	ctx := t.Context()
	req := &smsv1.SendRequest{
		Tenant: "demo", IdempotencyKey: "k-1", To: patientNumber, Body: patientBody,
		JourneyInstance: "appointment-reminders/0011223344556677", Step: "2",
	}
	res, err := h.client.Send(ctx, req)
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	want := &smsv1.SendResponse{MessageId: res.GetMessageId(), Status: deliveryv1.Status_STATUS_QUEUED, Segments: 1, Encoding: "GSM-7"}
	if diff := cmp.Diff(want, res, cmpProto()); diff != "" {
		t.Errorf("Send() mismatch (-want +got):\n%s", diff)
	}

	again, err := h.client.Send(ctx, req)
	if err != nil {
		t.Fatalf("second Send() = %v", err)
	}
	if again.GetMessageId() != res.GetMessageId() || !again.GetDuplicate() {
		t.Errorf("second Send() = %v, want the first id as a duplicate", again)
	}

	st, err := h.client.GetStatus(ctx, &smsv1.GetStatusRequest{Tenant: "demo", MessageId: res.GetMessageId()})
	if err != nil {
		t.Fatalf("GetStatus() = %v", err)
	}
	if s := st.GetStatus(); (s != deliveryv1.Status_STATUS_QUEUED && s != deliveryv1.Status_STATUS_DEFERRED) || st.GetSegments() != 1 || st.GetMessageId() != res.GetMessageId() {
		t.Errorf("GetStatus() = %v", st)
	}
	if _, err := h.client.GetStatus(ctx, &smsv1.GetStatusRequest{Tenant: "other", MessageId: res.GetMessageId()}); status.Code(err) != codes.NotFound {
		t.Errorf("GetStatus(other tenant) = %v, want NotFound", err)
	}

	outbox, raw := streamDump(t, h.js, bus.OutboxStream("sms"))
	if len(outbox) != 1 {
		t.Fatalf("outbox holds %d messages, want 1 (the duplicate queues nothing)", len(outbox))
	}
	if outbox[0].Subject != "outbox.sms.demo" || outbox[0].Header.Get("Cn-Message-Id") != res.GetMessageId() {
		t.Errorf("outbox message %s %v", outbox[0].Subject, outbox[0].Header)
	}
	assertNoPHI(t, "OUTBOX_SMS", raw)

	events, rawEvents := streamDump(t, h.js, bus.StreamDelivery)
	if len(events) == 0 || events[0].Subject != "delivery.demo.sms.queued" {
		t.Fatalf("DELIVERY = %d messages, want a queued event first", len(events))
	}
	var ev deliveryv1.DeliveryEvent
	if err := proto.Unmarshal(events[0].Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetChannel() != deliveryv1.Channel_CHANNEL_SMS || ev.GetIdempotencyKey() != "k-1" || ev.GetMessageId() != res.GetMessageId() {
		t.Errorf("queued event = %v", &ev)
	}
	assertNoPHI(t, "DELIVERY", rawEvents)
	assertNoPHI(t, "Redis", redisDump(t, h.rdb))
	assertNoPHI(t, "logs", []byte(h.logs.String()))
}

func TestSendValidation(t *testing.T) {
	h := start(t)
	future := timestamppb.New(time.Now().Add(time.Hour))
	tests := []struct {
		name string
		give *smsv1.SendRequest
		want []string // fields at fault
	}{
		{name: "empty", give: &smsv1.SendRequest{}, want: []string{"tenant", "idempotency_key", "to", "body"}},
		{name: "national number", give: &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: "k", To: "5550104477", Body: "hi"}, want: []string{"to"}},
		{name: "formatted number", give: &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: "k", To: "+1 555 010 4477", Body: "hi"}, want: []string{"to"}},
		{name: "too long gsm", give: &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: "k", To: patientNumber, Body: strings.Repeat("a", 1531)}, want: []string{"body"}},
		{name: "too long ucs2", give: &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: "k", To: patientNumber, Body: strings.Repeat("я", 671)}, want: []string{"body"}},
		{name: "expiry past", give: &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: "k", To: patientNumber, Body: "hi", ExpiresAt: timestamppb.New(time.Now().Add(-time.Minute))}, want: []string{"expires_at"}},
		{name: "bad tenant", give: &smsv1.SendRequest{Tenant: "de mo", IdempotencyKey: "k", To: patientNumber, Body: "hi", ExpiresAt: future}, want: []string{"tenant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.Send(t.Context(), tt.give)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("Send() = %v, want InvalidArgument", err)
			}
			var got []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						got = append(got, v.GetField())
						assertNoPHI(t, "field violation", []byte(v.GetDescription()))
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields at fault (-want +got):\n%s", diff)
			}
			assertNoPHI(t, "status message", []byte(st.Message()))
		})
	}
	// The longest bodies allowed pass: 10 segments.
	for _, body := range []string{strings.Repeat("a", 1530), strings.Repeat("я", 670)} {
		res, err := h.client.Send(t.Context(), &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: "long-" + body[:2], To: patientNumber, Body: body})
		if err != nil || res.GetSegments() != 10 {
			t.Errorf("Send(10 segments) = %v, %v", res, err)
		}
	}
	if _, err := h.client.GetStatus(t.Context(), &smsv1.GetStatusRequest{Tenant: "demo", MessageId: "nope"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetStatus(bad id) = %v, want InvalidArgument", err)
	}
}

func TestRunServesHealthAndMetrics(t *testing.T) {
	h := start(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + h.cfg.HTTPAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
}

func cmpProto() cmp.Option { return protocmp.Transform() }
