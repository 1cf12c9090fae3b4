package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// Source is an authenticated sender.
type Source struct {
	// Name is the configured source name, e.g. "demo" or "epic-prod".
	Name string
	// Tenant is the tenant its events belong to.
	Tenant string
}

// App is ingest's use case. It is safe for concurrent use.
type App struct {
	pub     Publisher
	audit   Auditor
	metrics Metrics
	logger  *slog.Logger
	now     func() time.Time
	// hl7Location reads HL7 times sent without an offset.
	hl7Location *time.Location
	// fhir fetches id-only focus resources; nil when no source has a
	// FHIR server.
	fhir FHIRReader
	// subs tracks subscription event numbers and heartbeats; nil turns
	// tracking off.
	subs *Subscriptions
	// dead reads stored dead letters; nil when not configured.
	dead DeadLetterStore
	// state keeps the last-seen state of every resource.
	state StateStore
	// systems maps HL7 v2 assigning authorities to FHIR identifier
	// systems, by source name.
	systems map[string]IdentifierSystems
}

// Options configure an App.
type Options struct {
	// Publisher stores events and dead letters. Required.
	Publisher Publisher
	// Auditor records every stored event and dead letter. Required.
	Auditor Auditor
	// Metrics counts events and dead letters. Required.
	Metrics Metrics
	// Logger receives one line per stored event. Required.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// HL7Location is the time zone of HL7 v2 times sent without an
	// offset; UTC when nil.
	HL7Location *time.Location
	// FHIR reads focus resources of id-only notifications; optional.
	FHIR FHIRReader
	// Subscriptions tracks event numbers and heartbeats; optional.
	Subscriptions *Subscriptions
	// DeadLetters reads EHR_DEAD for listing and replay; optional.
	DeadLetters DeadLetterStore
	// State keeps the last-seen state of resources, from which events
	// are decided. Required.
	State StateStore
	// IdentifierSystems maps each HL7 v2 source's assigning authorities
	// to FHIR identifier systems, by source name; optional.
	IdentifierSystems map[string]IdentifierSystems
}

// New returns an App.
func New(o Options) *App {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	loc := o.HL7Location
	if loc == nil {
		loc = time.UTC
	}
	return &App{pub: o.Publisher, audit: o.Auditor, metrics: o.Metrics, logger: o.Logger, now: now, hl7Location: loc,
		fhir: o.FHIR, subs: o.Subscriptions, dead: o.DeadLetters, state: o.State, systems: o.IdentifierSystems}
}

// Result says what Ingest did with a notification.
type Result struct {
	// Type is the notification type, "" when the body was not read that far.
	Type fhirnotify.Type
	// Payload is the notification's payload kind, "" when unknown.
	Payload fhirnotify.Payload
	// Events are the events stored, in Bundle order.
	Events []PublishedEvent
	// Unmapped counts resources carried that gave no event because
	// ingest maps nothing of their type (or they are only referenced,
	// like the Patient of an Appointment).
	Unmapped int
	// Unchanged counts resources whose state made no transition (the
	// same state or version again, an older version, entered-in-error,
	// a status that tells the patient nothing).
	Unchanged int
	// SameVersion counts the unchanged resources that were a version
	// already seen (a retry or resend of the same content).
	SameVersion int
	// Deferred is true when the notification was stored in the dead-letter
	// stream for a later release (empty payloads; id-only payloads of
	// sources without a FHIR server).
	Deferred bool
}

// PublishedEvent describes a stored event without PHI.
type PublishedEvent struct {
	// ID is the event id (the Nats-Msg-Id).
	ID string
	// Kind and Action are the event's kind and action.
	Kind, Action string
	// SubjectType is the resource type of its subject, e.g. "Appointment".
	SubjectType string
	// Duplicate is true when the stream already held it.
	Duplicate bool
}

