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
	"github.com/carenotify/carenotify/services/email/internal/metrics"
)

// ActionMessageFeedback is the audit action of feedback received after
// delivery: an unsubscribe, a bounce report or a complaint.
const ActionMessageFeedback = "message.feedback"

// Feedback outcomes, the values of email_feedback_total's outcome label.
const (
	FeedbackRecorded = "recorded"
	FeedbackUnknown  = "unknown"
	FeedbackRefused  = "refused"
)

// ErrBusy: a worker holds the message right now; try again shortly.
var ErrBusy = errors.New("message is busy; retry")

// FeedbackOptions configure Feedback.
type FeedbackOptions struct {
	Store   Store
	Events  Events
	Auditor Auditor
	// Suppressions, when set, takes the addresses of hard bounces and
	// complaints.
	Suppressions Suppressions
	// SuppressBounces says which DSNs suppress the address
	// (SuppressAddress, the default, SuppressPermanent, SuppressOff).
	SuppressBounces string
	Metrics         *metrics.Metrics
	Logger          *slog.Logger
	// LockTTL bounds how long recording one piece of feedback holds the
	// message's lock.
	LockTTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Feedback records what arrives about a message after it was delivered:
// one-click unsubscribes (RFC 8058), asynchronous bounces (RFC 3464 DSNs)
// and complaints (RFC 5965 ARF reports). Each becomes a DELIVERY event, a
// record update (the record never moves backwards) and an audit record.
//
// An unsubscribe or a complaint is published as STATUS_OPTED_OUT with
// reason "unsubscribe" or "complaint" (the Status enum has no complaint):
// the journey service turns these into consent records.
type Feedback struct {
	o FeedbackOptions
}

// NewFeedback returns Feedback.
func NewFeedback(o FeedbackOptions) *Feedback {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Feedback{o: o}
}

// Unsubscribe records that the recipient of message id of tenant
// unsubscribed. tenant and id come from a verified token. Errors:
// ErrNotFound (not a message id), ErrBusy, ErrUnavailable.
func (f *Feedback) Unsubscribe(ctx context.Context, tenant, id string) error {
	return f.record(ctx, tenant, id, StatusOptedOut, ReasonUnsubscribe)
}

// Report describes the report a bounce or complaint came in. No PHI.
type Report struct {
	// Source is SourceDSN, SourceARF or SourceRelayHook.
	Source string
	// ID is the report's own id (its Message-ID, a relay's feedback id),
	// "" when unknown.
	ID string
	// Status is the RFC 3463 code of a bounce ("5.1.1"), or the feedback
	// type of a complaint ("abuse").
	Status string
}

// Bounce records a permanent delivery failure reported after the relay
// accepted message id (a DSN, a relay's bounce event) and, when the
// failure counts under SuppressBounces, puts the recipient on the
// suppression list. It returns the message's tenant. Errors: ErrNotFound
// (no sent message with that id), ErrBusy, ErrUnavailable.
func (f *Feedback) Bounce(ctx context.Context, id string, rep Report) (string, error) {
	suppressed := BounceSuppresses(f.o.SuppressBounces, "", 0, rep.Status)
	reason := ReasonDSN5xx
	if rep.Source == SourceRelayHook {
		reason = ReasonRelayBounce
	}
	return f.byID(ctx, id, StatusBounced, reason, rep, suppressed, SuppressedHardBounce)
}

// Complaint records a complaint about message id (an ARF report, a
// relay's complaint event) and puts the recipient on the suppression
// list. It returns the message's tenant. Errors as Bounce.
func (f *Feedback) Complaint(ctx context.Context, id string, rep Report) (string, error) {
	return f.byID(ctx, id, StatusOptedOut, ReasonComplaint, rep, true, SuppressedComplaint)
}

// Known reports whether id is a sent message this service knows; bounce
// listeners use it to refuse reports about unknown messages up front.
func (f *Feedback) Known(ctx context.Context, id string) (bool, error) {
	_, err := f.o.Store.Sent(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return true, nil
}

func (f *Feedback) byID(ctx context.Context, id string, st Status, reason string, rep Report, suppressed bool, why SuppressionReason) (string, error) {
	ref, err := f.o.Store.Sent(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		f.o.Metrics.Feedback(reason, FeedbackUnknown)
		return "", err
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if suppressed && f.o.Suppressions != nil {
		log := f.o.Logger.With("messageId", id)
		if ref.RecipientHash == "" {
			log.Warn("sent message has no recipient hash (sent before suppression existed); address not suppressed")
		} else {
			// Before the record: if this fails the reporter retries, and the
			// suppression must not be lost behind an already recorded bounce.
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := suppress(bctx, f.o.Suppressions, f.o.Auditor, f.o.Metrics, log, Suppression{
				Tenant: ref.Tenant, AddressHash: ref.RecipientHash, Reason: why, Source: rep.Source,
				MessageID: id, ReportID: rep.ID, Status: rep.Status, At: f.o.Now(),
			})
			cancel()
			if err != nil {
				return "", err
			}
		}
	}
	return ref.Tenant, f.record(ctx, ref.Tenant, id, st, reason)
}

// record moves the record of message id to st with reason, unless it is
// already further along, and publishes the event in any case (a consumer
// must learn of every opt-out).
func (f *Feedback) record(ctx context.Context, tenant, id string, st Status, reason string) error {
	if _, err := uuid.Parse(id); err != nil || !bus.ValidToken(tenant) {
		f.o.Metrics.Feedback(reason, FeedbackUnknown)
		return ErrNotFound
	}
	log := f.o.Logger.With("messageId", id, "tenant", tenant, "status", string(st), "reason", reason)
	unlock, err := f.lock(ctx, tenant, id)
	if err != nil {
		return err
	}
	defer unlock(context.WithoutCancel(ctx))

	// Bookkeeping survives the caller hanging up half-way.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := f.o.Now()
	rec, err := f.o.Store.Record(bctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		if st != StatusOptedOut {
			f.o.Metrics.Feedback(reason, FeedbackUnknown)
			return ErrNotFound
		}
		// The record expired, but the token proves the message was ours:
		// the opt-out still has to reach the journey service.
		log.Info("email feedback for a message without record; publishing only")
		rec = Record{ID: id, Tenant: tenant}
	case err != nil:
		return fmt.Errorf("%w: read record: %w", ErrUnavailable, err)
	default:
		if st.rank() > rec.Status.rank() || (st == rec.Status && rec.Reason == "") {
			rec.Status, rec.Reason, rec.UpdatedAt = st, reason, now
			if err := f.o.Store.UpdateRecord(bctx, rec, RecordTTL); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		err := f.o.Auditor.Record(bctx, audit.Entry{
			Tenant: tenant, Actor: audit.Actor{Type: audit.ActorService, ID: "email"},
			Action: ActionMessageFeedback, Object: audit.Object{Type: "EmailMessage", ID: id},
			Outcome: audit.OutcomeSuccess, Reason: string(st) + ":" + reason,
		})
		if err != nil {
			return fmt.Errorf("%w: audit feedback: %w", ErrUnavailable, err)
		}
	}
	// The journey service routes an opt-out by the idempotency key it sent
	// the message with; the record keeps only its hash.
	idemKey := ""
	switch ref, err := f.o.Store.Sent(bctx, id); {
	case err == nil && ref.Tenant == tenant:
		idemKey = ref.IdempotencyKey
	case err != nil && !errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ev := Event{
		MessageID: id, IdempotencyKey: idemKey, Tenant: tenant, Status: st, OccurredAt: now,
		Attempts: rec.Attempts, Reason: reason, Transport: rec.Transport,
	}
	if err := f.o.Events.Publish(bctx, ev); err != nil {
		return fmt.Errorf("%w: publish %s event: %w", ErrUnavailable, st, err)
	}
	f.o.Metrics.Feedback(reason, FeedbackRecorded)
	log.Info("email feedback recorded", "recordStatus", string(rec.Status))
	return nil
}

// lock takes the message's lock, waiting up to lockWait for a worker that
// is just finishing with it. Errors: ErrBusy, ErrUnavailable.
func (f *Feedback) lock(ctx context.Context, tenant, id string) (func(context.Context), error) {
	const lockWait = 3 * time.Second
	deadline := time.Now().Add(lockWait)
	for pause := 20 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		unlock, ok, err := f.o.Store.Lock(ctx, tenant, id, f.o.LockTTL)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: lock message: %w", ErrUnavailable, err)
		case ok:
			return unlock, nil
		case time.Now().Add(pause).After(deadline):
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			return nil, ErrBusy
		case <-time.After(pause):
		}
	}
}
