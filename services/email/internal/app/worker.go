package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
)

// errBusy: another worker holds the message's lock.
var errBusy = errors.New("message is being delivered by another worker")

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
	Store  Store
	Events Events
	Mailer Mailer
	// Policies are the tenants' transport policies; DefaultPolicies when
	// zero.
	Policies Policies
	// Holder keeps held messages (required once a policy can hold).
	Holder Holder
	// Keys finds recipients' encryption keys; nil means none is on record.
	Keys Keys
	// Suppressions, when set, is checked before every attempt (a message
	// queued before its address was suppressed fails with ReasonSuppressed)
	// and takes the addresses of hard bounces.
	Suppressions Suppressions
	// SuppressBounces says which permanent SMTP failures suppress the
	// address (SuppressAddress, the default, SuppressPermanent, SuppressOff).
	SuppressBounces string
	// Auditor records every final outcome (sent, bounced, failed) in the
	// audit trail.
	Auditor Auditor
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// LockTTL bounds how long one worker holds a message: at least the
	// Mailer's timeout, and no longer than the outbox's ack wait.
	LockTTL time.Duration
	// Backoff returns the redelivery delay after the n-th attempt; a
	// deferred message is handed out again after it (Later), or failed as
	// expired when its next attempt would come too late. Default:
	// bus.Backoff capped at a minute.
	Backoff func(n uint64) time.Duration
	// Limiter, when set, enforces the policies' destination limits and
	// warm-up caps; without it nothing is limited.
	Limiter Limiter
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Worker delivers outbox messages and records the outcome.
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
	if o.Policies.Default.Encryption == "" {
		o.Policies.Default = DefaultPolicy()
	}
	return &Worker{o: o}
}

