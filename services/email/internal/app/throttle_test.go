package app_test

import (
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/limits"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/queue"
	"github.com/carenotify/carenotify/services/email/internal/records"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

func TestWarmupCap(t *testing.T) {
	w := app.Warmup{Identity: "ip-a", Start: "2026-12-01", FirstDay: 200, Full: 1000}
	tests := []struct {
		name   string
		give   time.Time
		want   int
		capped bool
	}{
		{name: "before the start: day 1", give: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), want: 200, capped: true},
		{name: "day 1", give: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), want: 200, capped: true},
		{name: "day 1, late, in another zone", give: time.Date(2026, 12, 1, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)), want: 400, capped: true},
		{name: "day 2", give: time.Date(2026, 12, 2, 23, 59, 0, 0, time.UTC), want: 400, capped: true},
		{name: "day 3", give: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), want: 800, capped: true},
		{name: "day 4 reaches full: no cap", give: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), capped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, capped := w.Cap(tt.give)
			if got != tt.want || capped != tt.capped {
				t.Errorf("Cap(%v) = %d, %v; want %d, %v", tt.give, got, capped, tt.want, tt.capped)
			}
		})
	}
	if _, capped := (app.Warmup{}).Cap(time.Now()); capped {
		t.Error("no identity, yet capped")
	}
}

