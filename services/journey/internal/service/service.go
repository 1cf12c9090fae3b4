// Package service wires the journey service together: the journeys and
// templates, NATS, the email service client, the admin API and the
// operational HTTP endpoints, run until the context is cancelled.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/lifecycle"
	"github.com/carenotify/carenotify/pkg/phone"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/telemetry"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/journey/internal/adminauth"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/config"
	"github.com/carenotify/carenotify/services/journey/internal/consent"
	"github.com/carenotify/carenotify/services/journey/internal/consentlog"
	"github.com/carenotify/carenotify/services/journey/internal/emailclient"
	"github.com/carenotify/carenotify/services/journey/internal/server"
	"github.com/carenotify/carenotify/services/journey/internal/smsclient"
	"github.com/carenotify/carenotify/services/journey/internal/timers"
	"github.com/carenotify/carenotify/services/journey/internal/versions"
	"github.com/carenotify/carenotify/services/journey/internal/waits"
)

// Durable is the name of the journey service's consumer on EHR_EVENTS.
const Durable = "journey"

// OptOutDurable is the name of its consumer of email opt-outs on DELIVERY.
const OptOutDurable = "journey-optout"

// KeywordsDurable is the name of its consumer of SMS keywords (STOP,
// START) on DELIVERY.
const KeywordsDurable = "journey-sms-keywords"

// SMSFailuresDurable is the name of its consumer of SMS failures (failed,
// undelivered) on DELIVERY, which send the fallback of SMS steps.
const SMSFailuresDurable = "journey-sms-failures"

// TimersDurable is the name of its consumer of fired timers on
// JOURNEY_TIMERS.
const TimersDurable = "journey-timers"

// LoadCatalog loads the journeys and templates cfg names. Its error lists
// every problem in every file.
func LoadCatalog(cfg *config.Config) (*catalog.Set, error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	tenants, err := cfg.Tenants()
	if err != nil {
		return nil, err
	}
	langs := catalog.Languages{Default: cfg.Language, Tenants: map[string]string{}}
	for name, t := range tenants {
		if t.Language != "" {
			langs.Tenants[name] = t.Language
		}
	}
	return catalog.Load(cfg.JourneysDir, cfg.TemplatesDir, loc, catalog.WithLanguages(langs))
}

// TenantZones returns the default time zone of every tenant that sets
// one in JOURNEY_TENANTS_FILE.
func TenantZones(cfg *config.Config) (map[string]*time.Location, error) {
	tenants, err := cfg.Tenants()
	if err != nil {
		return nil, err
	}
	out := map[string]*time.Location{}
	for name, t := range tenants {
		if t.TimeZone == "" {
			continue
		}
		loc, err := time.LoadLocation(t.TimeZone) // checked by Tenants
		if err != nil {
			return nil, fmt.Errorf("JOURNEY_TENANTS_FILE: tenant %s: timezone: %w", name, err)
		}
		out[name] = loc
	}
	return out, nil
}

