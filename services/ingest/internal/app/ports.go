package app

import (
	"context"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// Publisher stores what ingest produces. Each call returns only once the
// store has acknowledged it.
type Publisher interface {
	// PublishEvent stores ev on the event stream with ev.EventId as its
	// deduplication id. duplicate reports that it was already stored.
	PublishEvent(ctx context.Context, ev *eventsv1.ClinicalEvent) (duplicate bool, err error)
	// PublishDeadLetter stores input that was not turned into events.
	PublishDeadLetter(ctx context.Context, dl DeadLetter) error
}

// DeadLetter is input kept for replay.
type DeadLetter struct {
	// Tenant and Source name the sender (not PHI).
	Tenant, Source string
	// Reason is a short machine code (not PHI).
	Reason string
	// Body is the input exactly as received. PHI.
	Body []byte
}

// Auditor appends to the audit trail; Record returns once the record is
// durable. *audit.Writer implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Metrics counts what ingest does. Label values are bounded and PHI-free.
type Metrics interface {
	// EventPublished counts a newly stored event.
	EventPublished(tenant, kind, action string)
	// DeadLettered counts input stored for replay.
	DeadLettered(source, reason string)
}
