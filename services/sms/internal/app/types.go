package app

import (
	"context"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
)

// Status is where a message is in its life. The values are the lower-case
// names used in subjects, records and metric labels.
type Status string

// Statuses the SMS channel reports.
const (
	// StatusQueued: stored in the outbox, not yet accepted by the provider.
	StatusQueued Status = "queued"
	// StatusDeferred: the provider could not take it now (429, 5xx, no
	// connection); it is retried with backoff until it expires.
	StatusDeferred Status = "deferred"
	// StatusSent: the provider accepted it (and, from a receipt, handed it
	// to the carrier).
	StatusSent Status = "sent"
	// StatusDelivered: the carrier confirmed delivery to the handset.
	StatusDelivered Status = "delivered"
	// StatusUndelivered: the carrier could not deliver it.
	StatusUndelivered Status = "undelivered"
	// StatusFailed: refused by the provider (an invalid or unsubscribed
	// number, reason twilio_<code>), expired, or tampered with; never sent.
	StatusFailed Status = "failed"
	// StatusOptedOut and StatusOptedIn are keyword events (STOP, START),
	// never a message's record status.
	StatusOptedOut Status = "opted_out"
	StatusOptedIn  Status = "opted_in"
)

// Terminal reports whether no further delivery attempt follows s. A sent
// message may still get a receipt (delivered, undelivered, failed).
func (s Status) Terminal() bool {
	return s == StatusSent || s == StatusDelivered || s == StatusUndelivered || s == StatusFailed
}

// rank orders statuses so that a record never moves backwards: receipts
// arrive out of order (Twilio may post "sent" after "delivered").
func (s Status) rank() int {
	switch s {
	case StatusSent:
		return 1
	case StatusDelivered, StatusUndelivered, StatusFailed:
		return 2
	}
	return 0
}

// Reasons are short machine codes for deferred, failed and undelivered
// messages. They never contain PHI.
const (
	ReasonExpired  = "expired"      // the expiry passed before the provider accepted the message
	ReasonConnect  = "connect"      // the provider could not be reached, or the connection broke or timed out
	ReasonThrottle = "throttled"    // the provider answered 429 Too Many Requests
	ReasonProvider = "provider_5xx" // the provider answered a 5xx
	ReasonAuth     = "auth"         // the provider refused our credentials (401/403, Twilio 20003)
	// ReasonInvalidNumber: the provider says the number is not a valid
	// phone number (Twilio 21211, 21614).
	ReasonInvalidNumber = "invalid_number"
	// ReasonUnsubscribed: the recipient replied STOP to this sender
	// earlier; the provider refuses to text them (Twilio 21610).
	ReasonUnsubscribed = "unsubscribed"
	// ReasonRejected: another 4xx the provider gave (the Twilio error code
	// is in the record's ProviderCode).
	ReasonRejected = "rejected"
	// ReasonTampered: the outbox message failed authentication or was not
	// sealed; it is refused and never sent.
	ReasonTampered = "tampered"
	// ReasonReceipt: a delivery receipt reported failed or undelivered
	// (the carrier's error code is in ProviderCode).
	ReasonReceipt = "carrier"
)

// Message is one text message as it waits in the outbox. To and Body are
// PHI: never log them or put them in an error.
type Message struct {
	// ID is the message id (UUIDv7).
	ID string
	// Tenant the message is sent for.
	Tenant string
	// IdempotencyKey is the caller's key. Not PHI.
	IdempotencyKey string
	// To is the recipient in E.164 form. PHI.
	To string
	// Body is the text. PHI.
	Body string
	// Segments is how many SMS segments Body takes.
	Segments int
	// ExpiresAt is when delivery is given up.
	ExpiresAt time.Time
	// QueuedAt is when Send accepted the message.
	QueuedAt time.Time
	// JourneyInstance and Step say what produced the message. Not PHI.
	JourneyInstance, Step string
}

// Record is the delivery record of one message. It holds no PHI.
type Record struct {
	// ID is the message id.
	ID string
	// Tenant of the message.
	Tenant string
	// Status is the current status.
	Status Status
	// Attempts counts delivery attempts made so far.
	Attempts int
	// Reason is the machine code of the last failure, if any.
	Reason string
	// ProviderCode is the provider's error code of the last failure (a
	// Twilio error code such as 21211, or a carrier error code from a
	// receipt), 0 when none.
	ProviderCode int
	// UpdatedAt is when the record last changed.
	UpdatedAt time.Time
	// ExpiresAt is when delivery is given up.
	ExpiresAt time.Time
	// IdempotencyKeyHash is the hex SHA-256 of the caller's idempotency key.
	IdempotencyKeyHash string
	// IdempotencyKey is the caller's key (not PHI), kept so that receipts
	// can publish events journeys correlate by.
	IdempotencyKey string
	// Committed is true once the message is known to be in the outbox.
	Committed bool
	// ProviderID is the provider's message id (Twilio SID) once accepted.
	ProviderID string
	// Segments is how many segments the body takes.
	Segments int
}

