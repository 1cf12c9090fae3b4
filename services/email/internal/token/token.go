package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/uuid"
)

// MinKeySize is the shortest key accepted, in bytes.
const MinKeySize = 32

// ErrInvalid: the token is malformed, or its tag does not verify.
var ErrInvalid = errors.New("invalid token")

// Domain strings: what each kind of tag is computed over starts with one.
const (
	domainUnsubscribe = "carenotify/email/unsubscribe/v1\x00"
	domainVERP        = "carenotify/email/verp/v1\x00"
)

// unsubscribeTagSize and verpTagSize are the tag lengths, in bytes. The
// VERP tag is shorter so that the address's local part stays within the
// 64 octets of RFC 5321 §4.5.3.1.1.
const (
	unsubscribeTagSize = 16
	verpTagSize        = 10
)

// Keys makes and checks tokens.
type Keys struct {
	key []byte
}

// New returns Keys using key (at least MinKeySize bytes).
func New(key []byte) (*Keys, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("token key must be at least %d bytes", MinKeySize)
	}
	return &Keys{key: bytes.Clone(key)}, nil
}

// Load reads a key file: at least MinKeySize bytes in standard base64
// (surrounding whitespace ignored), e.g. `openssl rand -base64 32`.
func Load(file string) (*Keys, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) < MinKeySize {
		return nil, fmt.Errorf("token key %s: want at least %d bytes in base64", file, MinKeySize)
	}
	return New(key)
}

func (k *Keys) tag(domain, data string, size int) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(domain))
	m.Write([]byte(data))
	return m.Sum(nil)[:size]
}

var b64 = base64.RawURLEncoding

// Unsubscribe returns the unsubscribe token of a message: URL-safe,
// base64url(tenant "." id) "." base64url(tag).
func (k *Keys) Unsubscribe(tenant, id string) string {
	data := tenant + "." + id
	return b64.EncodeToString([]byte(data)) + "." + b64.EncodeToString(k.tag(domainUnsubscribe, data, unsubscribeTagSize))
}

// ParseUnsubscribe checks an unsubscribe token and returns its tenant and
// message id, or ErrInvalid.
func (k *Keys) ParseUnsubscribe(tok string) (tenant, id string, err error) {
	enc, encTag, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 512 {
		return "", "", ErrInvalid
	}
	data, err1 := b64.DecodeString(enc)
	tag, err2 := b64.DecodeString(encTag)
	if err1 != nil || err2 != nil || !hmac.Equal(tag, k.tag(domainUnsubscribe, string(data), unsubscribeTagSize)) {
		return "", "", ErrInvalid
	}
	tenant, id, ok = strings.Cut(string(data), ".")
	if !ok || tenant == "" || id == "" {
		return "", "", ErrInvalid
	}
	return tenant, id, nil
}

// verpEncoding is lower-case base32 without padding: mail systems may
// change the case of a local part, so the token is read case-insensitively.
var verpEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// VERP returns the VERP token of a message id (a UUID): lower-case base32
// of the id's 16 bytes and a 10-byte tag, 42 characters. It does not
// carry the tenant (the local part would not fit); see app's bounce
// handling for the lookup.
func (k *Keys) VERP(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", errors.New("verp token: message id is not a UUID")
	}
	raw := append(u[:], k.tag(domainVERP, u.String(), verpTagSize)...)
	return verpEncoding.EncodeToString(raw), nil
}

// ParseVERP checks a VERP token and returns its message id, or ErrInvalid.
func (k *Keys) ParseVERP(tok string) (string, error) {
	raw, err := verpEncoding.DecodeString(strings.ToLower(tok))
	if err != nil || len(raw) != 16+verpTagSize {
		return "", ErrInvalid
	}
	u, err := uuid.FromBytes(raw[:16])
	if err != nil || !hmac.Equal(raw[16:], k.tag(domainVERP, u.String(), verpTagSize)) {
		return "", ErrInvalid
	}
	return u.String(), nil
}
