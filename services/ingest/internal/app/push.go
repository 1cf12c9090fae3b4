package app

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// PushResult says what IngestPush did with a pushed resource or Bundle.
type PushResult struct {
	// Type is the Bundle type, fhirnotify.PushResource for a single
	// resource, "" when the body was not read that far.
	Type string
	// Entries has one result per Bundle entry (one for a single resource).
	Entries []EntryResult
	// Events are every event stored, in Bundle order.
	Events []PublishedEvent
	// Unmapped counts resources of types that give no event.
	Unmapped int
	// Unchanged counts resources whose state made no transition.
	Unchanged int
	// SameVersion counts the unchanged resources that were a version
	// already seen.
	SameVersion int
}

// EntryResult is the outcome of one pushed entry.
type EntryResult struct {
	// ResourceType is the entry's resource type, "" when it has none.
	ResourceType string
	// Events are the events it gave (none or one).
	Events []PublishedEvent
	// Err is set when the entry was rejected (batch only: a rejected entry
	// fails a transaction, collection or message whole).
	Err *Error
	// Note explains an entry that gave no event; PHI-free.
	Note string
}

// IngestPush processes a FHIR REST push from src: one resource posted to
// [base]/<pathType>, or a Bundle posted to [base] (pathType ""). Every
// resource that maps to an event is published and audited as notification
// events are, with protocol PROTOCOL_FHIR_REST.
//
// A transaction, collection or message is checked whole before anything is
// published: an invalid entry rejects it (for a transaction KindInvalid,
// HTTP 400, with the entry's expression) and it is kept on EHR_DEAD. A
// batch's invalid entries are rejected one by one (EntryResult.Err), the
// others processed, and the batch is kept on EHR_DEAD once. Publishing
// several events is not atomic: a failure part way returns
// KindUnavailable, and the retry is made safe by the deterministic event
// ids. Every error is an *Error.
func (a *App) IngestPush(ctx context.Context, src Source, pathType string, body []byte) (PushResult, error) {
	received := a.now()
	res, events, err := a.normalisePush(src, pathType, body, received)
	if err != nil {
		if dlErr := a.deadLetter(ctx, src, InputFHIRPush, pathType, err.Reason, body); dlErr != nil {
			return res, dlErr
		}
		return res, err
	}
	for i := range res.Entries {
		if res.Entries[i].Err != nil {
			if dlErr := a.deadLetter(ctx, src, InputFHIRPush, pathType, res.Entries[i].Err.Reason, body); dlErr != nil {
				return res, dlErr
			}
			break
		}
	}
	for i, c := range events {
		if c == nil {
			continue
		}
		out, err := a.settle(ctx, src, *c, "fhir-rest")
		if err != nil {
			return res, err
		}
		if out.event == nil {
			res.Entries[i].Note = refType(c.obs.SubjectRef) + " accepted; " + unchangedNote[out.unchanged]
			res.Unchanged++
			if out.unchanged == UnchangedSameVersion {
				res.SameVersion++
			}
			continue
		}
		res.Entries[i].Events = append(res.Entries[i].Events, *out.event)
		res.Events = append(res.Events, *out.event)
	}
	return res, nil
}

// unchangedNote explains, PHI-free, why a pushed resource gave no event.
var unchangedNote = map[string]string{
	UnchangedSameState:      "no transition from its last-seen state: no event",
	UnchangedSameVersion:    "this version was seen before: no event",
	UnchangedOutOfOrder:     "a newer version was seen before: no event",
	UnchangedEnteredInError: "entered-in-error: no event",
	UnchangedFirstSeen:      "first seen: its state is kept to compare later versions with, no event",
}

// normalisePush parses and maps a push; events[i] is entry i's candidate
// or nil. A panic becomes KindInternal.
func (a *App) normalisePush(src Source, pathType string, body []byte, received time.Time) (res PushResult, events []*candidate, err *Error) {
	defer func() {
		if r := recover(); r != nil {
			events, err = nil, &Error{Kind: KindInternal, Reason: ReasonInternal, Code: "exception",
				Diagnostics: "the request could not be processed; it was kept for replay",
				Err:         fmt.Errorf("panic in normalisePush: %s", debug.Stack())}
		}
	}()
	p, perr := fhirnotify.ParsePush(body, pathType)
	if perr != nil {
		return res, nil, fromNotify(perr)
	}
	res.Type = p.Type
	res.Entries = make([]EntryResult, p.Size)
	events = make([]*candidate, p.Size)
	for i := range res.Entries {
		res.Entries[i].Note = "the entry holds no resource: accepted, no event"
	}
	for i, fe := range p.EntryErrors {
		res.Entries[i].Err = fromNotify(fe)
	}
	o := origin{protocol: eventsv1.Protocol_PROTOCOL_FHIR_REST}
	for _, e := range p.Entries {
		r := &res.Entries[e.Index]
		r.ResourceType = e.ResourceType
		if e.Method == "DELETE" {
			r.Note = "a DELETE gives no event: accepted"
			res.Unmapped++
			continue
		}
		// Every pushed resource is one the sender says changed, a Patient
		// too.
		ev, ok, merr := eventFor(src, &p.Collection, e, received, o, true)
		switch {
		case merr != nil:
			r.Err = fromNotify(merr)
		case !ok:
			r.Note = e.ResourceType + " is not a supported resource type: accepted, no event"
			res.Unmapped++
		default:
			r.Note = ""
			events[e.Index] = &ev
		}
	}
	if p.Type == fhirnotify.PushBatch {
		return res, events, nil
	}
	for i := range res.Entries { // all or nothing: the first invalid entry rejects the whole
		if e := res.Entries[i].Err; e != nil {
			if p.Type == fhirnotify.PushTransaction {
				e.Kind = KindInvalid
				e.Diagnostics = fmt.Sprintf("transaction rejected, nothing was processed: entry %d: %s", i, e.Diagnostics)
			}
			return res, nil, e
		}
	}
	return res, events, nil
}
