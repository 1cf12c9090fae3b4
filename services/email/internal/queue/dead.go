package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
)

// StreamDead is the email service's dead-letter stream.
const StreamDead = "EMAIL_DEAD"

// Causes of a refused outbox message: the Cn-Reason of its dead letter.
// The delivery record says "tampered" (app.ReasonTampered) for all of them.
const (
	// CauseTampered: the sealed payload failed authentication (altered, or
	// sealed for another message or tenant).
	CauseTampered = "tampered"
	// CauseNotSealed: the payload is not a sealed value (e.g. plain JSON).
	CauseNotSealed = "not_sealed"
	// CauseUnidentified: the subject or headers do not name a valid tenant
	// and message id, so the payload cannot be opened.
	CauseUnidentified = "unidentified"
)

// KindDead is the binding kind of a dead letter whose refused payload was
// not known to be sealed (CauseNotSealed, CauseUnidentified): it may be
// PHI in clear, so it is sealed before it rests on EMAIL_DEAD, bound to
// the dead letter's tenant (subject token) and Nats-Msg-Id.
const KindDead = "email-dead"

// unknownTenant is the subject token of dead letters whose outbox subject
// named no valid tenant.
const unknownTenant = "_invalid"

// DeadStreamConfig is EMAIL_DEAD, dead.email.<tenant>: copies of outbox
// messages the workers refused, kept 30 days for investigation. pkg/bus
// declares no dead-letter stream for the email channel, so this service
// declares its own (see Streams).
func DeadStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDead,
		Description: "Email outbox messages refused as tampered or not sealed, kept sealed for investigation.",
		Subjects:    []string{"dead." + Channel + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// DeadLetters stores refused outbox messages on EMAIL_DEAD.
type DeadLetters struct {
	js     jetstream.JetStream
	sealer Sealer
}

// NewDeadLetters returns DeadLetters publishing with js; sealer seals the
// payloads that were not sealed.
func NewDeadLetters(js jetstream.JetStream, sealer Sealer) *DeadLetters {
	return &DeadLetters{js: js, sealer: sealer}
}

// Put stores a copy of the refused outbox message msg on
// dead.email.<tenant> with headers Cn-Tenant, Cn-Channel, Cn-Reason (the
// cause), Cn-Message-Id (the claimed id, when there is one) and Cn-Kind:
//
//   - "email-outbox" (envelope.KindEmailOutbox): the payload is the
//     refused sealed bytes, unchanged;
//   - "email-dead" (KindDead): the refused bytes were not sealed, or not
//     known to be, and are sealed here (bound to tenant, KindDead and the
//     dead letter's Nats-Msg-Id) since they may be PHI in clear.
//
// Its Nats-Msg-Id derives from the outbox sequence, so a redelivered
// message is stored once (within the stream's duplicate window).
func (d *DeadLetters) Put(ctx context.Context, msg jetstream.Msg, tenant, id, cause string) error {
	if tenant == "" {
		tenant = unknownTenant
	}
	subject, err := bus.Subject("dead", Channel, tenant)
	if err != nil {
		return err
	}
	msgID := deadLetterID(msg)
	data, kind := msg.Data(), envelope.KindEmailOutbox
	if cause != CauseTampered {
		kind = KindDead
		if data, err = d.sealer.Seal(ctx, data, envelope.Binding{Tenant: tenant, Kind: KindDead, ID: msgID}); err != nil {
			return fmt.Errorf("seal dead letter: %w", err)
		}
	}
	hdr := nats.Header{
		bus.HeaderTenant: []string{tenant}, bus.HeaderChannel: []string{Channel},
		bus.HeaderReason: []string{cause}, bus.HeaderKind: []string{kind},
	}
	if id != "" {
		hdr.Set(HeaderMessageID, id)
	}
	_, err = bus.Publish(ctx, d.js, subject, data, msgID, hdr)
	return err
}

// deadLetterID names the dead letter of msg after its outbox sequence.
func deadLetterID(msg jetstream.Msg) string {
	if md, err := msg.Metadata(); err == nil {
		return fmt.Sprintf("%s-%d", bus.OutboxStream(Channel), md.Sequence.Stream)
	}
	return uuid.NewString()
}
