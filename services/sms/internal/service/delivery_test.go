package service_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/sms/twiliotest"
)

// send sends the seeded message with key and returns its id.
func (h *harness) send(t *testing.T, key string, expires time.Time) string {
	t.Helper()
	req := &smsv1.SendRequest{Tenant: "demo", IdempotencyKey: key, To: patientNumber, Body: patientBody}
	if !expires.IsZero() {
		req.ExpiresAt = timestamppb.New(expires)
	}
	res, err := h.client.Send(t.Context(), req)
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	return res.GetMessageId()
}

// waitStatus polls GetStatus until the message has status want.
func (h *harness) waitStatus(t *testing.T, id string, want deliveryv1.Status) *smsv1.GetStatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		st, err := h.client.GetStatus(ctx, &smsv1.GetStatusRequest{Tenant: "demo", MessageId: id})
		if err == nil && st.GetStatus() == want {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("status of %s = %v, %v; want %s", id, st, err, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// deliveryStatuses returns the statuses of the message's DELIVERY events
// in order, checking that none carries PHI.
func (h *harness) deliveryStatuses(t *testing.T, id string) []string {
	t.Helper()
	msgs, raw := streamDump(t, h.js, bus.StreamDelivery)
	assertNoPHI(t, "DELIVERY", raw)
	var out []string
	for _, m := range msgs {
		var ev deliveryv1.DeliveryEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetMessageId() == id {
			out = append(out, strings.TrimPrefix(m.Subject, "delivery.demo.sms."))
		}
	}
	return out
}

// waitEvents waits until the message's DELIVERY events are want (they are
// published right after the record changes) and fails with the
// difference if they never are.
func (h *harness) waitEvents(t *testing.T, id string, want []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		got := h.deliveryStatuses(t, id)
		diff := cmp.Diff(want, got)
		if diff == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("DELIVERY events (-want +got):\n%s", diff)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestDeliveredThroughTwilio(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	id := h.send(t, "k-delivered", time.Time{})
	msgs, err := h.twilio.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := msgs[0]
	wantCallback := h.cfg.PublicURL + "/twilio/status?message=" + id + "&tenant=demo"
	if got.To != patientNumber || got.From != senderNumber || got.Body != patientBody || got.StatusCallback != wantCallback {
		t.Errorf("Twilio got To/From/StatusCallback %s %s %s (body %q), want %s %s %s",
			got.To, got.From, got.StatusCallback, got.Body, patientNumber, senderNumber, wantCallback)
	}
	st := h.waitStatus(t, id, deliveryv1.Status_STATUS_SENT)
	if st.GetProviderMessageId() != got.SID || st.GetAttempts() != 1 {
		t.Errorf("GetStatus() = %v, want provider id %s after 1 attempt", st, got.SID)
	}

	if code, err := h.twilio.Receipt(ctx, got.SID, "delivered", 0); err != nil || code != http.StatusNoContent {
		t.Fatalf("delivered receipt = %d, %v", code, err)
	}
	h.waitStatus(t, id, deliveryv1.Status_STATUS_DELIVERED)
	// A late "sent" and an intermediate "sending" never move it back.
	for _, s := range []string{"sent", "sending", "undelivered"} {
		if code, err := h.twilio.Receipt(ctx, got.SID, s, 30003); err != nil || code != http.StatusNoContent {
			t.Fatalf("%s receipt = %d, %v", s, code, err)
		}
	}
	if st := h.waitStatus(t, id, deliveryv1.Status_STATUS_DELIVERED); st.GetReason() != "" {
		t.Errorf("reason %q after delivered", st.GetReason())
	}
	h.waitEvents(t, id, []string{"queued", "sent", "delivered"})
	recs, err := audit.Query(ctx, h.js, audit.Filter{Tenant: "demo", Service: "sms", ObjectType: "SMSMessage", ObjectID: id})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range recs {
		reasons = append(reasons, r.Reason)
	}
	if diff := cmp.Diff([]string{"sent", "delivered"}, reasons); diff != "" {
		t.Errorf("audit reasons (-want +got):\n%s", diff)
	}
	assertNoPHI(t, "logs", []byte(h.logs.String()))
	assertNoPHI(t, "Redis", redisDump(t, h.rdb))
}

func TestStatusCallbackSignature(t *testing.T) {
	h := start(t)
	id := h.send(t, "k-sig", time.Time{})
	msgs, err := h.twilio.WaitMessages(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus(t, id, deliveryv1.Status_STATUS_SENT)
	form := url.Values{"AccountSid": {h.twilio.AccountSID()}, "MessageSid": {msgs[0].SID}, "MessageStatus": {"delivered"}}
	cb := msgs[0].StatusCallback
	tests := []struct {
		name      string
		url       string
		signature string
		want      int
	}{
		{"no signature", cb, "", http.StatusForbidden},
		{"wrong token", cb, twiliotest.Sign("not-the-token", cb, form), http.StatusForbidden},
		{"signed for another message", cb, twiliotest.Sign(h.twilio.AuthToken(), strings.Replace(cb, id, "0190a0b0-0000-7000-8000-000000000000", 1), form), http.StatusForbidden},
		{"signed for another url", cb, twiliotest.Sign(h.twilio.AuthToken(), cb+"&x=1", form), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.signature != "" {
				req.Header.Set("X-Twilio-Signature", tt.signature)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	// None of the forged receipts moved the record.
	if st := h.waitStatus(t, id, deliveryv1.Status_STATUS_SENT); st.GetStatus() != deliveryv1.Status_STATUS_SENT {
		t.Errorf("status %s after forged receipts", st.GetStatus())
	}
}

func TestRetriesThrottlingAndOutages(t *testing.T) {
	h := setup(t)
	h.twilio.Fail(twiliotest.Failure{Status: http.StatusTooManyRequests, Code: 20429, Message: "Too Many Requests"})
	h.twilio.Fail(twiliotest.Failure{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"})
	h.run(t)
	id := h.send(t, "k-retry", time.Time{})
	st := h.waitStatus(t, id, deliveryv1.Status_STATUS_SENT)
	if st.GetAttempts() != 3 {
		t.Errorf("attempts = %d, want 3 (429, 500, then accepted)", st.GetAttempts())
	}
	if n := len(h.twilio.Messages()); n != 1 {
		t.Errorf("Twilio accepted %d messages, want 1", n)
	}
	h.waitEvents(t, id, []string{"queued", "deferred", "deferred", "sent"})
}

func TestPermanentFailuresAreNotRetried(t *testing.T) {
	tests := []struct {
		name       string
		give       twiliotest.Failure
		unsub      bool
		wantReason string
	}{
		{name: "invalid number", give: twiliotest.Failure{Status: 400, Code: 21211, Message: "The 'To' number " + patientNumber + " is not a valid phone number."}, wantReason: "invalid_number"},
		{name: "unsubscribed", unsub: true, wantReason: "unsubscribed"},
		{name: "other 4xx", give: twiliotest.Failure{Status: 400, Code: 21606, Message: "The From phone number is not a valid, SMS-capable inbound phone number"}, wantReason: "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t)
			if tt.unsub {
				h.twilio.Unsubscribe(patientNumber)
			} else {
				h.twilio.Fail(tt.give)
			}
			h.run(t)
			id := h.send(t, "k-"+tt.name, time.Time{})
			st := h.waitStatus(t, id, deliveryv1.Status_STATUS_FAILED)
			if st.GetReason() != tt.wantReason || st.GetAttempts() != 1 {
				t.Errorf("GetStatus() = %v, want reason %s after 1 attempt", st, tt.wantReason)
			}
			h.waitEvents(t, id, []string{"queued", "failed"})
			// Twilio's error message quotes the number: it is not logged.
			assertNoPHI(t, "logs", []byte(h.logs.String()))
		})
	}
}

func TestExpiresWhileProviderDown(t *testing.T) {
	h := setup(t)
	h.twilio.Fail(twiliotest.Failure{Status: http.StatusServiceUnavailable, Code: 20503, Count: 1000})
	h.run(t)
	id := h.send(t, "k-expire", time.Now().Add(2*time.Second))
	st := h.waitStatus(t, id, deliveryv1.Status_STATUS_FAILED)
	if st.GetReason() != "expired" {
		t.Errorf("reason = %q, want expired", st.GetReason())
	}
	if len(h.twilio.Messages()) != 0 {
		t.Error("Twilio accepted a message it was failing")
	}
}

func TestUndeliveredReceipt(t *testing.T) {
	h := start(t)
	id := h.send(t, "k-undelivered", time.Time{})
	msgs, err := h.twilio.WaitMessages(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus(t, id, deliveryv1.Status_STATUS_SENT)
	if code, err := h.twilio.Receipt(t.Context(), msgs[0].SID, "undelivered", 30003); err != nil || code != http.StatusNoContent {
		t.Fatalf("receipt = %d, %v", code, err)
	}
	st := h.waitStatus(t, id, deliveryv1.Status_STATUS_UNDELIVERED)
	if st.GetReason() != "carrier" {
		t.Errorf("reason = %q, want carrier", st.GetReason())
	}
	// delivered after undelivered is as final: ignored.
	if code, _ := h.twilio.Receipt(t.Context(), msgs[0].SID, "delivered", 0); code != http.StatusNoContent {
		t.Fatalf("receipt = %d", code)
	}
	h.waitStatus(t, id, deliveryv1.Status_STATUS_UNDELIVERED)
	h.waitEvents(t, id, []string{"queued", "sent", "undelivered"})
}
