package service_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/phone"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
)

// smsInvalid is a number the SMS double refuses with INVALID_ARGUMENT
// (quoting it, as a careless server might).
const smsInvalid = "+15555550199"

// recordingSMS is the sms service's gRPC API as a test double: it records
// every Send and answers duplicates for a repeated idempotency key.
type recordingSMS struct {
	smsv1.UnimplementedSmsServiceServer
	mu    sync.Mutex
	calls []*smsv1.SendRequest
	ids   map[string]string
}

func (s *recordingSMS) Send(_ context.Context, req *smsv1.SendRequest) (*smsv1.SendResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, proto.CloneOf(req))
	if req.GetTo() == smsInvalid {
		st, _ := status.New(codes.InvalidArgument, "bad number "+req.GetTo()).WithDetails(
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "to", Description: "not a number: " + req.GetTo()}}})
		return nil, st.Err()
	}
	if id, ok := s.ids[req.GetIdempotencyKey()]; ok {
		return &smsv1.SendResponse{MessageId: id, Duplicate: true}, nil
	}
	id := fmt.Sprintf("sms-%d", len(s.ids)+1)
	s.ids[req.GetIdempotencyKey()] = id
	return &smsv1.SendResponse{MessageId: id}, nil
}

func (s *recordingSMS) callsTo(to string) []*smsv1.SendRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*smsv1.SendRequest
	for _, c := range s.calls {
		if c.GetTo() == to {
			out = append(out, c)
		}
	}
	return out
}

// startSMS serves a recordingSMS on a loopback port.
func startSMS(t *testing.T) (*recordingSMS, string) {
	t.Helper()
	l := listen(t)
	rec := &recordingSMS{ids: map[string]string{}}
	gs := grpc.NewServer()
	smsv1.RegisterSmsServiceServer(gs, rec)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	return rec, l.Addr().String()
}

const smsJourney = `id: sms-confirmation
purpose: treatment
trigger: appointment.booked
steps:
  - send: sms
    template: appointment-confirmation-sms
    fallback: email
    fallback_template: appointment-confirmation
`

// publishKeyword publishes the sms service's keyword event for number.
func (h *harness) publishKeyword(t *testing.T, number string, status deliveryv1.Status, sid string) {
	t.Helper()
	key, err := audit.LoadPseudonymKey(h.cfg.AuditPseudonymKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ev := &deliveryv1.DeliveryEvent{
		MessageId: "kw-" + sid, Tenant: "demo", Channel: deliveryv1.Channel_CHANNEL_SMS, Status: status,
		OccurredAt: timestamppb.Now(), ProviderMessageId: sid, RecipientHash: phone.NewHasher(key).Hash("demo", number),
	}
	b, _ := proto.Marshal(ev)
	word := map[deliveryv1.Status]string{deliveryv1.Status_STATUS_OPTED_OUT: "opted_out", deliveryv1.Status_STATUS_OPTED_IN: "opted_in"}[status]
	if _, err := bus.Publish(t.Context(), h.js, "delivery.demo.sms."+word, b, ev.GetMessageId(), nats.Header{bus.HeaderTenant: []string{"demo"}}); err != nil {
		t.Fatal(err)
	}
}

// waitConsent polls the admin API until the patient's SMS treatment
// consent is state.
func (h *harness) waitConsent(t *testing.T, state string) *journeyv1.Consent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		got, err := h.admin(t).GetConsent(ctx, &journeyv1.GetConsentRequest{Tenant: "demo", PatientId: canaryPatient, Channel: "sms", Purpose: "treatment"})
		if err == nil && got.GetConsent().GetState() == state {
			return got.GetConsent()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sms consent = %v, %v; want %s", got, err, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func smsStepKey(subjectRef, stepID string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "demo|sms-confirmation|%s|%s", subjectRef, stepID))
	return hex.EncodeToString(sum[:])
}

func TestSMSStepFallbackAndKeywords(t *testing.T) {
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "sms.yaml"), []byte(smsJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const number, emailP = "+15555550123", "sms.canary@example.org"

	// 1. A patient with a mobile number gets the text, not the email.
	ev := patientBooking("ev-s1", "Appointment/701", emailP)
	h.waitSettled(t, h.publish(t, ev))
	texts := h.sms.callsTo(number)
	if len(texts) != 1 || texts[0].GetIdempotencyKey() != smsStepKey("Appointment/701", "0/sms") || texts[0].GetStep() != "0" ||
		!strings.Contains(texts[0].GetBody(), canaryGiven) || !strings.Contains(texts[0].GetBody(), "Reply STOP") {
		t.Fatalf("texts = %v", texts)
	}
	if n := len(h.email.callsTo(emailP)); n != 0 {
		t.Errorf("%d emails next to the text, want 0", n)
	}

	// 2. No phone number: the fallback email, as step 0.fallback.
	ev = patientBooking("ev-s2", "Appointment/702", emailP)
	ev.Patient.Phones = []string{"call the front desk"}
	h.waitSettled(t, h.publish(t, ev))
	mails := h.email.callsTo(emailP)
	if len(mails) != 1 || mails[0].GetIdempotencyKey() != smsStepKey("Appointment/702", "0.fallback") || mails[0].GetStep() != "0.fallback" {
		t.Fatalf("fallback emails = %v", mails)
	}

	// 3. The sms service refuses the number: the fallback email.
	ev = patientBooking("ev-s3", "Appointment/703", emailP)
	ev.Patient.Phones = []string{smsInvalid}
	h.waitSettled(t, h.publish(t, ev))
	if n := len(h.email.callsTo(emailP)); n != 2 {
		t.Errorf("%d emails after a refused text, want 2", n)
	}

	// 4. STOP from the number: SMS consent revoked for every purpose, with
	// the inbound message as evidence; the next booking falls back.
	h.publishKeyword(t, number, deliveryv1.Status_STATUS_OPTED_OUT, "SMstop0001")
	c := h.waitConsent(t, "revoked")
	if c.GetSource() != "sms-keyword" || c.GetEvidenceRef() != "sms-message:SMstop0001" {
		t.Errorf("consent after STOP = %v", c)
	}
	h.waitSettled(t, h.publish(t, patientBooking("ev-s4", "Appointment/704", emailP)))
	if n := len(h.sms.callsTo(number)); n != 1 {
		t.Errorf("%d texts after STOP, want still 1", n)
	}
	if n := len(h.email.callsTo(emailP)); n != 3 {
		t.Errorf("%d emails after STOP, want 3 (the fallback)", n)
	}
	var noConsent, fallback bool
	for _, r := range h.audited(t, audit.ActionMessageDecided) {
		noConsent = noConsent || (r.Reason == "no_consent" && r.Detail["channel"] == "sms")
		fallback = fallback || (r.Reason == "fallback" && r.Detail["because"] == "no_consent" && r.Detail["channel"] == "email")
	}
	if !noConsent || !fallback {
		t.Errorf("audit: no_consent on sms %v, fallback to email %v; want both", noConsent, fallback)
	}

	// 5. START: texts again.
	h.publishKeyword(t, number, deliveryv1.Status_STATUS_OPTED_IN, "SMstart0001")
	h.waitConsent(t, "granted")
	h.waitSettled(t, h.publish(t, patientBooking("ev-s5", "Appointment/705", emailP)))
	if n := len(h.sms.callsTo(number)); n != 2 {
		t.Errorf("%d texts after START, want 2", n)
	}
	for _, s := range []string{number, "5555550123", smsInvalid, canaryGiven, canaryFamily, canaryPatient} {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("logs contain %q", s)
		}
	}
}
