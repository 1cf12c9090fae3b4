package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/lifecycle"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/telemetry"
	"github.com/carenotify/carenotify/services/ingest/internal/ackstore"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirclient"
	"github.com/carenotify/carenotify/services/ingest/internal/lastseen"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
	"github.com/carenotify/carenotify/services/ingest/internal/ratelimit"
	"github.com/carenotify/carenotify/services/ingest/internal/replaycache"
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

	rc, err := store.NewRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	tel.AddReadiness("redis", store.Ready(rc))

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

	loc, err := cfg.MLLPLocation()
	if err != nil {
		return err
	}
	servers, err := config.LoadFHIRServers(cfg.FHIRServersFile, cfg.AllSources())
	if err != nil {
		return err
	}
	var reader app.FHIRReader
	periods := map[string]time.Duration{}
	if len(servers) > 0 {
		reg, err := fhirclient.NewRegistry(servers, fhirclient.Options{})
		if err != nil {
			return err
		}
		reader = reg
		for _, s := range servers {
			periods[s.Source] = s.Heartbeat()
		}
	}
	subStore, err := natsbus.NewSubscriptionStore(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	subs, err := app.NewSubscriptions(ctx, subStore, func(source string) time.Duration { return periods[source] })
	if err != nil {
		return err
	}
	pseudonymKey, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile)
	if err != nil {
		return err
	}
	state := lastseen.New(rc, sealer, pseudonymKey, lastseen.Options{TTL: cfg.StateTTL, LockTTL: cfg.StateLockTTL, LockWait: cfg.StateLockWait})
	m := metrics.New(tel.Registry)
	a := app.New(app.Options{Publisher: natsbus.New(js, sealer, cfg.PublishTimeout), Auditor: aw, Metrics: m, Logger: logger,
		HL7Location: loc, FHIR: reader, Subscriptions: subs, DeadLetters: natsbus.NewDeadLetters(js, sealer, cfg.PublishTimeout),
		State: state, IdentifierSystems: map[string]app.IdentifierSystems{cfg.MLLPSource.Name: app.IdentifierSystems(cfg.MLLPIdentifierSystems)}})
	limiter := ratelimit.New(rc)
	hmacSecrets, err := config.AllHMACSecrets(cfg.AllSources(), os.LookupEnv)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	tel.Register(mux)
	server.New(server.Options{
		App: a, Sources: cfg.AllSources(), MaxBodyBytes: maxBody, Metrics: m, Logger: logger, AdminToken: cfg.AdminToken,
		HMACSecrets: hmacSecrets, Replay: replaycache.New(rc), Limiter: limiter,
	}).Register(mux)

	cas, err := clientCAs(cfg)
	if err != nil {
		return err
	}
	httpTLSCfg, err := httpTLS(cfg, cas)
	if err != nil {
		return err
	}
	httpL, err := lifecycle.Listen(cfg.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	if httpTLSCfg != nil {
		httpL = tls.NewListener(httpL, httpTLSCfg)
	}
	g := lifecycle.NewGroup(logger, cfg.ShutdownGrace)
	g.HTTP("http", httpL, mux)
	g.Go("heartbeats", func(ctx context.Context) error { return a.RunHeartbeats(ctx, cfg.HeartbeatCheckInterval) })
	mllpAddr := "off"
	if cfg.MLLPEnabled() {
		acks := ackstore.New(rc, sealer, pseudonymKey, ackstore.Options{TTL: cfg.MLLPAckTTL, LockTTL: cfg.MLLPAckLockTTL, LockWait: cfg.MLLPAckLockWait})
		ml, err := startMLLP(g, cfg, cas, limiter, a, acks, m, tel.Registry, nc.MaxPayload(), logger)
		if err != nil {
			_ = httpL.Close()
			return err
		}
		mllpAddr = ml.Addr().String()
	}
	logger.Info("ingest started", "http", httpL.Addr().String(), "mllp", mllpAddr, "sources", len(cfg.AllSources()),
		"fhirServers", len(servers))
	return g.Run(ctx)
}

// startMLLP adds the HL7 v2 MLLP listener to g and returns its listener.
func startMLLP(g *lifecycle.Group, cfg *config.Config, cas *x509.CertPool, limiter *ratelimit.Limiter, a *app.App, acks mllp.AckStore, inputs mllp.InputMetrics,
	reg prometheus.Registerer, maxPayload int64, logger *slog.Logger) (net.Listener, error) {
	var tlsCfg *tls.Config
	if cfg.MLLPTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.MLLPTLSCertFile, cfg.MLLPTLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("mllp tls key pair: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// With a client CA and mtls sources, every connection must present a
	// certificate, and the certificate names its source.
	identify := mllpIdentify(cfg, cas)
	if identify != nil {
		tlsCfg.ClientCAs, tlsCfg.ClientAuth = cas, tls.RequireAndVerifyClientCert
	}
	// A rejected message is kept whole on EHR_DEAD, like a FHIR body.
	maxFrame := cfg.MLLPMaxFrameBytes
	if limit := maxPayload - natsHeaderRoom; limit > 0 && limit < int64(maxFrame) {
		logger.Warn("mllp frame limit lowered to the nats max payload", "configuredBytes", maxFrame, "maxFrameBytes", limit)
		maxFrame = int(limit)
	}
	l, err := lifecycle.Listen(cfg.MLLPListener, cfg.MLLPAddr)
	if err != nil {
		return nil, err
	}
	srv := mllp.New(mllp.Options{
		App: a, Source: app.Source{Name: cfg.MLLPSource.Name, Tenant: cfg.MLLPSource.Tenant},
		MaxFrameBytes: maxFrame, ReadTimeout: cfg.MLLPReadTimeout, MaxConns: cfg.MLLPMaxConns, TLS: tlsCfg, Identify: identify,
		Throttle: mllpThrottle(cfg, limiter), MaxMessageBytes: mllpMaxMessageBytes(cfg),
		Metrics: mllp.NewMetrics(reg), Logger: logger, Acks: acks, Inputs: inputs,
	})
	g.Go("mllp", func(ctx context.Context) error { return srv.Serve(ctx, l) })
	return l, nil
}
