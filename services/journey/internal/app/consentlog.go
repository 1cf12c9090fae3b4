package app

import (
	"context"
	"fmt"
	"strconv"

	"github.com/carenotify/carenotify/pkg/audit"
)

// ConsentLog is the durable record of consent changes (the CONSENT
// stream): every change is published there before the consent store is
// updated, so the store can be rebuilt from it.
type ConsentLog interface {
	// Publish stores the change c made by actor durably; it returns once
	// it is stored. c holds PHI (patient, evidence): sealed at rest.
	Publish(ctx context.Context, c Consent, actor audit.Actor) error
	// Replay calls fn with every change of tenant that was stored when
	// it started, oldest first. changes counts what it read, refused the
	// changes that did not open (tampered, moved), which fn does not see.
	Replay(ctx context.Context, tenant string, fn func(Consent) error) (changes, refused int, err error)
}

// WithConsentLog publishes every consent change to l before the consent
// store is written, and lets RebuildConsent rebuild the store from it.
func WithConsentLog(l ConsentLog) Option {
	return func(s *Service) { s.consentLog = l }
}

// RebuildResult counts what RebuildConsent did.
type RebuildResult struct {
	// Changes read for the tenant; Records written (one per patient,
	// channel and purpose: the latest change); Refused changes that did
	// not open and were skipped.
	Changes, Records, Refused int
}

// ActionConsentRebuilt is the audit action of a consent rebuild.
const ActionConsentRebuilt = "consent.rebuilt"

// RebuildConsent rewrites the tenant's consent records from the consent
// log: for each patient, channel and purpose the latest change wins (log
// order). Records the log has no change for are left alone. The rebuild
// is audited (consent.rebuilt, by the actor of ctx) after the records are
// written; a failure part way leaves records already written, and running
// it again is safe.
func (s *Service) RebuildConsent(ctx context.Context, tenant string) (RebuildResult, error) {
	if !tenantRE.MatchString(tenant) {
		return RebuildResult{}, &ValidationError{Fields: []FieldError{{"tenant", "required; letters, digits, '_' and '-', at most 64"}}}
	}
	if s.consentLog == nil {
		return RebuildResult{}, fmt.Errorf("rebuild consent: no consent log configured")
	}
	latest := map[ConsentKey]Consent{}
	var order []ConsentKey
	invalid := 0
	changes, refused, err := s.consentLog.Replay(ctx, tenant, func(c Consent) error {
		k := ConsentKey{c.Tenant, c.Patient, c.Channel, c.Purpose}
		if validateConsent(c) != nil {
			invalid++ // not a record journey would have written
			return nil
		}
		if _, seen := latest[k]; !seen {
			order = append(order, k)
		}
		latest[k] = c
		return nil
	})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild consent: %w", err)
	}
	res := RebuildResult{Changes: changes, Refused: refused + invalid}
	for _, k := range order {
		if err := s.consents.PutConsent(ctx, latest[k]); err != nil {
			return res, fmt.Errorf("rebuild consent: %w", err)
		}
		res.Records++
	}
	if err := s.audit.Record(ctx, audit.Entry{
		Tenant: tenant, Actor: actorOf(ctx), Action: ActionConsentRebuilt,
		Object: audit.Object{Type: "ConsentStore", ID: tenant}, Outcome: audit.OutcomeSuccess, Reason: "rebuilt",
		Detail: map[string]string{"changes": strconv.Itoa(res.Changes), "records": strconv.Itoa(res.Records), "refused": strconv.Itoa(res.Refused)},
	}); err != nil {
		return res, fmt.Errorf("audit consent rebuild: %w", err)
	}
	s.logger.InfoContext(ctx, "consent rebuilt from the consent log", "tenant", tenant,
		"changes", res.Changes, "records", res.Records, "refused", res.Refused)
	return res, nil
}
