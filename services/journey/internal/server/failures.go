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

// SMSFailureFilters are the DELIVERY subjects of texts that failed after
// they were queued: refused by the provider or expired (failed), or given
// up by the carrier (undelivered).
var SMSFailureFilters = []string{"delivery.*.sms.failed", "delivery.*.sms.undelivered"}

// SMSFailures sends the fallback of SMS steps whose text failed later.
type SMSFailures struct {
	app    *app.Service
	logger *slog.Logger
}

// NewSMSFailures returns the handler.
func NewSMSFailures(a *app.Service, logger *slog.Logger) *SMSFailures {
	return &SMSFailures{app: a, logger: logger}
}

// Handle is a [bus.Handler] for SMSFailureFilters.
func (h *SMSFailures) Handle(ctx context.Context, msg jetstream.Msg) error {
	var ev deliveryv1.DeliveryEvent
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		return bus.Permanent(errors.New("decode delivery event: not a carenotify.delivery.v1.DeliveryEvent"))
	}
	tokens := strings.Split(msg.Subject(), ".")
	if len(tokens) != 4 || tokens[1] != ev.GetTenant() || !bus.ValidToken(ev.GetTenant()) {
		return bus.Permanent(errors.New("delivery event: tenant does not match its subject"))
	}
	if ev.GetIdempotencyKey() == "" {
		return nil
	}
	ok, err := h.app.SMSFailed(ctx, ev.GetTenant(), ev.GetIdempotencyKey(), ev.GetReason())
	switch {
	case app.IsPermanent(err):
		return bus.Permanent(err)
	case err != nil:
		return err
	}
	h.logger.InfoContext(ctx, "sms failure handled", "tenant", ev.GetTenant(), "messageId", ev.GetMessageId(),
		"status", ev.GetStatus().String(), "reason", ev.GetReason(), "fellBack", ok)
	return nil
}
