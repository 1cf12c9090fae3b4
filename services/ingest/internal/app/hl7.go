package app

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/hl7"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/hl7map"
)

// Reason codes of HL7 v2 input kept on the dead-letter stream.
const (
	// ReasonHL7Invalid: the message (or batch) could not be parsed.
	ReasonHL7Invalid = "hl7_invalid"
	// ReasonHL7Unprocessable: the message parsed but lacks what its
	// mapping needs (a segment, a field, a valid date).
	ReasonHL7Unprocessable = "hl7_unprocessable"
)

// HL7Result says what IngestHL7 did with a message.
type HL7Result struct {
	// Message is the parsed message; nil when it could not be parsed.
	Message *hl7.Message
	// Type is the message type, e.g. "SIU^S12", "" when unknown.
	Type string
	// Supported is false for message types accepted without an event.
	Supported bool
	// Events are the events stored.
	Events []PublishedEvent
	// Unchanged counts resources whose state made no transition.
	Unchanged int
	// SameVersion counts the unchanged resources that were a version
	// already seen.
	SameVersion int
}

// IngestHL7 processes one HL7 v2 message from src. It returns a nil error
// only once every event it produced is stored and audited. A message it
// cannot parse (KindInvalid) or map (KindUnprocessable) is stored in the
// dead-letter stream first; when that or a publish fails the error is
// KindUnavailable, so the sender retries. A panic becomes KindInternal.
// Every error is an *Error whose HL7 field locates the problem.
func (a *App) IngestHL7(ctx context.Context, src Source, raw []byte) (HL7Result, error) {
	received := a.now()
	res, events, err := a.normaliseHL7(src, raw, received)
	if err != nil {
		if dlErr := a.deadLetter(ctx, src, InputHL7, "", err.Reason, raw); dlErr != nil {
			dlErr.HL7 = []*hl7.ParseError{unavailableHL7("the message could not be kept for replay; retry later")}
			return res, dlErr
		}
		return res, err
	}
	for _, c := range events {
		out, err := a.settle(ctx, src, c, "hl7v2")
		if err != nil {
			err.HL7 = []*hl7.ParseError{unavailableHL7("the message could not be stored; retry later")}
			return res, err
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
	return res, nil
}

// normaliseHL7 parses and maps raw, turning a panic into a KindInternal
// error.
func (a *App) normaliseHL7(src Source, raw []byte, received time.Time) (res HL7Result, events []candidate, err *Error) {
	defer func() {
		if r := recover(); r != nil {
			// The panic value may hold input: keep only the stack.
			events, err = nil, &Error{Kind: KindInternal, Reason: ReasonInternal, Code: "exception",
				Diagnostics: "the message could not be processed; it was kept for replay",
				HL7:         []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "internal error; the message was kept for replay"}},
				Err:         fmt.Errorf("panic in normaliseHL7: %s", debug.Stack())}
		}
	}()
	m, perr := hl7.Parse(raw)
	if perr != nil {
		return res, nil, hl7Error(KindInvalid, ReasonHL7Invalid, perr)
	}
	res.Message, res.Type = m, m.Type().String()
	mapped, merr := hl7map.Map(m, raw, hl7map.Options{Source: src.Name, Tenant: src.Tenant, Received: received, Location: a.hl7Location})
	res.Supported = mapped.Supported
	if merr != nil {
		return res, nil, hl7Error(KindUnprocessable, ReasonHL7Unprocessable, merr)
	}
	for i, ev := range mapped.Events {
		events = append(events, a.hl7Candidate(src, m, ev, mapped.Subjects[i]))
	}
	return res, events, nil
}

// hl7Candidate builds the candidate of one event of message m.
func (a *App) hl7Candidate(src Source, m *hl7.Message, ev *eventsv1.ClinicalEvent, sub hl7map.Subject) candidate {
	o := Observation{Kind: ev.GetKind(), Source: src.Name, SubjectRef: ev.GetSubjectRef(),
		Keys:    hl7Keys(a.systems[src.Name], src.Name, sub.Identifiers),
		Version: SourceVersion{ControlID: m.ControlID()}, Trigger: m.Type().Trigger,
		Status: sub.Status, Inpatient: sub.Inpatient}
	if ev.GetOccurredAt() != nil { // MSH-7
		o.Version.Time = ev.GetOccurredAt().AsTime()
	}
	if f := ev.GetAppointment(); f != nil {
		o.ServiceType = f.GetServiceType()
		if f.GetStart() != nil && ev.GetAction() != "" {
			o.Start = f.GetStart().AsTime()
		}
		if f.GetEnd() != nil {
			o.End = f.GetEnd().AsTime()
		}
	}
	if o.Kind == hl7map.KindPatient {
		p := ev.GetPatient()
		o.ContactHash = contactHash(p.GetEmails(), p.GetPhones(), p.GetLanguage(), sub.Deceased)
	}
	// The id and action are settle's to decide.
	ev.EventId, ev.Action = "", ""
	return candidate{ev: ev, obs: o}
}

