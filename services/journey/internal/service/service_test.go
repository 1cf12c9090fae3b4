package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/config"
	"github.com/carenotify/carenotify/services/journey/internal/service"
)

// Canaries: synthetic PHI that must never show up in a log line.
const (
	canaryGiven   = "Zebulonia"
	canaryFamily  = "Quixoteworth"
	emailOK       = "pat.canary@example.org"
	emailRetry    = "retry.canary@example.org"
	emailInvalid  = "invalid.canary@example.org"
	emailTampered = "tampered.canary@example.org"
	// emailSuppressed is refused as suppressed (a hard bounce before).
	emailSuppressed = "bounced.canary@example.org"
)

// recordingEmail is the email service's gRPC API as a test double: it
// records every Send, answers duplicates for a repeated idempotency key,
// fails every attempt of the first delivery to emailRetry with
// UNAVAILABLE, and refuses emailInvalid with INVALID_ARGUMENT (quoting
// the address, as a careless server might).
type recordingEmail struct {
	emailv1.UnimplementedEmailServiceServer

	mu         sync.Mutex
	calls      []*emailv1.SendRequest
	ids        map[string]string // idempotency key → message id
	freshRetry int               // calls to emailRetry that were not gRPC retries
}

func (s *recordingEmail) Send(ctx context.Context, req *emailv1.SendRequest) (*emailv1.SendResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, proto.CloneOf(req))
	switch req.GetTo() {
	case emailRetry:
		// A gRPC-level retry carries grpc-previous-rpc-attempts; fail every
		// attempt of the first NATS delivery, so the event itself is retried.
		md, _ := metadata.FromIncomingContext(ctx)
		if len(md.Get("grpc-previous-rpc-attempts")) == 0 {
			s.freshRetry++
		}
		if s.freshRetry < 2 {
			return nil, status.Error(codes.Unavailable, "outbox not writable")
		}
	case emailSuppressed:
		// Exactly what services/email answers for a suppressed address.
		st, _ := status.New(codes.FailedPrecondition, "recipient is suppressed").WithDetails(
			&errdetails.ErrorInfo{Reason: "suppressed", Domain: "email.carenotify", Metadata: map[string]string{"suppression": "hard_bounce"}})
		return nil, st.Err()
	case emailInvalid:
		st, _ := status.New(codes.InvalidArgument, "bad recipient "+req.GetTo()).WithDetails(
			&errdetails.ErrorInfo{Reason: "RECIPIENT_INVALID", Domain: "email.carenotify"},
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "to", Description: "not deliverable: " + req.GetTo()}}},
		)
		return nil, st.Err()
	}
	if id, ok := s.ids[req.GetIdempotencyKey()]; ok {
		return &emailv1.SendResponse{MessageId: id, Duplicate: true}, nil
	}
	id := fmt.Sprintf("msg-%d", len(s.ids)+1)
	s.ids[req.GetIdempotencyKey()] = id
	return &emailv1.SendResponse{MessageId: id}, nil
}

// callsTo returns the Send requests to one address.
func (s *recordingEmail) callsTo(to string) []*emailv1.SendRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*emailv1.SendRequest
	for _, c := range s.calls {
		if c.GetTo() == to {
			out = append(out, c)
		}
	}
	return out
}

// callsWithKey returns the Send requests with one idempotency key.
func (s *recordingEmail) callsWithKey(key string) []*emailv1.SendRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*emailv1.SendRequest
	for _, c := range s.calls {
		if c.GetIdempotencyKey() == key {
			out = append(out, c)
		}
	}
	return out
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

// startEmail serves a recordingEmail on a loopback port.
func startEmail(t *testing.T) (*recordingEmail, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingEmail{ids: map[string]string{}}
	gs := grpc.NewServer()
	emailv1.RegisterEmailServiceServer(gs, rec)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	return rec, l.Addr().String()
}

// wantKey is the idempotency key the journey service must derive, computed
// here independently of the code under test.
func wantKey(subjectRef string, step int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "demo|appointment-confirmation|%s|%d", subjectRef, step))
	return hex.EncodeToString(sum[:])
}