// Run runs the service until ctx is cancelled. It does not start when the
// journeys or templates have problems.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	set, err := LoadCatalog(cfg)
	if err != nil {
		return err
	}
	tel := telemetry.New("journey")
	nc, js, err := bus.Connect(ctx, cfg.NATSURL, "journey", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	tel.AddReadiness("nats", bus.Ready(nc))
	// Declared here too, so ingest and journey can start in any order.
	if err := bus.EnsureStreams(ctx, js, bus.EHREvents(cfg.StreamReplicas), bus.EHRDead(cfg.StreamReplicas),
		bus.JourneyTimers(cfg.StreamReplicas), bus.Delivery(cfg.StreamReplicas), bus.Consent(cfg.StreamReplicas)); err != nil {
		return err
	}
	sealer, err := envelope.NewServiceSealer(ctx, js, cfg.KeyringDir, cfg.StreamReplicas, logger)
	if err != nil {
		return err
	}

	pseudonymKey, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile)
	if err != nil {
		return err
	}
	rc, err := store.NewRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rc.Close()
	tel.AddReadiness("redis", store.Ready(rc))
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	tenantZones, err := TenantZones(cfg)
	if err != nil {
		return err
	}

	aw, err := audit.NewServiceWriter(ctx, js, "journey", cfg.AuditPseudonymKeyFile, cfg.AuditSigningKeyFile, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	defer func() {
		if err := aw.Close(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("close audit writer", "err", err)
		}
	}()

	cc, err := grpcx.NewClient(cfg.EmailAddr, tel.Registry)
	if err != nil {
		return err
	}
	defer cc.Close()
	// Every applied version of every journey; the directory seeds
	// journeys the store has never had (the store wins).
	vs, err := versions.New(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	if err := seedVersions(ctx, vs, set, cfg.JourneysDir, logger); err != nil {
		return err
	}
	ts := timers.New(js, sealer)
	cs := consent.New(rc, sealer, pseudonymKey)
	// Without JOURNEY_SMS_ADDR send: sms steps are refused (and fall back);
	// SMS keywords still apply to numbers texted before.
	var smsSender app.SMSSender
	if cfg.SMSAddr != "" {
		scc, err := grpcx.NewClient(cfg.SMSAddr, tel.Registry)
		if err != nil {
			return err
		}
		defer scc.Close()
		smsSender = smsclient.New(smsv1.NewSmsServiceClient(scc), cfg.SendTimeout)
	}
	a := app.New(set, emailclient.New(emailv1.NewEmailServiceClient(cc), cfg.SendTimeout), ts, cs, aw, logger, tel.Registry,
		app.WithLocation(loc), app.WithTenantZones(tenantZones), app.WithWaits(waits.New(rc, sealer)), app.WithFrequencyCaps(cs), app.WithContacts(cs),
		app.WithAuditTrail(trail{js: js, key: pseudonymKey}),
		app.WithConsentLog(consentlog.New(js, sealer)),
		app.WithSMS(smsSender, cs, phone.NewHasher(pseudonymKey), cfg.SMSCountryCode), app.WithContinuations(cs),
		app.WithJourneyVersions(vs))
	// The stored journeys run from here on, reloaded on every change.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := followVersions(watchCtx, vs, a, tel.Registry, logger)
	defer func() { stopWatch(); <-watchDone }()
	events := server.NewEvents(a, sealer, deadLetter(js, sealer), tel.Registry)
	fired := server.NewTimers(a, ts)
	optOuts := server.NewOptOuts(a, logger)
	keywords := server.NewKeywords(a, logger)
	smsFailures := server.NewSMSFailures(a, logger)
	admin := server.NewAdmin(a, logger)

	tokens, err := adminauth.Load(cfg.AdminTokensFile, cfg.AdminTokens)
	if err != nil {
		return err
	}
	if tokens.Len() == 0 {
		logger.Warn("no admin tokens configured: the admin API refuses every call")
	}
	auth := server.NewAuth(tokens, logger)
	gs, _ := grpcx.NewServer(logger, tel.Registry, grpc.ChainUnaryInterceptor(auth.UnaryInterceptor()))
	journeyv1.RegisterAdminServiceServer(gs, admin)
	mux := http.NewServeMux()
	tel.Register(mux)
	admin.RegisterHTTP(mux, auth)

	httpL, err := lifecycle.Listen(cfg.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	grpcL, err := lifecycle.Listen(cfg.GRPCListener, cfg.GRPCAddr)
	if err != nil {
		_ = httpL.Close()
		return err
	}
	consumer := jetstream.ConsumerConfig{
		Durable:       Durable,
		FilterSubject: "ehr.>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// One event may call Send once per matching journey step.
		AckWait: max(30*time.Second, 3*cfg.SendTimeout),
	}
	timerConsumer := jetstream.ConsumerConfig{
		Durable:       TimersDurable,
		FilterSubject: timers.FireFilter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       consumer.AckWait,
	}
	optOutConsumer := jetstream.ConsumerConfig{
		Durable:       OptOutDurable,
		FilterSubject: server.OptOutFilter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
	}
	keywordConsumer := jetstream.ConsumerConfig{
		Durable:        KeywordsDurable,
		FilterSubjects: server.KeywordFilters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        30 * time.Second,
	}
	smsFailureConsumer := jetstream.ConsumerConfig{
		Durable:        SMSFailuresDurable,
		FilterSubjects: server.SMSFailureFilters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        consumer.AckWait,
	}
	g := lifecycle.NewGroup(logger, cfg.ShutdownGrace)
	g.HTTP("http", httpL, mux)
	g.GRPC("grpc", grpcL, gs)
	g.Go("events", func(ctx context.Context) error {
		return bus.Consume(ctx, js, bus.StreamEHREvents, consumer, logger, events.Handle)
	})
	g.Go("timers", func(ctx context.Context) error {
		return bus.Consume(ctx, js, timers.Stream, timerConsumer, logger, fired.Handle)
	})
	g.Go("optouts", func(ctx context.Context) error {
		return bus.Consume(ctx, js, bus.StreamDelivery, optOutConsumer, logger, optOuts.Handle)
	})
	g.Go("sms-failures", func(ctx context.Context) error {
		return bus.Consume(ctx, js, bus.StreamDelivery, smsFailureConsumer, logger, smsFailures.Handle)
	})
	g.Go("keywords", func(ctx context.Context) error {
		return bus.Consume(ctx, js, bus.StreamDelivery, keywordConsumer, logger, keywords.Handle)
	})
	logger.Info("journey started", "http", httpL.Addr().String(), "grpc", grpcL.Addr().String(),
		"journeys", len(a.Journeys("")), "templates", set.Templates(), "emailAddr", cfg.EmailAddr, "smsAddr", cfg.SMSAddr)
	return g.Run(ctx)
}
