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

// ClaimIdempotencyKey stores id under the key's hash unless the hash is
// already there; it returns the id stored under it and whether this call
// stored it. The claim lives for ttl. (Send claims with Claim; tests and
// other callers that need no record use this.)
func (s *Store) ClaimIdempotencyKey(ctx context.Context, tenant, keyHash, id string, ttl time.Duration) (string, bool, error) {
	got, err := claimScript.Run(ctx, s.c, []string{IdempotencyKey(tenant, keyHash)}, id, ttl.Milliseconds()).Text()
	if err != nil {
		return "", false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return got, got == id, nil
}

// claimCreateScript takes idempotency key KEYS[1] for message ARGV[1]
// (TTL ARGV[2] ms) unless it is taken, and then, unless the suppression
// entry KEYS[3] (when given) exists, writes record KEYS[2] with the
// field/value pairs ARGV[3..] and the same TTL. It returns the id the key
// holds and the suppression entry's reason and evidence ("" when the
// recipient is not suppressed; the claim is then undone).
var claimCreateScript = redis.NewScript(`
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return {redis.call("GET", KEYS[1]), "", "", ""}
end
if #KEYS == 3 then
  local e = redis.call("HMGET", KEYS[3], "reason", "message_id", "at")
  if e[1] then
    redis.call("DEL", KEYS[1])
    return {ARGV[1], e[1], e[2] or "", e[3] or ""}
  end
end
redis.call("HSET", KEYS[2], unpack(ARGV, 3))
redis.call("PEXPIRE", KEYS[2], ARGV[2])
return {ARGV[1], "", "", ""}
`)

// Claim implements app.Store with one script on the tenant's slot.
func (s *Store) Claim(ctx context.Context, r app.Record, suppHash string, ttl time.Duration) (app.Claimed, error) {
	keys := []string{IdempotencyKey(r.Tenant, r.IdempotencyKeyHash), RecordKey(r.Tenant, r.ID)}
	if suppHash != "" {
		if !validHash(suppHash) {
			return app.Claimed{}, fmt.Errorf("claim idempotency key: malformed address hash")
		}
		keys = append(keys, suppKey(r.Tenant, suppHash))
	}
	args := []any{r.ID, ttl.Milliseconds()}
	for k, v := range fields(r) {
		args = append(args, k, v)
	}
	res, err := claimCreateScript.Run(ctx, s.c, keys, args...).StringSlice()
	if err != nil || len(res) != 4 {
		return app.Claimed{}, fmt.Errorf("claim idempotency key: %w", err)
	}
	c := app.Claimed{Stored: res[0], Claimed: res[0] == r.ID}
	if res[1] != "" {
		e := entry(r.Tenant, suppHash, map[string]string{fSuppReason: res[1], fSuppMsgID: res[2], fSuppAt: res[3]})
		c.Suppressed = &e
	}
	return c, nil
}

// Begin implements app.Store: SET NX of the lock, and the record and the
// suppression entry read, pipelined. The reads run whether or not the
// lock was free; they are ignored when it was not.
func (s *Store) Begin(ctx context.Context, tenant, id, suppHash string, ttl time.Duration) (app.Lease, error) {
	token := rand.Text()
	var lock *redis.BoolCmd
	var rec, supp *redis.MapStringStringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		lock = p.SetNX(ctx, lockKey(tenant, id), token, ttl)
		rec = p.HGetAll(ctx, RecordKey(tenant, id))
		if suppHash != "" && validHash(suppHash) {
			supp = p.HGetAll(ctx, suppKey(tenant, suppHash))
		}
		return nil
	})
	if err != nil {
		return app.Lease{}, fmt.Errorf("lock message: %w", err)
	}
	if !lock.Val() {
		return app.Lease{}, nil
	}
	l := app.Lease{Held: true, Token: token}
	if h := rec.Val(); h[fStatus] != "" {
		l.Found, l.Record = true, record(tenant, id, h)
	}
	if supp != nil {
		if h := supp.Val(); h[fSuppReason] != "" {
			e := entry(tenant, suppHash, h)
			l.Suppressed = &e
		}
	}
	return l, nil
}

// Unlock implements app.Store.
func (s *Store) Unlock(ctx context.Context, tenant, id, token string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// On failure the lock expires by itself.
	_ = unlockScript.Run(ctx, s.c, []string{lockKey(tenant, id)}, token).Err()
}

// Finish implements app.Store with one pipeline (not a transaction: the
// sent index lives in another Redis Cluster slot than the record). The
// unlock script travels whole (EVAL), so that the pipeline needs no
// NOSCRIPT retry; Redis caches it.
func (s *Store) Finish(ctx context.Context, r app.Record, ttl time.Duration, sent *app.SentRef, token string) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		updateRecord(ctx, p, r, ttl)
		if sent != nil {
			rememberSent(ctx, p, *sent, ttl)
		}
		if token != "" {
			unlockScript.Eval(ctx, p, []string{lockKey(r.Tenant, r.ID)}, token)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish record: %w", err)
	}
	return nil
}

// CreateRecord writes a new record that lives for ttl (Claim does it in
// Send; tests set records up with it).
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
	return record(tenant, id, h), nil
}

// record decodes the hash fields h of a record.
func record(tenant, id string, h map[string]string) app.Record {
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
	return r
}

// UpdateRecord implements app.Store. It also marks the record committed
// (a worker holds the message, so it is in the outbox) and extends the
// idempotency key with it, in case Send could not.
func (s *Store) UpdateRecord(ctx context.Context, r app.Record, ttl time.Duration) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		updateRecord(ctx, p, r, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("update record: %w", err)
	}
	return nil
}

// updateRecord queues UpdateRecord's commands on p.
func updateRecord(ctx context.Context, p redis.Pipeliner, r app.Record, ttl time.Duration) {
	k := RecordKey(r.Tenant, r.ID)
	r.Committed = true
	p.HSet(ctx, k, fields(r))
	p.PExpire(ctx, k, ttl)
	if r.IdempotencyKeyHash != "" {
		p.PExpire(ctx, IdempotencyKey(r.Tenant, r.IdempotencyKeyHash), ttl)
	}
}

// RememberSent implements app.Store.
func (s *Store) RememberSent(ctx context.Context, ref app.SentRef, ttl time.Duration) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rememberSent(ctx, p, ref, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remember sent message: %w", err)
	}
	return nil
}

// rememberSent queues RememberSent's commands on p.
func rememberSent(ctx context.Context, p redis.Pipeliner, ref app.SentRef, ttl time.Duration) {
	k := SentKey(ref.ID)
	p.HSet(ctx, k, fTenant, ref.Tenant, fIdemKey, ref.IdempotencyKey, fRcptHash, ref.RecipientHash)
	p.PExpire(ctx, k, ttl)
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
	return func(ctx context.Context) { s.Unlock(ctx, tenant, id, token) }, true, nil
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
