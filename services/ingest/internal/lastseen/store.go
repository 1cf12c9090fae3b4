package lastseen

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// Defaults of Options.
const (
	// DefaultTTL keeps a resource's state 400 days after its last change:
	// longer than appointments are booked ahead (up to a year), so that
	// a reschedule or cancellation months later is still compared with
	// the booking, and longer than any inpatient stay.
	DefaultTTL = 400 * 24 * time.Hour
	// DefaultLockTTL bounds how long a crashed replica's lock blocks a
	// resource; it must exceed the slowest publish and audit write.
	DefaultLockTTL = 15 * time.Second
	// DefaultLockWait is how long Lock waits for a busy resource before
	// giving up with app.ErrStateBusy (the sender then retries).
	DefaultLockWait = 5 * time.Second
)

// maxKeys bounds the keys a record remembers (and refreshes on every
// write).
const maxKeys = 32

// Options configure a Store; zero values take the defaults.
type Options struct {
	// TTL is how long a state is kept after its last write.
	TTL time.Duration
	// LockTTL is how long a lock lives unless released.
	LockTTL time.Duration
	// LockWait is how long Lock waits for a busy resource.
	LockWait time.Duration
}

// Store is app.StateStore on Redis.
type Store struct {
	c      redis.Cmdable
	sealer *envelope.Sealer
	key    []byte // HMAC key for resource keys in key names
	o      Options
}

var _ app.StateStore = (*Store)(nil)

// New returns a Store on c sealing with sealer. pseudonymKey is the audit
// pseudonym key; the key that hashes resource keys (business identifiers
// are PHI) in key names is derived from it.
func New(c redis.Cmdable, sealer *envelope.Sealer, pseudonymKey []byte, o Options) *Store {
	m := hmac.New(sha256.New, pseudonymKey)
	m.Write([]byte("carenotify ingest resource state keys v1"))
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.LockTTL <= 0 {
		o.LockTTL = DefaultLockTTL
	}
	if o.LockWait <= 0 {
		o.LockWait = DefaultLockWait
	}
	return &Store{c: c, sealer: sealer, key: m.Sum(nil), o: o}
}

// KeyHash is the keyed hash of a resource key in key names.
func (s *Store) KeyHash(tenant, kind string, k app.ResourceKey) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant + "\x00" + kind + "\x00" + k.Type + "\x00" + k.Scope + "\x00" + k.Value))
	return hex.EncodeToString(m.Sum(nil))
}

// Key names. Every key of a tenant carries the hash tag {tenant}, so that
// the scripts below touch one Redis Cluster slot.
func indexKey(tenant, hash string) string { return store.Key(tenant, "ingest", "rk", hash) }
func recordKey(tenant, id string) string  { return store.Key(tenant, "ingest", "rs", id) }
func lockKey(tenant, name string) string  { return store.Key(tenant, "ingest", "rl", name) }

// record is what a record key holds, sealed.
type record struct {
	State app.ResourceState `json:"state"`
	// Keys are the hashes of the keys pointing at the record.
	Keys []string `json:"keys"`
}

// lockScript sets every KEYS[i] to ARGV[1] for ARGV[2] ms, or none of
// them when one is taken.
var lockScript = redis.NewScript(`
for i, k in ipairs(KEYS) do
  if not redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then
    for j = 1, i - 1 do redis.call('DEL', KEYS[j]) end
    return 0
  end
end
return 1`)

// commitScript checks that the ARGV[5] lock keys after KEYS[1] still
// hold the token ARGV[1], then stores the sealed record ARGV[2] at
// KEYS[1] and the record id ARGV[4] at the next ARGV[6] (index) keys,
// all for ARGV[3] ms, extends the remaining (older index) keys to as
// long, and deletes the locks. 0 when a lock was lost.
var commitScript = redis.NewScript(`
local n = tonumber(ARGV[5])
local m = tonumber(ARGV[6])
for i = 2, n + 1 do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
for i = n + 2, n + 1 + m do redis.call('SET', KEYS[i], ARGV[4], 'PX', ARGV[3]) end
for i = n + 2 + m, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
for i = 2, n + 1 do redis.call('DEL', KEYS[i]) end
return 1`)

