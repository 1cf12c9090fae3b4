package records

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Hash fields of a suppression entry.
const (
	fSuppReason = "reason"
	fSuppSource = "source"
	fSuppMsgID  = "message_id"
	fSuppReport = "report_id"
	fSuppStatus = "status"
	fSuppAt     = "at"
	fSuppIndex  = "idx"
)

// Suppressions is app.Suppressions on Redis. Per tenant, each entry is a
// hash at cn:{tenant}:email:supp:<address hash> (no TTL: an address stays
// suppressed until an operator removes it), listed in the sorted set
// cn:{tenant}:email:supps whose members are "<added at, ms, 16
// digits>:<hash>" (score 0, read in lexical order: oldest first). Both
// keys of a tenant share its hash tag, so the scripts below touch one
// Redis Cluster slot. The address itself is never stored.
type Suppressions struct {
	c   *redis.Client
	key []byte
}

var _ app.Suppressions = (*Suppressions)(nil)

// NewSuppressions returns the suppression list on c. pseudonymKey is the
// audit pseudonym key (EMAIL_AUDIT_PSEUDONYM_KEY_FILE); the key that
// hashes addresses is derived from it, so the hashes differ from the
// audit trail's patient references.
func NewSuppressions(c *redis.Client, pseudonymKey []byte) *Suppressions {
	m := hmac.New(sha256.New, pseudonymKey)
	m.Write([]byte("carenotify email suppression addresses v1"))
	return &Suppressions{c: c, key: m.Sum(nil)}
}

// NormaliseAddress is the form of an address that is hashed: trimmed and
// lower-cased as a whole. Local parts are case-sensitive in principle
// (RFC 5321 §2.4), but no mailbox provider in use treats them so, and
// suppressing a case variant too is the safe mistake.
func NormaliseAddress(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

// Hash implements app.Suppressions: hex HMAC-SHA256 of tenant, a zero
// byte and the normalised address.
func (s *Suppressions) Hash(tenant, address string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant + "\x00" + NormaliseAddress(address)))
	return hex.EncodeToString(m.Sum(nil))
}

func suppKey(tenant, hash string) string { return store.Key(tenant, "email", "supp", hash) }
func suppIndex(tenant string) string     { return store.Key(tenant, "email", "supps") }

// addScript adds entry KEYS[1] with index member ARGV[1] to index KEYS[2]
// unless the entry exists; ARGV[2..] are field/value pairs.
var addScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
  return 0
end
redis.call("HSET", KEYS[1], "idx", ARGV[1], unpack(ARGV, 2))
redis.call("ZADD", KEYS[2], 0, ARGV[1])
return 1
`)

// removeScript deletes entry KEYS[1] and its member of index KEYS[2].
var removeScript = redis.NewScript(`
local idx = redis.call("HGET", KEYS[1], "idx")
if not idx then
  return 0
end
redis.call("ZREM", KEYS[2], idx)
redis.call("DEL", KEYS[1])
return 1
`)

// Add implements app.Suppressions.
func (s *Suppressions) Add(ctx context.Context, e app.Suppression) (bool, error) {
	if !validHash(e.AddressHash) {
		return false, fmt.Errorf("add suppression: malformed address hash")
	}
	member := fmt.Sprintf("%016d:%s", e.At.UnixMilli(), e.AddressHash)
	n, err := addScript.Run(ctx, s.c, []string{suppKey(e.Tenant, e.AddressHash), suppIndex(e.Tenant)}, member,
		fSuppReason, string(e.Reason), fSuppSource, e.Source, fSuppMsgID, e.MessageID,
		fSuppReport, e.ReportID, fSuppStatus, e.Status, fSuppAt, e.At.UTC().Format(time.RFC3339Nano)).Int()
	if err != nil {
		return false, fmt.Errorf("add suppression: %w", err)
	}
	return n == 1, nil
}

// Get implements app.Suppressions.
func (s *Suppressions) Get(ctx context.Context, tenant, hash string) (app.Suppression, error) {
	if !validHash(hash) {
		return app.Suppression{}, app.ErrNotFound
	}
	h, err := s.c.HGetAll(ctx, suppKey(tenant, hash)).Result()
	switch {
	case err != nil:
		return app.Suppression{}, fmt.Errorf("read suppression: %w", err)
	case h[fSuppReason] == "":
		return app.Suppression{}, app.ErrNotFound
	}
	return entry(tenant, hash, h), nil
}

// List implements app.Suppressions. The cursor is the last index member
// returned.
func (s *Suppressions) List(ctx context.Context, tenant, cursor string, limit int) ([]app.Suppression, string, error) {
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	members, err := s.c.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: suppIndex(tenant), Start: start, Stop: "+", ByLex: true, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return nil, "", fmt.Errorf("list suppressions: %w", err)
	}
	next := ""
	if len(members) > limit {
		members = members[:limit]
		next = members[limit-1]
	}
	if len(members) == 0 {
		return nil, "", nil
	}
	cmds, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			_, hash, _ := strings.Cut(m, ":")
			p.HGetAll(ctx, suppKey(tenant, hash))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list suppressions: %w", err)
	}
	out := make([]app.Suppression, 0, len(members))
	for i, c := range cmds {
		h := c.(*redis.MapStringStringCmd).Val()
		if h[fSuppReason] == "" {
			continue // removed between the two reads
		}
		_, hash, _ := strings.Cut(members[i], ":")
		out = append(out, entry(tenant, hash, h))
	}
	return out, next, nil
}

// Remove implements app.Suppressions.
func (s *Suppressions) Remove(ctx context.Context, tenant, hash string) (bool, error) {
	if !validHash(hash) {
		return false, nil
	}
	n, err := removeScript.Run(ctx, s.c, []string{suppKey(tenant, hash), suppIndex(tenant)}).Int()
	if err != nil {
		return false, fmt.Errorf("remove suppression: %w", err)
	}
	return n == 1, nil
}

// ValidCursor reports whether c can be a List cursor.
func ValidCursor(c string) bool {
	at, hash, ok := strings.Cut(c, ":")
	return ok && len(at) == 16 && strings.Trim(at, "0123456789") == "" && validHash(hash)
}

func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

func entry(tenant, hash string, h map[string]string) app.Suppression {
	at, _ := time.Parse(time.RFC3339Nano, h[fSuppAt])
	return app.Suppression{
		Tenant: tenant, AddressHash: hash, Reason: app.SuppressionReason(h[fSuppReason]), Source: h[fSuppSource],
		MessageID: h[fSuppMsgID], ReportID: h[fSuppReport], Status: h[fSuppStatus], At: at,
	}
}
