package envelope

import (
	"container/list"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
)

const (
	magic0, magic1 = 'C', 'N'
	version1       = 1
	// overhead is what GCM with a random nonce adds: nonce and tag.
	overhead = 12 + 16
	dayFmt   = "20060102"

	// DefaultCacheSize is how many unwrapped data keys a Sealer keeps by
	// default.
	DefaultCacheSize = 1024
)

// A Binding names the record a value belongs to. It is bound to the
// ciphertext as associated data: a sealed value opens only with the Binding
// it was sealed with. Tenant must be a NATS token ([A-Za-z0-9_-]{1,64});
// Kind (e.g. "redis", "event", "outbox") and ID (e.g. a Redis key or an
// event id) must not be empty. None of them may be PHI.
type Binding struct {
	Tenant, Kind, ID string
}

func (b Binding) check() error {
	switch {
	case !bus.ValidToken(b.Tenant):
		return errors.New("invalid binding: tenant is not a token")
	case b.Kind == "":
		return errors.New("invalid binding: empty kind")
	case b.ID == "":
		return errors.New("invalid binding: empty id")
	}
	return nil
}

// A Sealer seals and opens PHI values with per-tenant-day data keys. It is
// safe for concurrent use. Build one per process with [NewSealer], after
// loading the keyring and opening the key store.
type Sealer struct {
	kr  *Keyring
	ks  KeyStore
	now func() time.Time

	mu    sync.Mutex
	cache *dekCache
}

// An Option configures a Sealer.
type Option func(*Sealer)

// WithClock makes the Sealer read the time (which picks the day of the data
// key) from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Sealer) { s.now = now }
}

// WithCacheSize sets how many unwrapped data keys the Sealer keeps in memory
// (least recently used first out); the default is DefaultCacheSize.
func WithCacheSize(n int) Option {
	return func(s *Sealer) { s.cache = newDEKCache(max(n, 1)) }
}

// NewSealer returns a Sealer that wraps new data keys under kr's primary
// KEK and stores them in ks. kr and ks must not be nil.
func NewSealer(kr *Keyring, ks KeyStore, opts ...Option) *Sealer {
	s := &Sealer{kr: kr, ks: ks, now: time.Now, cache: newDEKCache(DefaultCacheSize)}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// String describes the Sealer by its keyring's ids, never key bytes.
func (s *Sealer) String() string { return "envelope.Sealer{keyring: " + s.kr.String() + "}" }

// GoString is String.
func (s *Sealer) GoString() string { return s.String() }

// Seal encrypts plaintext with today's (UTC) data key of b.Tenant, creating
// that key if no service has yet, and binds it to b. See the package
// documentation for the format.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte, b Binding) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	id := b.Tenant + "." + s.now().UTC().Format(dayFmt)
	aead, err := s.dataKey(ctx, id, true)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, 0, 4+len(id)+overhead+len(plaintext))
	out = append(out, magic0, magic1, version1, byte(len(id)))
	out = append(out, id...)
	return aead.Seal(out, nil, plaintext, associatedData(out, b)), nil
}

// Open decrypts a value sealed with Binding b. It fails with ErrNotSealed
// for a value that is not sealed, ErrTampered for one that was altered,
// truncated or sealed with another binding, and ErrUnknownKey when its data
// key or the KEK wrapping it is missing. It never returns plaintext with an
// error.
func (s *Sealer) Open(ctx context.Context, sealed []byte, b Binding) ([]byte, error) {
	if len(sealed) < 3 || sealed[0] != magic0 || sealed[1] != magic1 {
		return nil, fmt.Errorf("open: %w", ErrNotSealed)
	}
	if sealed[2] != version1 || len(sealed) < 4 {
		return nil, fmt.Errorf("open: %w", ErrTampered)
	}
	hdrLen := 4 + int(sealed[3])
	if len(sealed) < hdrLen+overhead {
		return nil, fmt.Errorf("open: %w", ErrTampered)
	}
	id := string(sealed[4:hdrLen])
	tenant, ok := parseDEKID(id)
	if !ok || tenant != b.Tenant {
		return nil, fmt.Errorf("open: %w", ErrTampered)
	}
	aead, err := s.dataKey(ctx, id, false)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	plaintext, err := aead.Open(nil, nil, sealed[hdrLen:], associatedData(sealed[:hdrLen], b))
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrTampered)
	}
	return plaintext, nil
}

