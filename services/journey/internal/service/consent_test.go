package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/service"
)

// Canaries of the consent tests: a patient id and an evidence reference
// that must never be stored in clear in Redis.
const (
	canaryPatient  = "pcanary-7731"
	canaryEvidence = "evidence-canary-Zq81"
)

// confirmationOnly is a journeys directory with the example confirmation
// journey only (no timers).
func confirmationOnly(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("../../../../deploy/examples/journeys/appointment-confirmation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "appointment-confirmation.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (h *harness) admin(t *testing.T) journeyv1.AdminServiceClient {
	t.Helper()
	return h.adminAs(t, tokenAll)
}

// adminAs is an AdminService client that sends token (none when empty).
func (h *harness) adminAs(t *testing.T, token string) journeyv1.AdminServiceClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	cc, err := grpc.NewClient(h.cfg.GRPCAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return journeyv1.NewAdminServiceClient(cc)
}

// httpDo sends an HTTP request to the service and returns status and body.
func (h *harness) httpDo(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return h.httpAs(t, tokenAll, method, path, body)
}

// httpAs is httpDo with token as the bearer token (none when empty).
func (h *harness) httpAs(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+h.cfg.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// patientBooking is a booking for canaryPatient.
func patientBooking(eventID, subjectRef, email string) *eventsv1.ClinicalEvent {
	ev := booked(eventID, subjectRef, email)
	ev.Patient.Id = canaryPatient
	return ev
}

// audited returns journey's audit records of tenant demo with action.
func (h *harness) audited(t *testing.T, action string) []audit.Record {
	t.Helper()
	recs, err := audit.Query(t.Context(), h.js, audit.Filter{Tenant: "demo", Service: "journey", Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestConsentAdminAndSendTime(t *testing.T) {
	h := startWith(t, confirmationOnly(t))
	admin := h.admin(t)
	ctx := t.Context()
	const emailP = "consent.canary@example.org"

	// Denied over gRPC: the booking sends nothing, and says why.
	set, err := admin.SetConsent(ctx, &journeyv1.SetConsentRequest{
		Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment",
		State: "denied", Source: "admin", EvidenceRef: canaryEvidence,
	})
	if err != nil || set.GetConsent().GetState() != "denied" || set.GetConsent().GetChangedAt() == nil {
		t.Fatalf("SetConsent() = %v, %v", set, err)
	}
	h.waitSettled(t, h.publish(t, patientBooking("ev-c1", "Appointment/501", emailP)))
	if n := len(h.email.callsTo(emailP)); n != 0 {
		t.Errorf("%d sends with consent denied, want 0", n)
	}
	if m := h.metrics(t); !strings.Contains(m, `journey_sends_total{channel="email",journey="appointment-confirmation",outcome="no_consent"} 1`) {
		t.Errorf("metrics lack the no_consent send:\n%s", grepLines(m, "journey_sends_total"))
	}
	var suppressed bool
	for _, r := range h.audited(t, audit.ActionMessageDecided) {
		suppressed = suppressed || (r.Outcome == audit.OutcomeSuppressed && r.Reason == "no_consent")
	}
	if !suppressed {
		t.Error("no message.decided suppressed no_consent record")
	}
	changes := h.audited(t, "consent.changed")
	if len(changes) != 1 || changes[0].Reason != "denied" || changes[0].Object.Type != "Consent" || changes[0].Outcome != audit.OutcomeSuccess ||
		changes[0].PatientRef == "" || strings.Contains(changes[0].Object.ID, canaryPatient) {
		t.Errorf("consent.changed records = %+v", changes)
	}

	// Granted over HTTP: the next booking sends.
	code, body := h.httpDo(t, http.MethodPut, "/v1/consent/demo/"+canaryPatient+"/email/treatment",
		`{"state": "granted", "source": "admin", "evidenceRef": "`+canaryEvidence+`"}`)
	if code != http.StatusOK || !strings.Contains(body, `"state":"granted"`) {
		t.Fatalf("PUT consent = %d %s", code, body)
	}
	h.waitSettled(t, h.publish(t, patientBooking("ev-c2", "Appointment/502", emailP)))
	if n := len(h.email.callsTo(emailP)); n != 1 {
		t.Errorf("%d sends with consent granted, want 1", n)
	}

	// Read back over both transports.
	got, err := admin.GetConsent(ctx, &journeyv1.GetConsentRequest{Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment"})
	if err != nil || got.GetConsent().GetState() != "granted" || got.GetConsent().GetSource() != "admin" || got.GetConsent().GetEvidenceRef() != canaryEvidence {
		t.Errorf("GetConsent() = %v, %v", got, err)
	}
	code, body = h.httpDo(t, http.MethodGet, "/v1/consent/demo/"+canaryPatient+"/email/treatment", "")
	if code != http.StatusOK || !strings.Contains(body, `"state":"granted"`) || !strings.Contains(body, `"patientId":"`+canaryPatient+`"`) {
		t.Errorf("GET consent = %d %s", code, body)
	}
	if _, err := admin.GetConsent(ctx, &journeyv1.GetConsentRequest{Tenant: "demo", PatientId: "p-none", Channel: "sms", Purpose: "marketing"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetConsent(missing) = %v, want NOT_FOUND", err)
	}
	if code, _ := h.httpDo(t, http.MethodGet, "/v1/consent/demo/p-none/sms/marketing", ""); code != http.StatusNotFound {
		t.Errorf("GET missing consent = %d, want 404", code)
	}

	// Validation names fields and echoes no value.
	_, err = admin.SetConsent(ctx, &journeyv1.SetConsentRequest{
		Tenant: "demo", PatientId: "Jane Canary", Channel: "pigeon", Purpose: "treatment", State: "granted", Source: "admin",
	})
	st := status.Convert(err)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if st.Code() != codes.InvalidArgument || strings.Join(fields, ",") != "patient_id,channel" || strings.Contains(fmt.Sprint(st.Proto()), "Jane") || strings.Contains(fmt.Sprint(st.Proto()), "pigeon") {
		t.Errorf("SetConsent(bad) = %v, fields %v", err, fields)
	}
	code, body = h.httpDo(t, http.MethodPut, "/v1/consent/demo/"+canaryPatient+"/email/treatment", `{"state": "maybe-canary", "source": "admin"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"field":"state"`) || strings.Contains(body, "maybe-canary") {
		t.Errorf("PUT bad state = %d %s", code, body)
	}
	code, body = h.httpDo(t, http.MethodPut, "/v1/consent/demo/"+canaryPatient+"/email/treatment", `{"state": "granted", "canary-field": 1}`)
	if code != http.StatusBadRequest || strings.Contains(body, "canary") {
		t.Errorf("PUT bad body = %d %s", code, body)
	}

	// Redis holds neither the patient id nor the evidence in clear.
	rc := redis.NewClient(mustParseURL(t, h.cfg.RedisURL))
	defer rc.Close()
	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS = %v, %v", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, canaryPatient) || strings.Contains(k, canaryEvidence) {
			t.Errorf("key %q holds PHI", k)
		}
		var v string
		if typ, _ := rc.Type(ctx, k).Result(); typ == "zset" { // frequency-cap send counts
			members, err := rc.ZRange(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatalf("ZRANGE %s: %v", k, err)
			}
			v = strings.Join(members, " ")
		} else if v, err = rc.Get(ctx, k).Result(); err != nil {
			t.Fatalf("GET %s: %v", k, err)
		}
		if strings.Contains(v, canaryPatient) || strings.Contains(v, canaryEvidence) || strings.Contains(v, "consent.canary") {
			t.Errorf("value of %s holds PHI in clear", k)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, canaryPatient) || strings.Contains(logs, canaryEvidence) || strings.Contains(logs, "Jane") {
		t.Error("logs hold PHI")
	}
}

func mustParseURL(t *testing.T, u string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// publishOptOut publishes an OPTED_OUT delivery event as the email
// channel does and waits until journey's consumer has settled it.
func (h *harness) publishOptOut(t *testing.T, messageID, key string) {
	t.Helper()
	if err := bus.EnsureStreams(t.Context(), h.js, bus.Delivery(1)); err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&deliveryv1.DeliveryEvent{
		MessageId: messageID, IdempotencyKey: key, Tenant: "demo", Channel: deliveryv1.Channel_CHANNEL_EMAIL,
		Status: deliveryv1.Status_STATUS_OPTED_OUT, OccurredAt: timestamppb.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := bus.Publish(t.Context(), h.js, "delivery.demo.email.opted_out", b, messageID+".opted_out",
		nats.Header{bus.HeaderTenant: []string{"demo"}, bus.HeaderChannel: []string{"email"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		if c, err := h.js.Consumer(ctx, bus.StreamDelivery, service.OptOutDurable); err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= ack.Sequence {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("opt-out %d not settled in time", ack.Sequence)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestEmailOptOutRevokesConsent(t *testing.T) {
	h := startWith(t, confirmationOnly(t))
	const emailP = "optout.canary@example.org"
	h.waitSettled(t, h.publish(t, patientBooking("ev-o1", "Appointment/601", emailP)))
	calls := h.email.callsTo(emailP)
	if len(calls) != 1 {
		t.Fatalf("%d sends before the opt-out, want 1", len(calls))
	}
	// An opt-out journey has no record of is acknowledged and ignored.
	h.publishOptOut(t, "msg-unknown", strings.Repeat("ab", 32))
	if !strings.Contains(h.logs.String(), "email opt-out for an email journey has no record of") {
		t.Error("unknown opt-out not logged")
	}
	h.publishOptOut(t, "msg-1", calls[0].GetIdempotencyKey())
	got, err := h.admin(t).GetConsent(t.Context(), &journeyv1.GetConsentRequest{Tenant: "demo", PatientId: canaryPatient, Channel: "email", Purpose: "treatment"})
	if err != nil || got.GetConsent().GetState() != "revoked" || got.GetConsent().GetSource() != "email-unsubscribe" {
		t.Fatalf("GetConsent() after opt-out = %v, %v", got, err)
	}
	h.waitSettled(t, h.publish(t, patientBooking("ev-o2", "Appointment/602", emailP)))
	if n := len(h.email.callsTo(emailP)); n != 1 {
		t.Errorf("%d sends after the opt-out, want still 1", n)
	}
	if m := h.metrics(t); !strings.Contains(m, `outcome="no_consent"} 1`) {
		t.Errorf("metrics lack the no_consent send:\n%s", grepLines(m, "journey_sends_total"))
	}
}

func TestRedisDownFailsClosed(t *testing.T) {
	dir := t.TempDir()
	rs, err := redisproc.Start(t.Context(), redisproc.Options{Dir: dir})
	if errors.Is(err, redisproc.ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Stop() })
	h := startWithRedis(t, confirmationOnly(t), rs.URL)
	const emailP = "redisdown.canary@example.org"
	// Run pings Redis while it starts: stop Redis only once the service is
	// up, or Run fails at start and the test waits on a listener nobody
	// serves.
	ready := time.Now().Add(30 * time.Second)
	for {
		if code, _ := h.httpDo(t, http.MethodGet, "/readyz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(ready) {
			t.Fatal("journey not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The service is up (it connected to Redis before serving HTTP)
	// before Redis goes away; stopped earlier, it would not start at all.
	h.metrics(t)
	rs.Stop()
	h.publish(t, patientBooking("ev-r1", "Appointment/701", emailP))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(h.metrics(t), `journey_events_total{action="booked",kind="appointment",outcome="retry"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("event not retried while Redis is down:\n%s", grepLines(h.metrics(t), "journey_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(h.email.callsTo(emailP)); n != 0 {
		t.Fatalf("%d sends while Redis is down, want 0", n)
	}
	port := strings.TrimSuffix(strings.TrimPrefix(rs.URL, "redis://127.0.0.1:"), "/0")
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	rs2, err := redisproc.Start(t.Context(), redisproc.Options{Dir: dir, Port: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs2.Stop)
	h.waitSends(t, wantKey("Appointment/701", 0), 1)
	if n := len(h.email.callsTo(emailP)); n != 1 {
		t.Errorf("%d sends after Redis is back, want 1", n)
	}
}
