package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Channel is the channel token in subjects and stream names.
const Channel = "email"

// envelopeVersion is the version of the outbox message format.
const envelopeVersion = 1

// envelope is the body of an outbox message. It carries PHI and is not yet
// encrypted at rest (issue 6).
type envelope struct {
	Version         int       `json:"v"`
	ID              string    `json:"id"`
	Tenant          string    `json:"tenant"`
	IdempotencyKey  string    `json:"idempotencyKey"`
	To              string    `json:"to"`
	Subject         string    `json:"subject"`
	HTMLBody        string    `json:"htmlBody,omitempty"`
	TextBody        string    `json:"textBody,omitempty"`
	Security        int       `json:"security"`
	ExpiresAt       time.Time `json:"expiresAt"`
	QueuedAt        time.Time `json:"queuedAt"`
	JourneyInstance string    `json:"journeyInstance,omitempty"`
	Step            string    `json:"step,omitempty"`
}

func newEnvelope(m app.Message) envelope {
	return envelope{
		Version: envelopeVersion, ID: m.ID, Tenant: m.Tenant, IdempotencyKey: m.IdempotencyKey,
		To: m.To, Subject: m.Subject, HTMLBody: m.HTMLBody, TextBody: m.TextBody,
		Security: int(m.Security), ExpiresAt: m.ExpiresAt, QueuedAt: m.QueuedAt,
		JourneyInstance: m.JourneyInstance, Step: m.Step,
	}
}

func (e envelope) message() app.Message {
	return app.Message{
		ID: e.ID, Tenant: e.Tenant, IdempotencyKey: e.IdempotencyKey,
		To: e.To, Subject: e.Subject, HTMLBody: e.HTMLBody, TextBody: e.TextBody,
		Security: app.Security(e.Security), ExpiresAt: e.ExpiresAt, QueuedAt: e.QueuedAt,
		JourneyInstance: e.JourneyInstance, Step: e.Step,
	}
}

// Streams returns the configs of the streams the email service uses.
func Streams(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{bus.Outbox(Channel, replicas), bus.Delivery(replicas)}
}

// Outbox is app.Outbox on JetStream.
type Outbox struct {
	js jetstream.JetStream
}

var _ app.Outbox = (*Outbox)(nil)

// NewOutbox returns an Outbox publishing with js.
func NewOutbox(js jetstream.JetStream) *Outbox { return &Outbox{js: js} }

// Enqueue implements app.Outbox: it publishes m to outbox.email.<tenant>
// with Nats-Msg-Id set to the message id and waits for the PubAck.
func (o *Outbox) Enqueue(ctx context.Context, m app.Message) error {
	subject, err := bus.Subject("outbox", Channel, m.Tenant)
	if err != nil {
		return err
	}
	data, err := json.Marshal(newEnvelope(m))
	if err != nil {
		return fmt.Errorf("encode outbox message: %w", err)
	}
	hdr := nats.Header{bus.HeaderTenant: []string{m.Tenant}, bus.HeaderChannel: []string{Channel}}
	if _, err := bus.Publish(ctx, o.js, subject, data, m.ID, hdr); err != nil {
		return err
	}
	return nil
}
