package app

import (
	"context"
	"fmt"

	"github.com/carenotify/carenotify/pkg/audit"
)

type actorKey struct{}

// WithActor returns ctx naming who acts through the admin API (the
// principal of its bearer token): consent changes and PHI reads made with
// ctx are audited as theirs.
func WithActor(ctx context.Context, a audit.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// actorOf is the actor of ctx, or the journey service itself.
func actorOf(ctx context.Context) audit.Actor {
	if a, ok := ctx.Value(actorKey{}).(audit.Actor); ok {
		return a
	}
	return audit.Actor{Type: audit.ActorService, ID: "journey"}
}

// phiRead records that actorOf(ctx) read PHI about a patient through the
// admin API. When it cannot be recorded the read fails: nothing is
// answered without its audit record.
func (s *Service) phiRead(ctx context.Context, e audit.Entry) error {
	e.Actor, e.Action = actorOf(ctx), audit.ActionPHIRead
	if e.Outcome == "" {
		e.Outcome = audit.OutcomeSuccess
	}
	if err := s.audit.Record(ctx, e); err != nil {
		return fmt.Errorf("audit phi read: %w", err)
	}
	return nil
}