// Process delivers one message. It returns nil when the message is done
// with (sent, or already final), an error wrapping ErrPermanent when it
// must not be retried (bounced, expired, no record), and any other error
// to have it redelivered after a backoff. The delivery record is updated
// before Process returns, so the outbox message is acknowledged only after.
func (w *Worker) Process(ctx context.Context, d Delivery) error {
	m := d.Message
	log := w.o.Logger.With("messageId", m.ID, "tenant", m.Tenant)

	// One round trip: the lock, the record and the suppression entry.
	suppHash := ""
	if w.o.Suppressions != nil {
		suppHash = w.o.Suppressions.Hash(m.Tenant, m.To)
	}
	lease, err := w.begin(ctx, m.Tenant, m.ID, suppHash)
	if err != nil {
		return err
	}
	defer w.release(ctx, m.Tenant, m.ID, lease)
	rec := lease.Record
	switch {
	case !lease.Found:
		// Send gave up on this message (and told its caller to retry) or
		// the record expired: delivering it could send it twice.
		log.Warn("no delivery record; dropping message")
		return permanent(ErrNotFound)
	case rec.Status.Terminal():
		// A redelivery after the outcome was recorded: make sure the event
		// is out (the stream drops the duplicate) and finish.
		log.Debug("message already final", "status", string(rec.Status))
		return w.publish(ctx, m, rec)
	}

	if !rec.Committed {
		// Send did not get to commit it (it died, or Redis failed): the
		// message is ours only while its idempotency key still names it.
		switch err := w.o.Store.Commit(ctx, m.Tenant, m.ID, rec.IdempotencyKeyHash, RecordTTL); {
		case errors.Is(err, ErrClaimLost):
			log.Warn("idempotency claim expired before the message was committed; dropping it (the caller's retry queued it anew)")
			return permanent(err)
		case err != nil:
			return fmt.Errorf("commit record: %w", err)
		}
		rec.Committed = true
	}

	now := w.o.Now()
	if !now.Before(m.ExpiresAt) {
		return w.finish(ctx, log, lease, m, rec, StatusFailed, ReasonExpired, Transport{}, permanent(errors.New(ReasonExpired)))
	}

	if e := lease.Suppressed; e != nil {
		log.Info("recipient suppressed since the message was queued", "suppression", string(e.Reason), "evidence", e.MessageID)
		return w.finish(ctx, log, lease, m, rec, StatusFailed, ReasonSuppressed, Transport{}, permanent(errors.New(ReasonSuppressed)))
	}

	pol := w.o.Policies.For(m.Tenant)
	var key *RecipientKey
	if m.Security.PHI() && pol.Encryption != EncryptOff && w.o.Keys != nil {
		if key, err = w.o.Keys.Key(ctx, m.Tenant, m.To); err != nil {
			return fmt.Errorf("read recipient key: %w", err)
		}
	}
	out, hold := pol.plan(m, key)
	if hold != "" {
		return w.hold(ctx, log, lease, m, rec, hold, Transport{Held: true})
	}

	release, throttle, wait, err := w.throttle(ctx, pol, out, now)
	switch {
	case err != nil:
		return err
	case throttle != "":
		// Not an attempt: the record stays as it is, no event.
		w.o.Metrics.Throttled(throttle)
		if !now.Add(wait).Before(m.ExpiresAt) {
			return w.finish(ctx, log, lease, m, rec, StatusFailed, ReasonExpired, Transport{}, permanent(errors.New(ReasonExpired)))
		}
		log.Debug("email throttled", "throttle", throttle, "wait", wait.String())
		return &Later{After: wait, Err: errors.New("throttled: " + throttle)}
	case release != nil:
		defer release(context.WithoutCancel(ctx))
	}

	// Mark the attempt before any SMTP: an attempt that finds the mark
	// follows one that died before recording its outcome, perhaps after
	// the relay accepted the message. It is sent again (at least once),
	// with the same Message-ID, and counted.
	if rec.Sending {
		rec.UncertainResends++
		w.o.Metrics.UncertainResend()
		log.Warn("previous attempt ended without an outcome; sending again with the same Message-ID",
			"uncertainResends", rec.UncertainResends)
	}
	rec.Sending = true
	if err := w.o.Store.UpdateRecord(ctx, rec, RecordTTL); err != nil {
		return fmt.Errorf("mark attempt: %w", err)
	}

	start := time.Now()
	tr, derr := w.o.Mailer.Deliver(ctx, out)
	w.o.Metrics.DeliveryDuration(time.Since(start))
	if derr != nil && ctx.Err() != nil {
		// Shutting down: the attempt was cut short, not answered. Try again
		// later without counting it.
		return fmt.Errorf("delivery interrupted: %w", ctx.Err())
	}
	rec.Attempts++
	if derr == nil {
		switch {
		case tr.SMIME:
			w.o.Metrics.Encrypted(string(KeySMIME))
		case tr.PGP:
			w.o.Metrics.Encrypted(string(KeyPGP))
		}
		return w.finish(ctx, log, lease, m, rec, StatusSent, "", tr, nil)
	}

	var de *DeliveryError
	if !errors.As(derr, &de) {
		// Not a classified error: its text is not known to be PHI-free.
		de = &DeliveryError{Reason: ReasonConnect, Detail: "unclassified mailer error"}
	}
	if de.Permanent {
		if err := w.suppressBounce(ctx, log, m, de); err != nil {
			// Retried: the relay refuses it again and the suppression is
			// tried again.
			return err
		}
		st := StatusBounced
		if de.Reason == ReasonEncryption {
			// Nothing was sent: the next hop did not refuse it.
			st = StatusFailed
		}
		return w.finish(ctx, log, lease, m, rec, st, de.Reason, Transport{}, permanent(de))
	}
	if pol.holds(out, de.Reason) {
		log.Warn("next hop cannot offer the TLS the message needs; holding it", "reason", de.Reason,
			"tls", out.TLS.String(), "detail", de.Detail)
		return w.hold(ctx, log, lease, m, rec, de.Reason, Transport{Held: true, NextHop: de.NextHop})
	}
	// The backoff counts attempts, not hand-outs: waits for a limit are
	// not retries.
	backoff := w.o.Backoff(uint64(rec.Attempts))
	if next := now.Add(backoff); !next.Before(m.ExpiresAt) {
		return w.finish(ctx, log, lease, m, rec, StatusFailed, ReasonExpired, Transport{}, permanent(de))
	}
	return w.finish(ctx, log, lease, m, rec, StatusDeferred, de.Reason, Transport{}, &Later{After: backoff, Err: de})
}

// throttle applies pol's limit for out's destination and its warm-up cap.
// It returns the reason and how long to wait when out must wait, else a
// release for the concurrency slot taken (nil when none was).
func (w *Worker) throttle(ctx context.Context, pol Policy, out Outgoing, now time.Time) (release func(context.Context), reason string, wait time.Duration, err error) {
	if w.o.Limiter == nil {
		return nil, "", 0, nil
	}
	m := out.Message
	if len(pol.Limits) > 0 {
		dest, err := w.o.Mailer.Destination(ctx, out)
		if err != nil {
			return nil, "", 0, fmt.Errorf("destination: %w", err)
		}
		if l := pol.LimitFor(dest); l.Concurrency > 0 || l.Rate > 0 {
			p, err := w.o.Limiter.Acquire(ctx, m.Tenant, dest, l, w.o.LockTTL)
			switch {
			case err != nil:
				return nil, "", 0, fmt.Errorf("destination limit: %w", err)
			case p.Wait > 0:
				return nil, p.Reason, p.Wait, nil
			}
			release = p.Release
		}
	}
	if limit, ok := pol.Warmup.Cap(now); ok {
		ok, err := w.o.Limiter.CountWarmup(ctx, pol.Warmup.Identity, now, limit)
		if err != nil || !ok {
			if release != nil {
				release(context.WithoutCancel(ctx))
			}
			if err != nil {
				return nil, "", 0, fmt.Errorf("warm-up cap: %w", err)
			}
			// Spread the next day's start over its first ten minutes.
			return nil, ThrottleWarmup, nextDay(now).Sub(now) + rand.N(10*time.Minute), nil
		}
	}
	return release, "", 0, nil
}

