package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/sms/internal/metrics"
)

// errBusy: another worker (or a receipt) holds the message's lock.
var errBusy = errors.New("message is being handled by another worker")

// Delivery is one outbox message handed to a worker.
type Delivery struct {
	// Message is the queued message.
	Message Message
	// NumDelivered counts how often the outbox has handed this message out,
	// this time included (1 on the first attempt).
	NumDelivered uint64
}

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	Store    Store
	Events   Events
	Provider Provider
	// Auditor records every final outcome (sent, failed).
	Auditor Auditor
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Sender returns the sender (number or messaging service SID) of a
	// tenant's messages.
	Sender func(tenant string) string
	// StatusCallback returns the receipt URL of a message, "" for none.
	StatusCallback func(tenant, id string) string
	// LockTTL bounds how long one worker holds a message: at least the
	// provider's timeout, and no longer than the outbox's ack wait.
	LockTTL time.Duration
	// Backoff returns the redelivery delay after the n-th delivery; it must
	// match the outbox consumer's. Default: bus.Backoff capped at a minute.
	Backoff func(n uint64) time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Worker hands outbox messages to the provider and records the outcome.
type Worker struct {
	o WorkerOptions
}

// NewWorker returns a Worker.
func NewWorker(o WorkerOptions) *Worker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Backoff == nil {
		o.Backoff = func(n uint64) time.Duration { return bus.Backoff(n, time.Minute) }
	}
	if o.StatusCallback == nil {
		o.StatusCallback = func(string, string) string { return "" }
	}
	return &Worker{o: o}
}

// Process sends one message. It returns nil when the message is done with
// (sent, or already final), an error wrapping ErrPermanent when it must
// not be retried (refused, expired, no record), and any other error to
// have it redelivered after a backoff. The record is updated before
// Process returns, so the outbox message is acknowledged only after.
//
// The message's lock is held across the provider call and the record
// update, so a receipt that arrives before the record says "sent" waits
// for it instead of being overwritten by it.
func (w *Worker) Process(ctx context.Context, d Delivery) error {
	m := d.Message
	log := w.o.Logger.With("messageId", m.ID, "tenant", m.Tenant)

	unlock, ok, err := w.o.Store.Lock(ctx, m.Tenant, m.ID, w.o.LockTTL)
	if err != nil {
		return fmt.Errorf("lock message: %w", err)
	}
	if !ok {
		return errBusy
	}
	defer unlock(context.WithoutCancel(ctx))

	rec, err := w.o.Store.Record(ctx, m.Tenant, m.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		// Send gave up on this message (and told its caller to retry) or
		// the record expired: sending it could send it twice.
		log.Warn("no delivery record; dropping message")
		return permanent(err)
	case err != nil:
		return fmt.Errorf("read record: %w", err)
	case rec.Status.Terminal():
		log.Debug("message already final", "status", string(rec.Status))
		return w.publish(ctx, rec)
	}

	now := w.o.Now()
	if !now.Before(m.ExpiresAt) {
		return w.finish(ctx, log, rec, StatusFailed, ReasonExpired, nil, permanent(errors.New(ReasonExpired)))
	}
	start := time.Now()
	sid, perr := w.o.Provider.Send(ctx, Outgoing{
		To: m.To, From: w.o.Sender(m.Tenant), Body: m.Body, StatusCallback: w.o.StatusCallback(m.Tenant, m.ID),
	})
	w.o.Metrics.ProviderDuration(time.Since(start))
	if perr != nil && ctx.Err() != nil {
		// Shutting down: the attempt was cut short. Try again later
		// without counting it.
		return fmt.Errorf("send interrupted: %w", ctx.Err())
	}
	rec.Attempts++
	if perr == nil {
		rec.ProviderID = sid
		return w.finish(ctx, log, rec, StatusSent, "", nil, nil)
	}
	var pe *ProviderError
	if !errors.As(perr, &pe) {
		// Not a classified error: its text is not known to be PHI-free.
		pe = &ProviderError{Reason: ReasonConnect, Detail: "unclassified provider error"}
	}
	if pe.Permanent {
		return w.finish(ctx, log, rec, StatusFailed, pe.Reason, pe, permanent(pe))
	}
	if next := now.Add(w.o.Backoff(d.NumDelivered)); !next.Before(m.ExpiresAt) {
		return w.finish(ctx, log, rec, StatusFailed, ReasonExpired, pe, permanent(pe))
	}
	return w.finish(ctx, log, rec, StatusDeferred, pe.Reason, pe, pe)
}

