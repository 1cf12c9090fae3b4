package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/carenotify/carenotify/services/sms/internal/metrics"
)

// Receipt is a delivery receipt (a status callback) for one message. No
// PHI: the number the provider posts along is not kept.
type Receipt struct {
	// Tenant and MessageID name the message (from the callback URL).
	Tenant, MessageID string
	// ProviderID is the provider's message id the receipt is for.
	ProviderID string
	// ProviderStatus is the provider's status word: Twilio's
	// MessageStatus (queued, sending, sent, delivered, undelivered,
	// failed, read, canceled, ...).
	ProviderStatus string
	// ErrorCode is the provider's error code, 0 when none.
	ErrorCode int
}

// Receipt outcomes, the outcome label of sms_callbacks_total{kind="status"}.
const (
	ReceiptRecorded = "recorded" // the record moved forward and the event is out
	ReceiptIgnored  = "ignored"  // an intermediate or older status; the record stays
	ReceiptUnknown  = "unknown"  // no such message, or another provider id
)

// ErrBusy: the message is locked by a worker or another receipt; the
// caller should answer so that the provider retries.
var ErrBusy = errBusy

// ReceiptsOptions configure Receipts.
type ReceiptsOptions struct {
	Store   Store
	Events  Events
	Auditor Auditor
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// LockTTL is how long a receipt holds the message's lock.
	LockTTL time.Duration
	// LockWait is how long a receipt waits for a worker still recording
	// the send (the provider can call back before the worker has stored
	// the provider's answer).
	LockWait time.Duration
	Now      func() time.Time
}

// Receipts applies delivery receipts to delivery records.
type Receipts struct {
	o ReceiptsOptions
}

// NewReceipts returns Receipts.
func NewReceipts(o ReceiptsOptions) *Receipts {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Receipts{o: o}
}

// statusOf maps Twilio's MessageStatus to ours; ok false for statuses
// that say nothing new (accepted, queued, sending, scheduled, ...).
func statusOf(providerStatus string) (Status, bool) {
	switch providerStatus {
	case "sent":
		return StatusSent, true
	case "delivered", "read":
		return StatusDelivered, true
	case "undelivered":
		return StatusUndelivered, true
	case "failed", "canceled":
		return StatusFailed, true
	}
	return "", false
}

// Apply records r. The record only moves forward (queued → sent →
// delivered | undelivered | failed); a receipt that would move it back or
// sideways is ignored. Errors: ErrBusy (retry), ErrUnavailable.
func (rs *Receipts) Apply(ctx context.Context, r Receipt) (string, error) {
	st, ok := statusOf(r.ProviderStatus)
	log := rs.o.Logger.With("messageId", r.MessageID, "tenant", r.Tenant, "providerId", r.ProviderID)
	if !ok {
		log.Debug("receipt ignored", "providerStatus", r.ProviderStatus)
		return ReceiptIgnored, nil
	}
	unlock, err := rs.lock(ctx, r.Tenant, r.MessageID)
	if err != nil {
		return "", err
	}
	defer unlock(context.WithoutCancel(ctx))

	rec, err := rs.o.Store.Record(ctx, r.Tenant, r.MessageID)
	switch {
	case errors.Is(err, ErrNotFound):
		log.Warn("receipt for an unknown message")
		return ReceiptUnknown, nil
	case err != nil:
		return "", fmt.Errorf("%w: read record: %w", ErrUnavailable, err)
	case rec.ProviderID != "" && rec.ProviderID != r.ProviderID:
		log.Warn("receipt names another provider id than the message's")
		return ReceiptUnknown, nil
	case st.rank() <= rec.Status.rank():
		log.Debug("receipt does not move the record forward", "status", string(rec.Status), "providerStatus", r.ProviderStatus)
		return ReceiptIgnored, nil
	}
	rec.Status, rec.UpdatedAt, rec.ProviderCode, rec.Reason = st, rs.o.Now(), r.ErrorCode, ""
	if rec.ProviderID == "" {
		rec.ProviderID = r.ProviderID
	}
	if st == StatusUndelivered || st == StatusFailed {
		rec.Reason = ReasonReceipt
	}
	if err := rs.o.Store.UpdateRecord(ctx, rec, RecordTTL); err != nil {
		return "", fmt.Errorf("%w: update record: %w", ErrUnavailable, err)
	}
	if st != StatusSent {
		if err := auditOutcome(ctx, rs.o.Auditor, rec); err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if err := publishRecord(ctx, rs.o.Events, rs.o.Logger, rec); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	rs.o.Metrics.Delivery(string(st))
	log.Info("sms receipt", "status", string(st), "providerCode", r.ErrorCode)
	return ReceiptRecorded, nil
}

// lock takes the message's lock, waiting up to LockWait for a worker.
func (rs *Receipts) lock(ctx context.Context, tenant, id string) (func(context.Context), error) {
	deadline := time.Now().Add(rs.o.LockWait)
	for delay := 20 * time.Millisecond; ; delay *= 2 {
		unlock, ok, err := rs.o.Store.Lock(ctx, tenant, id, rs.o.LockTTL)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: lock message: %w", ErrUnavailable, err)
		case ok:
			return unlock, nil
		case time.Now().Add(delay).After(deadline):
			return nil, ErrBusy
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
