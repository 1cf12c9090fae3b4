package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/log"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// EmailSender hands an email to the email channel, which stores it durably
// before it answers. A rejection that retrying cannot fix is returned
// marked with [Permanent]; any other error is worth retrying with the same
// idempotency key.
type EmailSender interface {
	SendEmail(ctx context.Context, e Email) (SendResult, error)
}

// Timers keeps the durable timers of journey waits.
type Timers interface {
	// Schedule sets t to fire at t.Due, replacing a timer set before for
	// the same instance and step. It returns once the timer is durable.
	Schedule(ctx context.Context, t Timer) error
	// Cancel removes every pending timer of the instance (see
	// [InstanceKey]) of journey for tenant and returns how many it removed.
	Cancel(ctx context.Context, tenant, journey, instanceKey string) (int, error)
	// Pending returns the timers of the instance that have not fired yet,
	// ordered by step.
	Pending(ctx context.Context, tenant, journey, instanceKey string) ([]PendingTimer, error)
	// Remove removes the pending timer of the instance at step, and its
	// fired message if not yet handled; removing none is not an error.
	Remove(ctx context.Context, tenant, journey, instanceKey string, step int) error
}

// PendingTimer is a timer that has not fired yet, as [Timers.Pending]
// reports it: no event, only where and when it resumes.
type PendingTimer struct {
	// Step is the 0-based index of the step the instance resumes at.
	Step int
	// Due is when the timer fires.
	Due time.Time
}

// Timer is a pending wait: when it fires, the journey instance resumes
// at Step with Event. It is stored sealed (Event is PHI).
type Timer struct {
	// Tenant, Journey and Instance ([InstanceKey]) name the instance.
	Tenant, Journey, Instance string
	// Version is the journey's version when the timer was set.
	Version string
	// Step is the 0-based index of the step to resume at.
	Step int
	// Due is when the timer fires, a whole second.
	Due time.Time
	// Event is the event that started the instance. PHI.
	Event *eventsv1.ClinicalEvent
}

// Auditor appends to the audit trail; Record returns once the record is
// durable. *audit.Writer implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Email is one email to one patient. Its PHI fields are [log.PHI], so the
// email cannot leak into a log line or an error message by accident.
type Email struct {
	// Tenant the email is sent for.
	Tenant string
	// IdempotencyKey is unique per journey instance and step; see [IdempotencyKey].
	IdempotencyKey string
	// To is the recipient address. PHI.
	To log.PHI
	// Subject, HTML and Text are the rendered message. PHI.
	Subject, HTML, Text log.PHI
	// Security is the PHI level, which decides how the email may travel.
	Security catalog.Security
	// Purpose is the journey's purpose; the email channel puts marketing
	// unsubscribe headers on marketing messages only.
	Purpose catalog.Purpose
	// JourneyInstance and Step identify what produced the email, for
	// tracing. Not PHI.
	JourneyInstance, Step string
}

// LogValue logs the email's identifiers only.
func (e Email) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", e.Tenant),
		slog.String("idempotencyKey", e.IdempotencyKey),
		slog.String("instance", e.JourneyInstance),
		slog.String("step", e.Step),
	)
}

// SendResult is the email channel's answer.
type SendResult struct {
	// MessageID identifies the stored message. Not PHI.
	MessageID string
	// Duplicate is true when the idempotency key had been used before and
	// nothing new was queued.
	Duplicate bool
}

// LogValue logs the timer's identifiers only, never the event.
func (t Timer) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", t.Tenant),
		slog.String("journey", t.Journey),
		slog.String("instance", t.Instance),
		slog.Int("step", t.Step),
	)
}
