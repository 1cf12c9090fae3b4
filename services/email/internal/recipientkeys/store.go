package recipientkeys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Store is app.KeyRegistry on Redis.
type Store struct {
	c      *redis.Client
	sealer *envelope.Sealer
	key    []byte // HMAC key for addresses in key names
	now    func() time.Time
}

var _ app.KeyRegistry = (*Store)(nil)

// New returns a Store. pseudonymKey is the audit pseudonym key; the key
// that hashes addresses in key names is derived from it. now is the clock
// key validity is checked against (time.Now when nil).
func New(c *redis.Client, sealer *envelope.Sealer, pseudonymKey []byte, now func() time.Time) *Store {
	m := hmac.New(sha256.New, pseudonymKey)
	m.Write([]byte("carenotify email recipient keys v1"))
	if now == nil {
		now = time.Now
	}
	return &Store{c: c, sealer: sealer, key: m.Sum(nil), now: now}
}

// KeyName is the Redis key of address's record for tenant; address must
// be normalised (app.NormalizeAddress).
func (s *Store) KeyName(tenant, address string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant + "|" + address))
	return store.Key(tenant, "email", "rkey", hex.EncodeToString(m.Sum(nil)))
}

func (s *Store) name(tenant, address string) (string, error) {
	a, ok := app.NormalizeAddress(address)
	if !ok {
		return "", errors.New("recipient keys: not one bare address")
	}
	return s.KeyName(tenant, a), nil
}

// Put implements app.KeyRegistry.
func (s *Store) Put(ctx context.Context, tenant, address string, r app.KeyRecord) error {
	k, err := s.name(tenant, address)
	if err != nil {
		return err
	}
	if len(r.SMIME) == 0 && len(r.PGP) == 0 {
		return errors.New("recipient keys: a record needs an S/MIME certificate or an OpenPGP key")
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = s.now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put recipient keys: %w", err)
	}
	if err := store.SetSealed(ctx, s.c, s.sealer, tenant, k, b, 0); err != nil {
		return fmt.Errorf("put recipient keys: %w", err)
	}
	return nil
}

// Get implements app.KeyRegistry.
func (s *Store) Get(ctx context.Context, tenant, address string) (app.KeyRecord, error) {
	k, err := s.name(tenant, address)
	if err != nil {
		return app.KeyRecord{}, err
	}
	b, err := store.GetSealed(ctx, s.c, s.sealer, tenant, k)
	if errors.Is(err, store.ErrNotFound) {
		return app.KeyRecord{}, app.ErrNoKeyRecord
	}
	if err != nil {
		return app.KeyRecord{}, fmt.Errorf("read recipient keys: %w", err)
	}
	var r app.KeyRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return app.KeyRecord{}, errors.New("read recipient keys: record is not JSON")
	}
	return r, nil
}

// Delete implements app.KeyRegistry.
func (s *Store) Delete(ctx context.Context, tenant, address string) (bool, error) {
	k, err := s.name(tenant, address)
	if err != nil {
		return false, err
	}
	n, err := s.c.Del(ctx, k).Result()
	if err != nil {
		return false, fmt.Errorf("delete recipient keys: %w", err)
	}
	return n > 0, nil
}

// Key implements app.Keys: the S/MIME certificate when it is valid now,
// else the OpenPGP key when it has an encryption key valid now, else nil.
// A key that was valid when it was put on record may have expired since;
// it is then not used (and stays on record until replaced).
func (s *Store) Key(ctx context.Context, tenant, address string) (*app.RecipientKey, error) {
	r, err := s.Get(ctx, tenant, address)
	if errors.Is(err, app.ErrNoKeyRecord) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if len(r.SMIME) > 0 {
		if cert, err := x509.ParseCertificate(r.SMIME); err == nil && usableSMIME(cert, now) == nil {
			return &app.RecipientKey{Kind: app.KeySMIME, Data: r.SMIME}, nil
		}
	}
	if len(r.PGP) > 0 {
		if list, err := openpgp.ReadKeyRing(bytes.NewReader(r.PGP)); err == nil && len(list) == 1 && usablePGP(list[0], now) == nil {
			return &app.RecipientKey{Kind: app.KeyPGP, Data: r.PGP}, nil
		}
	}
	return nil, nil
}
