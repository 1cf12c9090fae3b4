package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// ReasonStateUnavailable: the last-seen state could not be read, locked
// or written (Redis down, or the resource busy for too long).
const ReasonStateUnavailable = "state_unavailable"

// candidate is an event an input would give, and what it says about its
// resource; settle turns it into the real transition.
type candidate struct {
	ev  *eventsv1.ClinicalEvent
	obs Observation
}

// settled is the outcome of one candidate.
type settled struct {
	// event is set when an event was stored (or already was).
	event *PublishedEvent
	// unchanged is the Unchanged* reason when no event was.
	unchanged string
}

// settle compares candidate c with the last-seen state of its resource
// and stores the transition it makes, if any. The order is what makes
// ingest lose and duplicate nothing:
//
//  1. lock the resource's state (every key it may be found by), so that
//     concurrent arrivals of the same resource (two requests, FHIR and
//     HL7 v2 at once, several replicas) are decided one after the other;
//  2. decide the transition from the state read;
//  3. publish the event and wait for the PubAck, then audit it;
//  4. write the new state and unlock; only then does the sender get its
//     answer.
//
// A crash between 3 and 4 leaves the old state: the sender's retry decides
// the same transition from it and gets the same event id, which
// JetStream drops as a duplicate. The state is written only after the
// event is durable, so a lost write never loses an event. protocol is a
// short, PHI-free label for the log line.
func (a *App) settle(ctx context.Context, src Source, c candidate, protocol string) (settled, *Error) {
	lock, err := a.state.Lock(ctx, src.Tenant, c.obs.Kind, c.obs.Keys)
	if err != nil {
		return settled{}, &Error{Kind: KindUnavailable, Reason: ReasonStateUnavailable, Code: "transient",
			Diagnostics: "the resource's last-seen state could not be read; retry later", Err: err}
	}
	committed := false
	defer func() {
		if !committed {
			lock.Release(context.WithoutCancel(ctx))
		}
	}()
	prev, found := lock.State()
	d := decide(prev, found, c.obs, a.now())
	var out settled
	if d.action == "" {
		out.unchanged = d.unchanged
		a.metrics.StateUnchanged(src.Name, c.obs.Kind, d.unchanged)
		a.logger.InfoContext(ctx, "no transition", "source", src.Name, "tenant", src.Tenant, "kind", c.obs.Kind,
			"subjectType", refType(c.obs.SubjectRef), "reason", d.unchanged, "protocol", protocol)
	} else {
		ev := c.ev
		d.next.Seq = prev.Seq + 1
		ev.Action = d.action
		ev.SubjectRef = d.next.SubjectRef
		ev.EventId = StateEventID(src.Tenant, c.obs.Kind, lock.RecordID(), d.next.Seq, d.action)
		pe, perr := a.storeEvent(ctx, src, ev, protocol)
		if perr != nil {
			return settled{}, perr
		}
		pe.SubjectType = refType(ev.GetSubjectRef())
		out.event = &pe
		d.next.Events = append(d.next.Events, ev.GetEventId())
		if n := len(d.next.Events); n > maxStateEvents {
			d.next.Events = d.next.Events[n-maxStateEvents:]
		}
	}
	if !d.write {
		return out, nil
	}
	if err := lock.Commit(ctx, d.next); err != nil {
		return settled{}, &Error{Kind: KindUnavailable, Reason: ReasonStateUnavailable, Code: "transient",
			Diagnostics: "the resource's last-seen state could not be written; retry later", Err: err}
	}
	committed = true
	return out, nil
}

// StateEventID derives the deterministic, PHI-free id of an event from
// the last-seen state: the first 32 hex digits of the SHA-256 of
// "state|<tenant>|<kind>|<record id>|<seq>|<action>", where the record id
// names the real-world resource whichever protocol or key found it and seq
// counts its events (1 for the first). The same transition arriving by
// FHIR and by HL7 v2, or re-sent, or retried after a crash, gets the same
// id, which JetStream drops as a duplicate.
func StateEventID(tenant, kind, recordID string, seq int, action string) string {
	sum := sha256.Sum256([]byte("state|" + tenant + "|" + kind + "|" + recordID + "|" + strconv.Itoa(seq) + "|" + action))
	return hex.EncodeToString(sum[:16])
}