// associatedData is the header followed by the binding's fields, each
// prefixed with its length, so no two bindings give the same bytes.
func associatedData(header []byte, b Binding) []byte {
	ad := make([]byte, 0, len(header)+12+len(b.Tenant)+len(b.Kind)+len(b.ID))
	ad = append(ad, header...)
	for _, f := range [...]string{b.Tenant, b.Kind, b.ID} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// parseDEKID splits a data key id "<tenant>.<YYYYMMDD>" and checks both
// parts, so that nothing else is ever looked up in the key store.
func parseDEKID(id string) (tenant string, ok bool) {
	tenant, day, ok := strings.Cut(id, ".")
	if !ok || !bus.ValidToken(tenant) || len(day) != len(dayFmt) {
		return "", false
	}
	if _, err := time.Parse(dayFmt, day); err != nil {
		return "", false
	}
	return tenant, true
}

// dataKey returns the AEAD of data key id, from the cache or the store. If
// create is set and the store does not have it, it makes a new key; when
// another process made one first, it uses theirs.
func (s *Sealer) dataKey(ctx context.Context, id string, create bool) (cipher.AEAD, error) {
	s.mu.Lock()
	aead, ok := s.cache.get(id)
	s.mu.Unlock()
	if ok {
		return aead, nil
	}

	w, err := s.ks.Get(ctx, id)
	switch {
	case err == nil:
	case errors.Is(err, ErrKeyNotFound) && create:
		aead, err = s.createDataKey(ctx, id)
		if !errors.Is(err, ErrKeyExists) {
			return aead, err
		}
		if w, err = s.ks.Get(ctx, id); err != nil {
			return nil, fmt.Errorf("data key %s: %w", id, err)
		}
	case errors.Is(err, ErrKeyNotFound):
		return nil, fmt.Errorf("data key %s: %w", id, ErrUnknownKey)
	default:
		return nil, fmt.Errorf("data key %s: %w", id, err)
	}

	dek, err := s.kr.unwrap(id, w)
	if err != nil {
		return nil, err
	}
	aead, err = newAEAD(dek)
	clear(dek)
	if err != nil {
		return nil, fmt.Errorf("data key %s: %w", id, err)
	}
	s.remember(id, aead)
	return aead, nil
}

// createDataKey makes a new data key id, wraps it under the primary KEK and
// stores it. If the store already has id, the error wraps ErrKeyExists.
func (s *Sealer) createDataKey(ctx context.Context, id string) (cipher.AEAD, error) {
	dek := make([]byte, KeySize)
	defer clear(dek)
	_, _ = rand.Read(dek) // never fails (crypto/rand crashes the program instead)
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, fmt.Errorf("data key %s: %w", id, err)
	}
	if err := s.ks.Create(ctx, id, s.kr.wrap(id, dek)); err != nil {
		return nil, fmt.Errorf("store data key %s: %w", id, err)
	}
	s.remember(id, aead)
	return aead, nil
}

func (s *Sealer) remember(id string, aead cipher.AEAD) {
	s.mu.Lock()
	s.cache.put(id, aead)
	s.mu.Unlock()
}

// dekCache is a least-recently-used cache of unwrapped data keys. It is not
// safe for concurrent use; the Sealer's mutex guards it.
type dekCache struct {
	size  int
	order *list.List // front: most recently used; values are *dekEntry
	byID  map[string]*list.Element
}

type dekEntry struct {
	id   string
	aead cipher.AEAD
}

func newDEKCache(size int) *dekCache {
	return &dekCache{size: size, order: list.New(), byID: map[string]*list.Element{}}
}

func (c *dekCache) get(id string) (cipher.AEAD, bool) {
	e, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*dekEntry).aead, true
}

func (c *dekCache) put(id string, aead cipher.AEAD) {
	if e, ok := c.byID[id]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byID[id] = c.order.PushFront(&dekEntry{id: id, aead: aead})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byID, oldest.Value.(*dekEntry).id)
	}
}
