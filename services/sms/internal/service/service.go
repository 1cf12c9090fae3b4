// Package service wires the sms service together: NATS, Redis, the
// envelope sealer, the gRPC API and the operational HTTP endpoints, run
// until the context is cancelled.
package service

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/lifecycle"
	"github.com/carenotify/carenotify/pkg/phone"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/telemetry"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/sms/internal/app"
	"github.com/carenotify/carenotify/services/sms/internal/config"
	"github.com/carenotify/carenotify/services/sms/internal/metrics"
	"github.com/carenotify/carenotify/services/sms/internal/queue"
	"github.com/carenotify/carenotify/services/sms/internal/records"
	"github.com/carenotify/carenotify/services/sms/internal/server"
	"github.com/carenotify/carenotify/services/sms/internal/twilio"
)

// Run runs the service until ctx is cancelled.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	tel := telemetry.New("sms")
	nc, js, err := bus.Connect(ctx, cfg.NATSURL, "sms", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	tel.AddReadiness("nats", bus.Ready(nc))
	if err := bus.EnsureStreams(ctx, js, queue.Streams(cfg.StreamReplicas)...); err != nil {
		return err
	}
	// Outbox messages are sealed with per-tenant-day data keys kept in
	// CN_DATA_KEYS, wrapped by the KEKs in SMS_KEYRING_DIR.
	sealer, err := envelope.NewServiceSealer(ctx, js, cfg.KeyringDir, cfg.StreamReplicas, logger)
	if err != nil {
		return err
	}
	rdb, err := store.NewRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	tel.AddReadiness("redis", store.Ready(rdb))

	m := metrics.New(tel.Registry)
	st := records.New(rdb)
	events := queue.NewEvents(js)
	svc := app.NewService(app.ServiceOptions{
		Store: st, Outbox: queue.NewOutbox(js, sealer), Events: events, Metrics: m, Logger: logger,
		DefaultExpiry: cfg.DefaultExpiry,
		MaxExpiry:     bus.Outbox(queue.Channel, cfg.StreamReplicas).MaxAge,
		MaxSegments:   cfg.MaxSegments,
	})

	senders, err := cfg.Senders()
	if err != nil {
		return err
	}
	aw, err := audit.NewServiceWriter(ctx, js, "sms", cfg.AuditPseudonymKeyFile, cfg.AuditSigningKeyFile, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	defer func() {
		if err := aw.Close(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("close audit writer", "err", err)
		}
	}()
	provider := twilio.New(twilio.Options{
		BaseURL: cfg.TwilioBaseURL, AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.AuthToken(), Timeout: cfg.SendTimeout,
	})
	// One attempt takes at most SendTimeout; the margin covers the record
	// and event writes around it.
	ackWait := cfg.SendTimeout + 30*time.Second
	worker := app.NewWorker(app.WorkerOptions{
		Store: st, Events: events, Provider: provider, Auditor: aw, Metrics: m, Logger: logger, LockTTL: ackWait,
		Sender: func(tenant string) string {
			if s, ok := senders[tenant]; ok {
				return s
			}
			return cfg.TwilioFrom
		},
		StatusCallback: func(tenant, id string) string {
			if cfg.PublicURL == "" {
				return ""
			}
			return server.StatusCallback(cfg.PublicURL, tenant, id)
		},
	})
	mux := http.NewServeMux()
	tel.Register(mux)
	if cfg.PublicURL != "" {
		receipts := app.NewReceipts(app.ReceiptsOptions{
			Store: st, Events: events, Auditor: aw, Metrics: m, Logger: logger, LockTTL: 30 * time.Second, LockWait: 5 * time.Second,
		})
		pseudonymKey, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile)
		if err != nil {
			return err
		}
		replies := app.Replies{}
		if cfg.KeywordReplies {
			replies = app.Replies{Stop: cfg.ReplyStop, Start: cfg.ReplyStart, Help: cfg.ReplyHelp}
		}
		keywords := app.NewKeywords(app.KeywordsOptions{
			Events: events, Auditor: aw, Hasher: phone.NewHasher(pseudonymKey), Logger: logger,
			Tenant: config.InboundTenant(senders), Replies: replies,
		})
		server.NewWebhooks(server.WebhooksOptions{
			PublicURL: cfg.PublicURL, AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.AuthToken(),
			Receipts: receipts, Keywords: keywords, Metrics: m, Logger: logger,
		}).Register(mux)
	}

	gs, _ := grpcx.NewServer(logger, tel.Registry)
	smsv1.RegisterSmsServiceServer(gs, server.New(svc, logger))

	httpL, err := lifecycle.Listen(cfg.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	grpcL, err := lifecycle.Listen(cfg.GRPCListener, cfg.GRPCAddr)
	if err != nil {
		return err
	}
	g := lifecycle.NewGroup(logger, cfg.ShutdownGrace)
	g.HTTP("http", httpL, mux)
	g.GRPC("grpc", grpcL, gs)
	handler := queue.Handler(queue.HandlerOptions{
		Worker: worker, Sealer: sealer, DeadLetters: queue.NewDeadLetters(js, sealer), Logger: logger,
	})
	for i := range cfg.Workers {
		g.Go("worker-"+strconv.Itoa(i), func(ctx context.Context) error {
			return bus.Consume(ctx, js, bus.OutboxStream(queue.Channel), queue.ConsumerConfig(ackWait), logger, handler, bus.WithPrefetch(1))
		})
	}
	logger.Info("sms started", "http", httpL.Addr().String(), "grpc", grpcL.Addr().String(),
		"provider", "twilio", "workers", cfg.Workers, "receipts", cfg.PublicURL != "")
	return g.Run(ctx)
}
