package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Audit actions of the versioned journey store.
const (
	// ActionJourneyApplied: an editor applied a journey file (a new
	// version, or a rollback, which applies an old version's file again).
	// Object Journey/<id>; Reason applied, rolled_back or removed; Detail
	// journeyRevision, journeyVersion (short hash) and restoredFrom.
	ActionJourneyApplied = "journey.applied"
)

// AllTenants is the audit tenant of records about a journey that runs
// for every tenant (no tenant: line).
const AllTenants = "_all"

// JourneyVersion is one stored version of a journey file.
type JourneyVersion struct {
	// Journey is the journey id.
	Journey string `json:"journey"`
	// Version is the version number, from 1, per journey.
	Version int `json:"version"`
	// Tenant is the journey's tenant: line ("" for every tenant).
	Tenant string `json:"tenant,omitempty"`
	// File is the file name the version was applied as.
	File string `json:"file,omitempty"`
	// Hash is the hex SHA-256 of Content.
	Hash string `json:"hash"`
	// Principal is who applied it: the admin token's principal, or
	// "seed:<directory>" for a journey seeded from the journeys directory.
	Principal string `json:"principal"`
	// At is when it was applied.
	At time.Time `json:"at"`
	// Message is the applier's optional note (free text; not PHI by
	// rule, but not logged).
	Message string `json:"message,omitempty"`
	// Removed marks a version that removes the journey: no new starts,
	// pending timers stop. Content is empty.
	Removed bool `json:"removed,omitempty"`
	// RestoredFrom is the version a rollback applied again, or 0.
	RestoredFrom int `json:"restoredFrom,omitempty"`
	// Content is the journey file.
	Content []byte `json:"content,omitempty"`
}

// ShortHash is the hash as journeys carry it ([catalog.Journey.Version]).
func (v JourneyVersion) ShortHash() string { return v.Hash[:min(12, len(v.Hash))] }

// JourneyVersions keeps every version of every journey. Errors other than
// ErrNotFound mean the store could not answer.
type JourneyVersions interface {
	// Append stores v as the next version of v.Journey (setting Version,
	// Hash and At); when its content and removal equal the current
	// version's it stores nothing and returns that, with changed false.
	Append(ctx context.Context, v JourneyVersion) (stored JourneyVersion, changed bool, err error)
	// History returns every version of a journey, oldest first, or
	// ErrNotFound.
	History(ctx context.Context, id string) ([]JourneyVersion, error)
	// Version returns version n of a journey, or ErrNotFound.
	Version(ctx context.Context, id string, n int) (JourneyVersion, error)
}

// WithJourneyVersions sets the versioned journey store that ApplyJourney,
// JourneyHistory and RollbackJourney use (without it they answer
// ErrNoJourneyStore).
func WithJourneyVersions(v JourneyVersions) Option {
	return func(s *Service) { s.versions = v }
}

// ErrNoJourneyStore is returned by the versioned-journey calls of a
// Service built without [WithJourneyVersions].
var ErrNoJourneyStore = errors.New("this journey service has no versioned journey store")

// catalog is the journeys and templates running now.
func (s *Service) catalog() *catalog.Set { return s.set.Load() }

// Replace makes set the running journeys: new events, timers and calls
// see it from now on; work already under way finishes with what it
// looked up.
func (s *Service) Replace(set *catalog.Set) { s.set.Store(set) }

// ApplyResult is what ApplyJourney did.
type ApplyResult struct {
	// Problems, when not empty, say why the file was refused; nothing was
	// stored and the running version stays.
	Problems []catalog.Problem
	// Journey is the checked journey (nil with problems).
	Journey *catalog.Journey
	// Version is the stored version (the current one when unchanged).
	Version JourneyVersion
	// Changed is false when the file was the current version already.
	Changed bool
}

// ApplyJourney checks a journey file exactly as CheckJourney does and,
// when it has no problems, stores it as the journey's next version,
// audited with the caller (actorOf ctx). Every replica then runs it once
// its store watch sees the change. A file with problems is refused with
// them, and nothing changes.
func (s *Service) ApplyJourney(ctx context.Context, name string, content []byte, message string) (ApplyResult, error) {
	return s.apply(ctx, name, content, message, 0)
}

