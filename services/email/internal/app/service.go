package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
)

// RecordTTL is how long delivery records and idempotency keys are kept.
const RecordTTL = 30 * 24 * time.Hour

// pendingTTL is how long an idempotency key and record live before Send
// knows the message is in the outbox: if the process dies in between, the
// key frees itself and the caller's retry queues the message (until then
// the retry is answered UNAVAILABLE, in progress). A message whose claim
// expired before it was committed (by Send, or by the worker taking it) is
// never delivered, so a short TTL cannot send a message twice.
const pendingTTL = 20 * time.Second

// SendRequest is one email to one recipient, as the caller gave it.
// To, Subject, HTMLBody and TextBody are PHI.
type SendRequest struct {
	Tenant, IdempotencyKey          string
	To, Subject, HTMLBody, TextBody string
	Security                        Security
	Purpose                         Purpose
	// ExpiresAt is the caller's expiry; zero means the service default.
	ExpiresAt             time.Time
	JourneyInstance, Step string
}

// SendResult tells the caller the message is stored.
type SendResult struct {
	MessageID string
	Duplicate bool
	Status    Status
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Store  Store
	Outbox Outbox
	Events Events
	// Suppressions, when set, refuses Sends to suppressed addresses.
	Suppressions Suppressions
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
	// DefaultExpiry applies when a request sets no expiry.
	DefaultExpiry time.Duration
	// MaxExpiry bounds how far ahead an expiry may be: the outbox stream's
	// retention, after which a queued message would vanish unsent.
	MaxExpiry time.Duration
	// MaxBytes caps subject plus bodies.
	MaxBytes int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service accepts messages and reports their delivery records.
type Service struct {
	o ServiceOptions
}

// NewService returns a Service.
func NewService(o ServiceOptions) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

// HashIdempotencyKey returns the hex SHA-256 of key, the form in which keys
// are stored.
func HashIdempotencyKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Send validates req, stores it durably in the outbox and returns its
// message id. A repeated idempotency key returns the first message's id and
// status and queues nothing. Errors: *ValidationError, *SuppressedError
// (the recipient is on the tenant's suppression list; nothing stored),
// ErrUnavailable (nothing stored; safe to retry), ErrInProgress.
func (s *Service) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	now := s.o.Now()
	tenantLabel := metrics.InvalidTenant
	if bus.ValidToken(req.Tenant) {
		tenantLabel = req.Tenant
	}
	if err := s.validate(req, now); err != nil {
		s.o.Metrics.Send(tenantLabel, metrics.OutcomeInvalid)
		return SendResult{}, err
	}
	res, err := s.send(ctx, req, now)
	switch {
	case errors.Is(err, ErrSuppressed):
		s.o.Metrics.Send(tenantLabel, metrics.OutcomeSuppressed)
	case err != nil:
		s.o.Metrics.Send(tenantLabel, metrics.OutcomeUnavailable)
	case res.Duplicate:
		s.o.Metrics.Send(tenantLabel, metrics.OutcomeDuplicate)
	default:
		s.o.Metrics.Send(tenantLabel, metrics.OutcomeQueued)
	}
	return res, err
}

