package queue

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/bus"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	"github.com/carenotify/carenotify/services/sms/internal/app"
)

// Events is app.Events on the JetStream DELIVERY stream.
type Events struct {
	js jetstream.JetStream
}

var _ app.Events = (*Events)(nil)

// NewEvents returns Events publishing with js.
func NewEvents(js jetstream.JetStream) *Events { return &Events{js: js} }

// Publish implements app.Events: it publishes e as a DeliveryEvent
// (channel SMS) to delivery.<tenant>.sms.<status>. The Nats-Msg-Id is
// message id, status and attempts, so a re-published event is dropped as
// a duplicate while each deferral is kept.
func (p *Events) Publish(ctx context.Context, e app.Event) error {
	subject, err := bus.Subject("delivery", e.Tenant, Channel, string(e.Status))
	if err != nil {
		return err
	}
	ev := &deliveryv1.DeliveryEvent{
		MessageId:         e.MessageID,
		IdempotencyKey:    e.IdempotencyKey,
		Tenant:            e.Tenant,
		Channel:           deliveryv1.Channel_CHANNEL_SMS,
		Status:            e.Status.Proto(),
		OccurredAt:        timestamppb.New(e.OccurredAt),
		Attempts:          int32(e.Attempts),
		Reason:            e.Reason,
		ProviderMessageId: e.ProviderID,
		RecipientHash:     e.RecipientHash,
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode delivery event: %w", err)
	}
	hdr := nats.Header{bus.HeaderTenant: []string{e.Tenant}, bus.HeaderChannel: []string{Channel}}
	if e.Reason != "" {
		hdr.Set(bus.HeaderReason, e.Reason)
	}
	msgID := fmt.Sprintf("%s.%s.%d", e.MessageID, e.Status, e.Attempts)
	_, err = bus.Publish(ctx, p.js, subject, data, msgID, hdr)
	return err
}