var start = time.Date(2031, time.May, 6, 15, 45, 0, 0, time.UTC)

// booked is an appointment.booked event for a synthetic patient.
func booked(eventID, subjectRef string, emails ...string) *eventsv1.ClinicalEvent {
	return &eventsv1.ClinicalEvent{
		EventId:    eventID,
		Tenant:     "demo",
		Kind:       "appointment",
		Action:     "booked",
		OccurredAt: timestamppb.New(start.Add(-48 * time.Hour)),
		ReceivedAt: timestamppb.New(start.Add(-48 * time.Hour)),
		Source:     &eventsv1.Source{Name: "demo", Protocol: eventsv1.Protocol_PROTOCOL_FHIR_REST},
		Patient: &eventsv1.Patient{
			Id: "p-1", GivenNames: []string{canaryGiven}, FamilyName: canaryFamily,
			BirthDate: "1970-01-01", Emails: emails, Phones: []string{"+15555550123"}, Language: "en",
		},
		SubjectRef: subjectRef,
		Facts: &eventsv1.ClinicalEvent_Appointment{Appointment: &eventsv1.AppointmentFacts{
			Status: "booked", Start: timestamppb.New(start), End: timestamppb.New(start.Add(30 * time.Minute)),
			ServiceType: "Physiotherapy",
		}},
	}
}

// harness is a running journey service with its NATS and email double.
type harness struct {
	cfg    *config.Config
	js     jetstream.JetStream
	sealer *envelope.Sealer
	email  *recordingEmail
	sms    *recordingSMS
	logs   *logtest.Buffer
	// stopper stops the running service.
	stopper func()
}

func (h *harness) publish(t *testing.T, ev *eventsv1.ClinicalEvent) uint64 {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return h.publishRaw(t, "ehr.demo."+ev.GetKind()+"."+ev.GetAction(), h.seal(t, b, ev.GetEventId()), ev.GetEventId())
}

