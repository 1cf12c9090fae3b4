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

// Statuses the email channel reports.
const (
	StatusQueued   Status = "queued"
	StatusSent     Status = "sent"
	StatusDeferred Status = "deferred"
	StatusBounced  Status = "bounced"
	StatusFailed   Status = "failed"
	// StatusOptedOut: the recipient unsubscribed from, or complained about,
	// the message after it was delivered (reason ReasonUnsubscribe or
	// ReasonComplaint). No further delivery follows.
	StatusOptedOut Status = "opted_out"
	// StatusHeld: kept back on purpose because it could not travel as the
	// tenant's policy requires (PHI and no verified TLS to the next hop, no
	// recipient key where encryption is required). The message is kept
	// sealed in EMAIL_HELD for the secure-message portal; nothing of it
	// was sent.
	StatusHeld Status = "held"
)

// Terminal reports whether no further delivery attempt follows s.
func (s Status) Terminal() bool {
	return s == StatusSent || s == StatusBounced || s == StatusFailed || s == StatusOptedOut || s == StatusHeld
}

// rank orders statuses so that a record never moves backwards: feedback
// that arrives after delivery (a bounce, an opt-out) moves it forward.
func (s Status) rank() int {
	switch s {
	case StatusSent, StatusFailed, StatusHeld:
		return 1
	case StatusBounced:
		return 2
	case StatusOptedOut:
		return 3
	}
	return 0
}

// Reasons are short machine codes for deferred, bounced and failed
// messages. They never contain PHI (no address, no server reply text).
const (
	ReasonExpired = "expired"  // the message's expiry passed before it could be delivered
	ReasonSMTP4xx = "smtp_4xx" // the relay answered a temporary 4xx
	ReasonSMTP5xx = "smtp_5xx" // the relay answered a permanent 5xx
	ReasonConnect = "connect"  // the relay could not be reached, or the connection broke or timed out
	ReasonTLS     = "tls"      // the TLS session could not be checked (should not happen)
	ReasonAuth    = "auth"     // SMTP AUTH was refused or not offered
	ReasonSession = "session"  // the relay refused the session (greeting, EHLO) with a 5xx
	// ReasonNoSTARTTLS: the next hop does not offer STARTTLS.
	ReasonNoSTARTTLS = "no_starttls"
	// ReasonTLSUnverified: the next hop's certificate did not verify (not
	// trusted, expired, or not valid for the host name).
	ReasonTLSUnverified = "tls_unverified"
	// ReasonTLSHandshake: the next hop refused every TLS version (≥ 1.2)
	// and cipher suite we offer.
	ReasonTLSHandshake = "tls_handshake"
	// ReasonMTASTS: the recipient domain's enforced MTA-STS policy (RFC
	// 8461) permits none of its MX hosts that could be reached verified.
	ReasonMTASTS = "mta_sts"
	// ReasonNoRecipientKey: the tenant's policy requires S/MIME or OpenPGP
	// encryption of PHI and no key is on record for the recipient.
	ReasonNoRecipientKey = "no_recipient_key"
	// ReasonEncryption: the message could not be encrypted for the
	// recipient's key on record (a record that no longer parses, an
	// algorithm the key does not allow). It is failed, never sent in clear
	// instead: replace or delete the key (admin API).
	ReasonEncryption = "encryption"
	// ReasonSuppressed: the recipient is on the tenant's suppression list
	// (an earlier hard bounce or complaint).
	ReasonSuppressed = "suppressed"
	// ReasonRecipient: the stored recipient could not be used (Send validates
	// it, so only a corrupt outbox message gets here).
	ReasonRecipient = "invalid_recipient"
	// ReasonTampered: the outbox message failed authentication (altered,
	// sealed for another message or tenant) or was not sealed at all; it is
	// refused and never delivered.
	ReasonTampered = "tampered"
	// ReasonDSN5xx: a delivery status notification (RFC 3464) reported a
	// permanent failure (Action: failed, Status 5.x.x) after the relay
	// accepted the message.
	ReasonDSN5xx = "dsn_5xx"
	// ReasonRelayBounce: the relay's webhook reported a hard bounce after
	// it accepted the message.
	ReasonRelayBounce = "relay_bounce"
	// ReasonUnsubscribe: the recipient used the one-click unsubscribe link.
	ReasonUnsubscribe = "unsubscribe"
	// ReasonComplaint: a mailbox provider reported a complaint (an ARF
	// feedback report, RFC 5965), e.g. the recipient marked it as spam.
	ReasonComplaint = "complaint"
)

// Unverifiable reports whether reason says the next hop cannot offer
// verified TLS at all (as opposed to a passing network failure): retrying
// will not help, so a message that needs verified TLS is held.
func Unverifiable(reason string) bool {
	switch reason {
	case ReasonNoSTARTTLS, ReasonTLSUnverified, ReasonTLSHandshake, ReasonMTASTS:
		return true
	}
	return false
}

// Security says whether a message's content may carry PHI, which decides
// how it may travel (see Policy).
type Security int

