package app

import (
	"context"
	"errors"
	"time"
)

// ErrStateBusy is returned by StateStore.Lock when another request held
// the resource's state for longer than the store waits.
var ErrStateBusy = errors.New("resource state is busy")

// Key types of a ResourceKey.
const (
	// KeyLogical is a FHIR logical id, scoped to the source (the FHIR
	// server) that gave it: Scope is the source name, Value "Type/id".
	KeyLogical = "logical"
	// KeyBusiness is a business identifier, scoped to the tenant: Scope
	// is the identifier system, Value the identifier value (PHI).
	KeyBusiness = "business"
)

// ResourceKey is one way to find a real-world resource's state: its
// logical id on one FHIR server, or one of its business identifiers. The
// store keeps keys only as keyed hashes (Value may be PHI).
type ResourceKey struct {
	// Type is KeyLogical or KeyBusiness.
	Type string
	// Scope is the source (KeyLogical) or the identifier system
	// (KeyBusiness).
	Scope string
	// Value is "Type/id" (KeyLogical) or the identifier value
	// (KeyBusiness, PHI).
	Value string
}

// SourceVersion is the version of a resource one source last sent, for
// telling a re-sent or older version from a newer one. Versions of
// different sources are never compared: their clocks and counters are
// their own.
type SourceVersion struct {
	// VersionID is FHIR meta.versionId, "" when absent or for HL7.
	VersionID string `json:"versionId,omitempty"`
	// Time is FHIR meta.lastUpdated or HL7 MSH-7, zero when absent.
	Time time.Time `json:"time,omitzero"`
	// ControlID is HL7 MSH-10, "" for FHIR.
	ControlID string `json:"controlId,omitempty"`
	// Content is the hash of the facts this version carried (see
	// Observation.contentHash); "" in records written before it was
	// kept.
	Content string `json:"content,omitempty"`
}

// ResourceState is the last-seen state of one real-world resource: what
// transitions are computed from. It holds PHI (times, identifiers in
// SubjectRef) and is only stored sealed.
type ResourceState struct {
	// Kind is the event kind: appointment, encounter, lab_result, patient.
	Kind string `json:"kind"`
	// SubjectRef is the subject_ref of every event of this resource: the
	// reference it was first seen with, so that events arriving by another
	// protocol continue the same journey instance.
	SubjectRef string `json:"subjectRef"`
	// Status is the last status seen (FHIR codes; HL7 triggers mapped to
	// them).
	Status string `json:"status,omitempty"`
	// Start, End and ServiceType are an appointment's last-seen times and
	// service type.
	Start       time.Time `json:"start,omitzero"`
	End         time.Time `json:"end,omitzero"`
	ServiceType string    `json:"serviceType,omitempty"`
	// Inpatient is an encounter's last-seen class.
	Inpatient bool `json:"inpatient,omitempty"`
	// ContactHash is a patient's hash of telecom, communication and
	// deceased.
	ContactHash string `json:"contactHash,omitempty"`
	// Announced is the patient-facing state last emitted: the action of
	// the last event ("booked", "rescheduled" counts as "booked",
	// "cancelled", "noshow", "admitted", "discharged", "final",
	// "amended"), "" when none was.
	Announced string `json:"announced,omitempty"`
	// AnnouncedStart is an appointment's start when it was last announced.
	AnnouncedStart time.Time `json:"announcedStart,omitzero"`
	// Versions are the last versions seen, by source name.
	Versions map[string]SourceVersion `json:"versions,omitempty"`
	// Seq counts the events emitted for this resource; it is part of
	// their ids.
	Seq int `json:"seq"`
	// Events are the ids of the most recent events emitted, oldest first
	// (at most maxStateEvents).
	Events []string `json:"events,omitempty"`
	// Updated is when ingest last wrote the record.
	Updated time.Time `json:"updated"`
}

// maxStateEvents bounds ResourceState.Events.
const maxStateEvents = 20

// StateStore keeps the last-seen state of resources. Implementations
// serialise access per resource across every ingest replica.
type StateStore interface {
	// Lock finds the state of the resource that any of keys names (of
	// kind, in tenant), and locks it and every key against concurrent
	// use until the returned LockedState is committed or released. It
	// waits a bounded time for a lock another request holds
	// (ErrStateBusy then). keys are in order of preference: when they
	// lead to different records, the first key's record is used.
	Lock(ctx context.Context, tenant, kind string, keys []ResourceKey) (LockedState, error)
}

// LockedState is a resource state held under a lock.
type LockedState interface {
	// State returns the stored state; found is false for a resource not
	// seen before (or whose state expired).
	State() (st ResourceState, found bool)
	// RecordID is the record's PHI-free id, stable for the resource's
	// lifetime whichever key finds it: the base of its event ids.
	RecordID() string
	// Commit stores st, points every key at it and releases the lock. It
	// fails when the lock was lost (expired); nothing is written then.
	Commit(ctx context.Context, st ResourceState) error
	// Release releases the lock without writing.
	Release(ctx context.Context)
}