// seal seals an event body as ingest does, with the service's keyring and
// data-key bucket.
func (h *harness) seal(t *testing.T, plain []byte, eventID string) []byte {
	t.Helper()
	sealed, err := h.sealer.Seal(t.Context(), plain, envelope.Binding{Tenant: "demo", Kind: envelope.KindEHREvent, ID: eventID})
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func (h *harness) publishRaw(t *testing.T, subject string, data []byte, id string) uint64 {
	t.Helper()
	ack, err := bus.Publish(t.Context(), h.js, subject, data, id, nats.Header{bus.HeaderTenant: []string{"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// waitSettled waits until the journey consumer has acknowledged or
// terminated every message up to stream sequence seq.
func (h *harness) waitSettled(t *testing.T, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		if c, err := h.js.Consumer(ctx, bus.StreamEHREvents, service.Durable); err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= seq {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("message %d not settled in time", seq)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (h *harness) metrics(t *testing.T) string {
	t.Helper()
	// Bounded: a service that stopped leaves its (test-owned) listener
	// open, and an unbounded GET would wait on it forever.
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + h.cfg.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func startService(t *testing.T) *harness {
	t.Helper()
	return startWith(t, "../../../../deploy/examples/journeys")
}

// startWith starts the service with the journeys in journeysDir and the
// example templates, and a real Redis.
func startWith(t *testing.T, journeysDir string) *harness {
	t.Helper()
	return startWithRedis(t, journeysDir, storetest.URL(t))
}

// startWithRedis starts the service with the journeys in journeysDir, the
// example templates and the Redis at redisURL.
func startWithRedis(t *testing.T, journeysDir, redisURL string) *harness {
	t.Helper()
	ns := bustest.Start(t)
	_, js := bustest.Connect(t, ns)
	if err := bus.EnsureStreams(t.Context(), js, bus.EHREvents(1)); err != nil {
		t.Fatal(err)
	}
	keys, kr := envelopetest.Keyring(t)
	ks, err := envelope.NewKVStore(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec, emailAddr := startEmail(t)
	smsRec, smsAddr := startSMS(t)
	h := &harness{
		cfg: &config.Config{
			NATSURL: ns.ClientURL(), RedisURL: redisURL,
			LogLevel: slog.LevelDebug, ShutdownGrace: time.Second, StreamReplicas: 1,
			JourneysDir:  journeysDir,
			TemplatesDir: "../../../../deploy/examples/templates",
			EmailAddr:    emailAddr, SendTimeout: 5 * time.Second, Timezone: "America/New_York",
			SMSAddr: smsAddr, SMSCountryCode: "1",
		},
		js: js, sealer: envelope.NewSealer(kr, ks), email: rec, sms: smsRec, logs: &logtest.Buffer{},
	}
	h.cfg.KeyringDir = keys
	h.cfg.AuditPseudonymKeyFile, h.cfg.AuditSigningKeyFile = audittest.Keys(t)
	h.cfg.AdminTokens = testTokens
	h.stopper = h.run(t)
	return h
}

// run starts the service (again) on new ports and returns a function that
// stops it and waits for Run to return; the test's end stops it too.
func (h *harness) run(t *testing.T) (stop func()) {
	t.Helper()
	h.cfg.HTTPListener, h.cfg.GRPCListener = listen(t), listen(t)
	h.cfg.HTTPAddr, h.cfg.GRPCAddr = h.cfg.HTTPListener.Addr().String(), h.cfg.GRPCListener.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	cfg := *h.cfg
	go func() { done <- service.Run(ctx, &cfg, log.New(h.logs, slog.LevelDebug, "journey")) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v after cancel", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// sent is what the tests compare of a Send request.
type sent struct {
	Tenant, To, Subject, Key, Step string
	Security                       emailv1.Security
	Instance                       bool // journey_instance is set and names the journey
	HasBodies                      bool
}

func summarize(reqs []*emailv1.SendRequest) []sent {
	var out []sent
	for _, r := range reqs {
		out = append(out, sent{
			Tenant: r.GetTenant(), To: r.GetTo(), Subject: r.GetSubject(), Key: r.GetIdempotencyKey(), Step: r.GetStep(),
			Security:  r.GetSecurity(),
			Instance:  strings.HasPrefix(r.GetJourneyInstance(), "appointment-confirmation/") && !strings.Contains(r.GetJourneyInstance(), "Appointment"),
			HasBodies: strings.Contains(r.GetTextBody(), canaryGiven) && strings.Contains(r.GetHtmlBody(), canaryGiven),
		})
	}
	return out
}

func TestEventsToEmail(t *testing.T) {
	h := startService(t)
	const subject = "Your appointment on Tuesday, May 6, 2031"
	want := func(to, ref string, n int) []sent {
		var out []sent
		for range n {
			out = append(out, sent{
				Tenant: "demo", To: to, Subject: subject, Key: wantKey(ref, 0), Step: "0",
				Security: emailv1.Security_SECURITY_PHI, Instance: true, HasBodies: true,
			})
		}
		return out
	}

	t.Run("booked sends one email", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, booked("evt-1", "Appointment/100", emailOK)))
		if diff := cmp.Diff(want(emailOK, "Appointment/100", 1), summarize(h.email.callsTo(emailOK))); diff != "" {
			t.Errorf("Send calls (-want +got):\n%s", diff)
		}
	})

	t.Run("booking sent again uses the same key", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, booked("evt-2", "Appointment/100", emailOK)))
		if diff := cmp.Diff(want(emailOK, "Appointment/100", 2), summarize(h.email.callsTo(emailOK))); diff != "" {
			t.Errorf("Send calls (-want +got):\n%s", diff)
		}
	})

	t.Run("no email address", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, booked("evt-3", "Appointment/101")))
		if got := h.email.callsWithKey(wantKey("Appointment/101", 0)); len(got) != 0 {
			t.Errorf("Send called %d times for a patient without email", len(got))
		}
		if !strings.Contains(h.logs.String(), `"msg":"no email contact point"`) {
			t.Error("skip not logged")
		}
	})

	t.Run("unavailable is retried", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, booked("evt-4", "Appointment/102", emailRetry)))
		calls := summarize(h.email.callsTo(emailRetry))
		if len(calls) < 2 {
			t.Fatalf("Send called %d times, want a failed delivery and a retry", len(calls))
		}
		if diff := cmp.Diff(want(emailRetry, "Appointment/102", len(calls)), calls); diff != "" {
			t.Errorf("Send calls (-want +got):\n%s", diff)
		}
		if m := h.metrics(t); !strings.Contains(m, `journey_sends_total{channel="email",journey="appointment-confirmation",outcome="retry"} 1`) {
			t.Errorf("metrics lack one retry:\n%s", grep(m, "journey_"))
		}
	})

	t.Run("invalid argument is not retried", func(t *testing.T) {
		h.waitSettled(t, h.publish(t, booked("evt-5", "Appointment/103", emailInvalid)))
		if diff := cmp.Diff(want(emailInvalid, "Appointment/103", 1), summarize(h.email.callsTo(emailInvalid))); diff != "" {
			t.Errorf("Send calls (-want +got):\n%s", diff)
		}
		if !strings.Contains(h.logs.String(), "email service rejected the message: InvalidArgument reason=RECIPIENT_INVALID fields=to") {
			t.Errorf("rejection reason not logged:\n%s", h.logs.String())
		}
	})

	t.Run("undecodable event is terminated", func(t *testing.T) {
		h.waitSettled(t, h.publishRaw(t, "ehr.demo.appointment.booked", h.seal(t, []byte{0xff, 0xff, 0xff}, "evt-6"), "evt-6"))
		if !strings.Contains(h.logs.String(), `"natsSubject":"ehr.demo.appointment.booked","err":"decode clinical event: not a carenotify.events.v1.ClinicalEvent"`) {
			t.Errorf("undecodable event not logged:\n%s", h.logs.String())
		}
	})

	// A stored event with one byte flipped, one sealed for another event,
	// and one never sealed: all refused, never sent, and kept on EHR_DEAD.
	t.Run("tampered events are refused and dead-lettered", func(t *testing.T) {
		plain, err := proto.Marshal(booked("evt-7", "Appointment/107", emailTampered))
		if err != nil {
			t.Fatal(err)
		}
		flipped := h.seal(t, plain, "evt-7")
		flipped[len(flipped)-20] ^= 0x01
		for _, give := range []struct {
			data []byte
			id   string
		}{
			{flipped, "evt-7"},
			{h.seal(t, plain, "evt-other"), "evt-8"},
			{plain, "evt-9"},
		} {
			h.waitSettled(t, h.publishRaw(t, "ehr.demo.appointment.booked", give.data, give.id))
		}
		if calls := h.email.callsTo(emailTampered); len(calls) != 0 {
			t.Errorf("tampered events caused %d Send calls, want 0", len(calls))
		}
		dead := deadLetters(t, h.js)
		if len(dead) != 3 {
			t.Fatalf("EHR_DEAD holds %d messages, want 3", len(dead))
		}
		for _, m := range dead {
			if m.Subject != "dead.ehr.demo.journey" || m.Header.Get(bus.HeaderReason) != "refused_integrity" {
				t.Errorf("dead letter %s reason %q", m.Subject, m.Header.Get(bus.HeaderReason))
			}
			if bytes.Contains(m.Data, []byte(emailTampered)) {
				t.Error("dead letter holds the patient's email in clear")
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := h.metrics(t)
		for _, line := range []string{
			`journey_events_total{action="booked",kind="appointment",outcome="handled"} 4`,
			`journey_events_total{action="booked",kind="appointment",outcome="failed"} 1`,
			`journey_events_total{action="other",kind="other",outcome="undecodable"} 1`,
			`journey_events_total{action="other",kind="other",outcome="refused"} 3`,
			`journey_sends_total{channel="email",journey="appointment-confirmation",outcome="sent"} 2`,
			`journey_sends_total{channel="email",journey="appointment-confirmation",outcome="duplicate"} 1`,
			`journey_sends_total{channel="email",journey="appointment-confirmation",outcome="unreachable"} 1`,
			`journey_sends_total{channel="email",journey="appointment-confirmation",outcome="rejected"} 1`,
		} {
			if !strings.Contains(m, line) {
				t.Errorf("metrics lack %s", line)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grep(m, "journey_"))
		}
	})

	// Every test above ran with real PHI-shaped data: none of it may be in the logs.
	t.Run("no PHI in logs", func(t *testing.T) {
		logs := h.logs.String()
		if !strings.Contains(logs, `"msg":"email queued"`) {
			t.Fatalf("logs were not captured:\n%s", logs)
		}
		for _, canary := range []string{canaryGiven, canaryFamily, emailOK, emailRetry, emailInvalid, "+15555550123", "1970-01-01", "Physiotherapy", "Appointment/10", "Tuesday, May 6"} {
			if strings.Contains(logs, canary) {
				t.Errorf("logs contain %q:\n%s", canary, logs)
			}
		}
	})
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func TestListJourneys(t *testing.T) {
	h := startService(t)
	cc, err := grpcx.NewClient(h.cfg.GRPCAddr, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := journeyv1.NewAdminServiceClient(cc).ListJourneys(ctx, &journeyv1.ListJourneysRequest{Tenant: "demo"}, grpc.WaitForReady(true), grpc.PerRPCCredentials(bearer(tokenViewer)))
	if err != nil {
		t.Fatalf("ListJourneys() = %v", err)
	}
	want := &journeyv1.ListJourneysResponse{Journeys: []*journeyv1.Journey{
		{
			Id: "appointment-confirmation", Trigger: "appointment.booked", Purpose: "treatment",
			File: "appointment-confirmation.yaml", Steps: 1, Revision: 1,
		},
		{
			Id: "appointment-reminder", Trigger: "appointment.booked", Purpose: "treatment",
			File: "appointment-reminder.yaml", Steps: 2, Revision: 1,
		},
		{
			Id: "discharge-follow-up", Trigger: "encounter.discharged", Purpose: "treatment",
			File: "discharge-follow-up.yaml", Steps: 2, Revision: 1,
		},
		{
			Id: "lab-result-available", Trigger: "lab_result.final", Purpose: "treatment",
			File: "lab-result-available.yaml", Steps: 2, Revision: 1,
		},
		{
			Id: "wellness-newsletter", Trigger: "encounter.discharged", Purpose: "marketing",
			File: "wellness-newsletter.yaml", Steps: 2, Revision: 1,
		},
	}}
	if diff := cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreFields(&journeyv1.Journey{}, "version")); diff != "" {
		t.Errorf("ListJourneys() mismatch (-want +got):\n%s", diff)
	}
	if v := got.GetJourneys()[0].GetVersion(); len(v) != 12 {
		t.Errorf("version = %q, want 12 hex digits", v)
	}

	code, b := h.httpAs(t, tokenViewer, http.MethodGet, "/v1/journeys", "")
	if code != http.StatusOK || !strings.Contains(b, `"id":"appointment-confirmation"`) {
		t.Errorf("GET /v1/journeys = %d %s", code, b)
	}
}

func TestRunRefusesBadJourneys(t *testing.T) {
	cfg := &config.Config{
		HTTPListener: listen(t), GRPCListener: listen(t), NATSURL: "nats://127.0.0.1:1",
		ShutdownGrace: time.Second, StreamReplicas: 1, JourneysDir: t.TempDir() + "/missing",
		TemplatesDir: "../../../../deploy/examples/templates", EmailAddr: "127.0.0.1:1",
		SendTimeout: time.Second, Timezone: "UTC",
	}
	err := service.Run(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "missing: cannot read directory") {
		t.Errorf("Run() = %v, want the journeys directory problem", err)
	}
}

// deadLetters returns every message on EHR_DEAD.
func deadLetters(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), bus.StreamEHRDead)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	return out
}