// Security values, as in carenotify.email.v1.Security.
const (
	// SecurityUnspecified is treated as SecurityPHI (fail safe).
	SecurityUnspecified Security = iota
	SecurityPHI
	SecurityNoPHI
)

// PHI reports whether the content may carry PHI: anything but SecurityNoPHI.
func (s Security) PHI() bool { return s != SecurityNoPHI }

// Purpose is why a message is sent, as in carenotify.email.v1.Purpose.
type Purpose int

// Purpose values.
const (
	// PurposeUnspecified is treated as PurposeTreatment.
	PurposeUnspecified Purpose = iota
	PurposeTreatment
	PurposeOperations
	PurposeMarketing
)

// String returns the purpose's lower-case name ("treatment" for unspecified).
func (p Purpose) String() string {
	switch p {
	case PurposeOperations:
		return "operations"
	case PurposeMarketing:
		return "marketing"
	}
	return "treatment"
}

// ParsePurpose returns the purpose named s (treatment, operations, marketing).
func ParsePurpose(s string) (Purpose, bool) {
	for _, p := range []Purpose{PurposeTreatment, PurposeOperations, PurposeMarketing} {
		if p.String() == s {
			return p, true
		}
	}
	return 0, false
}

// Message is one email to one recipient as it waits in the outbox.
// To, Subject, HTMLBody and TextBody are PHI: never log them or put them in
// an error.
type Message struct {
	// ID is the message id (UUIDv7).
	ID string
	// Tenant the message is sent for.
	Tenant string
	// IdempotencyKey is the caller's key. Not PHI.
	IdempotencyKey string
	// To is the recipient's bare address. PHI.
	To string
	// Subject is the subject line. PHI.
	Subject string
	// HTMLBody is the HTML body. PHI.
	HTMLBody string
	// TextBody is the plain-text body. PHI.
	TextBody string
	// Security says whether the content carries PHI.
	Security Security
	// Purpose is why the message is sent.
	Purpose Purpose
	// ExpiresAt is when delivery is given up.
	ExpiresAt time.Time
	// QueuedAt is when Send accepted the message.
	QueuedAt time.Time
	// JourneyInstance and Step say what produced the message. Not PHI.
	JourneyInstance, Step string
}

// Transport records how a message crossed the network. No PHI.
type Transport struct {
	// TLSVersion is the negotiated version, e.g. "TLS1.3".
	TLSVersion string
	// TLSVerified is true when the next hop's certificate was verified.
	TLSVerified bool
	// NextHop is the host name of the relay or MX host.
	NextHop string
	// SMIME and PGP are true when the body was encrypted for the
	// recipient's key (S/MIME enveloped-data, PGP/MIME).
	SMIME, PGP bool
	// Portal is true when the message went to the secure-message portal
	// and only a PHI-free notice was emailed (not built yet).
	Portal bool
	// RequireTLS is true when the next hop accepted the message with the
	// REQUIRETLS option (RFC 8689).
	RequireTLS bool
	// Held is true when the message did not travel (StatusHeld): NextHop
	// is then the hop that could not offer the TLS it needs, if one was
	// tried.
	Held bool
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
	// UpdatedAt is when the record last changed.
	UpdatedAt time.Time
	// ExpiresAt is when delivery is given up.
	ExpiresAt time.Time
	// IdempotencyKeyHash is the hex SHA-256 of the caller's idempotency key.
	IdempotencyKeyHash string
	// Committed is true once the message is known to be in the outbox.
	Committed bool
	// Sending is true while a delivery attempt is under way: set before
	// the SMTP transaction, cleared with its outcome. Found set by a later
	// attempt, it means the earlier one ended without recording its
	// outcome (the process died): the relay may have accepted the message.
	Sending bool
	// UncertainResends counts attempts made after such an unrecorded one:
	// each may have delivered the message a second time (with the same
	// Message-ID).
	UncertainResends int
	// Transport is set once the message was sent or held.
	Transport Transport
}

// SentRef says whose a sent message is. It holds no PHI.
type SentRef struct {
	ID, Tenant, IdempotencyKey string
	// RecipientHash is the keyed hash of the recipient's address
	// (Suppressions.Hash), so that a later bounce or complaint can suppress
	// the address; "" for messages sent before it was kept.
	RecipientHash string
}

// Event is a delivery status change, published on the DELIVERY stream.
// It holds no PHI.
type Event struct {
	// MessageID, IdempotencyKey and Tenant identify the message.
	MessageID, IdempotencyKey, Tenant string
	// Status is the new status.
	Status Status
	// OccurredAt is when the status changed.
	OccurredAt time.Time
	// Attempts counts delivery attempts made so far.
	Attempts int
	// Reason is the machine code for deferred, bounced and failed.
	Reason string
	// Transport is set for sent, and for held (Held, NextHop).
	Transport Transport
}

// Claimed is what Store.Claim did.
type Claimed struct {
	// Stored is the message id the idempotency key holds afterwards.
	Stored string
	// Claimed is true when this call stored it (and not another Send).
	Claimed bool
	// Suppressed, when not nil, is the suppression entry that refused the
	// recipient: the claim was undone and no record written.
	Suppressed *Suppression
}

