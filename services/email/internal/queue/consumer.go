package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
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

// HandlerOptions configure the delivery handler. All are required.
type HandlerOptions struct {
	// Worker delivers opened messages and records refused ones.
	Worker *app.Worker
	// Sealer opens outbox messages (and seals dead letters that were not
	// sealed).
	Sealer Sealer
	// DeadLetters keeps a copy of every refused message.
	DeadLetters *DeadLetters
	// Logger is the service's logger.
	Logger *slog.Logger
}

// Handler returns the bus.Handler that opens an outbox message, decodes it
// and hands it to the worker. Outcomes the worker marks with
// app.ErrPermanent terminate the message; an *app.Later (deferred, or
// throttled by a limit) has it redelivered after the delay it names;
// other errors after bus.Consume's backoff.
//
// A message that fails authentication (envelope.ErrTampered: altered,
// sealed for another message or tenant), is not sealed
// (envelope.ErrNotSealed) or does not say which tenant and message it is
// for is refused and never delivered: it is copied to dead.email.<tenant>,
// the worker marks its record failed ("tampered") and it is terminated.
// A message sealed with a key this service does not hold
// (envelope.ErrUnknownKey, e.g. a KEK not rolled out here yet) is retried.
func Handler(o HandlerOptions) bus.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		tenant, id, ok := identify(msg)
		if !ok {
			return refuse(ctx, o, msg, tenant, id, CauseUnidentified)
		}
		plain, err := o.Sealer.Open(ctx, msg.Data(), binding(tenant, id))
		switch {
		case errors.Is(err, envelope.ErrNotSealed):
			return refuse(ctx, o, msg, tenant, id, CauseNotSealed)
		case errors.Is(err, envelope.ErrTampered):
			return refuse(ctx, o, msg, tenant, id, CauseTampered)
		case errors.Is(err, envelope.ErrUnknownKey):
			o.Logger.Warn("outbox message sealed with a key this service does not hold; will retry",
				"messageId", id, "tenant", tenant, "err", err)
			return fmt.Errorf("open outbox message: %w", err)
		case err != nil:
			return fmt.Errorf("open outbox message: %w", err)
		}

		var p payload
		err = json.Unmarshal(plain, &p)
		clear(plain)
		if err != nil || p.Version != payloadVersion || p.ID != id || p.Tenant != tenant {
			// Authentic but not a message this version understands. The
			// decoder's error may quote the body: leave it out.
			return bus.Permanent(errors.New("undecodable outbox message"))
		}
		n := uint64(1)
		if md, err := msg.Metadata(); err == nil {
			n = md.NumDelivered
		}
		// Restart the ack timer: the message may have waited in the
		// client's buffer behind slower ones.
		_ = msg.InProgress()
		err = o.Worker.Process(ctx, app.Delivery{Message: p.message(), NumDelivered: n})
		var later *app.Later
		switch {
		case errors.Is(err, app.ErrPermanent):
			return bus.Permanent(err)
		case errors.As(err, &later):
			return bus.Delay(err, later.After)
		}
		return err
	}
}

// identify returns the tenant and message id an outbox message claims:
// the tenant from its subject (outbox.email.<tenant>), which a Cn-Tenant
// header must agree with, and the id from Cn-Message-Id, else Nats-Msg-Id.
// Either is "" when missing or not a subject token; ok is false then, or
// when the tenant header disagrees. Nothing here is trusted: the sealed
// payload is bound to both.
func identify(msg jetstream.Msg) (tenant, id string, ok bool) {
	hdr := msg.Headers()
	tenant, found := strings.CutPrefix(msg.Subject(), "outbox."+Channel+".")
	if !found || !bus.ValidToken(tenant) {
		tenant = ""
	}
	id = hdr.Get(HeaderMessageID)
	if id == "" {
		id = hdr.Get(jetstream.MsgIDHeader)
	}
	if !bus.ValidToken(id) {
		id = ""
	}
	headerTenant := hdr.Get(bus.HeaderTenant)
	return tenant, id, tenant != "" && id != "" && (headerTenant == "" || headerTenant == tenant)
}

// refuse dead-letters msg and has the worker record the refusal. Until the
// copy is stored and the record updated, the message is retried: it is
// never dropped without a trace.
func refuse(ctx context.Context, o HandlerOptions, msg jetstream.Msg, tenant, id, cause string) error {
	if err := o.DeadLetters.Put(ctx, msg, tenant, id, cause); err != nil {
		o.Logger.Warn("dead-letter refused outbox message", "messageId", id, "tenant", tenant, "cause", cause, "err", err)
		return fmt.Errorf("dead-letter refused outbox message: %w", err)
	}
	err := o.Worker.Refuse(ctx, tenant, id, cause)
	switch {
	case errors.Is(err, app.ErrPermanent):
		return bus.Permanent(err)
	case err == nil:
		return bus.Permanent(errors.New("outbox message refused: " + cause))
	}
	return err
}
