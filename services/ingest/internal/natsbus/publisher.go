package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// Publisher implements app.Publisher on JetStream. Every body it stores
// (events and dead letters, both PHI) is sealed with the envelope Sealer
// first; subjects and headers carry no PHI.
type Publisher struct {
	js      jetstream.JetStream
	sealer  *envelope.Sealer
	timeout time.Duration
}

var _ app.Publisher = (*Publisher)(nil)

// New returns a Publisher that seals with sealer and whose every publish,
// ack included, is bounded by timeout.
func New(js jetstream.JetStream, sealer *envelope.Sealer, timeout time.Duration) *Publisher {
	return &Publisher{js: js, sealer: sealer, timeout: timeout}
}

// PublishEvent stores ev on ehr.<tenant>.<kind>.<action> with ev.EventId as
// the Nats-Msg-Id.
func (p *Publisher) PublishEvent(ctx context.Context, ev *eventsv1.ClinicalEvent) (bool, error) {
	subject, err := bus.Subject("ehr", ev.GetTenant(), ev.GetKind(), ev.GetAction())
	if err != nil {
		return false, fmt.Errorf("event subject: %w", err)
	}
	plain, err := proto.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("marshal event: %w", err)
	}
	data, err := p.sealer.Seal(ctx, plain, envelope.Binding{Tenant: ev.GetTenant(), Kind: envelope.KindEHREvent, ID: ev.GetEventId()})
	if err != nil {
		return false, fmt.Errorf("seal event: %w", err)
	}
	hdr := nats.Header{}
	hdr.Set(bus.HeaderTenant, ev.GetTenant())
	hdr.Set(bus.HeaderKind, ev.GetKind())
	hdr.Set(bus.HeaderAction, ev.GetAction())
	hdr.Set(bus.HeaderSource, ev.GetSource().GetName())
	hdr.Set(bus.HeaderEventTime, ev.GetReceivedAt().AsTime().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ack, err := bus.Publish(ctx, p.js, subject, data, ev.GetEventId(), hdr)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// PublishDeadLetter stores dl.Body on dead.ehr.<tenant>.<source> with the
// SHA-256 of the body as the Nats-Msg-Id, the reason in Cn-Reason, the
// input path in Cn-Input and a push's URL resource type in Cn-Push-Type.
func (p *Publisher) PublishDeadLetter(ctx context.Context, dl app.DeadLetter) error {
	subject, err := bus.Subject("dead", "ehr", dl.Tenant, dl.Source)
	if err != nil {
		return fmt.Errorf("dead-letter subject: %w", err)
	}
	sum := sha256.Sum256(dl.Body)
	msgID := hex.EncodeToString(sum[:])
	data, err := p.sealer.Seal(ctx, dl.Body, envelope.Binding{Tenant: dl.Tenant, Kind: envelope.KindEHRDead, ID: msgID})
	if err != nil {
		return fmt.Errorf("seal dead letter: %w", err)
	}
	hdr := nats.Header{}
	hdr.Set(bus.HeaderTenant, dl.Tenant)
	hdr.Set(bus.HeaderSource, dl.Source)
	hdr.Set(bus.HeaderReason, dl.Reason)
	if dl.Input != "" {
		hdr.Set(HeaderInput, dl.Input)
	}
	if dl.PushType != "" {
		hdr.Set(HeaderPushType, dl.PushType)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	_, err = bus.Publish(ctx, p.js, subject, data, msgID, hdr)
	return err
}