// Lease is what Store.Begin found: the lock on one message, its record and
// its recipient's suppression entry.
type Lease struct {
	// Held is false when another worker holds the message's lock; the
	// other fields are then unset.
	Held bool
	// Token releases the lock (Store.Unlock, Store.Finish).
	Token string
	// Found is false when the message has no record.
	Found bool
	// Record is the message's record when Found.
	Record Record
	// Suppressed is the recipient's suppression entry, nil when there is
	// none or none was asked for.
	Suppressed *Suppression
	// Released is set once Finish has released the lock.
	Released bool
}

// Store keeps idempotency keys and delivery records (Redis). The
// operations of a delivered message take few round trips: Claim and
// Commit in Send; Begin, UpdateRecord (the attempt mark) and Finish in
// the worker.
type Store interface {
	// Claim stores r.ID under the idempotency key r.IdempotencyKeyHash
	// unless the key is already taken and, when this call took it, checks
	// the suppression entry of suppHash ("" checks none) and writes the
	// new record r, all living for ttl, in one step. A suppressed
	// recipient undoes the claim and writes nothing.
	Claim(ctx context.Context, r Record, suppHash string, ttl time.Duration) (Claimed, error)
	// Commit marks the record as queued for good and makes both the record
	// and the idempotency key live for ttl, if the key still holds id;
	// ErrClaimLost when it does not (the claim expired, another Send may
	// have taken the key).
	Commit(ctx context.Context, tenant, id, keyHash string, ttl time.Duration) error
	// Forget deletes the idempotency key (if it still holds id) and the
	// record, after the message could not be queued.
	Forget(ctx context.Context, tenant, id, keyHash string) error
	// Record returns the record of a message, or ErrNotFound.
	Record(ctx context.Context, tenant, id string) (Record, error)
	// UpdateRecord overwrites the status fields of an existing record and
	// makes it live for ttl.
	UpdateRecord(ctx context.Context, r Record, ttl time.Duration) error
	// RememberSent keeps, for ttl, whose a sent message is: its tenant and
	// the caller's idempotency key (which DELIVERY events carry and the
	// journey service routes opt-outs by). Neither is PHI.
	RememberSent(ctx context.Context, s SentRef, ttl time.Duration) error
	// Sent returns what RememberSent kept for message id, or ErrNotFound.
	// Bounces name a message by id only (the VERP address has no room for
	// the tenant).
	Sent(ctx context.Context, id string) (SentRef, error)
	// Lock takes a short lock on one message so that only one worker
	// delivers it; ok is false when another holds it. unlock releases it.
	Lock(ctx context.Context, tenant, id string, ttl time.Duration) (unlock func(context.Context), ok bool, err error)
	// Begin takes the message's lock (as Lock) and reads its record and,
	// when suppHash is not "", the recipient's suppression entry, in one
	// round trip.
	Begin(ctx context.Context, tenant, id, suppHash string, ttl time.Duration) (Lease, error)
	// Unlock releases a lock Begin took, if token still holds it.
	Unlock(ctx context.Context, tenant, id, token string)
	// Finish writes r as UpdateRecord does, the sent index when sent is
	// not nil (as RememberSent), and releases the lock of token ("" keeps
	// it), in one round trip.
	Finish(ctx context.Context, r Record, ttl time.Duration, sent *SentRef, token string) error
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

// Mailer delivers one message to the next hop (the SMTP relay, or the
// recipient domain's MX). Its errors are *DeliveryError (or the context's
// error when ctx ended first) and never contain PHI. It never sends over a
// connection weaker than o.TLS allows.
type Mailer interface {
	Deliver(ctx context.Context, o Outgoing) (Transport, error)
	// Destination names the host o goes to (the relay, or the recipient
	// domain's MX), lower case, for per-destination limits. Errors are
	// *DeliveryError, as Deliver's.
	Destination(ctx context.Context, o Outgoing) (string, error)
}

// Holder keeps messages that are held (StatusHeld), sealed, for the
// secure-message portal (JetStream EMAIL_HELD).
type Holder interface {
	// Hold stores m and returns once the stream has acknowledged it.
	Hold(ctx context.Context, m Message, reason string) error
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
	case StatusBounced:
		return deliveryv1.Status_STATUS_BOUNCED
	case StatusFailed:
		return deliveryv1.Status_STATUS_FAILED
	case StatusOptedOut:
		return deliveryv1.Status_STATUS_OPTED_OUT
	case StatusHeld:
		return deliveryv1.Status_STATUS_HELD
	}
	return deliveryv1.Status_STATUS_UNSPECIFIED
}

// Proto maps the transport to its carenotify.delivery.v1 message, nil for
// none.
func (t Transport) Proto() *deliveryv1.Transport {
	if t == (Transport{}) {
		return nil
	}
	return &deliveryv1.Transport{
		TlsVersion: t.TLSVersion, TlsVerified: t.TLSVerified, NextHop: t.NextHop,
		Smime: t.SMIME, Pgp: t.PGP, Portal: t.Portal, RequireTls: t.RequireTLS, Held: t.Held,
	}
}
