package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// KeywordFilters are the DELIVERY subjects of SMS keywords: STOP
// (opted_out) and START (opted_in) texted by a patient.
var KeywordFilters = []string{"delivery.*.sms.opted_out", "delivery.*.sms.opted_in"}

// Keywords handles the sms service's keyword events.
type Keywords struct {
	app    *app.Service
	logger *slog.Logger
}

// NewKeywords returns the SMS keyword handler.
func NewKeywords(a *app.Service, logger *slog.Logger) *Keywords {
	return &Keywords{app: a, logger: logger}
}

// Handle is a [bus.Handler]: it decodes a DeliveryEvent (no PHI: the
// number is only its keyed hash) and revokes or grants the SMS consent of
// the patients journey texted at that number.
func (h *Keywords) Handle(ctx context.Context, msg jetstream.Msg) error {
	var ev deliveryv1.DeliveryEvent
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		return bus.Permanent(errors.New("decode delivery event: not a carenotify.delivery.v1.DeliveryEvent"))
	}
	tokens := strings.Split(msg.Subject(), ".")
	if len(tokens) != 4 || tokens[1] != ev.GetTenant() || !bus.ValidToken(ev.GetTenant()) {
		return bus.Permanent(errors.New("delivery event: tenant does not match its subject"))
	}
	var optIn bool
	switch ev.GetStatus() {
	case deliveryv1.Status_STATUS_OPTED_OUT:
	case deliveryv1.Status_STATUS_OPTED_IN:
		optIn = true
	default:
		h.logger.WarnContext(ctx, "delivery event on a keyword subject is not a keyword; ignored",
			"tenant", ev.GetTenant(), "messageId", ev.GetMessageId(), "status", ev.GetStatus().String())
		return nil
	}
	if ev.GetChannel() != deliveryv1.Channel_CHANNEL_SMS || ev.GetRecipientHash() == "" {
		return bus.Permanent(errors.New("sms keyword event without channel sms or recipient_hash"))
	}
	n, err := h.app.SMSKeyword(ctx, ev.GetTenant(), ev.GetRecipientHash(), optIn, ev.GetProviderMessageId())
	switch {
	case app.IsPermanent(err):
		return bus.Permanent(err)
	case err != nil:
		return err
	}
	h.logger.InfoContext(ctx, "sms keyword applied", "tenant", ev.GetTenant(), "messageId", ev.GetMessageId(),
		"optIn", optIn, "patients", n)
	return nil
}
