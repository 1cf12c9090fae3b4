package service

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/lifecycle"
	"github.com/carenotify/carenotify/pkg/telemetry"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

// natsHeaderRoom is what a dead letter's subject and headers may take of
// a NATS message beside the body.
const natsHeaderRoom = 4 << 10

// Run runs the service until ctx is cancelled.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	tel := telemetry.New("ingest")
	nc, js, err := bus.Connect(ctx, cfg.NATSURL, "ingest", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	tel.AddReadiness("nats", bus.Ready(nc))
	if err := bus.EnsureStreams(ctx, js, bus.EHREvents(cfg.StreamReplicas), bus.EHRDead(cfg.StreamReplicas)); err != nil {
		return err
	}

	sealer, err := envelope.NewServiceSealer(ctx, js, cfg.KeyringDir, cfg.StreamReplicas, logger)
	if err != nil {
		return err
	}

	aw, err := audit.NewServiceWriter(ctx, js, "ingest", cfg.AuditPseudonymKeyFile, cfg.AuditSigningKeyFile, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	defer func() {
		if err := aw.Close(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("close audit writer", "err", err)
		}
	}()

	// A rejected body is kept whole on EHR_DEAD, so no body may be larger
	// than one NATS message can hold.
	maxBody := cfg.MaxBodyBytes
	if limit := nc.MaxPayload() - natsHeaderRoom; limit > 0 && limit < maxBody {
		logger.Warn("body limit lowered to the nats max payload", "configuredBytes", maxBody, "maxBodyBytes", limit)
		maxBody = limit
	}

	m := metrics.New(tel.Registry)
	a := app.New(app.Options{Publisher: natsbus.New(js, sealer, cfg.PublishTimeout), Auditor: aw, Metrics: m, Logger: logger})
	mux := http.NewServeMux()
	tel.Register(mux)
	server.New(server.Options{
		App: a, Sources: cfg.AllSources(), MaxBodyBytes: maxBody, Metrics: m, Logger: logger,
	}).Register(mux)

	httpL, err := lifecycle.Listen(cfg.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	g := lifecycle.NewGroup(logger, cfg.ShutdownGrace)
	g.HTTP("http", httpL, mux)
	logger.Info("ingest started", "http", httpL.Addr().String(), "sources", len(cfg.AllSources()))
	return g.Run(ctx)
}
