package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// SentTTL is how long a sent-email mapping is kept: an unsubscribe
// through an older email is not traced back.
const SentTTL = 90 * 24 * time.Hour

// Store is app.ConsentStore on Redis.
type Store struct {
	c      redis.Cmdable
	sealer *envelope.Sealer
	key    []byte // HMAC key for patient ids in key names
}

var (
	_ app.ConsentStore  = (*Store)(nil)
	_ app.FrequencyCaps = (*Store)(nil)
)

// New returns a Store on c sealing with sealer. pseudonymKey is the audit
// pseudonym key; the key that hashes patient ids in key names is derived
// from it.
func New(c redis.Cmdable, sealer *envelope.Sealer, pseudonymKey []byte) *Store {
	m := hmac.New(sha256.New, pseudonymKey)
	m.Write([]byte("carenotify journey consent keys v1"))
	return &Store{c: c, sealer: sealer, key: m.Sum(nil)}
}

// PatientHash is the keyed hash of a patient in key names.
func (s *Store) PatientHash(tenant, patient string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant + "|" + patient))
	return hex.EncodeToString(m.Sum(nil))
}

// ConsentRef implements app.ConsentStore: "<hash>/<channel>/<purpose>".
func (s *Store) ConsentRef(k app.ConsentKey) string {
	return s.PatientHash(k.Tenant, k.Patient) + "/" + k.Channel + "/" + string(k.Purpose)
}

func (s *Store) consentKey(k app.ConsentKey) string {
	return store.Key(k.Tenant, "consent", s.PatientHash(k.Tenant, k.Patient), k.Channel, string(k.Purpose))
}

// record is a consent record as stored (sealed).
type record struct {
	Patient     string    `json:"patient"`
	Channel     string    `json:"channel"`
	Purpose     string    `json:"purpose"`
	State       string    `json:"state"`
	Source      string    `json:"source"`
	Time        time.Time `json:"time"`
	EvidenceRef string    `json:"evidenceRef,omitempty"`
}

// Consent implements app.ConsentStore.
func (s *Store) Consent(ctx context.Context, k app.ConsentKey) (app.Consent, error) {
	b, err := store.GetSealed(ctx, s.c, s.sealer, k.Tenant, s.consentKey(k))
	if errors.Is(err, store.ErrNotFound) {
		return app.Consent{}, app.ErrNotFound
	}
	if err != nil {
		return app.Consent{}, fmt.Errorf("read consent: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return app.Consent{}, errors.New("read consent: record does not decode")
	}
	if r.Patient != k.Patient || r.Channel != k.Channel || r.Purpose != string(k.Purpose) {
		return app.Consent{}, errors.New("read consent: record is not for this key")
	}
	return app.Consent{
		Tenant: k.Tenant, Patient: r.Patient, Channel: r.Channel, Purpose: catalog.Purpose(r.Purpose),
		State: app.ConsentState(r.State), Source: app.ConsentSource(r.Source), Time: r.Time, EvidenceRef: r.EvidenceRef,
	}, nil
}

// PutConsent implements app.ConsentStore.
func (s *Store) PutConsent(ctx context.Context, c app.Consent) error {
	b, err := json.Marshal(record{
		Patient: c.Patient, Channel: c.Channel, Purpose: string(c.Purpose), State: string(c.State),
		Source: string(c.Source), Time: c.Time, EvidenceRef: c.EvidenceRef,
	})
	if err != nil {
		return fmt.Errorf("write consent: %w", err)
	}
	k := app.ConsentKey{Tenant: c.Tenant, Patient: c.Patient, Channel: c.Channel, Purpose: c.Purpose}
	if err := store.SetSealed(ctx, s.c, s.sealer, c.Tenant, s.consentKey(k), b, 0); err != nil {
		return fmt.Errorf("write consent: %w", err)
	}
	return nil
}

// sent is a sent-email mapping as stored (sealed).
type sent struct {
	Patient string `json:"patient"`
	Purpose string `json:"purpose"`
	Journey string `json:"journey"`
}

// RememberSent implements app.ConsentStore.
func (s *Store) RememberSent(ctx context.Context, tenant, idempotencyKey string, m app.SentMessage) error {
	b, err := json.Marshal(sent{Patient: m.Patient, Purpose: string(m.Purpose), Journey: m.Journey})
	if err != nil {
		return fmt.Errorf("remember sent email: %w", err)
	}
	if err := store.SetSealed(ctx, s.c, s.sealer, tenant, store.Key(tenant, "sent", idempotencyKey), b, SentTTL); err != nil {
		return fmt.Errorf("remember sent email: %w", err)
	}
	return nil
}

// Sent implements app.ConsentStore.
func (s *Store) Sent(ctx context.Context, tenant, idempotencyKey string) (app.SentMessage, error) {
	if _, err := hex.DecodeString(idempotencyKey); err != nil || len(idempotencyKey) != 64 {
		return app.SentMessage{}, app.ErrNotFound // not a key journey makes
	}
	b, err := store.GetSealed(ctx, s.c, s.sealer, tenant, store.Key(tenant, "sent", idempotencyKey))
	if errors.Is(err, store.ErrNotFound) {
		return app.SentMessage{}, app.ErrNotFound
	}
	if err != nil {
		return app.SentMessage{}, fmt.Errorf("read sent email: %w", err)
	}
	var m sent
	if err := json.Unmarshal(b, &m); err != nil {
		return app.SentMessage{}, errors.New("read sent email: record does not decode")
	}
	return app.SentMessage{Patient: m.Patient, Purpose: catalog.Purpose(m.Purpose), Journey: m.Journey}, nil
}

// capKey is the sorted set of a patient's sends for a purpose: members
// are idempotency keys, scores send times (Unix milliseconds).
func (s *Store) capKey(tenant, patient string, purpose catalog.Purpose) string {
	return store.Key(tenant, "freq", s.PatientHash(tenant, patient), string(purpose))
}

// SentSince implements app.FrequencyCaps.
func (s *Store) SentSince(ctx context.Context, tenant, patient string, purpose catalog.Purpose, since time.Time, idempotencyKey string) (int, bool, error) {
	k := s.capKey(tenant, patient, purpose)
	var n *redis.IntCmd
	var score *redis.FloatCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.ZCount(ctx, k, strconv.FormatInt(since.UnixMilli(), 10), "+inf")
		score = p.ZScore(ctx, k, idempotencyKey)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("read sends: %w", err)
	}
	counted := score.Err() == nil && int64(score.Val()) >= since.UnixMilli()
	return int(n.Val()), counted, nil
}

// CountSent implements app.FrequencyCaps. Sends older than the longest
// window are dropped, and the set expires after it.
func (s *Store) CountSent(ctx context.Context, tenant, patient string, purpose catalog.Purpose, idempotencyKey string, at time.Time) error {
	k := s.capKey(tenant, patient, purpose)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, k, redis.Z{Score: float64(at.UnixMilli()), Member: idempotencyKey})
		p.ZRemRangeByScore(ctx, k, "-inf", "("+strconv.FormatInt(at.Add(-catalog.MaxCapWindow).UnixMilli(), 10))
		p.Expire(ctx, k, catalog.MaxCapWindow)
		return nil
	})
	if err != nil {
		return fmt.Errorf("count send: %w", err)
	}
	return nil
}