// RollbackJourney applies version n of journey id again, as a new
// version, checked like any apply (a template it needs may be gone).
func (s *Service) RollbackJourney(ctx context.Context, id string, n int, message string) (ApplyResult, error) {
	if s.versions == nil {
		return ApplyResult{}, ErrNoJourneyStore
	}
	old, err := s.versions.Version(ctx, id, n)
	if err != nil {
		return ApplyResult{}, err
	}
	if old.Removed {
		return ApplyResult{}, &ValidationError{Fields: []FieldError{{"to", fmt.Sprintf("version %d removed the journey; roll back to a version that has a file", n)}}}
	}
	return s.apply(ctx, old.File, old.Content, message, n)
}

func (s *Service) apply(ctx context.Context, name string, content []byte, message string, restoredFrom int) (ApplyResult, error) {
	if s.versions == nil {
		return ApplyResult{}, ErrNoJourneyStore
	}
	j, problems := s.CheckJourney(name, content)
	if len(problems) > 0 {
		return ApplyResult{Problems: problems}, nil
	}
	actor := actorOf(ctx)
	v, changed, err := s.versions.Append(ctx, JourneyVersion{
		Journey: j.ID, Tenant: j.Tenant, File: name, Principal: actor.ID, Message: message, RestoredFrom: restoredFrom, Content: content,
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("store journey version: %w", err)
	}
	res := ApplyResult{Journey: j, Version: v, Changed: changed}
	if !changed {
		return res, nil
	}
	reason := "applied"
	if restoredFrom > 0 {
		reason = "rolled_back"
	}
	if err := s.journeyAudit(ctx, v, reason); err != nil {
		// The version is stored and will run; a retry finds it unchanged
		// and writes no second version, so say so rather than hide it.
		return res, err
	}
	s.logger.InfoContext(ctx, "journey version applied", "journey", v.Journey, "version", v.Version,
		"journeyVersion", v.ShortHash(), "principal", actor.ID, slog.Bool("rollback", restoredFrom > 0))
	return res, nil
}

// RemoveJourney stores a version of journey id that removes it: no new
// instance starts, and pending timers of its instances stop (not sent).
func (s *Service) RemoveJourney(ctx context.Context, id, message string) (JourneyVersion, error) {
	if s.versions == nil {
		return JourneyVersion{}, ErrNoJourneyStore
	}
	cur, err := s.versions.History(ctx, id)
	if err != nil {
		return JourneyVersion{}, err
	}
	last := cur[len(cur)-1]
	if last.Removed {
		return last, nil
	}
	v, changed, err := s.versions.Append(ctx, JourneyVersion{Journey: id, Tenant: last.Tenant, Principal: actorOf(ctx).ID, Message: message, Removed: true})
	if err != nil || !changed {
		return v, err
	}
	return v, s.journeyAudit(ctx, v, "removed")
}

// JourneyHistory returns every version of journey id, oldest first.
func (s *Service) JourneyHistory(ctx context.Context, id string) ([]JourneyVersion, error) {
	if s.versions == nil {
		return nil, ErrNoJourneyStore
	}
	return s.versions.History(ctx, id)
}

// journeyAudit records a stored version v with reason.
func (s *Service) journeyAudit(ctx context.Context, v JourneyVersion, reason string) error {
	tenant := v.Tenant
	if tenant == "" {
		tenant = AllTenants
	}
	d := map[string]string{"journey": v.Journey, "journeyRevision": strconv.Itoa(v.Version)}
	if !v.Removed {
		d["journeyVersion"] = v.ShortHash()
	}
	if v.RestoredFrom > 0 {
		d["restoredFrom"] = strconv.Itoa(v.RestoredFrom)
	}
	err := s.audit.Record(ctx, audit.Entry{
		Tenant: tenant, Actor: actorOf(ctx), Action: ActionJourneyApplied,
		Object: audit.Object{Type: "Journey", ID: v.Journey}, Outcome: audit.OutcomeSuccess, Reason: reason, Detail: d,
	})
	if err != nil {
		return fmt.Errorf("audit journey version: %w", err)
	}
	return nil
}

// Reload builds the running journeys from files (the current stored
// version of each journey that is not removed) with the running templates
// and swaps them in. On any problem it returns a [*catalog.LoadError]
// and the running journeys stay as they are.
func (s *Service) Reload(files []catalog.JourneyFile) error {
	set, err := s.catalog().WithJourneys(files)
	if err != nil {
		return err
	}
	s.Replace(set)
	return nil
}