// HL7BatchResult is the outcome of each message of a batch, in order.
type HL7BatchResult struct {
	// Results and Errs hold, for message i, its result and error (nil
	// when it was accepted).
	Results []HL7Result
	Errs    []error
}

// IngestHL7Batch processes an HL7 batch (FHS/BHS ... BTS/FTS): each
// message as IngestHL7 does. An error means the batch's structure is
// broken (KindInvalid, kept for replay whole) or the dead letter could not
// be stored (KindUnavailable); no message was processed then.
func (a *App) IngestHL7Batch(ctx context.Context, src Source, raw []byte) (HL7BatchResult, error) {
	var out HL7BatchResult
	b, err := hl7.SplitBatch(raw)
	if err != nil {
		e := hl7Error(KindInvalid, ReasonHL7Invalid, err)
		if dlErr := a.deadLetter(ctx, src, InputHL7, "", e.Reason, raw); dlErr != nil {
			dlErr.HL7 = []*hl7.ParseError{unavailableHL7("the batch could not be kept for replay; retry later")}
			return out, dlErr
		}
		return out, e
	}
	for _, msg := range b.Messages {
		res, err := a.IngestHL7(ctx, src, msg)
		out.Results = append(out.Results, res)
		out.Errs = append(out.Errs, err)
	}
	return out, nil
}

// storeEvent publishes and audits one event; protocol is a short,
// PHI-free label for the log line.
func (a *App) storeEvent(ctx context.Context, src Source, ev *eventsv1.ClinicalEvent, protocol string) (PublishedEvent, *Error) {
	dup, err := a.pub.PublishEvent(ctx, ev)
	if err != nil {
		return PublishedEvent{}, &Error{Kind: KindUnavailable, Reason: ReasonPublishFailed, Code: "transient",
			Diagnostics: "the event could not be stored; retry later", Err: err}
	}
	reason := "stored"
	if dup {
		reason = "duplicate"
	}
	if err := a.audit.Record(ctx, audit.Entry{
		Tenant: src.Tenant, Actor: audit.Actor{Type: audit.ActorEHRSource, ID: src.Name},
		Action: audit.ActionEventReceived, Object: audit.Object{Type: "ClinicalEvent", ID: ev.GetEventId()},
		Patient: ev.GetPatient().GetId(), Outcome: audit.OutcomeSuccess, Reason: reason,
	}); err != nil {
		return PublishedEvent{}, &Error{Kind: KindUnavailable, Reason: ReasonAuditFailed, Code: "transient",
			Diagnostics: "the event could not be recorded in the audit trail; retry later", Err: err}
	}
	if !dup {
		a.metrics.EventPublished(ev.GetTenant(), ev.GetKind(), ev.GetAction())
	}
	pe := PublishedEvent{ID: ev.GetEventId(), Kind: ev.GetKind(), Action: ev.GetAction(), Duplicate: dup}
	a.logger.InfoContext(ctx, "event stored", "source", src.Name, "tenant", src.Tenant, "eventId", pe.ID,
		"kind", pe.Kind, "action", pe.Action, "protocol", protocol, "duplicate", dup)
	return pe, nil
}

// hl7Error wraps a *hl7.ParseError (or another error, as an internal one).
func hl7Error(kind Kind, reason string, err error) *Error {
	var pe *hl7.ParseError
	if !errors.As(err, &pe) {
		return &Error{Kind: KindInternal, Reason: ReasonInternal, Code: "exception",
			Diagnostics: "the message could not be processed", Err: err,
			HL7: []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "internal error"}}}
	}
	return &Error{Kind: kind, Reason: reason, Code: "structure", Expression: pe.Location(),
		Diagnostics: pe.Msg, HL7: []*hl7.ParseError{pe}}
}

func unavailableHL7(msg string) *hl7.ParseError {
	return &hl7.ParseError{Code: hl7.CodeInternal, Msg: msg}
}

// refType returns the type of a "Type/id" reference.
func refType(ref string) string {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i]
		}
	}
	return ""
}
