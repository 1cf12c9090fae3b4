package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/queue"
	"github.com/carenotify/carenotify/services/email/internal/records"
)

// fakeMailer records what it is asked to deliver and accepts it.
type fakeMailer struct {
	mu   sync.Mutex
	sent []app.Message
}

func (f *fakeMailer) Deliver(_ context.Context, o app.Outgoing) (app.Transport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, o.Message)
	return app.Transport{TLSVersion: "TLS1.3", TLSVerified: true, NextHop: "fake"}, nil
}

func (f *fakeMailer) Destination(context.Context, app.Outgoing) (string, error) { return "fake", nil }

func (f *fakeMailer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

type fixture struct {
	js     jetstream.JetStream
	store  *records.Store
	mailer *fakeMailer
	worker *app.Worker
	logs   *bytes.Buffer
	// sealer seals what the outbox holds; keys is its key store, shared
	// with any other sealer a test builds.
	sealer *envelope.Sealer
	keys   *envelopetest.MemStore
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, js := bustest.Connect(t, bustest.Start(t))
	if err := bus.EnsureStreams(t.Context(), js, queue.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	_, kr := envelopetest.Keyring(t)
	keys := &envelopetest.MemStore{}
	f := &fixture{
		js: js, store: records.New(storetest.Client(t)), mailer: &fakeMailer{}, logs: &bytes.Buffer{},
		sealer: envelope.NewSealer(kr, keys), keys: keys,
	}
	aw, _ := audittest.Writer(t, js, "email")
	f.worker = app.NewWorker(app.WorkerOptions{
		Store: f.store, Events: queue.NewEvents(js), Mailer: f.mailer, Auditor: aw,
		Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		LockTTL: time.Minute,
	})
	return f
}

func (f *fixture) handler(sealer queue.Sealer) bus.Handler {
	return queue.Handler(queue.HandlerOptions{
		Worker: f.worker, Sealer: sealer, DeadLetters: queue.NewDeadLetters(f.js, sealer),
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
}

// queued stores a queued record for a new message of tenant and returns it.
func (f *fixture) queued(t *testing.T, tenant, id string) app.Message {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := app.Message{
		ID: id, Tenant: tenant, IdempotencyKey: "k-" + id, To: "zz.canary.queue@example.org",
		Subject: "ZZCanaryQueueSubject", TextBody: "ZZCanaryQueueBody", HTMLBody: "<p>ZZCanaryQueueHTML</p>",
		Security: app.SecurityPHI, ExpiresAt: now.Add(time.Hour), QueuedAt: now, JourneyInstance: "j", Step: "s",
	}
	rec := app.Record{ID: id, Tenant: tenant, Status: app.StatusQueued, UpdatedAt: now, ExpiresAt: m.ExpiresAt, Committed: true}
	if err := f.store.CreateRecord(t.Context(), rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	return m
}

// take fetches the next outbox message of tenant.
func (f *fixture) take(t *testing.T, tenant string) jetstream.Msg {
	t.Helper()
	cons, err := f.js.CreateOrUpdateConsumer(t.Context(), bus.OutboxStream(queue.Channel), jetstream.ConsumerConfig{
		Durable: "test-" + tenant, FilterSubject: "outbox.email." + tenant, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		return msg
	}
	t.Fatalf("no outbox message for %s: %v", tenant, batch.Error())
	return nil
}

func (f *fixture) deadLetters(t *testing.T) uint64 {
	t.Helper()
	stream, err := f.js.Stream(t.Context(), queue.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestHandlerOpensSealedMessage(t *testing.T) {
	f := newFixture(t)
	m := f.queued(t, "q-open", "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a51")
	if err := queue.NewOutbox(f.js, f.sealer).Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	msg := f.take(t, "q-open")
	for _, c := range []string{m.To, m.Subject, m.TextBody, m.HTMLBody} {
		if bytes.Contains(msg.Data(), []byte(c)) {
			t.Errorf("outbox payload holds %q", c)
		}
	}
	if err := f.handler(f.sealer)(t.Context(), msg); err != nil {
		t.Fatalf("handler = %v", err)
	}
	if diff := cmp.Diff([]app.Message{m}, f.mailer.sent); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// TestHandlerRetriesUnknownKey: a service that does not hold the KEK that
// wraps the message's data key yet retries the message; it neither
// delivers nor refuses it.
func TestHandlerRetriesUnknownKey(t *testing.T) {
	f := newFixture(t)
	m := f.queued(t, "q-unknown", "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a52")
	if err := queue.NewOutbox(f.js, f.sealer).Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	_, otherKEK := envelopetest.Keyring(t)
	lagging := envelope.NewSealer(otherKEK, f.keys)

	err := f.handler(lagging)(t.Context(), f.take(t, "q-unknown"))
	if err == nil || bus.IsPermanent(err) || !errors.Is(err, envelope.ErrUnknownKey) {
		t.Errorf("handler = %v, want a retryable unknown-key error", err)
	}
	rec, _ := f.store.Record(t.Context(), m.Tenant, m.ID)
	if f.mailer.count() != 0 || f.deadLetters(t) != 0 || rec.Status != app.StatusQueued {
		t.Errorf("after an unknown key: %d delivered, %d dead letters, record %s; want 0, 0, queued",
			f.mailer.count(), f.deadLetters(t), rec.Status)
	}
	if !strings.Contains(f.logs.String(), "level=WARN") {
		t.Errorf("unknown key not logged at warn:\n%s", f.logs.String())
	}
}

// TestHandlerRefusesUnidentified: a message whose headers name no message
// cannot be opened; it is refused and dead-lettered sealed.
func TestHandlerRefusesUnidentified(t *testing.T) {
	f := newFixture(t)
	plain := []byte(`{"v":1,"to":"zz.canary.queue@example.org"}`)
	if _, err := f.js.PublishMsg(t.Context(), &nats.Msg{Subject: "outbox.email.q-noid", Data: plain}); err != nil {
		t.Fatal(err)
	}
	err := f.handler(f.sealer)(t.Context(), f.take(t, "q-noid"))
	if !bus.IsPermanent(err) {
		t.Errorf("handler = %v, want permanent", err)
	}
	stream, _ := f.js.Stream(t.Context(), queue.StreamDead)
	dead, err := stream.GetLastMsgForSubject(t.Context(), "dead.email.q-noid")
	if err != nil {
		t.Fatal(err)
	}
	if dead.Header.Get(bus.HeaderReason) != queue.CauseUnidentified || bytes.Contains(dead.Data, []byte("zz.canary")) {
		t.Errorf("dead letter reason %q, data sealed: %v", dead.Header.Get(bus.HeaderReason), !bytes.Contains(dead.Data, []byte("zz.canary")))
	}
	if _, err := f.sealer.Open(t.Context(), dead.Data, envelope.Binding{Tenant: "q-noid", Kind: queue.KindDead, ID: dead.Header.Get(jetstream.MsgIDHeader)}); err != nil {
		t.Errorf("dead letter does not open with its binding: %v", err)
	}
	if f.mailer.count() != 0 {
		t.Error("refused message delivered")
	}
}
