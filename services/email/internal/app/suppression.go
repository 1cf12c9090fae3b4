package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
)

// SuppressionReason says why an address is on a tenant's suppression list.
type SuppressionReason string

// Suppression reasons.
const (
	// SuppressedHardBounce: the address bounced permanently, at SMTP time
	// (a 5xx to the transaction) or later (a DSN with Status 5.x.x).
	SuppressedHardBounce SuppressionReason = "hard_bounce"
	// SuppressedComplaint: a mailbox provider reported a complaint (an ARF
	// report) about a message to the address.
	SuppressedComplaint SuppressionReason = "complaint"
	// SuppressedRequest: the recipient asked, by another channel (a phone
	// call, the front desk), not to be emailed; added by an operator.
	SuppressedRequest SuppressionReason = "request"
	// SuppressedOther: an operator's decision for another reason (the
	// address belongs to someone else, a legal hold, ...).
	SuppressedOther SuppressionReason = "other"
)

// ParseSuppressionReason returns the reason named s.
func ParseSuppressionReason(s string) (SuppressionReason, bool) {
	switch r := SuppressionReason(s); r {
	case SuppressedHardBounce, SuppressedComplaint, SuppressedRequest, SuppressedOther:
		return r, true
	}
	return "", false
}

// Suppression sources: which kind of evidence put the address on the list.
const (
	SourceSMTP      = "smtp"       // a 5xx reply during our own SMTP transaction
	SourceDSN       = "dsn"        // an RFC 3464 DSN on the bounce listener
	SourceARF       = "arf"        // an RFC 5965 complaint report on the bounce listener
	SourceRelayHook = "relay_hook" // a relay's bounce/complaint webhook
	SourceAdmin     = "admin"      // an operator, through the admin API
)

// Suppression is one entry of a tenant's suppression list. It holds no
// PHI: the address is kept only as a keyed hash.
type Suppression struct {
	// Tenant whose list it is.
	Tenant string
	// AddressHash is the keyed hash of the normalised address (see
	// Suppressions.Hash).
	AddressHash string
	// Reason says why the address is suppressed.
	Reason SuppressionReason
	// Source says which kind of evidence it was (Source* constants).
	Source string
	// MessageID is the evidence: the id of our message that bounced or was
	// complained about.
	MessageID string
	// ReportID is the id of the report (the DSN's or ARF report's
	// Message-ID, a relay's feedback id), "" when there was none (SMTP).
	ReportID string
	// Status is the SMTP enhanced status code of a bounce ("5.1.1"), or
	// the reply code when none was given; the complaint's feedback type.
	Status string
	// At is when the address was added.
	At time.Time
}

// Suppressions is a per-tenant suppression list (Redis).
type Suppressions interface {
	// Hash returns the keyed hash under which address is kept for tenant.
	// The address is normalised first (trimmed, lower-cased).
	Hash(tenant, address string) string
	// Add puts s on its tenant's list unless its hash is there already (the
	// first evidence stays); added says which.
	Add(ctx context.Context, s Suppression) (added bool, err error)
	// Get returns the entry of hash, or ErrNotFound.
	Get(ctx context.Context, tenant, hash string) (Suppression, error)
	// List returns up to limit entries of tenant, oldest first, starting
	// after cursor ("" for the start); next is "" after the last page.
	List(ctx context.Context, tenant, cursor string, limit int) (entries []Suppression, next string, err error)
	// Remove takes hash off the list; removed is false when it was not on
	// it.
	Remove(ctx context.Context, tenant, hash string) (removed bool, err error)
}

// SuppressedError refuses a Send to an address on the tenant's
// suppression list. It names the reason, never the address.
type SuppressedError struct {
	Reason SuppressionReason
}

// Error describes the refusal without the address.
func (e *SuppressedError) Error() string {
	return "recipient is on the tenant's suppression list (" + string(e.Reason) + "); remove it with the admin API to send again"
}

// ErrSuppressed matches every *SuppressedError with errors.Is.
var ErrSuppressed = errors.New("recipient suppressed")

