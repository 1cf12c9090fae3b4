package app

import "context"

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
	// Key returns the key on record for address of tenant, or nil when
	// there is none.
	Key(ctx context.Context, tenant, address string) (*RecipientKey, error)
}
