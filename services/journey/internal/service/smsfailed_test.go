package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/bus"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
)

func TestSMSFailedLaterFallsBack(t *testing.T) {
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "sms.yaml"), []byte(smsJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, jdir)
	const number, emailP = "+15555550123", "smsfail.canary@example.org"
	h.waitSettled(t, h.publish(t, patientBooking("ev-f1", "Appointment/801", emailP)))
	texts := h.sms.callsTo(number)
	if len(texts) != 1 || len(h.email.callsTo(emailP)) != 0 {
		t.Fatalf("texts %d, emails %d; want 1, 0", len(texts), len(h.email.callsTo(emailP)))
	}
	// The sms service reports the text failed (Twilio: 21610, or expired)
	// twice, as a redelivered event would: one fallback email.
	for i := range 2 {
		ev := &deliveryv1.DeliveryEvent{
			MessageId: "sms-1", IdempotencyKey: texts[0].GetIdempotencyKey(), Tenant: "demo",
			Channel: deliveryv1.Channel_CHANNEL_SMS, Status: deliveryv1.Status_STATUS_FAILED, Reason: "expired",
			OccurredAt: timestamppb.Now(), Attempts: 3,
		}
		b, _ := proto.Marshal(ev)
		if _, err := bus.Publish(t.Context(), h.js, "delivery.demo.sms.failed", b, fmt.Sprintf("sms-1.failed.%d", i), nats.Header{bus.HeaderTenant: []string{"demo"}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for len(h.email.callsTo(emailP)) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no fallback email after the text failed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	mails := h.email.callsTo(emailP)
	if mails[0].GetStep() != "0.fallback" || mails[0].GetIdempotencyKey() != smsStepKey("Appointment/801", "0.fallback") {
		t.Errorf("fallback email = %v", mails[0])
	}
	// Both copies handled: the second reached the email double as a duplicate.
	for len(h.email.callsWithKey(mails[0].GetIdempotencyKey())) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("second failure event not handled")
		case <-time.After(20 * time.Millisecond):
		}
	}
	var fallback bool
	for _, r := range h.audited(t, "message.decided") {
		fallback = fallback || (r.Reason == "fallback" && r.Detail["because"] == "failed:expired")
	}
	if !fallback {
		t.Error("no fallback decision because failed:expired on record")
	}
}