// begin takes the message's lock and reads its record (and, with
// suppHash, the recipient's suppression entry). errBusy when another
// worker holds the lock.
func (w *Worker) begin(ctx context.Context, tenant, id, suppHash string) (*Lease, error) {
	lease, err := w.o.Store.Begin(ctx, tenant, id, suppHash, w.o.LockTTL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("lock message: %w", err)
	case !lease.Held:
		return nil, errBusy
	}
	return &lease, nil
}

// release unlocks the message unless finish did already.
func (w *Worker) release(ctx context.Context, tenant, id string, lease *Lease) {
	if !lease.Released {
		w.o.Store.Unlock(context.WithoutCancel(ctx), tenant, id, lease.Token)
	}
}

// suppressBounce puts m's recipient on the suppression list when the
// relay's permanent refusal de is one that SuppressBounces counts.
func (w *Worker) suppressBounce(ctx context.Context, log *slog.Logger, m Message, de *DeliveryError) error {
	if w.o.Suppressions == nil || de.Reason != ReasonSMTP5xx || !BounceSuppresses(w.o.SuppressBounces, de.Stage, de.Code, de.EnhancedCode) {
		return nil
	}
	status := de.EnhancedCode
	if status == "" {
		status = strconv.Itoa(de.Code)
	}
	return suppress(ctx, w.o.Suppressions, w.o.Auditor, w.o.Metrics, log, Suppression{
		Tenant: m.Tenant, AddressHash: w.o.Suppressions.Hash(m.Tenant, m.To), Reason: SuppressedHardBounce,
		Source: SourceSMTP, MessageID: m.ID, Status: status, At: w.o.Now(),
	})
}

// hold keeps m sealed in the held stream, then records it as held with
// reason and tr (Held, and the hop that could not carry it). Nothing of m
// was sent. Until the held copy is stored the outbox message is retried.
func (w *Worker) hold(ctx context.Context, log *slog.Logger, lease *Lease, m Message, rec Record, reason string, tr Transport) error {
	if w.o.Holder == nil {
		return errors.New("message must be held and no holder is configured")
	}
	if err := w.o.Holder.Hold(ctx, m, reason); err != nil {
		return fmt.Errorf("hold message: %w", err)
	}
	return w.finish(ctx, log, lease, m, rec, StatusHeld, reason, tr, permanent(errors.New("held: "+reason)))
}

// Refuse handles an outbox message that must never be delivered because it
// failed authentication or was not sealed (the queue adapter opens
// messages; cause says which, for the log). tenant and id are what the
// message's subject and headers claim, "" when unknown; they are not
// trusted. It logs the refusal at error level and, when id names a message
// of tenant whose record is not final yet, marks that record failed with
// ReasonTampered and publishes the failed event. It returns an error
// wrapping ErrPermanent once done, or another error (Redis or NATS failed,
// another worker holds the message) to have the message redelivered.
func (w *Worker) Refuse(ctx context.Context, tenant, id, cause string) error {
	refused := permanent(errors.New("outbox message refused: " + cause))
	log := w.o.Logger.With("messageId", id, "tenant", tenant, "cause", cause)
	if _, err := uuid.Parse(id); err != nil || !bus.ValidToken(tenant) {
		log.Error("outbox message refused; no delivery record to update")
		return refused
	}
	lease, err := w.begin(ctx, tenant, id, "")
	if err != nil {
		return err
	}
	defer w.release(ctx, tenant, id, lease)
	rec := lease.Record
	switch {
	case !lease.Found:
		log.Error("outbox message refused; no delivery record to update")
		return refused
	case rec.Status.Terminal():
		// The message's outcome is known: a forged or altered copy does
		// not change it.
		log.Error("outbox message refused; delivery record already final", "status", string(rec.Status))
		return refused
	}
	log.Error("outbox message refused; marking it failed", "reason", ReasonTampered)
	m := Message{ID: id, Tenant: tenant}
	return w.finish(ctx, log, lease, m, rec, StatusFailed, ReasonTampered, Transport{}, refused)
}

