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
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Channel is the channel token in subjects and stream names.
const Channel = "email"

// payloadVersion is the version of the outbox message format.
const payloadVersion = 1

// payload is an outbox message before it is sealed. It carries PHI and
// never reaches JetStream in clear: Enqueue seals its JSON encoding.
type payload struct {
	Version         int       `json:"v"`
	ID              string    `json:"id"`
	Tenant          string    `json:"tenant"`
	IdempotencyKey  string    `json:"idempotencyKey"`
	To              string    `json:"to"`
	Subject         string    `json:"subject"`
	HTMLBody        string    `json:"htmlBody,omitempty"`
	TextBody        string    `json:"textBody,omitempty"`
	Security        int       `json:"security"`
	Purpose         int       `json:"purpose,omitempty"`
	ExpiresAt       time.Time `json:"expiresAt"`
	QueuedAt        time.Time `json:"queuedAt"`
	JourneyInstance string    `json:"journeyInstance,omitempty"`
	Step            string    `json:"step,omitempty"`
}

func newPayload(m app.Message) payload {
	return payload{
		Version: payloadVersion, ID: m.ID, Tenant: m.Tenant, IdempotencyKey: m.IdempotencyKey,
		To: m.To, Subject: m.Subject, HTMLBody: m.HTMLBody, TextBody: m.TextBody,
		Security: int(m.Security), Purpose: int(m.Purpose), ExpiresAt: m.ExpiresAt, QueuedAt: m.QueuedAt,
		JourneyInstance: m.JourneyInstance, Step: m.Step,
	}
}

func (e payload) message() app.Message {
	return app.Message{
		ID: e.ID, Tenant: e.Tenant, IdempotencyKey: e.IdempotencyKey,
		To: e.To, Subject: e.Subject, HTMLBody: e.HTMLBody, TextBody: e.TextBody,
		Security: app.Security(e.Security), Purpose: app.Purpose(e.Purpose), ExpiresAt: e.ExpiresAt, QueuedAt: e.QueuedAt,
		JourneyInstance: e.JourneyInstance, Step: e.Step,
	}
}

// HeaderMessageID carries the message id on outbox messages and dead
// letters (Nats-Msg-Id carries it too on outbox messages, but a re-published
// copy needs a new one). Like every header it is PHI-free.
const HeaderMessageID = "Cn-Message-Id"

// Sealer seals and opens outbox messages; *envelope.Sealer is one.
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, b envelope.Binding) ([]byte, error)
	Open(ctx context.Context, sealed []byte, b envelope.Binding) ([]byte, error)
}

// binding is what an outbox message is sealed for: its tenant and id.
func binding(tenant, id string) envelope.Binding {
	return envelope.Binding{Tenant: tenant, Kind: envelope.KindEmailOutbox, ID: id}
}

// Streams returns the configs of the streams the email service uses: its
// outbox, DELIVERY, its dead-letter stream EMAIL_DEAD and EMAIL_HELD.
func Streams(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		bus.Outbox(Channel, replicas), bus.Delivery(replicas), DeadStreamConfig(replicas), HeldStreamConfig(replicas),
	}
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

// Enqueue implements app.Outbox: it seals m (AES-256-GCM with the tenant's
// data key of the day, bound to tenant, kind email-outbox and message id),
// publishes it to outbox.email.<tenant> with Nats-Msg-Id and Cn-Message-Id
// set to the message id, and waits for the PubAck. Headers carry tenant,
// channel and message id only.
func (o *Outbox) Enqueue(ctx context.Context, m app.Message) error {
	return publishSealed(ctx, o.js, o.sealer, "outbox", m, binding(m.Tenant, m.ID), m.ID, nil)
}

// publishSealed seals m's payload for b and publishes it to
// <prefix>.email.<tenant> with Nats-Msg-Id msgID and the headers
// Cn-Tenant, Cn-Channel and Cn-Message-Id (plus extra), waiting for the
// PubAck. No header carries PHI.
func publishSealed(ctx context.Context, js jetstream.JetStream, sealer Sealer, prefix string, m app.Message, b envelope.Binding, msgID string, extra nats.Header) error {
	subject, err := bus.Subject(prefix, Channel, m.Tenant)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(newPayload(m))
	if err != nil {
		return fmt.Errorf("encode %s message: %w", prefix, err)
	}
	data, err := sealer.Seal(ctx, plain, b)
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal %s message: %w", prefix, err)
	}
	hdr := nats.Header{
		bus.HeaderTenant: []string{m.Tenant}, bus.HeaderChannel: []string{Channel},
		HeaderMessageID: []string{m.ID},
	}
	for k, v := range extra {
		hdr[k] = v
	}
	if _, err := bus.Publish(ctx, js, subject, data, msgID, hdr); err != nil {
		return err
	}
	return nil
}