// Is makes errors.Is(err, ErrSuppressed) hold.
func (e *SuppressedError) Is(target error) bool { return target == ErrSuppressed }

// Which bounces suppress the address (EMAIL_SUPPRESS_BOUNCES).
const (
	// SuppressAddress: only failures that are about the recipient's address
	// (see AddressFailure). A relay refusing to relay, a content or policy
	// rejection (5.7.x), or a problem with our sender address suppresses
	// nobody.
	SuppressAddress = "address"
	// SuppressPermanent: every permanent failure (any 5xx, any DSN 5.x.x).
	SuppressPermanent = "permanent"
	// SuppressOff: bounces are recorded but suppress nobody (complaints
	// still do).
	SuppressOff = "off"
)

// BounceSuppresses reports whether a permanent failure suppresses the
// address under mode. stage is the SMTP command that was refused ("RCPT
// TO", "end of DATA", ...; "" for a DSN), code the reply code (0 for a
// DSN) and enhanced the RFC 3463 code ("5.1.1", or "").
func BounceSuppresses(mode, stage string, code int, enhanced string) bool {
	switch mode {
	case SuppressOff:
		return false
	case SuppressPermanent:
		return true
	}
	return AddressFailure(stage, code, enhanced)
}

// AddressFailure reports whether a permanent failure is about the
// recipient's address: an RFC 3463 code 5.1.x (bad destination mailbox,
// system or syntax; but not 5.1.7 and 5.1.8, which are about the sender)
// or 5.2.1 (mailbox disabled); or, when the server gave no enhanced code,
// a 550, 551 or 553 to RCPT TO. Everything else (5.7.x policy or content
// rejections, relaying denied, 5.2.2 mailbox full, 5.3.x and 5.4.x
// system and network trouble, a refused MAIL FROM or DATA without a
// code) is not the address's fault.
func AddressFailure(stage string, code int, enhanced string) bool {
	if enhanced != "" {
		switch {
		case enhanced == "5.1.7" || enhanced == "5.1.8":
			return false
		case strings.HasPrefix(enhanced, "5.1."), enhanced == "5.2.1":
			return true
		}
		return false
	}
	return stage == StageRcpt && (code == 550 || code == 551 || code == 553)
}

// StageRcpt is the DeliveryError stage of a refused RCPT TO.
const StageRcpt = "RCPT TO"

// ActionSuppressionAdded and ActionSuppressionRemoved are the audit
// actions of suppression list changes; the object is the address hash.
const (
	ActionSuppressionAdded   = "suppression.added"
	ActionSuppressionRemoved = "suppression.removed"
)

// ObjectSuppression is the audit object type of a suppression entry.
const ObjectSuppression = "EmailSuppression"

// suppress puts e on its tenant's list (the first entry of an address
// stays), audits and counts a new entry. Errors: ErrUnavailable.
func suppress(ctx context.Context, sup Suppressions, aud Auditor, m *metrics.Metrics, log *slog.Logger, e Suppression) error {
	_, err := addSuppression(ctx, sup, aud, m, log, "email", e)
	return err
}

// addSuppression is suppress by actor (the audit record's service actor),
// saying whether e was added.
func addSuppression(ctx context.Context, sup Suppressions, aud Auditor, m *metrics.Metrics, log *slog.Logger, actor string, e Suppression) (bool, error) {
	added, err := sup.Add(ctx, e)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	log = log.With("tenant", e.Tenant, "addressHash", e.AddressHash, "suppression", string(e.Reason),
		"source", e.Source, "evidence", e.MessageID, "status", e.Status)
	if !added {
		log.Debug("address already suppressed")
		return false, nil
	}
	m.Suppression(string(e.Reason), e.Source)
	err = aud.Record(ctx, audit.Entry{
		Tenant: e.Tenant, Actor: audit.Actor{Type: audit.ActorService, ID: actor},
		Action: ActionSuppressionAdded, Object: audit.Object{Type: ObjectSuppression, ID: e.AddressHash},
		Outcome: audit.OutcomeSuccess, Reason: string(e.Reason) + ":" + e.Source + ":" + e.MessageID,
	})
	if err != nil {
		// The entry stands; only its audit record is missing.
		log.Error("audit suppression", "err", err)
	}
	log.Info("address suppressed")
	return true, nil
}

