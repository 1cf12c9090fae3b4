package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/lifecycle"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/telemetry"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/config"
	"github.com/carenotify/carenotify/services/email/internal/limits"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/queue"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/records"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/server"
	"github.com/carenotify/carenotify/services/email/internal/token"
)

// Run runs the service until ctx is cancelled.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	from, err := cfg.FromAddress()
	if err != nil {
		return err
	}
	roots, err := cfg.RootCAs()
	if err != nil {
		return err
	}
	policies, err := cfg.Policies()
	if err != nil {
		return err
	}
	relayOpts := relay.Options{
		Host: cfg.SMTPHost, Port: cfg.SMTPPort,
		Username: cfg.SMTPUsername, Password: cfg.Password(),
		RootCAs: roots, From: from, Timeout: cfg.SendTimeout,
		MaxMessagesPerConnection: cfg.SMTPMaxMessagesPerConnection,
		IdleTimeout:              cfg.SMTPIdleTimeout,
		MaxIdle:                  cfg.Workers,
		HeloName:                 cfg.HeloName(),
		DSNNotify:                cfg.DSNNotifyList(),
		DSNRet:                   cfg.DSNRet,
	}
	tel := telemetry.New("email")
	m := metrics.New(tel.Registry)
	if cfg.Delivery == config.DeliveryMX {
		res := cfg.Resolver()
		relayOpts.Direct, relayOpts.MXPort, relayOpts.Resolver = true, cfg.MXPort, res
		if cfg.MTASTS == "on" {
			relayOpts.STS = relay.NewSTS(relay.STSOptions{Resolver: res, RootCAs: roots})
			relayOpts.OnSTS = func(mode, result string) {
				m.MTASTS(mode, result)
				if result != "ok" {
					logger.Warn("mta-sts check failed", "mode", mode, "result", result)
				}
			}
		}
	}
	if cfg.DKIMKeyFile != "" {
		key, err := relay.LoadDKIMKey(cfg.DKIMKeyFile)
		if err != nil {
			return fmt.Errorf("EMAIL_DKIM_KEY_FILE: %w", err)
		}
		d, err := relay.NewDKIM(cfg.DKIMDomainOrFrom(), cfg.DKIMSelector, key)
		if err != nil {
			return fmt.Errorf("EMAIL_DKIM_KEY_FILE: %w", err)
		}
		relayOpts.Signer = d
	}
	var unsubscribeKeys *token.Keys
	if cfg.UnsubscribeBaseURL != "" {
		if unsubscribeKeys, err = token.Load(cfg.UnsubscribeKeyFile); err != nil {
			return fmt.Errorf("EMAIL_UNSUBSCRIBE_KEY_FILE: %w", err)
		}
		base := strings.TrimRight(cfg.UnsubscribeBaseURL, "/") + server.UnsubscribePath
		relayOpts.Unsubscribe = func(m app.Message) string { return base + unsubscribeKeys.Unsubscribe(m.Tenant, m.ID) }
	}
	var bounceKeys *token.Keys
	if cfg.BounceDomain != "" {
		if bounceKeys, err = token.Load(cfg.BounceKeyFile); err != nil {
			return fmt.Errorf("EMAIL_BOUNCE_KEY_FILE: %w", err)
		}
		relayOpts.ReturnPath = func(m app.Message) string { return server.VERPAddress(bounceKeys, cfg.BounceDomain, m.ID) }
	}
	mailer, err := relay.New(relayOpts)
	if err != nil {
		return err
	}
	defer func() { _ = mailer.Close() }()

	nc, js, err := bus.Connect(ctx, cfg.NATSURL, "email", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	tel.AddReadiness("nats", bus.Ready(nc))
	if err := bus.EnsureStreams(ctx, js, queue.Streams(cfg.StreamReplicas)...); err != nil {
		return err
	}
	// Outbox messages are sealed with per-tenant-day data keys kept in
	// CN_DATA_KEYS, wrapped by the KEKs in EMAIL_KEYRING_DIR.
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

	pseudonymKey, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile)
	if err != nil {
		return fmt.Errorf("EMAIL_AUDIT_PSEUDONYM_KEY_FILE: %w", err)
	}
	// Recipients' S/MIME certificates and OpenPGP keys, sealed in Redis.
	recipientKeys := recipientkeys.New(rdb, sealer, pseudonymKey, nil)
	if cfg.RecipientKeysDir != "" {
		n, err := recipientkeys.LoadDir(ctx, cfg.RecipientKeysDir, recipientKeys, time.Now())
		if err != nil {
			return fmt.Errorf("EMAIL_RECIPIENT_KEYS_DIR: %w", err)
		}
		logger.Info("recipient keys loaded", "records", n)
	}

	st := records.New(rdb)
	supps := records.NewSuppressions(rdb, pseudonymKey)
	events := queue.NewEvents(js)
	svc := app.NewService(app.ServiceOptions{
		Store: st, Outbox: queue.NewOutbox(js, sealer), Events: events, Suppressions: supps, Metrics: m, Logger: logger,
		DefaultExpiry: cfg.DefaultExpiry,
		MaxExpiry:     bus.Outbox(queue.Channel, cfg.StreamReplicas).MaxAge,
		MaxBytes:      cfg.MaxBodyBytes,
	})
	// One attempt takes at most SendTimeout; the margin covers the record
	// and event writes around it.
	ackWait := cfg.SendTimeout + 30*time.Second
	aw, err := audit.NewServiceWriter(ctx, js, "email", cfg.AuditPseudonymKeyFile, cfg.AuditSigningKeyFile, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	defer func() {
		if err := aw.Close(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("close audit writer", "err", err)
		}
	}()
	worker := app.NewWorker(app.WorkerOptions{
		Store: st, Events: events, Mailer: mailer, Policies: policies, Holder: queue.NewHeld(js, sealer),
		Keys: recipientKeys, Suppressions: supps, SuppressBounces: cfg.SuppressBounces,
		Limiter: limits.New(rdb), Auditor: aw, Metrics: m, Logger: logger, LockTTL: ackWait,
	})

	feedback := app.NewFeedback(app.FeedbackOptions{
		Store: st, Events: events, Auditor: aw, Suppressions: supps, SuppressBounces: cfg.SuppressBounces,
		Metrics: m, Logger: logger, LockTTL: ackWait,
	})
	mux := http.NewServeMux()
	tel.Register(mux)
	if cfg.SendGridWebhookKey != "" {
		key, err := server.ParseSendGridKey(cfg.SendGridWebhookKey)
		if err != nil {
			return fmt.Errorf("EMAIL_SENDGRID_WEBHOOK_KEY: %w", err)
		}
		server.NewSendGridHook(key, feedback, m, logger).Register(mux)
	}
	server.NewSuppressions(app.NewSuppressionAdmin(app.SuppressionAdminOptions{
		Suppressions: supps, Auditor: aw, Metrics: m, Logger: logger,
	}), cfg.Admin(), logger).Register(mux)
	if unsubscribeKeys != nil {
		server.NewUnsubscribe(unsubscribeKeys, feedback, logger).Register(mux)
	}
	server.NewRecipientKeys(recipientKeys, cfg.Admin(), logger).Register(mux)

	gs, _ := grpcx.NewServer(logger, tel.Registry)
	emailv1.RegisterEmailServiceServer(gs, server.New(svc, logger))

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
	if cfg.PprofAddr != "" || cfg.PprofListener != nil {
		pl, err := lifecycle.Listen(cfg.PprofListener, cfg.PprofAddr)
		if err != nil {
			return err
		}
		g.HTTP("pprof", pl, server.Pprof())
		logger.Info("pprof listener started", "addr", pl.Addr().String())
	}
	handler := queue.Handler(queue.HandlerOptions{
		Worker: worker, Sealer: sealer, DeadLetters: queue.NewDeadLetters(js, sealer), Logger: logger,
	})
	if bounceKeys != nil && (cfg.BounceSMTPAddr != "" || cfg.BounceListener != nil) {
		bl, err := lifecycle.Listen(cfg.BounceListener, cfg.BounceSMTPAddr)
		if err != nil {
			return err
		}
		var tlsConfig *tls.Config
		if cfg.BounceTLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.BounceTLSCertFile, cfg.BounceTLSKeyFile)
			if err != nil {
				return fmt.Errorf("EMAIL_BOUNCE_TLS_CERT_FILE: %w", err)
			}
			tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		bounces := server.NewBounces(server.BouncesOptions{
			Domain: cfg.BounceDomain, Keys: bounceKeys, Feedback: feedback, Metrics: m, Logger: logger, TLSConfig: tlsConfig,
		})
		g.Go("bounces", func(ctx context.Context) error { return bounces.Serve(ctx, bl, cfg.ShutdownGrace) })
		logger.Info("bounce listener started", "smtp", bl.Addr().String(), "tls", tlsConfig != nil)
	}
	for i := range cfg.Workers {
		g.Go("worker-"+strconv.Itoa(i), func(ctx context.Context) error {
			return bus.Consume(ctx, js, bus.OutboxStream(queue.Channel), queue.ConsumerConfig(ackWait), logger, handler, bus.WithPrefetch(1))
		})
	}
	logger.Info("email started", "http", httpL.Addr().String(), "grpc", grpcL.Addr().String(),
		"delivery", cfg.Delivery, "smtpRelay", net.JoinHostPort(cfg.SMTPHost, strconv.Itoa(cfg.SMTPPort)), "workers", cfg.Workers,
		"dkim", cfg.DKIMKeyFile != "", "unsubscribe", unsubscribeKeys != nil, "verp", bounceKeys != nil)
	return g.Run(ctx)
}
