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

// OptOutFilter is the DELIVERY subjects journey consumes: one-click
// unsubscribes from emails.
const OptOutFilter = "delivery.*.email.opted_out"

// OptOuts handles OPTED_OUT delivery events of the email channel.
type OptOuts struct {
	app    *app.Service
	logger *slog.Logger
}

// NewOptOuts returns the DELIVERY opt-out handler.
func NewOptOuts(a *app.Service, logger *slog.Logger) *OptOuts {
	return &OptOuts{app: a, logger: logger}
}

// Handle is a [bus.Handler]: it decodes a DeliveryEvent (which carries no
// PHI) and revokes the email consent of the patient the email went to, for
// the purpose of the journey that sent it. An email journey has no record
// of is logged and acknowledged; a store that cannot answer retries.
func (h *OptOuts) Handle(ctx context.Context, msg jetstream.Msg) error {
	var ev deliveryv1.DeliveryEvent
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		return bus.Permanent(errors.New("decode delivery event: not a carenotify.delivery.v1.DeliveryEvent"))
	}
	tokens := strings.Split(msg.Subject(), ".")
	if len(tokens) != 4 || tokens[1] != ev.GetTenant() || !bus.ValidToken(ev.GetTenant()) {
		return bus.Permanent(errors.New("delivery event: tenant does not match its subject"))
	}
	if ev.GetStatus() != deliveryv1.Status_STATUS_OPTED_OUT || ev.GetChannel() != deliveryv1.Channel_CHANNEL_EMAIL {
		h.logger.WarnContext(ctx, "delivery event on the opt-out subject is not an email opt-out; ignored",
			"tenant", ev.GetTenant(), "messageId", ev.GetMessageId(), "status", ev.GetStatus().String())
		return nil
	}
	ok, err := h.app.OptOut(ctx, ev.GetTenant(), ev.GetIdempotencyKey(), ev.GetMessageId())
	switch {
	case app.IsPermanent(err):
		return bus.Permanent(err)
	case err != nil:
		return err
	case !ok:
		h.logger.WarnContext(ctx, "email opt-out for an email journey has no record of; ignored",
			"tenant", ev.GetTenant(), "messageId", ev.GetMessageId())
	}
	return nil
}
