package ackstore

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
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// Defaults of Options.
const (
	// DefaultTTL keeps an acknowledgement a week: interface engines
	// resend after minutes or hours, or after an outage over a weekend.
	DefaultTTL = 7 * 24 * time.Hour
	// DefaultLockTTL bounds how long a replica that died while processing
	// a message blocks its resends; above the slowest processing (state
	// lock wait, publish, audit).
	DefaultLockTTL = 30 * time.Second
	// DefaultLockWait is how long a resend waits for the message's first
	// copy to be processed before it is answered "retry later".
	DefaultLockWait = 10 * time.Second
)

// Options configure a Store; zero values take the defaults.
type Options struct {
	// TTL is how long an acknowledgement is kept.
	TTL time.Duration
	// LockTTL is how long a claim lives unless stored or released.
	LockTTL time.Duration
	// LockWait is how long Claim waits while another caller holds the
	// claim.
	LockWait time.Duration
}

// Store is mllp.AckStore on Redis.
type Store struct {
	c      redis.Cmdable
	sealer *envelope.Sealer
	key    []byte
	o      Options
}

var _ mllp.AckStore = (*Store)(nil)

// New returns a Store on c sealing with sealer. The key that hashes
// message keys in key names is derived from pseudonymKey (the audit
// pseudonym key).
func New(c redis.Cmdable, sealer *envelope.Sealer, pseudonymKey []byte, o Options) *Store {
	m := hmac.New(sha256.New, pseudonymKey)
	m.Write([]byte("carenotify ingest hl7 ack keys v1"))
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

// KeyHash is the keyed hash of k in key names.
func (s *Store) KeyHash(k mllp.ResendKey) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(k.Source + "\x00" + k.App + "\x00" + k.Facility + "\x00" + k.ControlID))
	return hex.EncodeToString(m.Sum(nil))
}

// AckKey and LockKey name the keys of k.
func (s *Store) AckKey(k mllp.ResendKey) string {
	return store.Key(k.Tenant, "ingest", "ack", s.KeyHash(k))
}

func (s *Store) lockKey(k mllp.ResendKey) string {
	return store.Key(k.Tenant, "ingest", "ackl", s.KeyHash(k))
}

// value is what an ack key holds, sealed.
type value struct {
	Digest string `json:"digest"`
	Code   string `json:"code"`
	ACK    []byte `json:"ack,omitempty"`
}

// Claim implements mllp.AckStore.
func (s *Store) Claim(ctx context.Context, k mllp.ResendKey) (*mllp.StoredACK, mllp.AckClaim, error) {
	ak, lk := s.AckKey(k), s.lockKey(k)
	token := rand.Text()
	deadline := time.Now().Add(s.o.LockWait)
	backoff := 5 * time.Millisecond
	for {
		if a, err := s.get(ctx, k.Tenant, ak); err != nil || a != nil {
			return a, nil, err
		}
		ok, err := s.c.SetNX(ctx, lk, token, s.o.LockTTL).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("claim hl7 ack: %w", err)
		}
		if ok {
			// Stored between the read and the lock by the previous holder.
			a, err := s.get(ctx, k.Tenant, ak)
			if err != nil || a != nil {
				_ = releaseScript.Run(context.WithoutCancel(ctx), s.c, []string{lk}, token).Err()
				return a, nil, err
			}
			return nil, &claim{s: s, tenant: k.Tenant, ackKey: ak, lockKey: lk, token: token}, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("claim hl7 ack: %w", mllp.ErrAckBusy)
		}
		wait := backoff/2 + mrand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("claim hl7 ack: %w", ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// get reads and opens the acknowledgement at key; nil when there is none.
func (s *Store) get(ctx context.Context, tenant, key string) (*mllp.StoredACK, error) {
	sealed, err := s.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read hl7 ack: %w", err)
	}
	plain, err := store.Open(ctx, s.sealer, tenant, key, sealed)
	if err != nil {
		return nil, fmt.Errorf("read hl7 ack: %w", err)
	}
	var v value
	if err := json.Unmarshal(plain, &v); err != nil {
		return nil, errors.New("read hl7 ack: value does not decode")
	}
	a := &mllp.StoredACK{Code: v.Code, ACK: v.ACK}
	if d, err := hex.DecodeString(v.Digest); err != nil || copy(a.Digest[:], d) != len(a.Digest) {
		return nil, errors.New("read hl7 ack: bad digest")
	}
	return a, nil
}

// storeScript sets KEYS[1] to ARGV[2] for ARGV[3] ms unless it is set
// (the first acknowledgement wins) and deletes the lock KEYS[2] if it
// still holds the token ARGV[1].
var storeScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1`)

// releaseScript deletes KEYS[1] if it still holds the token ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`)

// claim is mllp.AckClaim.
type claim struct {
	s                       *Store
	tenant, ackKey, lockKey string
	token                   string
}

// Store implements mllp.AckClaim.
func (c *claim) Store(ctx context.Context, a mllp.StoredACK) error {
	b, err := json.Marshal(value{Digest: hex.EncodeToString(a.Digest[:]), Code: a.Code, ACK: a.ACK})
	if err != nil {
		return fmt.Errorf("store hl7 ack: %w", err)
	}
	sealed, err := store.Seal(ctx, c.s.sealer, c.tenant, c.ackKey, b)
	if err != nil {
		c.Release(ctx)
		return fmt.Errorf("store hl7 ack: %w", err)
	}
	if err := storeScript.Run(ctx, c.s.c, []string{c.ackKey, c.lockKey}, c.token, sealed, c.s.o.TTL.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("store hl7 ack: %w", err)
	}
	return nil
}

// Release implements mllp.AckClaim.
func (c *claim) Release(ctx context.Context) {
	// A failed release leaves a lock that expires after LockTTL.
	_ = releaseScript.Run(ctx, c.s.c, []string{c.lockKey}, c.token).Err()
}
