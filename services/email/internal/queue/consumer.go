package queue

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Durable is the name of the delivery workers' consumer on OUTBOX_EMAIL.
const Durable = "email-delivery"

// ConsumerConfig returns the delivery consumer's config. ackWait must
// exceed one delivery attempt, or JetStream hands the message to another
// worker while the first is still talking to the relay.
func ConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     Durable,
		Description: "Delivers queued email to the SMTP relay.",
		AckWait:     ackWait,
	}
}

// Handler returns the bus.Handler that decodes an outbox message and
// hands it to w. Outcomes w marks with app.ErrPermanent terminate the
// message; other errors have it redelivered after bus.Consume's backoff.
func Handler(w *app.Worker) bus.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		var env envelope
		if err := json.Unmarshal(msg.Data(), &env); err != nil || env.Version != envelopeVersion || env.ID == "" {
			// The decoder's error may quote the body: leave it out.
			return bus.Permanent(errors.New("undecodable outbox message"))
		}
		if want, err := bus.Subject("outbox", Channel, env.Tenant); err != nil || want != msg.Subject() {
			return bus.Permanent(errors.New("outbox message tenant does not match its subject"))
		}
		n := uint64(1)
		if md, err := msg.Metadata(); err == nil {
			n = md.NumDelivered
		}
		// Restart the ack timer: the message may have waited in the
		// client's buffer behind slower ones.
		_ = msg.InProgress()
		err := w.Process(ctx, app.Delivery{Message: env.message(), NumDelivered: n})
		if errors.Is(err, app.ErrPermanent) {
			return bus.Permanent(err)
		}
		return err
	}
}
