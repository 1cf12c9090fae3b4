package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/services/sms/internal/app"
)

// Channel is the channel token in subjects and stream names.
const Channel = "sms"

// payloadVersion is the version of the outbox message format.
const payloadVersion = 1

// HeaderMessageID carries the message id on outbox messages and dead
// letters. Like every header it is PHI-free.
const HeaderMessageID = "Cn-Message-Id"

// payload is an outbox message before it is sealed. It carries PHI and
// never reaches JetStream in clear: Enqueue seals its JSON encoding.
type payload struct {
	Version         int       `json:"v"`
	ID              string    `json:"id"`
	Tenant          string    `json:"tenant"`
	IdempotencyKey  string    `json:"idempotencyKey"`
	To              string    `json:"to"`
	Body            string    `json:"body"`
	Segments        int       `json:"segments"`
	ExpiresAt       time.Time `json:"expiresAt"`
	QueuedAt        time.Time `json:"queuedAt"`
	JourneyInstance string    `json:"journeyInstance,omitempty"`
	Step            string    `json:"step,omitempty"`
}

func (p payload) message() app.Message {
	return app.Message{
		ID: p.ID, Tenant: p.Tenant, IdempotencyKey: p.IdempotencyKey, To: p.To, Body: p.Body,
		Segments: p.Segments, ExpiresAt: p.ExpiresAt, QueuedAt: p.QueuedAt,
		JourneyInstance: p.JourneyInstance, Step: p.Step,
	}
}

// Sealer seals and opens outbox messages; *envelope.Sealer is one.
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, b envelope.Binding) ([]byte, error)
	Open(ctx context.Context, sealed []byte, b envelope.Binding) ([]byte, error)
}

// binding is what an outbox message is sealed for: its tenant and id.
func binding(tenant, id string) envelope.Binding {
	return envelope.Binding{Tenant: tenant, Kind: envelope.KindSMSOutbox, ID: id}
}

// Streams returns the configs of the streams the sms service uses: its
// outbox, DELIVERY and its dead-letter stream SMS_DEAD.
func Streams(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{bus.Outbox(Channel, replicas), bus.Delivery(replicas), DeadStreamConfig(replicas)}
}

// Outbox is app.Outbox on JetStream. It seals every message before it
// leaves the process.
type Outbox struct {
	js     jetstream.JetStream
	sealer Sealer
}

var _ app.Outbox = (*Outbox)(nil)

// NewOutbox returns an Outbox publishing with js and sealing with sealer.
func NewOutbox(js jetstream.JetStream, sealer Sealer) *Outbox {
	return &Outbox{js: js, sealer: sealer}
}

// Enqueue implements app.Outbox: it seals m (bound to tenant, kind
// sms-outbox and message id), publishes it to outbox.sms.<tenant> with
// Nats-Msg-Id and Cn-Message-Id set to the message id, and waits for the
// PubAck. Headers carry tenant, channel and message id only.
func (o *Outbox) Enqueue(ctx context.Context, m app.Message) error {
	subject, err := bus.Subject("outbox", Channel, m.Tenant)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(payload{
		Version: payloadVersion, ID: m.ID, Tenant: m.Tenant, IdempotencyKey: m.IdempotencyKey,
		To: m.To, Body: m.Body, Segments: m.Segments, ExpiresAt: m.ExpiresAt, QueuedAt: m.QueuedAt,
		JourneyInstance: m.JourneyInstance, Step: m.Step,
	})
	if err != nil {
		return fmt.Errorf("encode outbox message: %w", err)
	}
	data, err := o.sealer.Seal(ctx, plain, binding(m.Tenant, m.ID))
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal outbox message: %w", err)
	}
	hdr := nats.Header{
		bus.HeaderTenant: []string{m.Tenant}, bus.HeaderChannel: []string{Channel},
		HeaderMessageID: []string{m.ID},
	}
	_, err = bus.Publish(ctx, o.js, subject, data, m.ID, hdr)
	return err
}
