package records

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Hash fields of a delivery record.
const (
	fStatus      = "status"
	fAttempts    = "attempts"
	fReason      = "reason"
	fUpdatedAt   = "updated_at"
	fExpiresAt   = "expires_at"
	fIdemHash    = "idempotency_key_sha256"
	fCommitted   = "committed"
	fTLSVersion  = "tls_version"
	fTLSVerified = "tls_verified"
	fNextHop     = "next_hop"
	fSMIME       = "smime"
	fPGP         = "pgp"
	fPortal      = "portal"
	fRequireTLS  = "require_tls"
	fSending     = "sending"
	fUncertain   = "uncertain_resends"
	fHeld        = "held"

	// Fields of the sent index (SentKey).
	fTenant   = "tenant"
	fIdemKey  = "idempotency_key"
	fRcptHash = "rcpt_hash"
)

// Store is app.Store on Redis.
type Store struct {
	c *redis.Client
}

var _ app.Store = (*Store)(nil)

// New returns a Store using c.
func New(c *redis.Client) *Store { return &Store{c: c} }

// IdempotencyKey is the Redis key of an idempotency key's hash.
func IdempotencyKey(tenant, keyHash string) string {
	return store.Key(tenant, "email", "idem", keyHash)
}

// RecordKey is the Redis key of a message's delivery record.
func RecordKey(tenant, id string) string { return store.Key(tenant, "email", "msg", id) }

func lockKey(tenant, id string) string { return store.Key(tenant, "email", "lock", id) }

// SentKey is the Redis key that maps a sent message's id to its tenant and
// idempotency key, for bounces and opt-outs that name a message by id.
// Not tenant-scoped: the tenant is what it looks up. None of it is PHI.
func SentKey(id string) string { return "cn:email:sent:{" + id + "}" }

// claimScript sets KEYS[1] to ARGV[1] with a TTL of ARGV[2] ms unless it
// exists, and returns the value it holds afterwards.
var claimScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return ARGV[1]
end
return redis.call("GET", KEYS[1])
`)

// ClaimIdempotencyKey implements app.Store.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, tenant, keyHash, id string, ttl time.Duration) (string, bool, error) {
	got, err := claimScript.Run(ctx, s.c, []string{IdempotencyKey(tenant, keyHash)}, id, ttl.Milliseconds()).Text()
	if err != nil {
		return "", false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return got, got == id, nil
}

// CreateRecord implements app.Store.
func (s *Store) CreateRecord(ctx context.Context, r app.Record, ttl time.Duration) error {
	k := RecordKey(r.Tenant, r.ID)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields(r))
		p.PExpire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("create record: %w", err)
	}
	return nil
}

// commitScript marks record KEYS[2] committed and makes it and the
// idempotency key KEYS[1] live ARGV[2] ms, if KEYS[1] still holds ARGV[1]
// (the claim did not expire and pass to another Send); 0 otherwise.
var commitScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call("HSET", KEYS[2], "committed", "1")
redis.call("PEXPIRE", KEYS[2], ARGV[2])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
`)

// Commit implements app.Store.
func (s *Store) Commit(ctx context.Context, tenant, id, keyHash string, ttl time.Duration) error {
	keys := []string{IdempotencyKey(tenant, keyHash), RecordKey(tenant, id)}
	n, err := commitScript.Run(ctx, s.c, keys, id, ttl.Milliseconds()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("commit record: %w", err)
	case n == 0:
		return app.ErrClaimLost
	}
	return nil
}