// TestWorkerThrottles: a message over a destination limit or the warm-up
// cap waits (a Later, no attempt, record and events untouched, counted in
// email_throttled_total), or fails as expired when the wait would outlast
// it; a deferred message is handed out again after its attempts' backoff.
func TestWorkerThrottles(t *testing.T) {
	ca := smtptest.NewCA(t)
	_, js := bustest.Connect(t, bustest.Start(t))
	if err := bus.EnsureStreams(t.Context(), js, queue.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	rdb := storetest.Client(t)
	st := records.New(rdb)
	lim := limits.New(rdb)
	aw, _ := audittest.Writer(t, js, "email")
	sealer := envelopetest.Sealer(t)
	from, _ := netmail.ParseAddress("noreply@carenotify.localhost")
	now := time.Now()

	limited := app.DefaultPolicy()
	limited.Limits = map[string]app.Limit{"localhost": {Concurrency: 1}, app.AnyDestination: {Rate: 100}}
	rated := app.DefaultPolicy()
	rated.Limits = map[string]app.Limit{app.AnyDestination: {Rate: 1, Per: app.Duration(time.Hour)}}
	warm := app.DefaultPolicy()
	warm.Warmup = app.Warmup{Identity: "ip-test", Start: now.UTC().Format(time.DateOnly), FirstDay: 1}

	type result struct {
		Err      string // "", "later", "permanent", "retry"
		Throttle string // the email_throttled_total reason counted, if any
		Status   app.Status
		Attempts int
		Mail     int
	}
	tests := []struct {
		name   string
		policy app.Policy
		// before runs ahead of Process (takes a slot, spends the rate, the cap).
		before    func(t *testing.T, tenant string)
		relay     smtptest.Options
		expiresIn time.Duration
		// minWait bounds a Later's delay from below.
		minWait time.Duration
		want    result
	}{
		{
			name: "under the limits: sent", policy: limited, relay: smtptest.Options{CA: ca}, expiresIn: time.Hour,
			want: result{Status: app.StatusSent, Attempts: 1, Mail: 1},
		},
		{
			name: "destination's concurrency taken: waits", policy: limited, relay: smtptest.Options{CA: ca}, expiresIn: time.Hour,
			before: func(t *testing.T, tenant string) {
				if p, err := lim.Acquire(t.Context(), tenant, "localhost", app.Limit{Concurrency: 1}, time.Minute); err != nil || p.Wait != 0 {
					t.Fatalf("take the slot: %+v, %v", p, err)
				}
			},
			minWait: limits.ConcurrencyWait,
			want:    result{Err: "later", Throttle: app.ThrottleConcurrency, Status: app.StatusQueued},
		},
		{
			name: "rate spent: waits", policy: rated, relay: smtptest.Options{CA: ca}, expiresIn: 2 * time.Hour,
			before: func(t *testing.T, tenant string) {
				if p, err := lim.Acquire(t.Context(), tenant, "localhost", app.Limit{Rate: 1, Per: app.Duration(time.Hour)}, time.Minute); err != nil || p.Wait != 0 {
					t.Fatalf("spend the rate: %+v, %v", p, err)
				}
			},
			minWait: 30 * time.Minute,
			want:    result{Err: "later", Throttle: app.ThrottleRate, Status: app.StatusQueued},
		},
		{
			name: "rate spent, the wait outlasts the message: expired", policy: rated, relay: smtptest.Options{CA: ca}, expiresIn: time.Minute,
			before: func(t *testing.T, tenant string) {
				_, _ = lim.Acquire(t.Context(), tenant, "localhost", app.Limit{Rate: 1, Per: app.Duration(time.Hour)}, time.Minute)
			},
			want: result{Err: "permanent", Throttle: app.ThrottleRate, Status: app.StatusFailed},
		},
		{
			name: "warm-up cap reached: waits for the next day", policy: warm, relay: smtptest.Options{CA: ca}, expiresIn: 48 * time.Hour,
			before: func(t *testing.T, _ string) {
				if ok, err := lim.CountWarmup(t.Context(), "ip-test", time.Now(), 1); err != nil || !ok {
					t.Fatalf("reach the cap: %v, %v", ok, err)
				}
			},
			minWait: time.Until(now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)),
			want:    result{Err: "later", Throttle: app.ThrottleWarmup, Status: app.StatusQueued},
		},
		{
			name: "451: deferred, handed out again after the backoff", policy: app.DefaultPolicy(), expiresIn: time.Hour,
			relay:   smtptest.Options{CA: ca, Rcpt: func(int) *smtp.SMTPError { return &smtp.SMTPError{Code: 451, Message: "later"} }},
			minWait: 3 * time.Second,
			want:    result{Err: "later", Status: app.StatusDeferred, Attempts: 1, Mail: 1},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := fmt.Sprintf("throttle-%c", 'a'+i)
			srv := smtptest.Start(t, tt.relay)
			mailer, err := relay.New(relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, From: from, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			m := metrics.New(reg)
			w := app.NewWorker(app.WorkerOptions{
				Store: st, Events: queue.NewEvents(js), Mailer: mailer, Auditor: aw,
				Policies: app.Policies{Default: tt.policy}, Holder: queue.NewHeld(js, sealer), Limiter: lim,
				Metrics: m, Logger: slog.New(slog.DiscardHandler), LockTTL: time.Minute,
				Backoff: func(n uint64) time.Duration { return time.Duration(n) * 3 * time.Second },
			})
			msg := app.Message{
				ID: fmt.Sprintf("0193a5b2-7c1d-7e2f-8a9b-%012x", 0x100+i), Tenant: tenant, IdempotencyKey: "k",
				To: "patient@example.org", Subject: "s", TextBody: "b", ExpiresAt: time.Now().Add(tt.expiresIn),
			}
			rec := app.Record{ID: msg.ID, Tenant: tenant, Status: app.StatusQueued, UpdatedAt: now, ExpiresAt: msg.ExpiresAt, Committed: true}
			if err := st.CreateRecord(t.Context(), rec, time.Hour); err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(t, tenant)
			}

			perr := w.Process(t.Context(), app.Delivery{Message: msg, NumDelivered: 7})

			var later *app.Later
			kind := errKind(perr)
			if errors.As(perr, &later) {
				kind = "later"
				if later.After < tt.minWait {
					t.Errorf("waits %v, want at least %v", later.After, tt.minWait)
				}
			}
			throttle := throttled(t, reg)
			got, _ := st.Record(t.Context(), tenant, msg.ID)
			mail, _, _ := srv.Commands()
			if diff := cmp.Diff(tt.want, result{Err: kind, Throttle: throttle, Status: got.Status, Attempts: got.Attempts, Mail: mail}); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if events, _ := deliveryEvents(t, js, tenant); tt.want.Status == app.StatusQueued && len(events) != 0 {
				t.Errorf("a throttled message published %v", events)
			}
		})
	}
}

// throttled returns the reason email_throttled_total counted on reg, ""
// for none.
func throttled(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reason := ""
	for _, mf := range mfs {
		if mf.GetName() != "email_throttled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter().GetValue() > 0 {
				reason = m.GetLabel()[0].GetValue()
			}
		}
	}
	return reason
}
