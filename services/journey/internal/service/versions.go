package service

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/versions"
)

// seedVersions stores every journey of set, read from dir, as version 1
// unless the store already has a version of it (the store wins; see
// README "Versions"). Replicas seeding at once store one version 1.
func seedVersions(ctx context.Context, store *versions.Store, set *catalog.Set, dir string, logger *slog.Logger) error {
	seeded := 0
	for _, j := range set.Journeys() {
		b, err := os.ReadFile(filepath.Join(dir, j.File))
		if err != nil || !strings.HasPrefix(versions.Hash(b), j.Version) {
			// Changed since it was loaded: the next start seeds it.
			logger.WarnContext(ctx, "journey file changed while starting; not seeded", "journey", j.ID, "file", j.File)
			continue
		}
		ok, err := store.Seed(ctx, app.JourneyVersion{
			Journey: j.ID, Tenant: j.Tenant, File: j.File, Principal: "seed:" + dir, Content: b,
			Message: "seeded from the journeys directory",
		})
		if err != nil {
			return err
		}
		if ok {
			seeded++
		}
	}
	logger.InfoContext(ctx, "journey versions seeded", "seeded", seeded, "journeys", len(set.Journeys()))
	return nil
}

// followVersions runs the current stored journeys in a, reloading them
// whenever the store changes, until ctx ends. It returns once the first
// reload was tried (so events are matched against the stored journeys
// from the start); the watch goes on in the background, restarted with
// backoff if the stream cannot be read. done is closed when it stops.
func followVersions(ctx context.Context, store *versions.Store, a *app.Service, reg prometheus.Registerer, logger *slog.Logger) (done <-chan struct{}) {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_reloads_total",
		Help: "Reloads of the running journeys from the versioned store, by outcome (loaded, refused: the running journeys stay).",
	}, []string{"outcome"})
	reg.MustRegister(reloads)
	first := make(chan struct{})
	stopped := make(chan struct{})
	var once bool
	reload := func(cur map[string]app.JourneyVersion) {
		defer func() {
			if !once {
				once = true
				close(first)
			}
		}()
		files := make([]catalog.JourneyFile, 0, len(cur))
		removed := 0
		for _, v := range cur {
			if v.Removed {
				removed++
				continue
			}
			files = append(files, catalog.JourneyFile{Name: v.File, Content: v.Content, Revision: v.Version})
		}
		slices.SortFunc(files, func(a, b catalog.JourneyFile) int { return strings.Compare(a.Name, b.Name) })
		if err := a.Reload(files); err != nil {
			reloads.WithLabelValues("refused").Inc()
			var le *catalog.LoadError
			n := 0
			if errors.As(err, &le) {
				n = len(le.Problems)
			}
			logger.ErrorContext(ctx, "stored journeys do not load; the running journeys stay", "problems", n, "err", err)
			return
		}
		reloads.WithLabelValues("loaded").Inc()
		logger.InfoContext(ctx, "journeys reloaded", "journeys", len(files), "removed", removed)
	}
	go func() {
		defer close(stopped)
		for attempt := uint64(0); ; attempt++ {
			err := store.Watch(ctx, logger, reload)
			if ctx.Err() != nil {
				return
			}
			logger.WarnContext(ctx, "journey version watch stopped; restarting", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(bus.Backoff(attempt, 30*time.Second)):
			}
		}
	}()
	select {
	case <-first:
	case <-ctx.Done():
	}
	return stopped
}
