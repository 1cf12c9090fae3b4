package waits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// Store is app.Waits on Redis.
type Store struct {
	c      redis.Cmdable
	sealer *envelope.Sealer
}

var _ app.Waits = (*Store)(nil)

// New returns a Store on c, sealing markers with sealer.
func New(c redis.Cmdable, sealer *envelope.Sealer) *Store {
	return &Store{c: c, sealer: sealer}
}

// marker is a marker's value before sealing.
type marker struct {
	Journey string `json:"journey"`
	Step    int    `json:"step"`
	// Event is the ClinicalEvent in protobuf wire format, without the
	// original EHR resource and the patient's business identifiers.
	Event []byte `json:"event"`
}

func markerKey(tenant, journey, instance string) string {
	return store.Key(tenant, "wait", journey, instance)
}

func claimKey(tenant, journey, instance string, step int) string {
	return store.Key(tenant, "waitclaim", journey, instance, strconv.Itoa(step))
}

// Wait implements app.Waits.
func (s *Store) Wait(ctx context.Context, w app.Waiting, ttl time.Duration) (bool, error) {
	n, err := s.c.Exists(ctx, claimKey(w.Tenant, w.Journey, w.Instance, w.Step)).Result()
	if err != nil {
		return false, fmt.Errorf("read wait claim: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	ev := proto.CloneOf(w.Event)
	ev.Original, ev.OriginalContentType = nil, ""
	if p := ev.GetPatient(); p != nil {
		p.Identifiers = nil
	}
	evb, err := proto.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("encode waiting event: %w", err)
	}
	b, err := json.Marshal(marker{Journey: w.Journey, Step: w.Step, Event: evb})
	if err != nil {
		return false, fmt.Errorf("encode waiting: %w", err)
	}
	if err := store.SetSealed(ctx, s.c, s.sealer, w.Tenant, markerKey(w.Tenant, w.Journey, w.Instance), b, ttl); err != nil {
		return false, fmt.Errorf("write waiting: %w", err)
	}
	return true, nil
}

// Waiting implements app.Waits.
func (s *Store) Waiting(ctx context.Context, tenant, journey, instance string) (app.Waiting, error) {
	b, err := store.GetSealed(ctx, s.c, s.sealer, tenant, markerKey(tenant, journey, instance))
	if errors.Is(err, store.ErrNotFound) {
		return app.Waiting{}, app.ErrNotFound
	}
	if err != nil {
		return app.Waiting{}, fmt.Errorf("read waiting: %w", err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.Journey != journey {
		return app.Waiting{}, errors.New("read waiting: marker does not decode")
	}
	var ev eventsv1.ClinicalEvent
	if err := proto.Unmarshal(m.Event, &ev); err != nil || ev.GetTenant() != tenant {
		return app.Waiting{}, errors.New("read waiting: event does not decode")
	}
	return app.Waiting{Tenant: tenant, Journey: journey, Instance: instance, Step: m.Step, Event: &ev}, nil
}

// Claim implements app.Waits.
func (s *Store) Claim(ctx context.Context, tenant, journey, instance string, step int, by string, ttl time.Duration) (bool, error) {
	key := claimKey(tenant, journey, instance, step)
	ok, err := s.c.SetNX(ctx, key, by, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claim wait: %w", err)
	}
	if ok {
		return true, nil
	}
	got, err := s.c.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		// Expired in between: claim again.
		return s.c.SetNX(ctx, key, by, ttl).Result()
	}
	if err != nil {
		return false, fmt.Errorf("claim wait: %w", err)
	}
	return got == by, nil
}

// Done implements app.Waits.
func (s *Store) Done(ctx context.Context, tenant, journey, instance string) error {
	if err := s.c.Del(ctx, markerKey(tenant, journey, instance)).Err(); err != nil {
		return fmt.Errorf("clear waiting: %w", err)
	}
	return nil
}
