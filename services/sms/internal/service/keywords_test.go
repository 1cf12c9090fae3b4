package service_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/phone"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
)

// keywordEvents returns the opted_out/opted_in events on DELIVERY.
func (h *harness) keywordEvents(t *testing.T) []*deliveryv1.DeliveryEvent {
	t.Helper()
	msgs, raw := streamDump(t, h.js, bus.StreamDelivery)
	assertNoPHI(t, "DELIVERY", raw)
	var out []*deliveryv1.DeliveryEvent
	for _, m := range msgs {
		if !strings.HasSuffix(m.Subject, ".opted_out") && !strings.HasSuffix(m.Subject, ".opted_in") {
			continue
		}
		ev := &deliveryv1.DeliveryEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestInboundKeywords(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	webhook := h.cfg.PublicURL + "/twilio/inbound"
	key, err := audit.LoadPseudonymKey(h.cfg.AuditPseudonymKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	wantHash := phone.NewHasher(key).Hash("demo", patientNumber)

	tests := []struct {
		name       string
		to         string
		body       string
		wantReply  string // a part of the TwiML <Message>, "" for none
		wantStatus deliveryv1.Status
	}{
		{name: "stop", to: senderNumber, body: "Stop", wantReply: "unsubscribed", wantStatus: deliveryv1.Status_STATUS_OPTED_OUT},
		{name: "start", to: senderNumber, body: "START", wantReply: "resubscribed", wantStatus: deliveryv1.Status_STATUS_OPTED_IN},
		{name: "unsubscribe", to: senderNumber, body: " unsubscribe. ", wantReply: "unsubscribed", wantStatus: deliveryv1.Status_STATUS_OPTED_OUT},
		{name: "help", to: senderNumber, body: "help", wantReply: "Reply STOP to unsubscribe"},
		{name: "free text", to: senderNumber, body: "Maria here, my colonoscopy is tomorrow?"},
		{name: "not our tenant's number", to: "+15005550009", body: "STOP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.keywordEvents(t))
			code, answer, err := h.twilio.Inbound(ctx, webhook, patientNumber, tt.to, tt.body)
			if err != nil || code != http.StatusOK {
				t.Fatalf("inbound = %d, %v", code, err)
			}
			if !strings.HasPrefix(answer, "<?xml") || !strings.Contains(answer, "<Response") {
				t.Errorf("answer is not TwiML: %s", answer)
			}
			if tt.wantReply == "" && strings.Contains(answer, "<Message>") || tt.wantReply != "" && !strings.Contains(answer, tt.wantReply) {
				t.Errorf("answer = %s, want a reply containing %q", answer, tt.wantReply)
			}
			evs := h.keywordEvents(t)
			if tt.wantStatus == deliveryv1.Status_STATUS_UNSPECIFIED {
				if len(evs) != before {
					t.Errorf("%d keyword events, want none new", len(evs)-before)
				}
				return
			}
			if len(evs) != before+1 {
				t.Fatalf("%d new keyword events, want 1", len(evs)-before)
			}
			ev := evs[len(evs)-1]
			msgs := h.twilio.Messages()
			if ev.GetStatus() != tt.wantStatus || ev.GetRecipientHash() != wantHash || ev.GetChannel() != deliveryv1.Channel_CHANNEL_SMS ||
				!strings.HasPrefix(ev.GetProviderMessageId(), "SM") || ev.GetTenant() != "demo" {
				t.Errorf("event = %v, want %s with the number's hash", ev, tt.wantStatus)
			}
			// The stand-in recorded the TwiML reply as a text to the patient.
			if last := msgs[len(msgs)-1]; last.To != patientNumber || last.Direction != "outbound-reply" {
				t.Errorf("last message = %+v, want the reply", last)
			}
		})
	}
	code, _, err := h.twilio.InboundSignedWith(ctx, webhook, patientNumber, senderNumber, "STOP", "forged-token")
	if err != nil || code != http.StatusForbidden {
		t.Errorf("forged inbound = %d, %v; want 403", code, err)
	}
	recs, err := audit.Query(ctx, h.js, audit.Filter{Tenant: "demo", Service: "sms", ObjectType: "SMSInbound"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Errorf("%d keyword audit records, want 3 (stop, start, unsubscribe)", len(recs))
	}
	assertNoPHI(t, "logs", []byte(h.logs.String()))
	assertNoPHI(t, "Redis", redisDump(t, h.rdb))
}
