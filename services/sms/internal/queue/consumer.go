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
	"github.com/carenotify/carenotify/services/sms/internal/app"
)

// Durable is the name of the workers' consumer on OUTBOX_SMS.
const Durable = "sms-delivery"

// ConsumerConfig returns the workers' consumer config. ackWait must exceed
// one attempt, or JetStream hands the message to another worker while the
// first is still talking to the provider.
func ConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     Durable,
		Description: "Hands queued text messages to the SMS provider.",
		AckWait:     ackWait,
	}
}

// HandlerOptions configure the outbox handler. All are required.
type HandlerOptions struct {
	Worker      *app.Worker
	Sealer      Sealer
	DeadLetters *DeadLetters
	Logger      *slog.Logger
}

// Handler returns the bus.Handler that opens an outbox message, decodes it
// and hands it to the worker. Outcomes marked app.ErrPermanent terminate
// the message; other errors have it redelivered after bus.Consume's
// backoff. A message that fails authentication, is not sealed or names no
// tenant and id is dead-lettered, its record marked failed (tampered),
// and terminated; one sealed with a key not held here is retried.
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
		_ = msg.InProgress()
		err = o.Worker.Process(ctx, app.Delivery{Message: p.message(), NumDelivered: n})
		if errors.Is(err, app.ErrPermanent) {
			return bus.Permanent(err)
		}
		return err
	}
}

// identify returns the tenant and message id an outbox message claims:
// the tenant from its subject (outbox.sms.<tenant>), which a Cn-Tenant
// header must agree with, and the id from Cn-Message-Id, else
// Nats-Msg-Id. Nothing here is trusted: the sealed payload is bound to
// both.
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

// refuse dead-letters msg and has the worker record the refusal. Until
// both are done the message is retried: it is never dropped untraced.
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