// forgetScript deletes the idempotency key KEYS[1] if it still holds
// ARGV[1], and the record KEYS[2].
var forgetScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
end
redis.call("DEL", KEYS[2])
return 1
`)

// Forget implements app.Store.
func (s *Store) Forget(ctx context.Context, tenant, id, keyHash string) error {
	keys := []string{IdempotencyKey(tenant, keyHash), RecordKey(tenant, id)}
	if err := forgetScript.Run(ctx, s.c, keys, id).Err(); err != nil {
		return fmt.Errorf("forget message: %w", err)
	}
	return nil
}

// Record implements app.Store.
func (s *Store) Record(ctx context.Context, tenant, id string) (app.Record, error) {
	h, err := s.c.HGetAll(ctx, RecordKey(tenant, id)).Result()
	if err != nil {
		return app.Record{}, fmt.Errorf("read record: %w", err)
	}
	if len(h) == 0 || h[fStatus] == "" {
		return app.Record{}, app.ErrNotFound
	}
	r := app.Record{
		ID: id, Tenant: tenant, Status: app.Status(h[fStatus]), Reason: h[fReason],
		IdempotencyKeyHash: h[fIdemHash], Committed: h[fCommitted] == "1",
		Transport: app.Transport{
			TLSVersion: h[fTLSVersion], TLSVerified: h[fTLSVerified] == "1", NextHop: h[fNextHop],
			SMIME: h[fSMIME] == "1", PGP: h[fPGP] == "1", Portal: h[fPortal] == "1", RequireTLS: h[fRequireTLS] == "1",
			Held: h[fHeld] == "1",
		},
	}
	r.Sending = h[fSending] == "1"
	r.UncertainResends, _ = strconv.Atoi(h[fUncertain])
	r.Attempts, _ = strconv.Atoi(h[fAttempts])
	r.UpdatedAt, _ = time.Parse(time.RFC3339Nano, h[fUpdatedAt])
	r.ExpiresAt, _ = time.Parse(time.RFC3339Nano, h[fExpiresAt])
	return r, nil
}

// UpdateRecord implements app.Store. It also marks the record committed
// (a worker holds the message, so it is in the outbox) and extends the
// idempotency key with it, in case Send could not.
func (s *Store) UpdateRecord(ctx context.Context, r app.Record, ttl time.Duration) error {
	k := RecordKey(r.Tenant, r.ID)
	r.Committed = true
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields(r))
		p.PExpire(ctx, k, ttl)
		if r.IdempotencyKeyHash != "" {
			p.PExpire(ctx, IdempotencyKey(r.Tenant, r.IdempotencyKeyHash), ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update record: %w", err)
	}
	return nil
}

// RememberSent implements app.Store.
func (s *Store) RememberSent(ctx context.Context, ref app.SentRef, ttl time.Duration) error {
	k := SentKey(ref.ID)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fTenant, ref.Tenant, fIdemKey, ref.IdempotencyKey, fRcptHash, ref.RecipientHash)
		p.PExpire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remember sent message: %w", err)
	}
	return nil
}

// Sent implements app.Store.
func (s *Store) Sent(ctx context.Context, id string) (app.SentRef, error) {
	h, err := s.c.HGetAll(ctx, SentKey(id)).Result()
	switch {
	case err != nil:
		return app.SentRef{}, fmt.Errorf("read sent message: %w", err)
	case h[fTenant] == "":
		return app.SentRef{}, app.ErrNotFound
	}
	return app.SentRef{ID: id, Tenant: h[fTenant], IdempotencyKey: h[fIdemKey], RecipientHash: h[fRcptHash]}, nil
}

// unlockScript deletes KEYS[1] if it still holds ARGV[1].
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

// Lock implements app.Store.
func (s *Store) Lock(ctx context.Context, tenant, id string, ttl time.Duration) (func(context.Context), bool, error) {
	k := lockKey(tenant, id)
	token := rand.Text()
	ok, err := s.c.SetNX(ctx, k, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("lock message: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	unlock := func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		// On failure the lock expires by itself.
		_ = unlockScript.Run(ctx, s.c, []string{k}, token).Err()
	}
	return unlock, true, nil
}

// fields returns the hash fields of r.
func fields(r app.Record) map[string]any {
	return map[string]any{
		fStatus:      string(r.Status),
		fAttempts:    r.Attempts,
		fReason:      r.Reason,
		fUpdatedAt:   r.UpdatedAt.UTC().Format(time.RFC3339Nano),
		fExpiresAt:   r.ExpiresAt.UTC().Format(time.RFC3339Nano),
		fIdemHash:    r.IdempotencyKeyHash,
		fCommitted:   boolField(r.Committed),
		fTLSVersion:  r.Transport.TLSVersion,
		fTLSVerified: boolField(r.Transport.TLSVerified),
		fNextHop:     r.Transport.NextHop,
		fSMIME:       boolField(r.Transport.SMIME),
		fPGP:         boolField(r.Transport.PGP),
		fPortal:      boolField(r.Transport.Portal),
		fRequireTLS:  boolField(r.Transport.RequireTLS),
		fHeld:        boolField(r.Transport.Held),
		fSending:     boolField(r.Sending),
		fUncertain:   r.UncertainResends,
	}
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
