package queue

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// StreamHeld is the stream of held messages.
const StreamHeld = "EMAIL_HELD"

// KindHeld is the binding kind of a held message: sealed for its tenant,
// this kind and its message id, so it opens neither as an outbox message
// nor as another message.
const KindHeld = "email-held"

// HeldStreamConfig is EMAIL_HELD, held.email.<tenant>: messages that could
// not travel as their tenant's policy requires (PHI and no verified TLS to
// the next hop, no recipient key where encryption is required), kept
// sealed for 30 days for the secure-message portal (forms'
// CreateSecureMessage, not built yet) or an operator.
func HeldStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamHeld,
		Description: "Email messages held by the transport policy (no verified TLS, no recipient key), kept sealed for the secure-message portal.",
		Subjects:    []string{"held." + Channel + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// Held is app.Holder on EMAIL_HELD.
type Held struct {
	js     jetstream.JetStream
	sealer Sealer
}

var _ app.Holder = (*Held)(nil)

// NewHeld returns Held publishing with js and sealing with sealer.
func NewHeld(js jetstream.JetStream, sealer Sealer) *Held { return &Held{js: js, sealer: sealer} }

// HeldBinding is what a held message is sealed for.
func HeldBinding(tenant, id string) envelope.Binding {
	return envelope.Binding{Tenant: tenant, Kind: KindHeld, ID: id}
}

// Hold implements app.Holder: it seals m as the outbox does (the same
// JSON, bound to KindHeld) and publishes it to held.email.<tenant> with
// Nats-Msg-Id held.<message id>, Cn-Message-Id and Cn-Reason (a reason
// code; no PHI in any header).
func (h *Held) Hold(ctx context.Context, m app.Message, reason string) error {
	return publishSealed(ctx, h.js, h.sealer, "held", m, HeldBinding(m.Tenant, m.ID), "held."+m.ID,
		nats.Header{bus.HeaderReason: []string{reason}})
}
