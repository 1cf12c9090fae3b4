package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Group is a set of servers and workers that run and stop together. The zero
// value is not usable; call NewGroup.
type Group struct {
	logger *slog.Logger
	grace  time.Duration
	units  []unit
}

type unit struct {
	name string
	run  func(ctx context.Context) error
	stop func(ctx context.Context)
}

// NewGroup returns an empty group whose servers get grace to finish
// in-flight requests when stopping.
func NewGroup(logger *slog.Logger, grace time.Duration) *Group {
	return &Group{logger: logger, grace: grace}
}

// HTTP adds an HTTP server listening on l.
func (g *Group) HTTP(name string, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g.units = append(g.units, unit{
		name: name,
		run: func(context.Context) error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		stop: func(ctx context.Context) {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		},
	})
}

// GRPC adds a gRPC server listening on l.
func (g *Group) GRPC(name string, l net.Listener, s *grpc.Server) {
	g.units = append(g.units, unit{
		name: name,
		run:  func(context.Context) error { return s.Serve(l) },
		stop: func(ctx context.Context) {
			done := make(chan struct{})
			go func() { s.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				s.Stop()
			}
		},
	})
}

// Go adds a worker. It must return when its context is cancelled; a nil
// return before that is not an error.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	g.units = append(g.units, unit{name: name, run: fn})
}

// Run starts every unit and blocks until ctx is cancelled or a unit fails,
// then stops them all. It returns the first failure.
func (g *Group) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for _, u := range g.units {
		wg.Go(func() {
			err := u.run(ctx)
			if err != nil && ctx.Err() == nil {
				once.Do(func() { firstErr = fmt.Errorf("%s: %w", u.name, err) })
				g.logger.Error("unit failed", "unit", u.name, "err", err)
			}
			cancel()
		})
	}
	<-ctx.Done()
	g.logger.Info("stopping", "graceSeconds", g.grace.Seconds())
	stopCtx, stopCancel := context.WithTimeout(context.WithoutCancel(ctx), g.grace)
	defer stopCancel()
	for _, u := range g.units {
		if u.stop != nil {
			u.stop(stopCtx)
		}
	}
	wg.Wait()
	return firstErr
}
