package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
)

// Actor types.
const (
	ActorService   = "service"
	ActorPerson    = "person"
	ActorEHRSource = "ehr-source"
)

// Outcomes.
const (
	OutcomeSuccess    = "success"
	OutcomeDenied     = "denied"
	OutcomeFailure    = "failure"
	OutcomeSuppressed = "suppressed"
)

// Purposes of use; "" when none applies.
const (
	PurposeTreatment  = "treatment"
	PurposeOperations = "operations"
	PurposeMarketing  = "marketing"
)

// Common actions. Any lowercase dotted name is accepted except the
// "audit." prefix, which the trail keeps for itself.
const (
	ActionEventReceived  = "event.received"
	ActionMessageDecided = "message.decided"
	ActionMessageSent    = "message.sent"
	ActionPHIRead        = "phi.read"
	ActionPHIWrite       = "phi.write"
	// ActionCheckpoint marks a signed checkpoint record, written by the
	// Writer only.
	ActionCheckpoint = "audit.checkpoint"
)

// ObjectAuditChain is the object type of a checkpoint record; its ID is
// the hash of the chain head the checkpoint signs.
const ObjectAuditChain = "AuditChain"

// ErrInvalidEntry is wrapped by every validation error of [Writer.Record].
// The messages name the field, never its value, which might be PHI
// handed over by mistake.
var ErrInvalidEntry = errors.New("invalid audit entry")

// Actor is who acted: a service identity, a person (user id) or an EHR
// source (sender id).
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Object is what was acted on, by type and id only: "ClinicalEvent" and an
// event id, "EmailMessage" and a message id. Never a value.
type Object struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Record is one stored audit record. Field order is the canonical order
// (see the package documentation); do not reorder fields.
type Record struct {
	// Seq numbers the records of one chain (tenant + service) from 1.
	Seq uint64 `json:"seq"`
	// Time is when the audited thing happened, UTC.
	Time    time.Time `json:"time"`
	Tenant  string    `json:"tenant"`
	Service string    `json:"service"`
	Actor   Actor     `json:"actor"`
	// Action is a lowercase dotted name such as "phi.read".
	Action string `json:"action"`
	Object Object `json:"object"`
	// PatientRef is the keyed hash of the patient, [PatientRef]; "" when no
	// patient is involved. Never the patient's id in clear.
	PatientRef string `json:"patientRef"`
	// Purpose is treatment, operations, marketing or "".
	Purpose string `json:"purpose"`
	// Outcome is success, denied, failure or suppressed.
	Outcome string `json:"outcome"`
	// Reason is a machine code such as "no-consent" or "quiet-hours".
	Reason string `json:"reason"`
	// Detail holds what else explains the decision, as machine tokens:
	// the channel, a message id, the consent record that allowed or
	// stopped a send, a timer's due time. Omitted when empty, so records
	// written without it encode as before. Never a value that is PHI.
	Detail  map[string]string `json:"detail,omitempty"`
	TraceID string            `json:"traceId"`
	// Prev is the Hash of the previous record of the chain, "" for Seq 1.
	Prev string `json:"prev"`
	// Signature is set on checkpoint records only: the base64 Ed25519
	// signature of [checkpointMessage].
	Signature string `json:"signature,omitempty"`
	// Hash is the hex SHA-256 of the record's canonical encoding, which
	// covers every field but Hash.
	Hash string `json:"hash,omitempty"`
}

// Entry is what a service records; the Writer adds Service, Seq, Prev and
// Hash and turns Patient into a PatientRef.
type Entry struct {
	// Time defaults to now.
	Time   time.Time
	Tenant string
	Actor  Actor
	Action string
	Object Object
	// Patient is the patient's logical id in clear. It is hashed with the
	// pseudonym key before anything is stored and never leaves the Writer.
	Patient string
	// PatientRef, used only when Patient is empty, is a patient's keyed
	// reference as [PatientRef] makes it (64 hex digits), for a record
	// about a patient known only by reference (a trace by reference).
	PatientRef string
	Purpose    string
	Outcome    string
	Reason     string
	// Detail, at most [MaxDetail] entries: keys are lowerCamelCase names
	// (letters and digits, at most 32), values opaque tokens like ids
	// (letters, digits and ._:/=+-, at most 128; RFC 3339 times fit).
	Detail  map[string]string
	TraceID string
}

