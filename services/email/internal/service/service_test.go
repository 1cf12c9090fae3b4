package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	netmail "net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/email/internal/config"
	"github.com/carenotify/carenotify/services/email/internal/service"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// harness is a running email service with its own NATS, Redis and relay.
type harness struct {
	cfg    *config.Config
	client emailv1.EmailServiceClient
	js     jetstream.JetStream
	rdb    *redis.Client
	relay  *smtptest.Server
	logs   *logtest.Buffer
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

// setup prepares what the service needs, its own NATS, Redis, relay (with
// relayOpts; its CA is trusted) and keyring, and loads its config, but
// does not start it (see run).
func setup(t *testing.T, relayOpts smtptest.Options, extraEnv ...string) *harness {
	t.Helper()
	ns := bustest.Start(t)
	redisURL := storetest.URL(t)
	relaySrv := smtptest.Start(t, relayOpts)
	// The service trusts this CA; a relay without one offers no STARTTLS.
	ca := relayOpts.CA
	if ca == nil {
		ca = smtptest.NewCA(t)
	}
	keys, _ := envelopetest.Keyring(t)
	pk, sk := audittest.Keys(t)
	environ := []string{
		"EMAIL_AUDIT_PSEUDONYM_KEY_FILE=" + pk,
		"EMAIL_AUDIT_SIGNING_KEY_FILE=" + sk,
		"EMAIL_NATS_URL=" + ns.ClientURL(),
		"EMAIL_REDIS_URL=" + redisURL,
		"EMAIL_KEYRING_DIR=" + keys,
		"EMAIL_LOG_LEVEL=debug",
		"EMAIL_SHUTDOWN_GRACE=2s",
		"EMAIL_SMTP_HOST=localhost",
		"EMAIL_SMTP_PORT=" + strconv.Itoa(relaySrv.Port),
		"EMAIL_SMTP_CA_FILE=" + ca.CertFile,
		"EMAIL_FROM=Carenotify <noreply@carenotify.localhost>",
		"EMAIL_WORKERS=2",
		"EMAIL_SEND_TIMEOUT=5s",
	}
	cfg, err := pkgconfig.Load[config.Config](append(environ, extraEnv...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPListener, cfg.GRPCListener = listen(t), listen(t)
	cfg.HTTPAddr, cfg.GRPCAddr = cfg.HTTPListener.Addr().String(), cfg.GRPCListener.Addr().String()
	rdb, err := store.NewRedis(t.Context(), redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	_, js := bustest.Connect(t, ns)
	return &harness{cfg: cfg, js: js, rdb: rdb, relay: relaySrv, logs: &logtest.Buffer{}}
}

// run starts the service and returns once its gRPC API answers.
func (h *harness) run(t *testing.T) {
	t.Helper()
	cfg := h.cfg
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, log.New(h.logs, cfg.LogLevel, "email")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v after cancel", err)
		}
	})

	cc, err := grpcx.NewClient(cfg.GRPCAddr, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	callCtx, callCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer callCancel()
	if _, err := healthpb.NewHealthClient(cc).Check(callCtx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health: %v", err)
	}
	h.client = emailv1.NewEmailServiceClient(cc)
}

// start runs the service against a test relay with relayOpts (its CA is
// filled in unless noTLS) and returns once its gRPC API answers.
func start(t *testing.T, relayOpts smtptest.Options) *harness {
	t.Helper()
	h := setup(t, relayOpts)
	h.run(t)
	return h
}

func (h *harness) send(t *testing.T, req *emailv1.SendRequest) *emailv1.SendResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := h.client.Send(ctx, req)
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	return resp
}

// waitStatus polls GetStatus until the message reaches want.
func (h *harness) waitStatus(t *testing.T, tenant, id string, want deliveryv1.Status) *emailv1.GetStatusResponse {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		got, err := h.client.GetStatus(ctx, &emailv1.GetStatusRequest{Tenant: tenant, MessageId: id})
		cancel()
		if err != nil {
			t.Fatalf("GetStatus() = %v", err)
		}
		if got.GetStatus() == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %v (reason %q), want %v", got.GetStatus(), got.GetReason(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastEvent returns the last DeliveryEvent on delivery.<tenant>.email.<status>.
func (h *harness) lastEvent(t *testing.T, tenant, status string) (*deliveryv1.DeliveryEvent, bool) {
	t.Helper()
	stream, err := h.js.Stream(t.Context(), bus.StreamDelivery)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(t.Context(), "delivery."+tenant+".email."+status)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var ev deliveryv1.DeliveryEvent
	if err := proto.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return &ev, true
}

// waitEvent waits for an event on delivery.<tenant>.email.<status>: the
// worker publishes it just after updating the record.
func (h *harness) waitEvent(t *testing.T, tenant, status string) *deliveryv1.DeliveryEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ev, ok := h.lastEvent(t, tenant, status); ok {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", status, tenant)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outboxPublished returns how many messages were ever stored in the outbox.
func (h *harness) outboxPublished(t *testing.T) uint64 {
	t.Helper()
	stream, err := h.js.Stream(t.Context(), bus.OutboxStream("email"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func validRequest(tenant, key string) *emailv1.SendRequest {
	return &emailv1.SendRequest{
		Tenant:         tenant,
		IdempotencyKey: key,
		To:             "jane.patient@example.org",
		Subject:        "Your appointment on Tuesday",
		TextBody:       "See you on Tuesday at 10:00.",
		HtmlBody:       "<p>See you on <b>Tuesday</b> at 10:00.</p>",
		Security:       emailv1.Security_SECURITY_PHI,
	}
}

func TestSendDeliversOverVerifiedTLS(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	req := validRequest("acme", "journey-1/step-1")
	resp := h.send(t, req)
	id, err := uuid.Parse(resp.GetMessageId())
	if err != nil || id.Version() != 7 {
		t.Fatalf("message id %q is not a UUIDv7: %v", resp.GetMessageId(), err)
	}
	if resp.GetDuplicate() || resp.GetStatus() != deliveryv1.Status_STATUS_QUEUED {
		t.Errorf("Send() = %v, want a new queued message", resp)
	}

	msgs := h.relay.Wait(1, 15*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("relay received %d messages, want 1", len(msgs))
	}
	if msgs[0].TLS == nil {
		t.Fatal("message crossed without TLS")
	}
	pm, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(pm.Body)
	gotMail := map[string]any{
		"rcpt":      msgs[0].To,
		"to":        pm.Header.Get("To"),
		"subject":   pm.Header.Get("Subject"),
		"messageId": pm.Header.Get("X-Carenotify-Message-Id"),
		"hasText":   strings.Contains(string(body), "See you on Tuesday at 10:00."),
		"hasHTML":   strings.Contains(string(body), "<p>See you on <b>Tuesday</b> at 10:00.</p>"),
	}
	wantMail := map[string]any{
		"rcpt":      []string{"jane.patient@example.org"},
		"to":        "<jane.patient@example.org>",
		"subject":   "Your appointment on Tuesday",
		"messageId": resp.GetMessageId(),
		"hasText":   true,
		"hasHTML":   true,
	}
	if diff := cmp.Diff(wantMail, gotMail); diff != "" {
		t.Errorf("received mail (-want +got):\n%s", diff)
	}

	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	want := &emailv1.GetStatusResponse{
		MessageId: resp.GetMessageId(), Status: deliveryv1.Status_STATUS_SENT, Attempts: 1,
		Transport: &deliveryv1.Transport{TlsVersion: "TLS1.3", TlsVerified: true, NextHop: "localhost"},
	}
	got.UpdatedAt = nil
	if diff := cmp.Diff(want, got, cmpProto); diff != "" {
		t.Errorf("GetStatus() (-want +got):\n%s", diff)
	}

	for _, st := range []string{"queued", "sent"} {
		ev := h.waitEvent(t, "acme", st)
		if ev.GetMessageId() != resp.GetMessageId() || ev.GetIdempotencyKey() != req.GetIdempotencyKey() || ev.GetChannel() != deliveryv1.Channel_CHANNEL_EMAIL {
			t.Errorf("%s event = %v", st, ev)
		}
	}
	if ev := h.waitEvent(t, "acme", "sent"); !ev.GetTransport().GetTlsVerified() {
		t.Errorf("sent event transport = %v, want verified TLS", ev.GetTransport())
	}
}

var cmpProto = cmp.Comparer(func(a, b proto.Message) bool { return proto.Equal(a, b) })

func TestSendIsIdempotent(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	first := h.send(t, validRequest("acme", "same-key"))
	second := h.send(t, validRequest("acme", "same-key"))
	if first.GetMessageId() != second.GetMessageId() || first.GetDuplicate() || !second.GetDuplicate() {
		t.Fatalf("Send() twice = %v then %v; want the same id, the second a duplicate", first, second)
	}
	h.waitStatus(t, "acme", first.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	third := h.send(t, validRequest("acme", "same-key"))
	if third.GetMessageId() != first.GetMessageId() || third.GetStatus() != deliveryv1.Status_STATUS_SENT {
		t.Errorf("Send() after delivery = %v, want the first id with status SENT", third)
	}
	if n := h.outboxPublished(t); n != 1 {
		t.Errorf("outbox received %d messages, want 1", n)
	}
	if n := len(h.relay.Messages()); n != 1 {
		t.Errorf("relay received %d messages, want 1", n)
	}
	// Another tenant's identical key is another message.
	other := h.send(t, validRequest("other", "same-key"))
	if other.GetDuplicate() || other.GetMessageId() == first.GetMessageId() {
		t.Errorf("Send() for another tenant = %v, want a new message", other)
	}
}

func TestSendRejectsInvalidRequests(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	const addr = "zz.canary.invalid@example.org"
	tests := []struct {
		name string
		give func(*emailv1.SendRequest)
		want string // the field named in a violation
	}{
		{name: "no tenant", give: func(r *emailv1.SendRequest) { r.Tenant = "" }, want: "tenant"},
		{name: "tenant with a dot", give: func(r *emailv1.SendRequest) { r.Tenant = "a.b" }, want: "tenant"},
		{name: "no idempotency key", give: func(r *emailv1.SendRequest) { r.IdempotencyKey = "" }, want: "idempotency_key"},
		{name: "long idempotency key", give: func(r *emailv1.SendRequest) { r.IdempotencyKey = strings.Repeat("k", 201) }, want: "idempotency_key"},
		{name: "no recipient", give: func(r *emailv1.SendRequest) { r.To = "" }, want: "to"},
		{name: "display name", give: func(r *emailv1.SendRequest) { r.To = "Jane Canary <" + addr + ">" }, want: "to"},
		{name: "two recipients", give: func(r *emailv1.SendRequest) { r.To = addr + ", b" + addr }, want: "to"},
		{name: "not an address", give: func(r *emailv1.SendRequest) { r.To = "zz.canary.invalid at example.org" }, want: "to"},
		{name: "header injection in address", give: func(r *emailv1.SendRequest) { r.To = addr + "\r\nBcc: x@example.org" }, want: "to"},
		{name: "no subject", give: func(r *emailv1.SendRequest) { r.Subject = "" }, want: "subject"},
		{name: "long subject", give: func(r *emailv1.SendRequest) { r.Subject = strings.Repeat("s", 999) }, want: "subject"},
		{name: "subject with newline", give: func(r *emailv1.SendRequest) { r.Subject = "hi\r\nBcc: " + addr }, want: "subject"},
		{name: "no body", give: func(r *emailv1.SendRequest) { r.HtmlBody, r.TextBody = "", "" }, want: "html_body"},
		{name: "too big", give: func(r *emailv1.SendRequest) { r.TextBody = strings.Repeat("b", 2<<20) }, want: "text_body"},
		{name: "expired", give: func(r *emailv1.SendRequest) { r.ExpiresAt = timestamppb.New(time.Now().Add(-time.Minute)) }, want: "expires_at"},
		{name: "expiry past outbox retention", give: func(r *emailv1.SendRequest) { r.ExpiresAt = timestamppb.New(time.Now().Add(30 * 24 * time.Hour)) }, want: "expires_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest("acme", "invalid-"+tt.name)
			req.To = addr
			tt.give(req)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := h.client.Send(ctx, req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("Send() = %v, want InvalidArgument", err)
			}
			var fields []string
			text := st.Message()
			for _, d := range st.Details() {
				br, ok := d.(*errdetails.BadRequest)
				if !ok {
					continue
				}
				for _, v := range br.GetFieldViolations() {
					fields = append(fields, v.GetField())
					text += " " + v.GetDescription()
				}
			}
			if diff := cmp.Diff([]string{tt.want}, fields); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if strings.Contains(text, "canary") {
				t.Errorf("error text %q repeats the request's values", text)
			}
		})
	}
	if n := h.outboxPublished(t); n != 0 {
		t.Errorf("outbox received %d messages for invalid requests, want 0", n)
	}
}

func TestGetStatusErrors(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	tests := []struct {
		name string
		give *emailv1.GetStatusRequest
		want codes.Code
	}{
		{name: "unknown id", give: &emailv1.GetStatusRequest{Tenant: "acme", MessageId: uuid.NewString()}, want: codes.NotFound},
		{name: "bad id", give: &emailv1.GetStatusRequest{Tenant: "acme", MessageId: "x"}, want: codes.InvalidArgument},
		{name: "bad tenant", give: &emailv1.GetStatusRequest{Tenant: "*", MessageId: uuid.NewString()}, want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.GetStatus(t.Context(), tt.give)
			if got := status.Code(err); got != tt.want {
				t.Errorf("GetStatus() = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestRelayWithoutVerifiedTLS runs the service against relays that offer
// no STARTTLS, a certificate from an issuer it does not trust, or a
// certificate for another host name. A PHI message is held (STATUS_HELD,
// a held DELIVERY event with the reason, a sealed copy in EMAIL_HELD) and
// nothing of it reaches the relay; a no-phi message sent after it is
// delivered over opportunistic TLS (or in clear) and says so.
func TestRelayWithoutVerifiedTLS(t *testing.T) {
	tests := []struct {
		name       string
		relay      smtptest.Options
		trust      *smtptest.CA // the CA the service trusts; the relay's when nil
		wantReason string
		wantTLS    bool // the no-phi message arrived over TLS
	}{
		{name: "no STARTTLS", relay: smtptest.Options{}, wantReason: "no_starttls"},
		{name: "untrusted issuer", relay: smtptest.Options{CA: smtptest.NewCA(t)}, trust: smtptest.NewCA(t), wantReason: "tls_unverified", wantTLS: true},
		{name: "certificate for another host", relay: smtptest.Options{CA: smtptest.NewCA(t, "relay.example.org")}, wantReason: "tls_unverified", wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			if tt.trust != nil {
				env = append(env, "EMAIL_SMTP_CA_FILE="+tt.trust.CertFile)
			}
			h := setup(t, tt.relay, env...)
			h.run(t)
			phi := validRequest("acme", "phi")
			resp := h.send(t, phi)
			got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_HELD)
			if got.GetReason() != tt.wantReason || got.GetAttempts() != 1 {
				t.Errorf("GetStatus() = %v, want held for %s", got, tt.wantReason)
			}
			if tr := got.GetTransport(); !tr.GetHeld() || tr.GetNextHop() != "localhost" || tr.GetTlsVerified() || tr.GetSmime() || tr.GetPgp() {
				t.Errorf("held transport = %v, want held at localhost, nothing verified or encrypted", tr)
			}
			if mail, rcpt, data := h.relay.Commands(); mail+rcpt+data != 0 {
				t.Errorf("relay saw MAIL %d, RCPT %d, DATA %d; want nothing of a PHI message", mail, rcpt, data)
			}
			if ev := h.waitEvent(t, "acme", "held"); ev.GetReason() != tt.wantReason || ev.GetMessageId() != resp.GetMessageId() || !ev.GetTransport().GetHeld() {
				t.Errorf("held event = %v", ev)
			}
			stream, err := h.js.Stream(t.Context(), "EMAIL_HELD")
			if err != nil {
				t.Fatal(err)
			}
			held, err := stream.GetLastMsgForSubject(t.Context(), "held.email.acme")
			if err != nil {
				t.Fatalf("no held copy: %v", err)
			}
			if bytes.Contains(held.Data, []byte(phi.GetTo())) || bytes.Contains(held.Data, []byte("Tuesday")) {
				t.Error("the held copy is not sealed")
			}

			noPHI := validRequest("acme", "no-phi")
			noPHI.Security = emailv1.Security_SECURITY_NO_PHI
			noPHI.Subject, noPHI.TextBody, noPHI.HtmlBody = "News from the clinic", "We moved.", ""
			resp = h.send(t, noPHI)
			got = h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
			msgs := h.relay.Wait(1, 10*time.Second)
			if len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte("We moved.")) {
				t.Fatalf("relay received %d messages, want the no-phi one", len(msgs))
			}
			if (msgs[0].TLS != nil) != tt.wantTLS {
				t.Errorf("no-phi message over TLS = %v, want %v", msgs[0].TLS != nil, tt.wantTLS)
			}
			if tr := got.GetTransport(); tr.GetTlsVerified() || (tr.GetTlsVersion() != "") != tt.wantTLS {
				t.Errorf("transport = %v, want unverified, TLS %v", tr, tt.wantTLS)
			}
		})
	}
}

func TestRelayRefusingRecipientBounces(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t), Rcpt: func(int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user jane.patient@example.org"}
	}})
	resp := h.send(t, validRequest("acme", "bounce"))
	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_BOUNCED)
	if got.GetReason() != "smtp_5xx" || got.GetAttempts() != 1 {
		t.Errorf("GetStatus() = %v, want bounced for smtp_5xx after 1 attempt", got)
	}
	// Not retried: the outbox no longer holds the message.
	waitOutboxEmpty(t, h)
	if _, rcpt, _ := h.relay.Commands(); rcpt != 1 {
		t.Errorf("relay saw %d RCPT commands, want 1", rcpt)
	}
	if strings.Contains(h.logs.String(), "jane.patient") {
		t.Error("logs hold the recipient")
	}
}

func waitOutboxEmpty(t *testing.T, h *harness) {
	t.Helper()
	stream, err := h.js.Stream(t.Context(), bus.OutboxStream("email"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d messages", info.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRelayDeferringThenAcceptingSends(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t), Rcpt: func(n int) *smtp.SMTPError {
		if n == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}})
	resp := h.send(t, validRequest("acme", "retry"))
	h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_DEFERRED)
	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	if got.GetAttempts() != 2 || got.GetReason() != "" {
		t.Errorf("GetStatus() = %v, want sent on the 2nd attempt", got)
	}
	if ev := h.waitEvent(t, "acme", "deferred"); ev.GetReason() != "smtp_4xx" || ev.GetAttempts() != 1 {
		t.Errorf("deferred event = %v", ev)
	}
	if n := len(h.relay.Messages()); n != 1 {
		t.Errorf("relay received %d messages, want 1", n)
	}
}

// TestNoPHIInLogsMetricsOrRecords sends canary values through the service
// and looks for them wherever the service writes outside the outbox.
func TestNoPHIInLogsMetricsOrRecords(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	canaries := []string{"zz.canary.rcpt@example.org", "ZZCanarySubject", "ZZCanaryBody", "ZZCanaryHTML", "zz.canary.rcpt"}
	req := &emailv1.SendRequest{
		Tenant: "acme", IdempotencyKey: "phi-check", To: canaries[0],
		Subject: "Results for " + canaries[1], TextBody: canaries[2], HtmlBody: "<p>" + canaries[3] + "</p>",
	}
	resp := h.send(t, req)
	h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	h.send(t, req) // a duplicate
	bad := proto.Clone(req).(*emailv1.SendRequest)
	bad.To = "ZZ Canary <" + canaries[0] + ">"
	if _, err := h.client.Send(t.Context(), bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Send(invalid) = %v", err)
	}

	places := map[string]string{"logs": h.logs.String(), "metrics": httpGet(t, "http://"+h.cfg.HTTPAddr+"/metrics")}
	keys, err := h.rdb.Keys(t.Context(), "cn:{acme}:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys = %v, %v", keys, err)
	}
	for _, k := range keys {
		var v any
		if typ := h.rdb.Type(t.Context(), k).Val(); typ == "hash" {
			v = h.rdb.HGetAll(t.Context(), k).Val()
		} else {
			v = h.rdb.Get(t.Context(), k).Val()
		}
		places["redis "+k] = k + fmt.Sprint(v)
	}
	for _, st := range []string{"queued", "sent"} {
		places["event "+st] = fmt.Sprint(h.waitEvent(t, "acme", st))
	}
	for where, text := range places {
		for _, c := range canaries {
			if strings.Contains(strings.ToLower(text), strings.ToLower(c)) {
				t.Errorf("%s contains canary %q", where, c)
			}
		}
	}
	if !strings.Contains(places["metrics"], `email_sends_total{outcome="queued",tenant="acme"} 1`) {
		t.Errorf("metrics lack the queued send:\n%s", grep(places["metrics"], "email_"))
	}
	if !strings.Contains(places["logs"], resp.GetMessageId()) {
		t.Error("logs do not mention the message id")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grep(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
