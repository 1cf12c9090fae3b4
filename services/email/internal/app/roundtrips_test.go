package app_test

import (
	"context"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/queue"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/records"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// roundTrips counts the requests a Redis client sends: one per command
// outside a pipeline, one per pipeline or transaction.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// capturing is the real outbox that also hands each queued message to the
// test, which plays the delivery consumer.
type capturing struct {
	app.Outbox
	got chan app.Message
}

func (c capturing) Enqueue(ctx context.Context, m app.Message) error {
	if err := c.Outbox.Enqueue(ctx, m); err != nil {
		return err
	}
	c.got <- m
	return nil
}

// pipeline is a Service and a Worker on real Redis, NATS, recipient key
// store and a STARTTLS relay, with the Redis requests counted.
type pipeline struct {
	svc    *app.Service
	worker *app.Worker
	queued chan app.Message
	rt     *roundTrips
}

func newPipeline(tb testing.TB) *pipeline {
	tb.Helper()
	ca := smtptest.NewCA(tb)
	srv := smtptest.Start(tb, smtptest.Options{CA: ca})
	_, js := bustest.Connect(tb, bustest.Start(tb))
	if err := bus.EnsureStreams(tb.Context(), js, queue.Streams(1)...); err != nil {
		tb.Fatal(err)
	}
	rdb := storetest.Client(tb)
	rt := &roundTrips{}
	rdb.AddHook(rt)
	sealer := envelopetest.Sealer(tb)
	pk := []byte("0123456789abcdef0123456789abcdef")
	st := records.New(rdb)
	supps := records.NewSuppressions(rdb, pk)
	aw, _ := audittest.Writer(tb, js, "email")
	from, _ := netmail.ParseAddress("noreply@carenotify.localhost")
	mailer, err := relay.New(relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, From: from, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = mailer.Close() })
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	events := queue.NewEvents(js)
	queued := make(chan app.Message, 1)
	return &pipeline{
		svc: app.NewService(app.ServiceOptions{
			Store: st, Outbox: capturing{queue.NewOutbox(js, sealer), queued}, Events: events, Suppressions: supps,
			Metrics: m, Logger: log, DefaultExpiry: time.Hour, MaxExpiry: 7 * 24 * time.Hour, MaxBytes: 1 << 20,
		}),
		worker: app.NewWorker(app.WorkerOptions{
			Store: st, Events: events, Mailer: mailer, Holder: queue.NewHeld(js, sealer),
			Keys: recipientkeys.New(rdb, sealer, pk, nil), Suppressions: supps,
			Auditor: aw, Metrics: m, Logger: log, LockTTL: time.Minute,
		}),
		queued: queued, rt: rt,
	}
}

// deliver sends one PHI message and delivers it, returning the Redis
// requests each part made.
func (p *pipeline) deliver(tb testing.TB, i int) (send, delivery int64) {
	start := p.rt.n.Load()
	_, err := p.svc.Send(tb.Context(), app.SendRequest{
		Tenant: "bench", IdempotencyKey: fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), i),
		To: "patient@example.org", Subject: "Your appointment", TextBody: "See you on Monday.",
	})
	if err != nil {
		tb.Fatal(err)
	}
	m := <-p.queued
	mid := p.rt.n.Load()
	if err := p.worker.Process(tb.Context(), app.Delivery{Message: m, NumDelivered: 1}); err != nil {
		tb.Fatal(err)
	}
	return mid - start, p.rt.n.Load() - mid
}

// TestRedisRoundTripsPerMessage guards the Redis requests of one PHI
// message from Send to sent (no recipient key, no suppression).
func TestRedisRoundTripsPerMessage(t *testing.T) {
	p := newPipeline(t)
	p.deliver(t, 0) // loads the scripts (a NOSCRIPT reply costs a request once)
	send, delivery := p.deliver(t, 1)
	// Send: claim+suppression check+record, commit. Worker: lock+record+
	// suppression entry, recipient key, attempt mark, record+sent
	// index+unlock.
	if send != 2 || delivery != 4 {
		t.Errorf("Redis requests per message: Send %d, delivery %d; want 2 and 4", send, delivery)
	}
}

// BenchmarkSendAndDeliver measures Send plus one worker's delivery of the
// message over a kept-open STARTTLS session, and reports Redis requests
// per message.
func BenchmarkSendAndDeliver(b *testing.B) {
	p := newPipeline(b)
	var send, delivery int64
	i := 0
	for b.Loop() {
		s, d := p.deliver(b, i)
		send, delivery = send+s, delivery+d
		i++
	}
	b.ReportMetric(float64(send)/float64(i), "redis-send/msg")
	b.ReportMetric(float64(delivery)/float64(i), "redis-delivery/msg")
}
