package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
)

// clockSkew widens the stream start time of a query with Since, because a
// record's Time comes from the writing service's clock and the stream's
// timestamps from the NATS server's.
const clockSkew = 5 * time.Minute

// Filter selects records for Query. Empty fields match everything.
type Filter struct {
	Tenant  string
	Service string
	// Patient is a patient's logical id in clear; Query hashes it with
	// PseudonymKey and Tenant (both then required) and matches PatientRef.
	Patient      string
	PseudonymKey []byte
	// PatientRef matches a stored PatientRef directly (a keyed hash as
	// [PatientRef] makes it); ignored when Patient is set.
	PatientRef string
	ObjectType string
	ObjectID   string
	// ActorID matches Actor.ID.
	ActorID string
	Action  string
	// Since and Until bound Time: Since <= Time < Until.
	Since time.Time
	Until time.Time
	// Limit caps the number of records returned, oldest first; 0 means
	// no limit.
	Limit int
}

// Query returns the records matching f, in stream order (oldest first).
// It does not verify the chain (see Verify) and skips messages that are
// not audit records.
func Query(ctx context.Context, js jetstream.JetStream, f Filter) ([]Record, error) {
	subject, err := f.subject()
	if err != nil {
		return nil, err
	}
	var ref string
	if f.Patient != "" {
		if f.Tenant == "" || len(f.PseudonymKey) < PseudonymKeySize {
			return nil, errors.New("query by patient: tenant and pseudonym key are required")
		}
		ref = PatientRef(f.PseudonymKey, f.Tenant, f.Patient)
	} else if f.PatientRef != "" {
		ref = f.PatientRef
	}
	s, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	var start time.Time
	if !f.Since.IsZero() {
		start = f.Since.Add(-clockSkew)
	}
	var out []Record
	err = scan(ctx, s, subject, start, func(_ uint64, _ string, data []byte) bool {
		var r Record
		if json.Unmarshal(data, &r) != nil || r.Seq == 0 {
			return true
		}
		if f.match(r, ref) {
			out = append(out, r)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// subject is the stream subject filter for f's tenant and service.
func (f Filter) subject() (string, error) {
	tenant, service := "*", "*"
	if f.Tenant != "" {
		if !bus.ValidToken(f.Tenant) {
			return "", errors.New("query: invalid tenant")
		}
		tenant = f.Tenant
	}
	if f.Service != "" {
		if !bus.ValidToken(f.Service) {
			return "", errors.New("query: invalid service")
		}
		service = f.Service
	}
	return "audit." + tenant + "." + service, nil
}

func (f Filter) match(r Record, patientRef string) bool {
	switch {
	case patientRef != "" && r.PatientRef != patientRef,
		f.ObjectType != "" && r.Object.Type != f.ObjectType,
		f.ObjectID != "" && r.Object.ID != f.ObjectID,
		f.ActorID != "" && r.Actor.ID != f.ActorID,
		f.Action != "" && r.Action != f.Action,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	return true
}
