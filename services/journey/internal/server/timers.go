package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// TimerOpener opens a fired timer (a *timers.Store).
type TimerOpener interface {
	Open(ctx context.Context, subject string, data []byte) (app.Timer, error)
}

// Timers handles fired timers of the JOURNEY_TIMERS stream.
type Timers struct {
	app    *app.Service
	opener TimerOpener
}

// NewTimers returns the fired-timer handler.
func NewTimers(a *app.Service, opener TimerOpener) *Timers {
	return &Timers{app: a, opener: opener}
}

// Handle is a [bus.Handler]: it opens a fired timer and resumes its
// journey instance. A timer that does not open is terminated (it cannot
// be acted on); failures retrying can fix are retried. Nothing it logs or
// returns carries PHI.
func (h *Timers) Handle(ctx context.Context, msg jetstream.Msg) error {
	t, err := h.opener.Open(ctx, msg.Subject(), msg.Data())
	switch {
	case errors.Is(err, envelope.ErrUnknownKey):
		return fmt.Errorf("open journey timer: %w", err)
	case err != nil:
		return bus.Permanent(errors.New("refused journey timer: not sealed for its subject, or not a timer"))
	}
	err = h.app.Resume(ctx, t)
	if app.IsPermanent(err) {
		return bus.Permanent(err)
	}
	return err
}