// SuppressionAdminOptions configure SuppressionAdmin.
type SuppressionAdminOptions struct {
	Suppressions Suppressions
	Auditor      Auditor
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
}

// SuppressionAdmin is what operators do with suppression lists: list,
// look up (by address, which is hashed and never kept) and remove
// entries. Removals are audited.
type SuppressionAdmin struct {
	o SuppressionAdminOptions
}

// NewSuppressionAdmin returns SuppressionAdmin.
func NewSuppressionAdmin(o SuppressionAdminOptions) *SuppressionAdmin {
	return &SuppressionAdmin{o: o}
}

// MaxListLimit bounds one page of List.
const MaxListLimit = 1000

// List returns a page of tenant's entries, oldest first. Errors:
// ErrUnavailable.
func (a *SuppressionAdmin) List(ctx context.Context, tenant, cursor string, limit int) ([]Suppression, string, error) {
	es, next, err := a.o.Suppressions.List(ctx, tenant, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return es, next, nil
}

// Get returns the entry of hash. Errors: ErrNotFound, ErrUnavailable.
func (a *SuppressionAdmin) Get(ctx context.Context, tenant, hash string) (Suppression, error) {
	e, err := a.o.Suppressions.Get(ctx, tenant, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return Suppression{}, err
	case err != nil:
		return Suppression{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return e, nil
}

// Hash returns the hash address is kept under for tenant.
func (a *SuppressionAdmin) Hash(tenant, address string) string {
	return a.o.Suppressions.Hash(tenant, address)
}

// adminActor is the audit actor of changes made through the admin API.
const adminActor = "email-admin-api"

// Add puts address on tenant's list by hand, for reason, with ticket (an
// operator's reference, kept as the entry's report id; "" for none) as
// evidence, and audits it. An address already on the list keeps its first
// entry, which is returned with added false. Nothing of the address but
// its keyed hash is kept. Errors: ErrUnavailable.
func (a *SuppressionAdmin) Add(ctx context.Context, tenant, address string, reason SuppressionReason, ticket string) (e Suppression, added bool, err error) {
	hash := a.o.Suppressions.Hash(tenant, address)
	e = Suppression{Tenant: tenant, AddressHash: hash, Reason: reason, Source: SourceAdmin, ReportID: ticket, At: time.Now()}
	added, err = addSuppression(ctx, a.o.Suppressions, a.o.Auditor, a.o.Metrics, a.o.Logger, adminActor, e)
	if err != nil || added {
		return e, added, err
	}
	e, err = a.Get(ctx, tenant, hash)
	return e, false, err
}

// Remove takes hash off tenant's list, so that the address can be sent
// to again, and audits it. Errors: ErrNotFound, ErrUnavailable.
func (a *SuppressionAdmin) Remove(ctx context.Context, tenant, hash string) error {
	e, err := a.Get(ctx, tenant, hash)
	if err != nil {
		return err
	}
	removed, err := a.o.Suppressions.Remove(ctx, tenant, hash)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case !removed:
		return ErrNotFound
	}
	a.o.Metrics.Suppression("removed", "admin")
	log := a.o.Logger.With("tenant", tenant, "addressHash", hash, "suppression", string(e.Reason))
	err = a.o.Auditor.Record(ctx, audit.Entry{
		Tenant: tenant, Actor: audit.Actor{Type: audit.ActorService, ID: adminActor},
		Action: ActionSuppressionRemoved, Object: audit.Object{Type: ObjectSuppression, ID: hash},
		Outcome: audit.OutcomeSuccess, Reason: string(e.Reason),
	})
	if err != nil {
		log.Error("audit suppression removal", "err", err)
	}
	log.Info("suppression removed")
	return nil
}