// releaseScript deletes the KEYS that still hold the token ARGV[1].
var releaseScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
end
return 1`)

// errLockLost is returned by Commit when the lock expired.
var errLockLost = errors.New("resource state lock expired before the write")

// Lock implements app.StateStore.
func (s *Store) Lock(ctx context.Context, tenant, kind string, keys []app.ResourceKey) (app.LockedState, error) {
	if len(keys) == 0 {
		return nil, errors.New("lock resource state: no keys")
	}
	hashes := make([]string, len(keys))
	var business []string
	for i, k := range keys {
		hashes[i] = s.KeyHash(tenant, kind, k)
		if k.Type == app.KeyBusiness {
			business = append(business, hashes[i])
		}
	}
	newID := hashes[0]
	if len(business) > 0 {
		// The same business identifiers name the same new record
		// whichever protocol brings them first.
		newID = slices.Min(business)
	}
	token := rand.Text()
	deadline := time.Now().Add(s.o.LockWait)
	backoff := 5 * time.Millisecond
	for {
		l, ok, err := s.tryLock(ctx, tenant, kind, hashes, newID, token)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock resource state: %w", app.ErrStateBusy)
		}
		wait := backoff/2 + mrand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock resource state: %w", ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// tryLock resolves the records the keys point at, locks the keys and
// those records at once, and reads the state; false when a lock is taken
// or the keys moved meanwhile.
func (s *Store) tryLock(ctx context.Context, tenant, kind string, hashes []string, newID, token string) (*locked, bool, error) {
	ids, err := s.resolve(ctx, tenant, hashes)
	if err != nil {
		return nil, false, err
	}
	var names []string
	for _, h := range hashes {
		names = appendNew(names, lockKey(tenant, h))
	}
	for _, id := range ids {
		if id != "" {
			names = appendNew(names, lockKey(tenant, id))
		}
	}
	got, err := lockScript.Run(ctx, s.c, names, token, s.o.LockTTL.Milliseconds()).Int()
	if err != nil {
		return nil, false, fmt.Errorf("lock resource state: %w", err)
	}
	if got != 1 {
		return nil, false, nil
	}
	l := &locked{s: s, tenant: tenant, hashes: hashes, token: token, locks: names}
	// Under the lock no one else can point these keys elsewhere; a
	// commit that did between resolve and lock means a retry.
	again, err := s.resolve(ctx, tenant, hashes)
	if err != nil || !slices.Equal(ids, again) {
		l.Release(context.WithoutCancel(ctx))
		return nil, false, err
	}
	for _, id := range ids {
		if id != "" {
			l.id = id
			break
		}
	}
	if l.id == "" {
		l.id = newID
		return l, true, nil
	}
	sealed, err := s.c.Get(ctx, recordKey(tenant, l.id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		// The index outlived the record: start again under the same id.
		return l, true, nil
	case err != nil:
		l.Release(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("read resource state: %w", err)
	}
	plain, err := store.Open(ctx, s.sealer, tenant, recordKey(tenant, l.id), sealed)
	if err != nil {
		l.Release(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("read resource state: %w", err)
	}
	var r record
	if err := json.Unmarshal(plain, &r); err != nil {
		l.Release(context.WithoutCancel(ctx))
		return nil, false, errors.New("read resource state: record does not decode")
	}
	if r.State.Kind != kind {
		l.Release(context.WithoutCancel(ctx))
		return nil, false, errors.New("read resource state: record is of another kind")
	}
	l.state, l.found, l.oldKeys = r.State, true, r.Keys
	return l, true, nil
}

// resolve returns the record id each hash points at ("" for none).
func (s *Store) resolve(ctx context.Context, tenant string, hashes []string) ([]string, error) {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = indexKey(tenant, h)
	}
	vals, err := s.c.MGet(ctx, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("read resource state index: %w", err)
	}
	ids := make([]string, len(vals))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			ids[i] = str
		}
	}
	return ids, nil
}

func appendNew(names []string, n string) []string {
	if slices.Contains(names, n) {
		return names
	}
	return append(names, n)
}

// locked is app.LockedState.
type locked struct {
	s       *Store
	tenant  string
	hashes  []string
	token   string
	locks   []string
	id      string
	state   app.ResourceState
	found   bool
	oldKeys []string
}

// State implements app.LockedState.
func (l *locked) State() (app.ResourceState, bool) { return l.state, l.found }

// RecordID implements app.LockedState.
func (l *locked) RecordID() string { return l.id }

// Commit implements app.LockedState.
func (l *locked) Commit(ctx context.Context, st app.ResourceState) error {
	keys := slices.Clone(l.hashes)
	var older []string
	for _, k := range l.oldKeys {
		if len(keys)+len(older) < maxKeys && !slices.Contains(keys, k) && !slices.Contains(older, k) {
			older = append(older, k)
		}
	}
	b, err := json.Marshal(record{State: st, Keys: append(slices.Clone(keys), older...)})
	if err != nil {
		return fmt.Errorf("write resource state: %w", err)
	}
	rk := recordKey(l.tenant, l.id)
	sealed, err := store.Seal(ctx, l.s.sealer, l.tenant, rk, b)
	if err != nil {
		return fmt.Errorf("write resource state: %w", err)
	}
	names := append([]string{rk}, l.locks...)
	for _, h := range append(keys, older...) {
		names = append(names, indexKey(l.tenant, h))
	}
	got, err := commitScript.Run(ctx, l.s.c, names, l.token, sealed, l.s.o.TTL.Milliseconds(), l.id, len(l.locks), len(keys)).Int()
	if err != nil {
		return fmt.Errorf("write resource state: %w", err)
	}
	if got != 1 {
		return fmt.Errorf("write resource state: %w", errLockLost)
	}
	return nil
}

// Release implements app.LockedState.
func (l *locked) Release(ctx context.Context) {
	// A failed release leaves locks that expire after LockTTL.
	_ = releaseScript.Run(ctx, l.s.c, l.locks, l.token).Err()
}
