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

// StreamDead is the sms service's dead-letter stream.
const StreamDead = "SMS_DEAD"

// Causes of a refused outbox message: the Cn-Reason of its dead letter.
// The delivery record says "tampered" (app.ReasonTampered) for all of them.
const (
	CauseTampered     = "tampered"     // the sealed payload failed authentication
	CauseNotSealed    = "not_sealed"   // the payload is not a sealed value
	CauseUnidentified = "unidentified" // subject or headers name no valid tenant and message id
)

// KindDead is the binding kind of a dead letter whose refused payload was
// not known to be sealed: it may be PHI in clear, so it is sealed before
// it rests on SMS_DEAD, bound to the tenant token and its Nats-Msg-Id.
const KindDead = "sms-dead"

const unknownTenant = "_invalid"

// DeadStreamConfig is SMS_DEAD, dead.sms.<tenant>: copies of outbox
// messages the workers refused, kept 30 days for investigation.
func DeadStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDead,
		Description: "SMS outbox messages refused as tampered or not sealed, kept sealed for investigation.",
		Subjects:    []string{"dead." + Channel + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// DeadLetters stores refused outbox messages on SMS_DEAD.
type DeadLetters struct {
	js     jetstream.JetStream
	sealer Sealer
}

// NewDeadLetters returns DeadLetters publishing with js; sealer seals the
// payloads that were not sealed.
func NewDeadLetters(js jetstream.JetStream, sealer Sealer) *DeadLetters {
	return &DeadLetters{js: js, sealer: sealer}
}

// Put stores a copy of the refused outbox message msg on dead.sms.<tenant>
// with headers Cn-Tenant, Cn-Channel, Cn-Reason (the cause), Cn-Kind
// ("sms-outbox": the refused sealed bytes unchanged; "sms-dead": bytes not
// known to be sealed, sealed here) and Cn-Message-Id when one is claimed.
func (d *DeadLetters) Put(ctx context.Context, msg jetstream.Msg, tenant, id, cause string) error {
	if tenant == "" {
		tenant = unknownTenant
	}
	subject, err := bus.Subject("dead", Channel, tenant)
	if err != nil {
		return err
	}
	msgID := uuid.NewString()
	if md, err := msg.Metadata(); err == nil {
		msgID = fmt.Sprintf("%s-%d", bus.OutboxStream(Channel), md.Sequence.Stream)
	}
	data, kind := msg.Data(), envelope.KindSMSOutbox
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
