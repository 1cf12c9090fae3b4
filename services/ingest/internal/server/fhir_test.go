package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirclient"
	"github.com/carenotify/carenotify/services/ingest/internal/lastseen"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

const adminToken = "admin-token-for-tests"

// fhirEnv is the server under test with a stand-in EHR, real JetStream
// (events, dead letters, the INGEST_SUBSCRIPTIONS bucket), real sealing
// and a real audit writer.
type fhirEnv struct {
	*env
	ehr   *ehr
	app   *app.App
	reg   *prometheus.Registry
	clock *clock
}

// newFHIREnv starts everything; change adjusts the demo source's FHIR
// server entry.
func newFHIREnv(t *testing.T, alg string, change func(*config.FHIRServer)) *fhirEnv {
	t.Helper()
	ehr, keyFile := newEHR(t, alg)
	fs := config.FHIRServer{Source: "demo", BaseURL: ehr.base(), TokenURL: ehr.tokenURL(), ClientID: ehrClientID,
		PrivateKeyFile: keyFile, KeyID: "test-key-1", Alg: alg, Scope: "system/Appointment.rs system/Subscription.rs",
		AllowPrivateAddresses: true, TopicTypes: map[string]string{athenaTopic: "Appointment"}}
	if change != nil {
		change(&fs)
	}
	clk := &clock{t: receivedAt}
	fc, err := fhirclient.NewRegistry([]config.FHIRServer{fs}, fhirclient.Options{Now: clk.Now, MaxResponseBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}

	ns := bustest.Start(t)
	_, js := bustest.Connect(t, ns)
	if err := bus.EnsureStreams(t.Context(), js, bus.EHREvents(1), bus.EHRDead(1)); err != nil {
		t.Fatal(err)
	}
	store, err := natsbus.NewSubscriptionStore(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := app.NewSubscriptions(t.Context(), store, func(source string) time.Duration {
		if source == "demo" {
			return fs.Heartbeat()
		}
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	logger := log.New(logs, slog.LevelDebug, "ingest")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	sealer := envelopetest.Sealer(t)
	aw, pk := audittest.Writer(t, js, "ingest")
	a := app.New(app.Options{
		Publisher: natsbus.New(js, sealer, 2*time.Second), Auditor: aw, Metrics: m, Logger: logger,
		Now: clk.Now, FHIR: fc, Subscriptions: subs, State: lastseen.New(storetest.Client(t), sealer, pk, lastseen.Options{}),
	})
	mux := http.NewServeMux()
	server.New(server.Options{App: a, Sources: sources, MaxBodyBytes: maxBody, Metrics: m, Logger: logger,
		AdminToken: adminToken}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fhirEnv{env: &env{url: srv.URL, sealer: sealer, ns: ns, js: js, logs: logs}, ehr: ehr, app: a, reg: reg, clock: clk}
}

// events returns the stored events, opened.
func (e *fhirEnv) events(t *testing.T) []*eventsv1.ClinicalEvent {
	t.Helper()
	var out []*eventsv1.ClinicalEvent
	for _, m := range e.messages(t, "EHR_EVENTS") {
		var ev eventsv1.ClinicalEvent
		if err := proto.Unmarshal(e.open(t, m, envelope.KindEHREvent), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, &ev)
	}
	return out
}

// metric returns the value of the series name{source=source}.
func (e *fhirEnv) metric(t *testing.T, name, source string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == source {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// checkLogs fails when a log line holds a token, key material, an
// assertion or a resource identifier.
func (e *fhirEnv) checkLogs(t *testing.T) {
	t.Helper()
	logs := e.logs.String()
	for _, bad := range []string{"ehr-token-", "eyJ", "PRIVATE KEY", "demo-token", adminToken, "2docs", "gap-2",
		"195900", "Chalmers", "identifier="} {
		if strings.Contains(logs, bad) {
			t.Errorf("logs contain %q", bad)
		}
	}
	e.ehr.mu.Lock()
	defer e.ehr.mu.Unlock()
	for _, tok := range e.ehr.issuedTokens {
		if strings.Contains(logs, tok) {
			t.Error("logs contain an issued access token")
		}
	}
}

func TestIDOnlyNotificationFetchedAndMapped(t *testing.T) {
	for _, alg := range []string{"RS384", "ES384"} {
		t.Run(alg, func(t *testing.T) {
			e := newFHIREnv(t, alg, nil)

			// Inferno-style R4 backport Parameters, absolute focus below the base.
			r := e.post(t, demo(backportIDOnly(t, "sub-1", 1, e.ehr.base()+"/Appointment/2docs")))
			if r.status != http.StatusOK {
				t.Fatalf("status = %d, want 200: %+v", r.status, r.outcome)
			}
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("EHR_EVENTS holds %d events, want 1", len(evs))
			}
			got := evs[0]
			if len(got.GetEventId()) != 32 || got.GetKind() != "appointment" || got.GetAction() != "booked" ||
				got.GetSubjectRef() != "Appointment/2docs" || got.GetPatient().GetId() != "example" || got.GetSource().GetEventNumber() != 1 {
				t.Errorf("event = id %s %s.%s subject %s patient %s number %d; want id %s appointment.booked Appointment/2docs example 1",
					got.GetEventId(), got.GetKind(), got.GetAction(), got.GetSubjectRef(), got.GetPatient().GetId(),
					got.GetSource().GetEventNumber(), "(32 hex digits)")
			}
			// athenahealth-style SubscriptionStatus, focus by identifier:
			// found by search, same resource version, so the same event id.
			r = e.post(t, demo(statusBundle(t, "event-notification", "athena-1", 1, statusEvent{number: 1,
				identifierSystem: "urn:athenahealth:athenanet:appointment:195900", identifierValue: "2"})))
			if r.status != http.StatusOK {
				t.Fatalf("athena: status = %d, want 200: %+v", r.status, r.outcome)
			}
			if n := len(e.events(t)); n != 1 {
				t.Errorf("after the athena notification EHR_EVENTS holds %d events, want 1 (same event id)", n)
			}
			if n := e.ehr.count("/fhir/Appointment/2docs"); n != 1 {
				t.Errorf("EHR read Appointment/2docs %d times, want 1", n)
			}
			if n := e.ehr.count("/fhir/Appointment"); n != 1 {
				t.Errorf("EHR searched Appointment %d times, want 1", n)
			}
			if n := len(e.messages(t, "EHR_DEAD")); n != 0 {
				t.Errorf("EHR_DEAD holds %d messages, want 0", n)
			}
			e.checkLogs(t)
		})
	}
}

func TestTokenReusedAndRefreshedAfterExpiry(t *testing.T) {
	e := newFHIREnv(t, "ES384", nil)
	e.ehr.expiresIn = 120
	for i := range 3 {
		if r := e.post(t, demo(backportIDOnly(t, "sub-1", i+1, "Appointment/2docs"))); r.status != http.StatusOK {
			t.Fatalf("notification %d: status = %d: %+v", i+1, r.status, r.outcome)
		}
	}
	if n := e.ehr.issued(); n != 1 {
		t.Errorf("tokens issued for three notifications = %d, want 1 (cached)", n)
	}
	e.clock.Advance(2 * time.Minute)
	if r := e.post(t, demo(backportIDOnly(t, "sub-1", 4, "Appointment/2docs"))); r.status != http.StatusOK {
		t.Fatalf("status = %d: %+v", r.status, r.outcome)
	}
	if n := e.ehr.issued(); n != 2 {
		t.Errorf("tokens issued after expiry = %d, want 2 (refreshed)", n)
	}
	if n := e.ehr.count("/fhir/Appointment/2docs"); n != 4 {
		t.Errorf("reads = %d, want 4", n)
	}
	e.checkLogs(t)
}

func TestIDOnlyFetchRefused(t *testing.T) {
	tests := []struct {
		name       string
		give       func(e *fhirEnv) string // focus reference
		allowPriv  bool
		wantStatus int
		wantDead   int
		wantLog    string // the refusal's cause, in the log line
	}{
		{name: "focus on another host", give: func(*fhirEnv) string { return "https://evil.example/fhir/Appointment/2docs" },
			allowPriv: true, wantStatus: http.StatusUnprocessableEntity, wantDead: 1, wantLog: `"reason":"focus_refused"`},
		{name: "focus on another path of the same host", give: func(e *fhirEnv) string { return e.ehr.srv.URL + "/other/Appointment/2docs" },
			allowPriv: true, wantStatus: http.StatusUnprocessableEntity, wantDead: 1, wantLog: `"reason":"focus_refused"`},
		{name: "deleted resource (410)", give: func(*fhirEnv) string { return "Appointment/deleted" },
			allowPriv: true, wantStatus: http.StatusUnprocessableEntity, wantDead: 1, wantLog: `"reason":"focus_refused"`},
		{name: "redirect off the base url", give: func(*fhirEnv) string { return "Appointment/redirect" },
			allowPriv: true, wantStatus: http.StatusServiceUnavailable, wantLog: "redirect off the base url refused"},
		{name: "response over the size limit", give: func(*fhirEnv) string { return "Appointment/big" },
			allowPriv: true, wantStatus: http.StatusServiceUnavailable, wantLog: "response larger than the limit"},
		{name: "private address not allowed", give: func(*fhirEnv) string { return "Appointment/2docs" },
			allowPriv: false, wantStatus: http.StatusServiceUnavailable, wantLog: "address not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFHIREnv(t, "RS384", func(fs *config.FHIRServer) { fs.AllowPrivateAddresses = tt.allowPriv })
			r := e.post(t, demo(backportIDOnly(t, "sub-1", 1, tt.give(e))))
			if r.status != tt.wantStatus {
				t.Errorf("status = %d, want %d: %+v", r.status, tt.wantStatus, r.outcome)
			}
			if n := len(e.events(t)); n != 0 {
				t.Errorf("EHR_EVENTS holds %d events, want 0", n)
			}
			if n := len(e.messages(t, "EHR_DEAD")); n != tt.wantDead {
				t.Errorf("EHR_DEAD holds %d messages, want %d", n, tt.wantDead)
			}
			if !strings.Contains(e.logs.String(), tt.wantLog) {
				t.Errorf("logs lack %s", tt.wantLog)
			}
			if !tt.allowPriv && e.ehr.issued() != 0 {
				t.Error("the token endpoint on a private address was reached")
			}
			if n := e.ehr.count("/fhir/Appointment/2docs"); n != 0 {
				t.Errorf("the EHR served Appointment/2docs %d times, want 0", n)
			}
			e.checkLogs(t)
		})
	}
}

func TestGapRecoveredWithEvents(t *testing.T) {
	e := newFHIREnv(t, "RS384", nil)
	if r := e.post(t, demo(statusBundle(t, "event-notification", "sub-1", 1, statusEvent{number: 1, focus: "Appointment/2docs"}))); r.status != http.StatusOK {
		t.Fatalf("event 1: status = %d: %+v", r.status, r.outcome)
	}
	if r := e.post(t, demo(statusBundle(t, "event-notification", "sub-1", 4, statusEvent{number: 4, focus: "Appointment/gap-4"}))); r.status != http.StatusOK {
		t.Fatalf("event 4: status = %d: %+v", r.status, r.outcome)
	}
	e.ehr.mu.Lock()
	q := e.ehr.eventsQuery
	e.ehr.mu.Unlock()
	if q != "eventsSinceNumber=2&eventsUntilNumber=3" {
		t.Errorf("$events query = %q, want eventsSinceNumber=2&eventsUntilNumber=3", q)
	}
	var got []string
	for _, ev := range e.events(t) {
		got = append(got, ev.GetSubjectRef())
	}
	want := []string{"Appointment/2docs", "Appointment/gap-4", "Appointment/gap-2", "Appointment/gap-3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored events mismatch (-want +got):\n%s", diff)
	}
	if v := e.metric(t, "ingest_subscription_gaps_total", "demo"); v != 1 {
		t.Errorf("ingest_subscription_gaps_total{source=demo} = %v, want 1", v)
	}
	if v := e.metric(t, "ingest_subscription_gaps_recovered_total", "demo"); v != 1 {
		t.Errorf("ingest_subscription_gaps_recovered_total{source=demo} = %v, want 1", v)
	}
	logs := e.logs.String()
	for _, want := range []string{`"msg":"subscription gap"`, `"fromEvent":2`, `"untilEvent":3`, `"msg":"subscription gap recovered"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	st := e.status(t, adminToken, "")
	if len(st) != 1 || st[0].LastEventNumber != 4 || len(st[0].Gaps) != 1 || st[0].Gaps[0].Status != app.GapRecovered ||
		st[0].Gaps[0].From != 2 || st[0].Gaps[0].Until != 3 || st[0].Gaps[0].Method != app.GapByEvents {
		t.Errorf("status = %+v, want sub-1 at 4 with gap 2..3 recovered", st)
	}
	e.checkLogs(t)
}

func TestHeartbeatOverdue(t *testing.T) {
	e := newFHIREnv(t, "RS384", func(fs *config.FHIRServer) { fs.HeartbeatPeriod = "5m" })
	if r := e.post(t, demo(statusBundle(t, "heartbeat", "sub-2", 0))); r.status != http.StatusOK {
		t.Fatalf("heartbeat: status = %d: %+v", r.status, r.outcome)
	}
	e.clock.Advance(9 * time.Minute)
	e.app.CheckHeartbeats(t.Context())
	if v := e.metric(t, "ingest_subscription_heartbeat_overdue", "demo"); v != 0 {
		t.Errorf("overdue after 9m of a 5m period = %v, want 0", v)
	}
	e.clock.Advance(2 * time.Minute)
	e.app.CheckHeartbeats(t.Context())
	if v := e.metric(t, "ingest_subscription_heartbeat_overdue", "demo"); v != 1 {
		t.Errorf("overdue after 11m of a 5m period = %v, want 1", v)
	}
	e.ehr.mu.Lock()
	calls := e.ehr.statusCalls
	e.ehr.mu.Unlock()
	if calls != 1 || e.ehr.count("/fhir/Subscription/sub-2/$status") != 1 {
		t.Errorf("$status calls = %d, want 1 on sub-2", calls)
	}
	if !strings.Contains(e.logs.String(), `"msg":"subscription heartbeat overdue"`) {
		t.Error("no overdue log line")
	}
	st := e.status(t, "demo-token", "demo")
	if len(st) != 1 || !st[0].HeartbeatOverdue || !st[0].LastHeartbeat.Equal(receivedAt) {
		t.Errorf("status = %+v, want sub-2 overdue with its last heartbeat", st)
	}
	// A new notification clears it.
	if r := e.post(t, demo(statusBundle(t, "heartbeat", "sub-2", 0))); r.status != http.StatusOK {
		t.Fatalf("heartbeat: status = %d", r.status)
	}
	e.app.CheckHeartbeats(t.Context())
	if v := e.metric(t, "ingest_subscription_heartbeat_overdue", "demo"); v != 0 {
		t.Errorf("overdue after a new heartbeat = %v, want 0", v)
	}
	e.checkLogs(t)
}

func TestSubscriptionStatusEndpointAuth(t *testing.T) {
	e := newFHIREnv(t, "RS384", nil)
	if r := e.post(t, demo(statusBundle(t, "heartbeat", "sub-2", 0))); r.status != http.StatusOK {
		t.Fatalf("heartbeat: status = %d", r.status)
	}
	tests := []struct {
		name, token, source string
		want                int
	}{
		{name: "no token", source: "demo", want: http.StatusUnauthorized},
		{name: "wrong source's token", token: "epic-token", source: "demo", want: http.StatusUnauthorized},
		{name: "source token without source", token: "demo-token", want: http.StatusUnauthorized},
		{name: "source token", token: "demo-token", source: "demo", want: http.StatusOK},
		{name: "admin token, all sources", token: adminToken, want: http.StatusOK},
		{name: "other source sees none of demo's", token: "epic-token", source: "epic-prod", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.getStatus(t, tt.token, tt.source)
			if status != tt.want {
				t.Errorf("status = %d, want %d", status, tt.want)
			}
			if tt.source == "epic-prod" && !strings.Contains(string(body), `"subscriptions":[]`) {
				t.Errorf("epic-prod sees %s", body)
			}
		})
	}
}

// getStatus calls GET /status/subscriptions.
func (e *fhirEnv) getStatus(t *testing.T, token, source string) (int, []byte) {
	t.Helper()
	u := e.url + "/status/subscriptions"
	if source != "" {
		u += "?source=" + source
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// status reads the subscription states.
func (e *fhirEnv) status(t *testing.T, token, source string) []app.SubscriptionState {
	t.Helper()
	code, b := e.getStatus(t, token, source)
	if code != http.StatusOK {
		t.Fatalf("GET /status/subscriptions = %d", code)
	}
	var out struct {
		Subscriptions []app.SubscriptionState `json:"subscriptions"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Subscriptions
}

func TestEmptyPayloadSearchedSinceLastNotification(t *testing.T) {
	e := newFHIREnv(t, "RS384", nil)
	// Event 1 (id-only) sets the last-seen time: the Bundle's 11:59:30Z.
	if r := e.post(t, demo(statusBundle(t, "event-notification", "sub-3", 1, statusEvent{number: 1, focus: "Appointment/2docs"}))); r.status != http.StatusOK {
		t.Fatalf("event 1: status = %d: %+v", r.status, r.outcome)
	}
	r := e.post(t, demo(statusBundle(t, "event-notification", "sub-3", 3, statusEvent{number: 2}, statusEvent{number: 3})))
	if r.status != http.StatusOK {
		t.Fatalf("empty: status = %d: %+v", r.status, r.outcome)
	}
	e.ehr.mu.Lock()
	q := e.ehr.searchQuery
	e.ehr.mu.Unlock()
	if want := "_lastUpdated=gt2026-01-15T11%3A58%3A30Z&_sort=_lastUpdated"; q != want {
		t.Errorf("search query = %q, want %q (last seen less a minute)", q, want)
	}
	var got []string
	for _, ev := range e.events(t) {
		got = append(got, ev.GetSubjectRef())
	}
	if diff := cmp.Diff([]string{"Appointment/2docs", "Appointment/gap-2", "Appointment/gap-3"}, got); diff != "" {
		t.Errorf("stored events mismatch (-want +got):\n%s", diff)
	}
	if n := len(e.messages(t, "EHR_DEAD")); n != 0 {
		t.Errorf("EHR_DEAD holds %d messages, want 0", n)
	}
	if v := e.metric(t, "ingest_subscription_gaps_total", "demo"); v != 0 {
		t.Errorf("gaps = %v, want 0", v)
	}
	e.checkLogs(t)
}

func TestEmptyPayloadWithoutTopicTypeDeadLettered(t *testing.T) {
	e := newFHIREnv(t, "RS384", func(fs *config.FHIRServer) { fs.TopicTypes = nil })
	r := e.post(t, demo(statusBundle(t, "event-notification", "sub-3", 2, statusEvent{number: 2})))
	if r.status != http.StatusOK || r.outcome.Issue[0].Severity != "warning" {
		t.Fatalf("status = %d %+v, want 200 with a warning", r.status, r.outcome)
	}
	if n := len(e.messages(t, "EHR_DEAD")); n != 1 {
		t.Errorf("EHR_DEAD holds %d messages, want 1", n)
	}
}

func TestTokenSharedByConcurrentNotifications(t *testing.T) {
	e := newFHIREnv(t, "ES384", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		body := backportIDOnly(t, "sub-c", i+1, "Appointment/2docs")
		wg.Go(func() {
			if _, err := e.app.Ingest(t.Context(), app.Source{Name: "demo", Tenant: "demo"}, body); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Ingest: %v", err)
	}
	if n := e.ehr.issued(); n != 1 {
		t.Errorf("tokens issued for 8 concurrent notifications = %d, want 1", n)
	}
	if n := len(e.events(t)); n != 1 {
		t.Errorf("EHR_EVENTS holds %d events, want 1 (same resource version)", n)
	}
}