func (s *Service) send(ctx context.Context, req SendRequest, now time.Time) (SendResult, error) {
	keyHash := HashIdempotencyKey(req.IdempotencyKey)
	uid, err := uuid.NewV7()
	if err != nil {
		return SendResult{}, fmt.Errorf("%w: new message id: %w", ErrUnavailable, err)
	}
	id := uid.String()
	expires := req.ExpiresAt
	if expires.IsZero() {
		expires = now.Add(s.o.DefaultExpiry)
	}
	rec := Record{
		ID: id, Tenant: req.Tenant, Status: StatusQueued, UpdatedAt: now,
		ExpiresAt: expires, IdempotencyKeyHash: keyHash,
	}
	suppHash := ""
	if s.o.Suppressions != nil {
		suppHash = s.o.Suppressions.Hash(req.Tenant, req.To)
	}
	// One round trip: the claim, then (only for a new key, so that a
	// repeated key answers with the first message even when its recipient
	// has been suppressed since) the suppression check and the record.
	c, err := s.o.Store.Claim(ctx, rec, suppHash, pendingTTL)
	switch {
	case err != nil:
		return SendResult{}, fmt.Errorf("%w: claim idempotency key: %w", ErrUnavailable, err)
	case !c.Claimed:
		return s.duplicate(ctx, req.Tenant, c.Stored)
	case c.Suppressed != nil:
		s.o.Logger.Info("email refused: recipient suppressed", "tenant", req.Tenant, "addressHash", suppHash,
			"suppression", string(c.Suppressed.Reason), "evidence", c.Suppressed.MessageID)
		return SendResult{}, &SuppressedError{Reason: c.Suppressed.Reason}
	}
	msg := Message{
		ID: id, Tenant: req.Tenant, IdempotencyKey: req.IdempotencyKey,
		To: req.To, Subject: req.Subject, HTMLBody: req.HTMLBody, TextBody: req.TextBody,
		Security: req.Security, Purpose: req.Purpose, ExpiresAt: expires, QueuedAt: now,
		JourneyInstance: req.JourneyInstance, Step: req.Step,
	}
	if err := s.o.Outbox.Enqueue(ctx, msg); err != nil {
		s.forget(ctx, req.Tenant, id, keyHash)
		return SendResult{}, fmt.Errorf("%w: enqueue: %w", ErrUnavailable, err)
	}

	// The message is durably queued; it is ours once the claim is committed.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	log := s.o.Logger.With("messageId", id, "tenant", req.Tenant)
	switch err := s.o.Store.Commit(bctx, req.Tenant, id, keyHash, RecordTTL); {
	case errors.Is(err, ErrClaimLost):
		// Queueing took longer than the pending claim lives: the key may
		// belong to a retry by now. The worker will drop this message; the
		// caller's retry gets the key's message.
		log.Warn("idempotency claim expired while queueing; message will be dropped")
		return SendResult{}, ErrInProgress
	case err != nil:
		// Not answered as queued: its record would expire with the claim.
		// The worker commits it if it takes the message first; the
		// caller's retry then gets it as a duplicate, otherwise (claim
		// expired) a new message, and this one is dropped.
		log.Warn("commit record", "err", err)
		return SendResult{}, fmt.Errorf("%w: commit record: %w", ErrUnavailable, err)
	}
	ev := Event{
		MessageID: id, IdempotencyKey: req.IdempotencyKey, Tenant: req.Tenant,
		Status: StatusQueued, OccurredAt: now,
	}
	if err := s.o.Events.Publish(bctx, ev); err != nil {
		log.Warn("publish queued event", "err", err)
	}
	log.Info("email queued", "expiresAt", expires)
	return SendResult{MessageID: id, Status: StatusQueued}, nil
}

// duplicate answers a Send whose idempotency key already holds id.
func (s *Service) duplicate(ctx context.Context, tenant, id string) (SendResult, error) {
	rec, err := s.o.Store.Record(ctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound), err == nil && !rec.Committed:
		return SendResult{}, ErrInProgress
	case err != nil:
		return SendResult{}, fmt.Errorf("%w: read record: %w", ErrUnavailable, err)
	}
	s.o.Logger.Info("email duplicate", "messageId", id, "tenant", tenant)
	return SendResult{MessageID: id, Duplicate: true, Status: rec.Status}, nil
}

// forget undoes a claim whose message could not be queued, so that a retry
// with the same key starts afresh. It runs even when ctx has ended.
func (s *Service) forget(ctx context.Context, tenant, id, keyHash string) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.o.Store.Forget(bctx, tenant, id, keyHash); err != nil {
		// The pending claim expires by itself after pendingTTL.
		s.o.Logger.Warn("forget unqueued message", "messageId", id, "tenant", tenant, "err", err)
	}
}

// GetStatus returns the delivery record of a message. Errors:
// *ValidationError, ErrNotFound, ErrUnavailable.
func (s *Service) GetStatus(ctx context.Context, tenant, id string) (Record, error) {
	var vs []FieldViolation
	if !bus.ValidToken(tenant) {
		vs = append(vs, FieldViolation{"tenant", tenantRule})
	}
	if _, err := uuid.Parse(id); err != nil {
		vs = append(vs, FieldViolation{"message_id", "must be a message id returned by Send (a UUID)"})
	}
	if len(vs) > 0 {
		return Record{}, &ValidationError{Violations: vs}
	}
	rec, err := s.o.Store.Record(ctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Record{}, err
	case err != nil:
		return Record{}, fmt.Errorf("%w: read record: %w", ErrUnavailable, err)
	}
	return rec, nil
}
