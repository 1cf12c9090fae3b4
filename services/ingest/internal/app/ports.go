package app

import (
	"context"
	"encoding/json"
	"time"

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
	// Input is the path the body came in by: InputFHIRNotification,
	// InputFHIRPush or InputHL7 (not PHI).
	Input string
	// PushType is the resource type of a FHIR push's URL, "" for a Bundle
	// posted to [base] and for other inputs (not PHI).
	PushType string
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
	// StateUnchanged counts a resource that arrived without a transition,
	// by reason (an Unchanged* code).
	StateUnchanged(source, kind, reason string)
	// DeadLettered counts input stored for replay.
	DeadLettered(source, reason string)
	// SubscriptionGap counts a detected gap in event numbers.
	SubscriptionGap(source string)
	// SubscriptionGapRecovered counts a gap closed, by method (a Gap*
	// method: events, search or late).
	SubscriptionGapRecovered(source, method string)
	// HeartbeatOverdue sets how many of source's subscriptions are overdue.
	HeartbeatOverdue(source string, overdue int)
}

// FHIRReader reads resources from a source's FHIR API, for id-only
// notifications. Errors carry no URL, id or token; an error with a
// Refused() bool method that returns true cannot be fixed by a retry.
type FHIRReader interface {
	// Configured reports whether source has a FHIR server.
	Configured(source string) bool
	// Read fetches the resource a literal reference points to.
	Read(ctx context.Context, source, ref string) (json.RawMessage, error)
	// SearchIdentifier finds the one resource of type typ with the given
	// business identifier.
	SearchIdentifier(ctx context.Context, source, typ, system, value string) (json.RawMessage, error)
	// TopicType is the resource type configured for a subscription topic.
	TopicType(source, topic string) (string, bool)
	// SearchSince returns the resources of type typ last updated after
	// since and, unless until is zero, at or before until; every page.
	SearchSince(ctx context.Context, source, typ string, since, until time.Time) ([]json.RawMessage, error)
	// EventsSupported says whether the CapabilityStatement offers
	// Subscription/$events; known is false when it does not say.
	EventsSupported(ctx context.Context, source string) (supported, known bool)
	// SubscriptionType reads the Subscription and returns the resource
	// type of its criteria.
	SubscriptionType(ctx context.Context, source, subscriptionID string) (string, error)
	// Events calls Subscription/<id>/$events for event numbers
	// from..until and returns the Bundle.
	Events(ctx context.Context, source, subscriptionID string, from, until int64) ([]byte, error)
	// Status calls Subscription/<id>/$status.
	Status(ctx context.Context, source, subscriptionID string) ([]byte, error)
}

// SubscriptionStore keeps subscription states (no PHI) durably.
type SubscriptionStore interface {
	// Load returns every stored state.
	Load(ctx context.Context) ([]SubscriptionState, error)
	// Save stores st under its source and subscription id.
	Save(ctx context.Context, st SubscriptionState) error
}