// Refuse handles an outbox message that must never be sent because it
// failed authentication or was not sealed. tenant and id are what the
// message claims ("" when unknown), not trusted. It marks a matching
// record that is not final failed (tampered) and returns an error
// wrapping ErrPermanent once done, or another error to have the message
// redelivered.
func (w *Worker) Refuse(ctx context.Context, tenant, id, cause string) error {
	refused := permanent(errors.New("outbox message refused: " + cause))
	log := w.o.Logger.With("messageId", id, "tenant", tenant, "cause", cause)
	if _, err := uuid.Parse(id); err != nil || !bus.ValidToken(tenant) {
		log.Error("outbox message refused; no delivery record to update")
		return refused
	}
	unlock, ok, err := w.o.Store.Lock(ctx, tenant, id, w.o.LockTTL)
	if err != nil {
		return fmt.Errorf("lock message: %w", err)
	}
	if !ok {
		return errBusy
	}
	defer unlock(context.WithoutCancel(ctx))
	rec, err := w.o.Store.Record(ctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		log.Error("outbox message refused; no delivery record to update")
		return refused
	case err != nil:
		return fmt.Errorf("read record: %w", err)
	case rec.Status.Terminal():
		log.Error("outbox message refused; delivery record already final", "status", string(rec.Status))
		return refused
	}
	log.Error("outbox message refused; marking it failed", "reason", ReasonTampered)
	return w.finish(ctx, log, rec, StatusFailed, ReasonTampered, nil, refused)
}

// finish records an outcome, audits a final one, publishes its event,
// logs and counts it, and returns result.
func (w *Worker) finish(ctx context.Context, log *slog.Logger, rec Record, st Status, reason string, pe *ProviderError, result error) error {
	// Bookkeeping survives a shutdown that begins mid-way: an unrecorded
	// success would be sent again.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()

	rec.Status, rec.Reason, rec.UpdatedAt = st, reason, w.o.Now()
	rec.ProviderCode = 0
	attrs := []any{"status", string(st), "attempts", rec.Attempts}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	if pe != nil {
		rec.ProviderCode = pe.Code
		attrs = append(attrs, "httpStatus", pe.HTTPStatus, "providerCode", pe.Code, "detail", pe.Detail)
	}
	if rec.ProviderID != "" {
		attrs = append(attrs, "providerId", rec.ProviderID)
	}
	w.o.Metrics.Delivery(string(st))
	if st == StatusSent {
		log.Info("sms sent", attrs...)
	} else {
		log.Warn("sms not sent", attrs...)
	}

	if err := w.o.Store.UpdateRecord(bctx, rec, RecordTTL); err != nil {
		if st == StatusSent {
			// Redelivering would send the message again; a stale record is
			// the lesser harm.
			log.Error("record sent message", "err", err)
			_ = w.publish(bctx, rec)
			return nil
		}
		return fmt.Errorf("update record: %w", err)
	}
	if st.Terminal() {
		if err := auditOutcome(bctx, w.o.Auditor, rec); err != nil {
			if st != StatusSent {
				return err
			}
			log.Error("audit record of a sent message lost", "err", err)
		}
	}
	if err := w.publish(bctx, rec); err != nil && st.Terminal() {
		return err
	}
	return result
}

// publish sends the DELIVERY event for rec's current state.
func (w *Worker) publish(ctx context.Context, rec Record) error {
	return publishRecord(ctx, w.o.Events, w.o.Logger, rec)
}

func publishRecord(ctx context.Context, events Events, logger *slog.Logger, rec Record) error {
	ev := Event{
		MessageID: rec.ID, IdempotencyKey: rec.IdempotencyKey, Tenant: rec.Tenant,
		Status: rec.Status, OccurredAt: rec.UpdatedAt, Attempts: rec.Attempts,
		Reason: rec.Reason, ProviderID: rec.ProviderID,
	}
	if err := events.Publish(ctx, ev); err != nil {
		logger.Warn("publish delivery event", "messageId", rec.ID, "tenant", rec.Tenant, "status", string(rec.Status), "err", err)
		return fmt.Errorf("publish %s event: %w", rec.Status, err)
	}
	return nil
}

// auditOutcome records rec's outcome: this service did what to which
// message, and why. The number is not in it: the trail holds no PHI.
func auditOutcome(ctx context.Context, a Auditor, rec Record) error {
	outcome := audit.OutcomeSuccess
	switch rec.Status {
	case StatusSent, StatusDelivered:
	default:
		outcome = audit.OutcomeFailure
	}
	reason := string(rec.Status)
	if rec.Reason != "" {
		reason += ":" + rec.Reason
	}
	err := a.Record(ctx, audit.Entry{
		Tenant: rec.Tenant, Actor: audit.Actor{Type: audit.ActorService, ID: "sms"},
		Action: audit.ActionMessageSent, Object: audit.Object{Type: "SMSMessage", ID: rec.ID},
		Outcome: outcome, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", rec.Status, err)
	}
	return nil
}