// MaxDetail is the most entries an [Entry]'s Detail may have.
const MaxDetail = 12

// canonical returns the bytes Hash is computed over: the JSON encoding of
// r with Hash empty (and so omitted).
func (r Record) canonical() ([]byte, error) {
	r.Hash = ""
	return json.Marshal(r)
}

// computeHash returns the hex SHA-256 of r's canonical encoding.
func (r Record) computeHash() (string, error) {
	b, err := r.canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// PatientRef returns the keyed hash under which a patient appears in the
// trail: hex HMAC-SHA256 of "<tenant>|<patient logical id>" with the
// pseudonym key. Without the key the reference cannot be linked back to
// the patient, nor computed from a guessed id.
func PatientRef(key []byte, tenant, patient string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tenant))
	m.Write([]byte{'|'})
	m.Write([]byte(patient))
	return hex.EncodeToString(m.Sum(nil))
}

var (
	actionRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$`)
	objectTypeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	// Ids are opaque tokens: no spaces (free text) and no '@' (addresses).
	idRE         = regexp.MustCompile(`^[A-Za-z0-9._:/=+-]{1,128}$`)
	codeRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)
	patientRefRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// Detail keys are lowerCamelCase names.
	detailKeyRE = regexp.MustCompile(`^[a-z][A-Za-z0-9]{0,31}$`)
)

// validate checks an entry, naming the bad field but never its value.
func (e Entry) validate() error {
	bad := func(field string) error { return fmt.Errorf("%w: %s", ErrInvalidEntry, field) }
	switch {
	case !bus.ValidToken(e.Tenant):
		return bad("tenant")
	case e.Actor.Type != ActorService && e.Actor.Type != ActorPerson && e.Actor.Type != ActorEHRSource:
		return bad("actor type")
	case !idRE.MatchString(e.Actor.ID):
		return bad("actor id")
	case len(e.Action) > 64 || !actionRE.MatchString(e.Action):
		return bad("action")
	case strings.HasPrefix(e.Action, "audit."):
		return bad("action (audit.* is reserved)")
	case (e.Object != Object{}) && !objectTypeRE.MatchString(e.Object.Type):
		return bad("object type")
	case (e.Object != Object{}) && !idRE.MatchString(e.Object.ID):
		return bad("object id")
	case len(e.Patient) > 256:
		return bad("patient")
	case e.PatientRef != "" && !patientRefRE.MatchString(e.PatientRef):
		return bad("patient ref")
	case e.Purpose != "" && e.Purpose != PurposeTreatment && e.Purpose != PurposeOperations && e.Purpose != PurposeMarketing:
		return bad("purpose")
	case e.Outcome != OutcomeSuccess && e.Outcome != OutcomeDenied && e.Outcome != OutcomeFailure && e.Outcome != OutcomeSuppressed:
		return bad("outcome")
	case e.Reason != "" && !codeRE.MatchString(e.Reason):
		return bad("reason")
	case e.TraceID != "" && !idRE.MatchString(e.TraceID):
		return bad("trace id")
	case !e.Time.IsZero() && (e.Time.Year() < 2000 || e.Time.Year() > 9999):
		return bad("time")
	case len(e.Detail) > MaxDetail:
		return bad("detail (too many entries)")
	}
	for k, v := range e.Detail {
		if !detailKeyRE.MatchString(k) {
			return bad("detail key")
		}
		if !idRE.MatchString(v) {
			return bad("detail " + k)
		}
	}
	return nil
}