// Ingest processes a notification body from src. It returns a nil error
// only once every event it produced is stored. Input it rejects is stored
// in the dead-letter stream first; when that fails, the error is
// KindUnavailable so the sender retries. Every error is an *Error.
func (a *App) Ingest(ctx context.Context, src Source, body []byte) (Result, error) {
	received := a.now()
	n, res, err := a.parse(body)
	if err != nil {
		if dlErr := a.deadLetter(ctx, src, InputFHIRNotification, "", err.Reason, body); dlErr != nil {
			return res, dlErr
		}
		return res, err
	}
	if res.Payload == fhirnotify.PayloadNone {
		a.track(ctx, src, n)
		return res, nil
	}
	typ, since, searchable := a.searchSince(src, n)
	switch {
	case res.Payload == fhirnotify.PayloadEmpty && searchable:
		if ferr := a.fetchSince(ctx, src, n, typ, since, time.Time{}); ferr != nil {
			return res, ferr
		}
	case res.Payload == fhirnotify.PayloadEmpty, res.Payload == fhirnotify.PayloadIDOnly && !a.canFetch(src, n):
		if dlErr := a.deadLetter(ctx, src, InputFHIRNotification, "", ReasonPayloadNotSupported, body); dlErr != nil {
			return res, dlErr
		}
		res.Deferred = true
		a.track(ctx, src, n)
		return res, nil
	case res.Payload == fhirnotify.PayloadIDOnly:
		if ferr := a.fetchFocus(ctx, src, n); ferr != nil {
			// A focus that can never be fetched is kept for replay; a
			// failed fetch is the EHR's to retry.
			if ferr.Kind != KindUnavailable {
				if dlErr := a.deadLetter(ctx, src, InputFHIRNotification, "", ferr.Reason, body); dlErr != nil {
					return res, dlErr
				}
			}
			return res, ferr
		}
	}
	events, merr := a.mapNotification(src, n, received, &res)
	if merr != nil {
		if dlErr := a.deadLetter(ctx, src, InputFHIRNotification, "", merr.Reason, body); dlErr != nil {
			return res, dlErr
		}
		return res, merr
	}
	if err := a.publishEvents(ctx, src, events, &res); err != nil {
		return res, err
	}
	a.track(ctx, src, n)
	return res, nil
}

// publishEvents settles each candidate against its resource's state,
// adding the events stored to res.
func (a *App) publishEvents(ctx context.Context, src Source, cands []candidate, res *Result) *Error {
	for _, c := range cands {
		out, err := a.settle(ctx, src, c, "fhir-subscription")
		if err != nil {
			return err
		}
		if out.event == nil {
			res.Unchanged++
			if out.unchanged == UnchangedSameVersion {
				res.SameVersion++
			}
			continue
		}
		res.Events = append(res.Events, *out.event)
	}
	return nil
}

// parse parses the body, turning a panic into a KindInternal error so
// that bad input never takes the service down.
func (a *App) parse(body []byte) (n *fhirnotify.Notification, res Result, err *Error) {
	defer func() {
		if r := recover(); r != nil {
			// The panic value may hold input: keep only the stack.
			n, err = nil, &Error{Kind: KindInternal, Reason: ReasonInternal, Code: "exception",
				Diagnostics: "the notification could not be processed; it was kept for replay",
				Err:         fmt.Errorf("panic in parse: %s", debug.Stack())}
		}
	}()
	n, perr := fhirnotify.ParseNotification(body)
	if perr != nil {
		return nil, res, fromNotify(perr)
	}
	res.Type, res.Payload = n.Type, n.Payload()
	return n, res, nil
}

// deadLetter stores body for replay, or returns a KindUnavailable error.
func (a *App) deadLetter(ctx context.Context, src Source, input, pushType, reason string, body []byte) *Error {
	err := a.pub.PublishDeadLetter(ctx, DeadLetter{Tenant: src.Tenant, Source: src.Name, Reason: reason, Input: input, PushType: pushType, Body: body})
	if err != nil {
		return &Error{Kind: KindUnavailable, Reason: ReasonDeadLetterFailed, Code: "transient",
			Diagnostics: "the notification could not be stored for replay; retry it later", Err: err}
	}
	sum := sha256.Sum256(body)
	if err := a.audit.Record(ctx, audit.Entry{
		Tenant: src.Tenant, Actor: audit.Actor{Type: audit.ActorEHRSource, ID: src.Name},
		Action: "input.dead_lettered", Object: audit.Object{Type: "DeadLetter", ID: hex.EncodeToString(sum[:])},
		Outcome: audit.OutcomeFailure, Reason: reason,
	}); err != nil {
		return &Error{Kind: KindUnavailable, Reason: ReasonAuditFailed, Code: "transient",
			Diagnostics: "the notification could not be recorded in the audit trail; retry it later", Err: err}
	}
	a.metrics.DeadLettered(src.Name, reason)
	return nil
}
