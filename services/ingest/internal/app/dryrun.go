package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// Baselines of a dry run: what the transitions of its inputs are decided
// against.
const (
	// BaselineCurrent reads each resource's live last-seen state (read
	// only: it is locked for the moment of the read and released, never
	// written), so an input gives the event it would give if it arrived
	// now.
	BaselineCurrent = "current"
	// BaselineNone treats every resource as never seen before (first
	// sight), whatever the live state holds; the live state is not read.
	BaselineNone = "none"
)

// DryRun is one dry run: an App that runs exactly the code of the live
// paths (Ingest, IngestPush, IngestHL7, IngestHL7Batch) with every side
// effect replaced. Nothing is published, dead-lettered, audited, counted
// or tracked, and no last-seen state is written; the events the inputs
// would store and the dead letters they would leave are collected
// instead. Within one dry run the inputs see each other's transitions (a
// booked then a rescheduled appointment gives booked, then rescheduled),
// kept in memory only. Focus resources of id-only notifications are
// still fetched from the source's FHIR server (a read). A DryRun is for
// one request; it is safe for concurrent use.
type DryRun struct {
	// App runs the inputs.
	App *App
	rec *dryRecorder
}

// DryEvent is an event a dry run would have stored.
type DryEvent struct {
	// Event is the event, as it would have been published (before
	// sealing). PHI.
	Event *eventsv1.ClinicalEvent
	// Duplicate is true when an earlier input of the dry run already
	// gave an event with its id.
	Duplicate bool
}

// NewDryRun returns a dry run of a against baseline (BaselineCurrent or
// BaselineNone).
func (a *App) NewDryRun(baseline string) *DryRun {
	rec := &dryRecorder{}
	d := *a
	d.pub, d.audit, d.metrics = rec, dryAuditor{}, dryMetrics{}
	d.subs, d.dead = nil, nil
	d.logger = a.logger.With("dryRun", true)
	var live StateStore
	if baseline != BaselineNone {
		live = a.state
	}
	d.state = &dryState{live: live, ids: map[string]string{}, states: map[string]ResourceState{}}
	return &DryRun{App: &d, rec: rec}
}

// Events returns the events collected so far, in the order they would
// have been stored, and clears them.
func (d *DryRun) Events() []DryEvent { return d.rec.take() }

// DeadLetters returns the reasons of the dead letters collected so far
// (bodies are not kept) and clears them.
func (d *DryRun) DeadLetters() []string { return d.rec.takeDead() }

// dryRecorder is the Publisher of a dry run.
type dryRecorder struct {
	mu     sync.Mutex
	events []DryEvent
	seen   map[string]bool
	dead   []string
}

var _ Publisher = (*dryRecorder)(nil)

func (r *dryRecorder) PublishEvent(_ context.Context, ev *eventsv1.ClinicalEvent) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	dup := r.seen[ev.GetEventId()]
	r.seen[ev.GetEventId()] = true
	r.events = append(r.events, DryEvent{Event: proto.CloneOf(ev), Duplicate: dup})
	return dup, nil
}

func (r *dryRecorder) PublishDeadLetter(_ context.Context, dl DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = append(r.dead, dl.Reason)
	return nil
}

func (r *dryRecorder) take() []DryEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func (r *dryRecorder) takeDead() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.dead
	r.dead = nil
	return out
}

// dryAuditor records nothing: a dry run changes nothing to audit. The
// request itself is audited by the transport, as the admin's read.
type dryAuditor struct{}

func (dryAuditor) Record(context.Context, audit.Entry) error { return nil }

// dryMetrics counts nothing: a dry run is not traffic.
type dryMetrics struct{}

var _ Metrics = dryMetrics{}

func (dryMetrics) EventPublished(string, string, string)   {}
func (dryMetrics) StateUnchanged(string, string, string)   {}
func (dryMetrics) DeadLettered(string, string)             {}
func (dryMetrics) SubscriptionGap(string)                  {}
func (dryMetrics) SubscriptionGapRecovered(string, string) {}
func (dryMetrics) HeartbeatOverdue(string, int)            {}

// dryState is the StateStore of a dry run: the dry run's own commits,
// kept in memory, over the live store read only (nil: first sight).
type dryState struct {
	live StateStore

	mu sync.Mutex
	// ids maps a key (dryKey) to the record id it names; states holds
	// the states committed in this dry run, by record id.
	ids    map[string]string
	states map[string]ResourceState
}

var _ StateStore = (*dryState)(nil)

// dryKey names k in memory; it never leaves the process.
func dryKey(tenant, kind string, k ResourceKey) string {
	return tenant + "\x00" + kind + "\x00" + k.Type + "\x00" + k.Scope + "\x00" + k.Value
}

func (s *dryState) Lock(ctx context.Context, tenant, kind string, keys []ResourceKey) (LockedState, error) {
	if len(keys) == 0 {
		return nil, errors.New("lock resource state: no keys")
	}
	s.mu.Lock()
	for _, k := range keys {
		if id, ok := s.ids[dryKey(tenant, kind, k)]; ok {
			st := s.states[id]
			s.mu.Unlock()
			return &dryLocked{s: s, tenant: tenant, kind: kind, keys: keys, id: id, state: st, found: true}, nil
		}
	}
	s.mu.Unlock()
	l := &dryLocked{s: s, tenant: tenant, kind: kind, keys: keys}
	if s.live == nil {
		l.id = dryRecordID(tenant, kind, keys)
		return l, nil
	}
	live, err := s.live.Lock(ctx, tenant, kind, keys)
	if err != nil {
		return nil, err
	}
	l.state, l.found = live.State()
	l.id = live.RecordID()
	live.Release(context.WithoutCancel(ctx))
	return l, nil
}

// dryRecordID names a resource first seen in a BaselineNone dry run:
// stable for the same keys, PHI-free, but not the id the live store
// would give.
func dryRecordID(tenant, kind string, keys []ResourceKey) string {
	sum := sha256.Sum256([]byte("dry|" + dryKey(tenant, kind, keys[0])))
	return "dry-" + hex.EncodeToString(sum[:16])
}

// dryLocked is a state read by a dry run.
type dryLocked struct {
	s            *dryState
	tenant, kind string
	keys         []ResourceKey
	id           string
	state        ResourceState
	found        bool
}

func (l *dryLocked) State() (ResourceState, bool) { return l.state, l.found }

func (l *dryLocked) RecordID() string { return l.id }

// Commit keeps st in the dry run's memory only.
func (l *dryLocked) Commit(_ context.Context, st ResourceState) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for _, k := range l.keys {
		l.s.ids[dryKey(l.tenant, l.kind, k)] = l.id
	}
	l.s.states[l.id] = st
	return nil
}

func (l *dryLocked) Release(context.Context) {}
