package app

import (
	"context"
	"errors"
	"strings"
	"time"
)

// KeyKind is the kind of a recipient's encryption key.
type KeyKind string

// Key kinds.
const (
	// KeySMIME is an X.509 certificate with an RSA key, for S/MIME
	// enveloped-data (RFC 8551).
	KeySMIME KeyKind = "smime"
	// KeyPGP is an OpenPGP public key, for PGP/MIME (RFC 3156).
	KeyPGP KeyKind = "pgp"
)

// RecipientKey is a recipient's public encryption key on record. It is
// not secret, but it identifies the recipient: it is PHI and rests sealed.
type RecipientKey struct {
	// Kind says which of S/MIME and OpenPGP the key is for.
	Kind KeyKind
	// Data is the DER certificate (KeySMIME) or the binary (unarmored)
	// OpenPGP public key (KeyPGP).
	Data []byte
}

// Keys finds recipients' encryption keys (Redis, sealed, keyed by a keyed
// hash of the address).
type Keys interface {
	// Key returns the key on record for address of tenant that can be
	// used now, or nil when there is none. With both an S/MIME
	// certificate and an OpenPGP key on record, the certificate is used.
	Key(ctx context.Context, tenant, address string) (*RecipientKey, error)
}

// KeyRecord is what is on record for one recipient. PHI (the certificate
// names the recipient).
type KeyRecord struct {
	// SMIME is the DER S/MIME certificate, nil when none.
	SMIME []byte `json:"smime,omitempty"`
	// PGP is the binary OpenPGP public key, nil when none.
	PGP []byte `json:"pgp,omitempty"`
	// UpdatedAt is when the record was last set.
	UpdatedAt time.Time `json:"updated_at"`
}

// KeyRegistry keeps recipients' keys: the admin API and the start-up
// loader (EMAIL_RECIPIENT_KEYS_DIR) set them, workers read them through
// Keys.
type KeyRegistry interface {
	Keys
	// Put replaces the record of address of tenant. Its keys were checked
	// (see the recipientkeys package).
	Put(ctx context.Context, tenant, address string, r KeyRecord) error
	// Get returns the record of address of tenant, or ErrNoKeyRecord.
	Get(ctx context.Context, tenant, address string) (KeyRecord, error)
	// Delete removes the record of address of tenant; it reports whether
	// there was one.
	Delete(ctx context.Context, tenant, address string) (bool, error)
}

// ErrNoKeyRecord: no key is on record for the recipient.
var ErrNoKeyRecord = errors.New("no key on record for the recipient")

// NormalizeAddress returns address as recipient keys are looked up by: a
// bare addr-spec in lower case. ok is false when address is not one bare
// address. Mail systems treat local parts case-insensitively in practice,
// so JANE@Example.org and jane@example.org share their keys.
func NormalizeAddress(address string) (normalized string, ok bool) {
	a := strings.TrimSpace(address)
	if !isAddrSpec(a) {
		return "", false
	}
	return strings.ToLower(a), true
}