// finish records an outcome, publishes its event, logs and counts it, and
// returns result, the error Process returns for it.
func (w *Worker) finish(ctx context.Context, log *slog.Logger, lease *Lease, m Message, rec Record, st Status, reason string, tr Transport, result error) error {
	// Bookkeeping survives a shutdown that begins mid-way: an unrecorded
	// success would be sent again.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()

	rec.Status, rec.Reason, rec.Transport, rec.UpdatedAt = st, reason, tr, w.o.Now()
	rec.Sending = false
	w.o.Metrics.Delivery(string(st))
	attrs := []any{"status", string(st), "attempts", rec.Attempts}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	var de *DeliveryError
	if errors.As(result, &de) {
		attrs = append(attrs, "smtpCode", de.Code, "enhancedCode", de.EnhancedCode, "detail", de.Detail)
	}
	if st == StatusSent {
		attrs = append(attrs, "tlsVersion", tr.TLSVersion, "tlsVerified", tr.TLSVerified, "nextHop", tr.NextHop,
			"smime", tr.SMIME, "pgp", tr.PGP, "requireTLS", tr.RequireTLS)
	}
	switch st {
	case StatusSent:
		log.Info("email sent", attrs...)
	case StatusHeld:
		log.Warn("email held", attrs...)
	default:
		log.Warn("email not sent", attrs...)
	}

	// One round trip: the record, the sent index (for later bounces and
	// opt-outs) and the lock's release. The lock goes before the event is
	// out: the record already says what the event will, and feedback that
	// takes the lock in between moves the record only forward.
	var sent *SentRef
	if st == StatusSent {
		sent = &SentRef{ID: m.ID, Tenant: m.Tenant, IdempotencyKey: m.IdempotencyKey}
		if w.o.Suppressions != nil {
			sent.RecipientHash = w.o.Suppressions.Hash(m.Tenant, m.To)
		}
	}
	if err := w.o.Store.Finish(bctx, rec, RecordTTL, sent, lease.Token); err != nil {
		if st == StatusSent {
			// Redelivering would send the message again; a stale record
			// (or a sent index that cannot route later bounces and
			// opt-outs) is the lesser harm.
			log.Error("record sent message", "err", err)
			_ = w.publish(bctx, m, rec)
			return nil
		}
		return fmt.Errorf("update record: %w", err)
	}
	lease.Released = true
	if st.Terminal() {
		if err := w.audit(bctx, m, rec); err != nil {
			if st == StatusSent {
				// Redelivering would send the message again: the sent record
				// stands and the gap is logged for the operator.
				log.Error("audit record of a sent message lost", "err", err)
			} else {
				return err
			}
		}
	}
	if err := w.publish(bctx, m, rec); err != nil && st.Terminal() {
		// Redelivery finds the record final and publishes again.
		return err
	}
	return result
}

// audit records rec's final outcome: who (this service) did what to which
// message, and why. The recipient is not in it: the trail holds no PHI.
func (w *Worker) audit(ctx context.Context, m Message, rec Record) error {
	outcome := audit.OutcomeSuccess
	switch {
	case rec.Status == StatusSent:
	case rec.Status == StatusHeld, rec.Reason == ReasonSuppressed:
		outcome = audit.OutcomeSuppressed
	default:
		outcome = audit.OutcomeFailure
	}
	reason := string(rec.Status)
	if rec.Reason != "" {
		reason += ":" + rec.Reason
	}
	err := w.o.Auditor.Record(ctx, audit.Entry{
		Tenant: m.Tenant, Actor: audit.Actor{Type: audit.ActorService, ID: "email"},
		Action: audit.ActionMessageSent, Object: audit.Object{Type: "EmailMessage", ID: m.ID},
		Outcome: outcome, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", rec.Status, err)
	}
	return nil
}

// publish sends the DELIVERY event for rec's current state.
func (w *Worker) publish(ctx context.Context, m Message, rec Record) error {
	ev := Event{
		MessageID: m.ID, IdempotencyKey: m.IdempotencyKey, Tenant: m.Tenant,
		Status: rec.Status, OccurredAt: rec.UpdatedAt, Attempts: rec.Attempts,
		Reason: rec.Reason, Transport: rec.Transport,
	}
	if err := w.o.Events.Publish(ctx, ev); err != nil {
		w.o.Logger.Warn("publish delivery event", "messageId", m.ID, "tenant", m.Tenant, "status", string(rec.Status), "err", err)
		return fmt.Errorf("publish %s event: %w", rec.Status, err)
	}
	return nil
}