// Event is a delivery status change or a keyword, published on the
// DELIVERY stream. It holds no PHI.
type Event struct {
	// MessageID, IdempotencyKey and Tenant identify the message. For a
	// keyword MessageID is the id given to the inbound message.
	MessageID, IdempotencyKey, Tenant string
	// Status is the new status.
	Status Status
	// OccurredAt is when the status changed.
	OccurredAt time.Time
	// Attempts counts delivery attempts made so far.
	Attempts int
	// Reason is the machine code for deferred, failed and undelivered.
	Reason string
	// ProviderID is the provider's message id (the inbound message's for a
	// keyword).
	ProviderID string
	// RecipientHash is the keyed hash of the number (pkg/phone), set on
	// keyword events.
	RecipientHash string
}

// Store keeps idempotency keys and delivery records (Redis).
type Store interface {
	// ClaimIdempotencyKey stores id under the key's hash unless the hash is
	// already there; it returns the id stored under it and whether this
	// call stored it. The claim lives for ttl.
	ClaimIdempotencyKey(ctx context.Context, tenant, keyHash, id string, ttl time.Duration) (stored string, claimed bool, err error)
	// CreateRecord writes a new record that lives for ttl.
	CreateRecord(ctx context.Context, r Record, ttl time.Duration) error
	// Commit marks the record as queued for good and makes both the record
	// and the idempotency key live for ttl.
	Commit(ctx context.Context, tenant, id, keyHash string, ttl time.Duration) error
	// Forget deletes the idempotency key (if it still holds id) and the
	// record, after the message could not be queued.
	Forget(ctx context.Context, tenant, id, keyHash string) error
	// Record returns the record of a message, or ErrNotFound.
	Record(ctx context.Context, tenant, id string) (Record, error)
	// UpdateRecord overwrites the status fields of an existing record and
	// makes it live for ttl.
	UpdateRecord(ctx context.Context, r Record, ttl time.Duration) error
	// Lock takes a short lock on one message so that only one worker
	// handles it; ok is false when another holds it. unlock releases it.
	Lock(ctx context.Context, tenant, id string, ttl time.Duration) (unlock func(context.Context), ok bool, err error)
}

// Outbox is the durable work queue behind Send (JetStream).
type Outbox interface {
	// Enqueue stores m and returns once the queue has acknowledged it.
	Enqueue(ctx context.Context, m Message) error
}

// Events publishes delivery status events (JetStream DELIVERY stream).
type Events interface {
	// Publish stores e and returns once the stream has acknowledged it.
	Publish(ctx context.Context, e Event) error
}

// Auditor appends to the audit trail; Record returns once the record is
// durable. *audit.Writer implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Outgoing is what the provider is asked to send. To and Body are PHI.
type Outgoing struct {
	// To is the recipient (E.164).
	To string
	// From is the sender: an E.164 number, or a Twilio messaging service
	// SID ("MG…").
	From string
	// Body is the text.
	Body string
	// StatusCallback is the URL the provider posts delivery receipts to;
	// empty for none. It names tenant and message id, no PHI.
	StatusCallback string
}

// Provider hands one message to the SMS provider. Its errors are
// *ProviderError (or the context's error when ctx ended first) and never
// contain PHI.
type Provider interface {
	// Send returns the provider's message id once it accepted the message.
	Send(ctx context.Context, o Outgoing) (providerID string, err error)
}

// Proto maps the status to its carenotify.delivery.v1 value.
func (s Status) Proto() deliveryv1.Status {
	switch s {
	case StatusQueued:
		return deliveryv1.Status_STATUS_QUEUED
	case StatusSent:
		return deliveryv1.Status_STATUS_SENT
	case StatusDeferred:
		return deliveryv1.Status_STATUS_DEFERRED
	case StatusDelivered:
		return deliveryv1.Status_STATUS_DELIVERED
	case StatusUndelivered:
		return deliveryv1.Status_STATUS_UNDELIVERED
	case StatusFailed:
		return deliveryv1.Status_STATUS_FAILED
	case StatusOptedOut:
		return deliveryv1.Status_STATUS_OPTED_OUT
	case StatusOptedIn:
		return deliveryv1.Status_STATUS_OPTED_IN
	}
	return deliveryv1.Status_STATUS_UNSPECIFIED
}
