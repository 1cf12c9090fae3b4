package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/lastseen"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
	"github.com/carenotify/carenotify/services/ingest/internal/ratelimit"
	"github.com/carenotify/carenotify/services/ingest/internal/replaycache"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

// receivedAt is the clock of the app under test.
var receivedAt = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// env is the server under test with a real embedded JetStream behind it.
type env struct {
	url    string
	sealer *envelope.Sealer
	ns     *natsserver.Server
	js     jetstream.JetStream
	logs   *logtest.Buffer
	redis  *redis.Client
	state  *lastseen.Store
}

// eventID is the id of the seq-th event of the resource that the FHIR
// logical id ref of source names in tenant (a resource without business
// identifiers).
func (e *env) eventID(tenant, source, kind, ref string, seq int, action string) string {
	rec := e.state.KeyHash(tenant, kind, app.ResourceKey{Type: app.KeyLogical, Scope: source, Value: ref})
	return app.StateEventID(tenant, kind, rec, seq, action)
}

// sources are the test's configured sources: demo with a legacy plain
// token, epic-prod with the stored hash of "epic-token".
var sources = config.Sources{
	{Name: "demo", Tenant: "demo", Token: "demo-token"},
	{Name: "epic-prod", Tenant: "general", TokenHash: config.HashToken("epic-token")},
}

const maxBody = 1 << 20

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with server options changed by opt (nil: none).
func newEnvWith(t *testing.T, opt func(*server.Options)) *env {
	t.Helper()
	return newEnvTLS(t, opt, nil)
}

// newEnvTLS is newEnvWith with the server speaking TLS with tlsCfg (nil:
// plain HTTP).
func newEnvTLS(t *testing.T, opt func(*server.Options), tlsCfg *tls.Config) *env {
	t.Helper()
	ns := bustest.Start(t)
	_, js := bustest.Connect(t, ns)
	if err := bus.EnsureStreams(t.Context(), js, bus.EHREvents(1), bus.EHRDead(1)); err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	logger := log.New(logs, slog.LevelDebug, "ingest")
	m := metrics.New(prometheus.NewRegistry())
	sealer := envelopetest.Sealer(t)
	aw, pk := audittest.Writer(t, js, "ingest")
	rc := storetest.Client(t)
	state := lastseen.New(rc, sealer, pk, lastseen.Options{})
	a := app.New(app.Options{
		Publisher: natsbus.New(js, sealer, 500*time.Millisecond), Auditor: aw, Metrics: m, Logger: logger,
		Now: func() time.Time { return receivedAt }, State: state,
	})
	mux := http.NewServeMux()
	o := server.Options{App: a, Sources: sources, MaxBodyBytes: maxBody, Metrics: m, Logger: logger, Replay: replaycache.New(rc), Limiter: ratelimit.New(rc)}
	if opt != nil {
		opt(&o)
	}
	server.New(o).Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	if tlsCfg != nil {
		srv.TLS = tlsCfg
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &env{url: srv.URL, sealer: sealer, ns: ns, js: js, logs: logs, redis: rc, state: state}
}

// request is one POST to the notification endpoint.
type request struct {
	source, token, contentType string
	body                       []byte
	// header holds further request headers.
	header map[string]string
	// client sends it; http.DefaultClient when nil.
	client *http.Client
}

// demo returns a well-formed request from the demo source.
func demo(body []byte) request {
	return request{source: "demo", token: "demo-token", contentType: "application/fhir+json", body: body}
}

// response is what the tests look at in an answer.
type response struct {
	status  int
	header  http.Header
	outcome outcome
}

type outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
	} `json:"issue"`
}

func (e *env) post(t *testing.T, r request) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/fhir/"+r.source+"/notifications", bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	client := http.DefaultClient
	if r.client != nil {
		client = r.client
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Fatalf("Content-Type = %q, want application/fhir+json; body %s", ct, b)
	}
	if err := json.Unmarshal(b, &out.outcome); err != nil || out.outcome.ResourceType != "OperationOutcome" || len(out.outcome.Issue) != 1 {
		t.Fatalf("body is not an OperationOutcome with one issue: %s (%v)", b, err)
	}
	return out
}

// messages returns every message stored on stream.
func (e *env) messages(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %s #%d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// open unseals a stored message body with the binding its headers name
// (tenant, Nats-Msg-Id) and kind, failing the test when it does not open.
func (e *env) open(t *testing.T, m *jetstream.RawStreamMsg, kind string) []byte {
	t.Helper()
	b := envelope.Binding{Tenant: m.Header.Get(bus.HeaderTenant), Kind: kind, ID: m.Header.Get(jetstream.MsgIDHeader)}
	plain, err := e.sealer.Open(t.Context(), m.Data, b)
	if err != nil {
		t.Fatalf("open stored %s: %v", kind, err)
	}
	return plain
}
