package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/store"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

var _ app.Continuations = (*Store)(nil)

// ContinuationTTL is how long an SMS step's continuation is kept: the sms
// outbox keeps a message 7 days, and receipts come after.
const ContinuationTTL = 8 * 24 * time.Hour

type continuation struct {
	Journey string `json:"journey"`
	Step    string `json:"step"`
	Event   []byte `json:"event"` // a ClinicalEvent, protobuf
}

func continuationKey(tenant, idempotencyKey string) string {
	return store.Key(tenant, "smsfb", idempotencyKey)
}

// RememberContinuation implements app.Continuations (sealed: the event is PHI).
func (s *Store) RememberContinuation(ctx context.Context, tenant, idempotencyKey string, c app.Continuation) error {
	ev, err := proto.Marshal(c.Event)
	if err != nil {
		return fmt.Errorf("remember continuation: %w", err)
	}
	b, err := json.Marshal(continuation{Journey: c.Journey, Step: c.Step, Event: ev})
	clear(ev)
	if err != nil {
		return fmt.Errorf("remember continuation: %w", err)
	}
	if err := store.SetSealed(ctx, s.c, s.sealer, tenant, continuationKey(tenant, idempotencyKey), b, ContinuationTTL); err != nil {
		return fmt.Errorf("remember continuation: %w", err)
	}
	return nil
}

// Continuation implements app.Continuations.
func (s *Store) Continuation(ctx context.Context, tenant, idempotencyKey string) (app.Continuation, error) {
	b, err := store.GetSealed(ctx, s.c, s.sealer, tenant, continuationKey(tenant, idempotencyKey))
	if errors.Is(err, store.ErrNotFound) {
		return app.Continuation{}, app.ErrNotFound
	}
	if err != nil {
		return app.Continuation{}, fmt.Errorf("read continuation: %w", err)
	}
	var c continuation
	if err := json.Unmarshal(b, &c); err != nil {
		return app.Continuation{}, errors.New("read continuation: record does not decode")
	}
	ev := &eventsv1.ClinicalEvent{}
	if err := proto.Unmarshal(c.Event, ev); err != nil || ev.GetTenant() != tenant {
		return app.Continuation{}, errors.New("read continuation: event does not decode")
	}
	return app.Continuation{Journey: c.Journey, Step: c.Step, Event: ev}, nil
}
